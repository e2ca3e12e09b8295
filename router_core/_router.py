"""The router: rules, then the classifier or the cascade, then the default model.

``load_router()`` builds one from a config (the shipped default if none) and a quality model
(the shipped default if the config names none). Everything is precomputed here, once per
config, so ``Router.decide`` is a few microseconds on top of the quality model's prediction.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from router_core._catalog import Catalog
from router_core._config_loader import default_config_path, load_config
from router_core._config_schema import CAPABILITIES, PRIORITIES, STRATEGIES, RouterConfig
from router_core._costs import estimate_tokens
from router_core._decision import Decision, QualityPredictor, RouteRequest
from router_core._policies import POLICIES, DefaultPolicy, Plan, Policy, RequestContext
from router_core.errors import InvalidRequest, ModelError

__all__ = ["Router", "load_router"]

# which registered policies run, in order, for each strategy (the default always ends the chain)
_CHAINS: dict[str, tuple[str, ...]] = {
    "classifier": ("rules", "classifier"),
    "cascade": ("rules", "cascade"),
    "rules_only": ("rules",),
}
_PRIORITIES = frozenset(("", *PRIORITIES))
_CAPABILITIES = frozenset(CAPABILITIES)
_REQUEST_FIELDS = frozenset(RouteRequest.__dataclass_fields__) - {"text"}


class Router:
    """Decides which catalog model answers a request. Immutable; safe to share across threads.

    Args:
        config: a validated config.
        quality_model: predicts quality per trained output; None disables the classifier
            (allowed only with ``strategy: rules_only`` or ``cascade``).

    Raises:
        ConfigError: the config and the quality model do not fit together (the message
            names the key).
    """

    def __init__(self, config: RouterConfig, quality_model: QualityPredictor | None = None) -> None:
        self._config = config
        self._quality_model = quality_model
        trained = tuple(quality_model.model_names) if quality_model is not None else None
        self._catalog = Catalog.from_config(config, trained)
        plan = Plan(config, self._catalog, quality_model)
        self._plan = plan
        policies: dict[str, Policy] = {}
        self._unavailable: dict[str, str] = {}
        for name, cls in POLICIES.items():
            why = cls.unavailable(plan)
            if why:
                self._unavailable[name] = why
            else:
                policies[name] = cls(plan)
        self._chains: dict[str, tuple[Policy, ...]] = {}
        for strategy, names in _CHAINS.items():
            missing = [n for n in names if n not in policies]
            if missing:
                self._unavailable.setdefault(strategy, self._unavailable[missing[0]])
                continue
            # a config without rules skips the rules policy entirely
            chain = tuple(policies[n] for n in names if n != "rules" or config.routing.rules)
            self._chains[strategy] = chain
        strategy = config.routing.strategy
        if strategy not in self._chains:
            why = self._unavailable.get(strategy, "unavailable")
            raise config.error(("routing", "strategy"), f"strategy {strategy} cannot run: {why}")
        self._default_strategy = strategy
        self._default = DefaultPolicy(plan)
        self._max_chars = config.limits.max_prompt_chars

    @property
    def config(self) -> RouterConfig:
        return self._config

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @property
    def quality_model(self) -> QualityPredictor | None:
        return self._quality_model

    @property
    def version(self) -> str:
        """The config version every decision carries."""
        return self._config.version

    def decide(self, req: RouteRequest) -> Decision:
        """Route one request (pure, no I/O).

        Raises:
            InvalidRequest: an unknown priority, strategy or capability, an out-of-range
                override, or a prompt over ``limits.max_prompt_chars``.
            NoRouteAvailable: no catalog model passes the request's filters.
        """
        start = time.perf_counter_ns()
        strategy = req.strategy or self._default_strategy
        chain = self._chains.get(strategy)
        if chain is None or req.priority not in _PRIORITIES:
            self._reject(req)
        if req.capabilities or req.threshold is not None or req.quality_target is not None:
            self._check_overrides(req)
        if len(req.text) > self._max_chars:
            raise InvalidRequest(
                f"the prompt has {len(req.text)} characters; the limit is {self._max_chars}"
            )
        tokens = req.input_tokens if req.input_tokens > 0 else estimate_tokens(req.text)
        ctx = RequestContext(self._plan, req, tokens, start, strategy != "rules_only")
        for policy in chain:  # type: ignore[union-attr]
            decision = policy.decide(ctx)
            if decision is not None:
                return decision
        return self._default.decide(ctx)  # type: ignore[return-value]

    def route(self, text: str, **metadata: Any) -> Decision:
        """Convenience: ``decide(RouteRequest(text, **metadata))``; lists become tuples.

        Raises:
            InvalidRequest: an unknown metadata name, or what ``decide`` raises.
        """
        if not metadata:
            return self.decide(RouteRequest(text))
        unknown = set(metadata) - _REQUEST_FIELDS
        if unknown:
            raise InvalidRequest(f"unknown request field(s): {', '.join(sorted(unknown))}")
        for key in ("capabilities", "tags"):
            if key in metadata and not isinstance(metadata[key], tuple):
                value = metadata[key]
                metadata[key] = (value,) if isinstance(value, str) else tuple(value)
        return self.decide(RouteRequest(text, **metadata))

    def score_response(self, prompt: str, response: str, model: str) -> float:
        """The response scorer's confidence in ``model``'s answer (for the cascade).

        Raises:
            InvalidRequest: ``model`` is not in the catalog.
            ModelError: no quality model, or ``model`` has no trained output.
        """
        if model not in self._catalog:
            raise InvalidRequest(f"unknown model {model!r}")
        if self._quality_model is None:
            raise ModelError("no router model is loaded, so answers cannot be scored")
        ref = self._catalog.quality_name(model)
        if ref is None:
            raise ModelError(f"model {model!r} has no trained output to score its answers with")
        return float(self._quality_model.score_response(prompt, response, ref))

    def _reject(self, req: RouteRequest) -> None:
        if req.priority not in _PRIORITIES:
            raise InvalidRequest(
                f"unknown priority {req.priority!r}; expected one of {', '.join(PRIORITIES)}"
            )
        if req.strategy not in STRATEGIES:
            raise InvalidRequest(
                f"unknown strategy {req.strategy!r}; expected one of {', '.join(STRATEGIES)}"
            )
        why = self._unavailable.get(req.strategy, "unavailable")
        raise InvalidRequest(f"strategy {req.strategy} is not available: {why}")

    def _check_overrides(self, req: RouteRequest) -> None:
        unknown = set(req.capabilities) - _CAPABILITIES
        if unknown:
            raise InvalidRequest(
                f"unknown capability {min(unknown)!r}; expected {', '.join(CAPABILITIES)}"
            )
        for key in ("threshold", "quality_target"):
            value = getattr(req, key)
            if value is not None and not 0.0 <= value <= 1.0:
                raise InvalidRequest(f"{key} must be between 0 and 1, got {value}")


def _needs_model(config: RouterConfig) -> bool:
    routing = config.routing
    return routing.strategy != "rules_only" or routing.classifier.model_dir is not None


def load_router(
    config: RouterConfig | str | Path | None = None,
    *,
    quality_model: QualityPredictor | None = None,
) -> Router:
    """Build a router.

    Args:
        config: None for the shipped default config, a YAML path, or a ``RouterConfig``.
        quality_model: use this predictor instead of loading ``routing.classifier.model_dir``
            (None there means the shipped default model).

    Raises:
        ConfigError: the config is invalid or does not fit the quality model.
        ModelError: the router model directory cannot be loaded.
    """
    if config is None:
        config = default_config_path()
    if not isinstance(config, RouterConfig):
        config = load_config(config)
    if quality_model is None and _needs_model(config):
        from router_core._model_dir import QualityModel, default_model_dir  # onnxruntime: lazy

        model_dir = config.routing.classifier.model_dir
        quality_model = QualityModel.load(Path(model_dir) if model_dir else default_model_dir())
    return Router(config, quality_model)
