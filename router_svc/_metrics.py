"""Prometheus metrics of the service: one ``Metrics`` object with its own ``CollectorRegistry``.

Served on a separate port (``Metrics.serve``). Label values that callers control (categories,
tenants) pass through ``BoundedLabel`` so a misbehaving client cannot create unbounded series.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from router_core.errors import ConfigError

__all__ = ["BREAKER_STATES", "BoundedLabel", "Metrics"]

# Decision latency lives in microseconds: buckets from 5 us to 10 ms.
DECISION_BUCKETS = (
    5e-6, 10e-6, 20e-6, 30e-6, 50e-6, 75e-6, 100e-6, 150e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
    5e-3, 10e-3,
)  # fmt: skip
RPC_BUCKETS = (50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 0.01, 0.05, 0.25, 1, 5, 30)
PROVIDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class BoundedLabel:
    """Maps label values to themselves until ``max_values`` distinct ones, then to ``other``."""

    def __init__(self, max_values: int = 64, *, initial: tuple[str, ...] = ()) -> None:
        self._max = max_values
        self._seen: set[str] = set(initial)
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value or "none"
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._max:
                self._seen.add(value)
                return value
        return "other"


class Metrics:
    """Every metric the service exports; pass it to the servicer, recorder, monitor, A/B."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_label_values: int = 64):
        self.registry = registry or CollectorRegistry()
        self.category = BoundedLabel(max_label_values)
        self.tenant = BoundedLabel(max_label_values)
        self.model = BoundedLabel(max_label_values)
        r = self.registry
        p = "llm_router_"
        self.decision_latency = Histogram(
            p + "decision_latency_seconds", "Routing decision time in-process.",
            buckets=DECISION_BUCKETS, registry=r,
        )  # fmt: skip
        self.rpcs = Counter(p + "rpcs", "RPCs handled.", ["method", "code"], registry=r)
        self.rpc_latency = Histogram(
            p + "rpc_duration_seconds", "RPC handler time.", ["method"], buckets=RPC_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.routed = Counter(
            p + "routed_requests", "Routed requests.", ["model", "strategy", "category"], registry=r
        )
        self.cost = Counter(p + "cost_usd", "Cost in USD.", ["model", "category"], registry=r)
        self.reference_cost = Counter(
            p + "reference_cost_usd", "What the most capable model would have cost (USD).",
            registry=r,
        )  # fmt: skip
        self.tokens = Counter(p + "tokens", "Tokens.", ["model", "direction"], registry=r)
        self.provider_latency = Histogram(
            p + "provider_latency_seconds", "Upstream call time.", ["model"],
            buckets=PROVIDER_BUCKETS, registry=r,
        )  # fmt: skip
        self.provider_ttft = Histogram(
            p + "provider_ttft_seconds", "Upstream time to first token.", ["model"],
            buckets=PROVIDER_BUCKETS, registry=r,
        )  # fmt: skip
        self.provider_errors = Counter(
            p + "provider_errors", "Failed upstream attempts.", ["model", "kind"], registry=r
        )
        self.fallbacks = Counter(
            p + "fallbacks", "Fallbacks away from a model.", ["model"], registry=r
        )
        self.escalations = Counter(
            p + "escalations", "Cascade escalations away from a model.", ["model"], registry=r
        )
        self.breaker_state = Gauge(
            p + "circuit_breaker_state", "0 closed, 1 half-open, 2 open.", ["model"], registry=r
        )
        self.monitor_alerts = Counter(
            p + "monitor_alerts",
            "Quality alerts raised.",
            ["model", "category", "signal"],
            registry=r,
        )
        self.monitor_blocked = Gauge(
            p + "monitor_blocked", "1 while a model is kept from a category.", ["model", "category"],
            registry=r,
        )  # fmt: skip
        self.ab_assignments = Counter(
            p + "ab_assignments", "A/B assignments.", ["category", "arm"], registry=r
        )
        self.feedback = Counter(
            p + "feedback", "Feedback events.", ["source", "result"], registry=r
        )
        self.budget_exhausted = Counter(
            p + "budget_exhausted",
            "Requests over a tenant budget.",
            ["tenant", "action"],
            registry=r,
        )
        self.storage_up = Gauge(p + "storage_up", "1 when the last flush succeeded.", registry=r)
        self.storage_queue = Gauge(p + "storage_queue_depth", "Records waiting.", registry=r)
        self.storage_dropped = Counter(
            p + "storage_dropped", "Records dropped (queue full).", ["kind"], registry=r
        )
        self.storage_flushes = Counter(
            p + "storage_flushes", "Flush attempts.", ["result"], registry=r
        )
        self.storage_written = Counter(p + "storage_written_rows", "Rows written.", registry=r)
        self.storage_up.set(1)
        self._routed_children: dict[tuple[str, str, str], Any] = {}
        self._rpc_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._cost_children: dict[tuple[str, str], Any] = {}

    # -- helpers the servicer calls ---------------------------------------------------------

    def observe_decision(self, decision: Any, decision_s: float) -> None:
        """Count one routing decision (``decision`` is a ``router_core.Decision``)."""
        self.decision_latency.observe(decision_s)
        key = (decision.model, decision.strategy, decision.category)
        child = self._routed_children.get(key)
        if child is None:  # labels() costs microseconds; the decision path caches the child
            child = self.routed.labels(self.model(key[0]), key[1] or "none", self.category(key[2]))
            if len(self._routed_children) < 4096:
                self._routed_children[key] = child
        child.inc()

    def observe_rpc(self, rpc: str, code: str, seconds: float) -> None:
        """Count one finished RPC and its handler time (the interceptor's ``RpcObserver``)."""
        children = self._rpc_children.get((rpc, code))
        if children is None:  # rpc names and status codes are a small fixed set
            children = (self.rpcs.labels(rpc, code), self.rpc_latency.labels(rpc))
            self._rpc_children[(rpc, code)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_cost(self, model: str, category: str, usd: float, reference_usd: float) -> None:
        if usd > 0:
            child = self._cost_children.get((model, category))
            if child is None:  # labels() costs microseconds: once per (model, category)
                child = self.cost.labels(self.model(model), self.category(category))
                if len(self._cost_children) < 4096:
                    self._cost_children[(model, category)] = child
            child.inc(usd)
        if reference_usd > 0:
            self.reference_cost.inc(reference_usd)

    def observe_usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        m = self.model(model)
        if input_tokens > 0:
            self.tokens.labels(m, "input").inc(input_tokens)
        if output_tokens > 0:
            self.tokens.labels(m, "output").inc(output_tokens)

    def set_breaker(self, model: str, state: str) -> None:
        self.breaker_state.labels(self.model(model)).set(BREAKER_STATES.get(state, 2))

    def serve(self, port: int, host: str = "0.0.0.0") -> Callable[[], None]:
        """Start the /metrics HTTP server on a daemon thread; returns a function that stops it."""
        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
                "choose another server.metrics_port (or --metrics-port), or pass --no-metrics."
            ) from None

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop
