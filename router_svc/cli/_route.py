"""``llm-router route "text"``: show the routing decision for one prompt.

In-process by default (loads the config and router model here); with ``--target HOST:PORT``
it asks a running server over gRPC instead, so the answer reflects that server's config.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from router_core.errors import InvalidRequest, ProviderUnavailable

__all__ = ["register"]

_PRIORITIES = ("cost", "balanced", "quality")
_STRATEGIES = ("classifier", "cascade", "rules_only")
_CAPABILITIES = ("tools", "vision", "json")


def register(subparsers: Any) -> None:
    """Add the ``route`` subcommand."""
    p = subparsers.add_parser(
        "route",
        help="show which model a prompt would be routed to",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("text", help='the prompt ("-" reads it from standard input)')
    p.add_argument("--config", metavar="FILE", help="config file (default: the shipped one)")
    p.add_argument("--target", metavar="HOST:PORT", help="ask a running server over gRPC")
    p.add_argument("--task-type", default="", help="task label, e.g. code, math, chat")
    p.add_argument("--priority", choices=_PRIORITIES, default="")
    p.add_argument("--max-cost", type=float, default=0.0, metavar="USD", help="cost cap per call")
    p.add_argument(
        "--capability", action="append", choices=_CAPABILITIES, default=[], dest="capabilities"
    )
    p.add_argument("--tenant", default="")
    p.add_argument("--tag", action="append", default=[], dest="tags")
    p.add_argument("--strategy", choices=_STRATEGIES, default="", help="override the config's")
    p.add_argument("--threshold", type=float, default=None, help="override (threshold mode)")
    p.add_argument("--quality-target", type=float, default=None, help="override the target")
    p.add_argument("--timeout", type=float, default=5.0, help="gRPC deadline in seconds")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Route one prompt and print the decision; returns the exit code."""
    text = sys.stdin.read() if args.text == "-" else args.text
    if args.target:
        if args.config:
            raise InvalidRequest(
                "--config and --target exclude each other; the server has its config"
            )
        decision = route_remote(args, text)
    else:
        decision = route_local(args, text)
    if args.json:
        print(json.dumps(decision, indent=2, sort_keys=False))
    else:
        print(format_decision(decision))
    return 0


def route_local(args: argparse.Namespace, text: str) -> dict[str, Any]:
    """The decision of an in-process router, as a dict."""
    from router_core import RouteRequest, load_router

    router = load_router(args.config)
    request = RouteRequest(
        text,
        task_type=args.task_type,
        priority=args.priority,
        max_cost_usd=args.max_cost,
        capabilities=tuple(args.capabilities),
        tenant=args.tenant,
        tags=tuple(args.tags),
        strategy=args.strategy,
        threshold=args.threshold,
        quality_target=args.quality_target,
    )
    router.decide(request)  # the first call pays one-time costs (ONNX session warm-up)
    return router.decide(request).to_dict()


def route_remote(args: argparse.Namespace, text: str) -> dict[str, Any]:
    """The decision of the server at ``args.target`` (gRPC ``Route``), as a dict."""
    import grpc

    from llm_router.v1 import router_pb2 as pb
    from llm_router.v1 import router_pb2_grpc as pb_grpc

    overrides = pb.Overrides(
        strategy={
            "": pb.STRATEGY_UNSPECIFIED,
            "rules_only": pb.STRATEGY_RULES,
            "classifier": pb.STRATEGY_CLASSIFIER,
            "cascade": pb.STRATEGY_CASCADE,
        }[args.strategy]
    )
    if args.threshold is not None:
        overrides.threshold = args.threshold
    if args.quality_target is not None:
        overrides.quality_target = args.quality_target
    request = pb.RouteRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content=text)],
        task_type=args.task_type,
        priority=pb.Priority.Value(f"PRIORITY_{args.priority.upper()}")
        if args.priority
        else pb.PRIORITY_UNSPECIFIED,
        capabilities=[pb.Capability.Value(f"CAPABILITY_{c.upper()}") for c in args.capabilities],
        tenant=args.tenant,
        tags=args.tags,
        overrides=overrides,
    )
    if args.max_cost > 0:
        request.max_cost_usd = args.max_cost
    with grpc.insecure_channel(args.target) as channel:
        try:
            reply = pb_grpc.RouterStub(channel).Route(  # type: ignore[no-untyped-call]
                request, timeout=args.timeout
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            detail = exc.details() if hasattr(exc, "details") else ""
            name = code.name if code is not None else "UNKNOWN"
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(f"{args.target} rejected the request: {detail}") from None
            raise ProviderUnavailable(f"{args.target} answered {name}: {detail}") from None
    return _decision_dict(reply, pb)


def _decision_dict(reply: Any, pb: Any) -> dict[str, Any]:
    strategy = pb.Strategy.Name(reply.strategy).removeprefix("STRATEGY_").lower()
    return {
        "model": reply.model,
        "provider": reply.provider,
        "strategy": {"rules": "rules", "unspecified": ""}.get(strategy, strategy),
        "reason": reply.reason,
        "scores": {
            c.model: c.predicted_quality
            for c in reply.candidates
            if c.HasField("predicted_quality")
        },
        "costs": {c.model: c.estimated_cost_usd for c in reply.candidates},
        "fallbacks": list(reply.fallbacks),
        "cascade": [{"model": s.model, "min_confidence": s.min_confidence} for s in reply.cascade],
        "category": reply.category,
        "config_version": reply.config_version,
        "decision_us": float(reply.decision_time_us),
        "monitor_note": reply.monitor_note,
        "request_id": reply.request_id,
    }


def format_decision(d: dict[str, Any]) -> str:
    """A short human-readable report of a decision dict."""
    lines = [
        f"model:     {d['model']} ({d['provider']})",
        f"strategy:  {d['strategy']}: {d['reason']}",
        (
            f"category:  {d['category']}    config: {d['config_version']}    "
            f"decided in {d['decision_us']:.0f} us"
        ),
    ]
    if d["cascade"]:
        steps = " -> ".join(f"{s['model']} (>= {s['min_confidence']:.2f})" for s in d["cascade"])
        lines.append(f"cascade:   {steps}")
    if d["fallbacks"]:
        lines.append(f"fallbacks: {', '.join(d['fallbacks'])}")
    names = list(d["costs"]) or list(d["scores"])
    if names:
        width = max(len(n) for n in names)
        lines.append(f"{'candidate':<{width}}  predicted  est. cost USD")
        for name in sorted(names, key=lambda n: -d["scores"].get(n, -1.0)):
            q = d["scores"].get(name)
            q_text = f"{q:9.3f}" if q is not None else f"{'-':>9}"
            mark = " <" if name == d["model"] else ""
            lines.append(f"{name:<{width}}  {q_text}  {d['costs'].get(name, 0.0):13.6f}{mark}")
    return "\n".join(lines)
