"""The router configuration schema: frozen pydantic models, unknown keys forbidden.

``RouterConfig`` is the whole file; its sections are the models below (plus the storage,
monitor, A/B and budget sections of ``router_core._config_ops``). Reading a file into one is
``router_core._config_loader``'s job.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from router_core._config_locations import Loc, format_loc, line_of
from router_core._config_ops import ABSettings, BudgetSettings, MonitorSettings, StorageSettings
from router_core.errors import ConfigError

__all__ = [
    "CAPABILITIES",
    "MODES",
    "PRIORITIES",
    "STRATEGIES",
    "ApiKeyConfig",
    "AuthConfig",
    "BreakerConfig",
    "Capabilities",
    "CascadeConfig",
    "CascadeStepConfig",
    "ClassifierConfig",
    "LimitsConfig",
    "ModelSpec",
    "RetriesConfig",
    "RouterConfig",
    "RoutingConfig",
    "Rule",
    "RuleMatch",
    "ServerConfig",
    "TimeoutsConfig",
    "TlsConfig",
    "TracingConfig",
]

PRIORITIES = ("cost", "balanced", "quality")
STRATEGIES = ("classifier", "cascade", "rules_only")
MODES = ("threshold", "quality_target", "cost_aware")
CAPABILITIES = ("tools", "vision", "json")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_tuple(value: Any) -> Any:
    """Accept a single string where a list of strings is expected."""
    if isinstance(value, str):
        return (value,)
    return value


class Capabilities(_Frozen):
    """What a model can do beyond plain chat."""

    tools: bool = False
    vision: bool = False
    json_mode: bool = Field(default=False, alias="json")

    def names(self) -> frozenset[str]:
        """The capability names this model has (``tools``, ``vision``, ``json``)."""
        flags = {"tools": self.tools, "vision": self.vision, "json": self.json_mode}
        return frozenset(name for name, on in flags.items() if on)


class ModelSpec(_Frozen):
    """One catalog entry: where to call a model and what it costs."""

    name: str = Field(min_length=1)
    provider: Literal["openai", "anthropic"] = "openai"
    base_url: str = Field(min_length=1)
    api_key_env: str | None = None
    input_price_per_mtok: float = Field(default=0.0, ge=0)
    output_price_per_mtok: float = Field(default=0.0, ge=0)
    context_window: int = Field(default=8192, gt=0)
    capabilities: Capabilities = Capabilities()
    quality_ref: str | None = None
    model: str = ""

    @model_validator(mode="after")
    def _default_upstream_id(self) -> ModelSpec:
        if not self.model:
            object.__setattr__(self, "model", self.name)
        return self


class RuleMatch(_Frozen):
    """Conditions of a rule; all given conditions must hold, each list matches any of its items."""

    task_type: tuple[str, ...] = ()
    priority: tuple[str, ...] = ()
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    regex: str | None = None
    keywords: tuple[str, ...] = ()
    tenant: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    _as_tuples = field_validator(
        "task_type", "priority", "keywords", "tenant", "tags", mode="before"
    )(_as_tuple)

    @field_validator("priority")
    @classmethod
    def _known_priority(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if item not in PRIORITIES:
                raise ValueError(f"must be one of {', '.join(PRIORITIES)}")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class Rule(_Frozen):
    """An ordered routing rule: the first rule whose match holds picks its model."""

    name: str = Field(min_length=1)
    match: RuleMatch = RuleMatch()
    model: str = Field(min_length=1)
    category: str | None = None


class ClassifierConfig(_Frozen):
    """The learned policy: a router model directory and how to turn its predictions into a pick."""

    model_dir: str | None = None
    mode: Literal["threshold", "quality_target", "cost_aware"] = "quality_target"
    strong: str | None = None
    weak: str | None = None
    threshold: float = Field(default=0.5, ge=0, le=1)
    strong_share: float | None = Field(default=None, ge=0, le=1)
    quality_target: float = Field(default=0.75, ge=0, le=1)
    lambda_: float = Field(default=10.0, ge=0, alias="lambda")
    candidates: tuple[str, ...] = ()
    priority_shift: float = Field(default=0.1, ge=0, le=1)
    priority_lambda_factor: float = Field(default=4.0, ge=1)

    @model_validator(mode="after")
    def _pair_for_threshold(self) -> ClassifierConfig:
        if self.mode == "threshold" and (self.strong is None or self.weak is None):
            raise ValueError("threshold mode needs both strong and weak models")
        return self


class CascadeStepConfig(_Frozen):
    """One cascade step; its answer is accepted when the scorer's confidence reaches the bar."""

    model: str = Field(min_length=1)
    min_confidence: float = Field(default=0.0, ge=0, le=1)


class CascadeConfig(_Frozen):
    """Cheapest first; the last model's answer is always accepted."""

    models: tuple[CascadeStepConfig, ...] = ()


class RoutingConfig(_Frozen):
    """Rules, then the classifier or the cascade, then the default model."""

    strategy: Literal["classifier", "cascade", "rules_only"] = "classifier"
    default: str | None = None
    rules: tuple[Rule, ...] = ()
    classifier: ClassifierConfig = ClassifierConfig()
    cascade: CascadeConfig = CascadeConfig()
    output_tokens_estimate: int = Field(default=256, ge=0)

    @model_validator(mode="after")
    def _cascade_present(self) -> RoutingConfig:
        if self.strategy == "cascade" and not self.cascade.models:
            raise ValueError("strategy cascade needs routing.cascade.models")
        return self


class LimitsConfig(_Frozen):
    max_prompt_chars: int = Field(default=200_000, gt=0)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_concurrent_streams: int = Field(default=1000, gt=0)
    # an upstream answer larger than this fails (ProviderProtocolError) instead of filling memory
    max_response_bytes: int = Field(default=4 * 1024 * 1024, gt=0)


class TimeoutsConfig(_Frozen):
    attempt_timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    total_timeout_s: float = Field(default=180.0, gt=0)


class RetriesConfig(_Frozen):
    max_attempts: int = Field(default=3, ge=1)
    backoff_base_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=5.0, ge=0)


class BreakerConfig(_Frozen):
    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, ge=0)


class TlsConfig(_Frozen):
    """Server TLS (PEM files); ``client_ca_file`` turns on mutual TLS (client certificates required)."""

    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)
    client_ca_file: str | None = None


class ServerConfig(_Frozen):
    port: int = Field(default=50051, ge=0, le=65535)
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    max_connection_age_ms: int = Field(default=300_000, ge=0)
    grace_s: float = Field(default=10.0, ge=0)
    tls: TlsConfig | None = None
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    freeze_gc: bool = True  # gc.freeze() after start-up and reloads (router_svc._gc)


class ApiKeyConfig(_Frozen):
    """One API key, stored as the hex SHA-256 of the key (see docs/security.md)."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant: str = Field(min_length=1)
    admin: bool = False
    name: str = ""  # a label for logs (never the key)


class AuthConfig(_Frozen):
    """Bearer API keys mapped to tenants; off unless ``enabled``."""

    enabled: bool = False
    keys: tuple[ApiKeyConfig, ...] = ()

    @model_validator(mode="after")
    def _keys_when_enabled(self) -> AuthConfig:
        if self.enabled and not self.keys:
            raise ValueError("auth.enabled needs at least one entry in auth.keys")
        digests = [k.sha256 for k in self.keys]
        if len(set(digests)) != len(digests):
            raise ValueError("the same key hash is listed twice")
        return self


class TracingConfig(_Frozen):
    """OpenTelemetry tracing (the ``tracing`` extra); off unless ``enabled``. Read at start-up."""

    enabled: bool = False
    exporter: Literal["otlp", "console"] = "otlp"
    # OTLP/HTTP traces URL; None: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or localhost:4318
    endpoint: str | None = None
    service_name: str = Field(default="llm-router", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)


class RouterConfig(_Frozen):
    """The whole configuration. ``version`` is the file's ``version`` or a hash of its content."""

    version: str = ""
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    routing: RoutingConfig = RoutingConfig()
    limits: LimitsConfig = LimitsConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    retries: RetriesConfig = RetriesConfig()
    breaker: BreakerConfig = BreakerConfig()
    server: ServerConfig = ServerConfig()
    storage: StorageSettings = Field(default_factory=StorageSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    ab: ABSettings = Field(default_factory=ABSettings)
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    auth: AuthConfig = AuthConfig()
    tracing: TracingConfig = TracingConfig()

    _source: str = PrivateAttr(default="<config>")
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The file this config came from (``<config>`` if built in code)."""
        return self._source

    def model_names(self) -> tuple[str, ...]:
        """Catalog model names in file order."""
        return tuple(m.name for m in self.models)

    def error(self, loc: Loc, problem: str) -> ConfigError:
        """A ``ConfigError`` reading ``FILE:LINE: KEY: problem`` for the key path ``loc``."""
        return ConfigError(
            f"{self._source}:{line_of(self._lines, loc)}: {format_loc(loc)}: {problem}"
        )
