"""The router configuration: one YAML file, validated once, frozen.

``load_config(path)`` parses the file, maps every key path to its line with ``yaml.compose``,
validates with pydantic (unknown keys are errors) and checks that every model a rule, the
cascade, the classifier or the default names is in the catalog. Errors read
``FILE:LINE: KEY.PATH: problem``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from router_core._config_ops import ABSettings, BudgetSettings, MonitorSettings, StorageSettings
from router_core.errors import ConfigError

__all__ = [
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
    "default_config_path",
    "load_config",
    "parse_config",
]

PRIORITIES = ("cost", "balanced", "quality")
STRATEGIES = ("classifier", "cascade", "rules_only")
MODES = ("threshold", "quality_target", "cost_aware")
CAPABILITIES = ("tools", "vision", "json")

Loc = tuple[str | int, ...]


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
            f"{self._source}:{_line_of(self._lines, loc)}: {format_loc(loc)}: {problem}"
        )


def default_config_path() -> Path:
    """The shipped default config (``router_core/data/default_config.yaml``)."""
    return Path(__file__).resolve().parent / "data" / "default_config.yaml"


def format_loc(loc: Sequence[str | int]) -> str:
    """``('routing', 'rules', 0, 'model')`` -> ``routing.rules[0].model``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if not text or not text.isprintable() or text != text.strip():
            text = repr(text)  # a key with a newline must not break the one-line message
        out += f".{text}" if out else text
    return out or "(top level)"


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1


MAX_NODES = 100_000  # values after expanding YAML aliases (a "billion laughs" file stops here)
MAX_DEPTH = 64


def _map_lines(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], source: str, budget: list[int] | None = None
) -> None:
    """Record the line of every key path under ``node``; duplicate keys are errors.

    Aliases are walked as often as they are used, like validation will; ``budget`` bounds
    that walk, and the nesting depth is bounded, so that no file can hang or crash the loader.
    """
    if budget is None:
        budget = [MAX_NODES]
    budget[0] -= 1
    line = node.start_mark.line + 1
    if budget[0] < 0:
        raise ConfigError(
            f"{source}:{line}: {format_loc(loc)}: the config has more than {MAX_NODES} values"
            " (after expanding YAML aliases)"
        )
    if len(loc) > MAX_DEPTH:
        raise ConfigError(f"{source}:{line}: {format_loc(loc[:3])}: nested too deeply")
    lines.setdefault(loc, line)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*loc, key)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"{source}:{line}: {format_loc(child)}: duplicate key")
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _map_lines(value_node, child, lines, source, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _map_lines(item, (*loc, index), lines, source, budget)


def _problem(err: Any) -> str:
    """One short phrase for a pydantic error."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", ""))
        return "must be one of " + expected.replace("'", "").replace(" or ", ", ")
    if kind == "too_short":
        return f"needs at least {err['ctx']['min_length']} item(s)"
    if kind in ("value_error", "assertion_error"):
        return str(err["ctx"]["error"])
    msg = str(err["msg"]).replace("valid tuple", "list")
    return msg[:1].lower() + msg[1:]


def _strip_loc(loc: Sequence[Any]) -> Loc:
    # pydantic adds validator names ("function-after[...]") to some locations
    return tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))


def _check_references(config: RouterConfig) -> None:
    names: dict[str, int] = {}
    for index, spec in enumerate(config.models):
        if spec.name in names:
            raise config.error(("models", index, "name"), f"duplicate model name {spec.name!r}")
        names[spec.name] = index
    routing = config.routing
    refs: list[tuple[Loc, str | None]] = [(("routing", "default"), routing.default)]
    refs += [(("routing", "rules", i, "model"), r.model) for i, r in enumerate(routing.rules)]
    refs += [
        (("routing", "cascade", "models", i, "model"), s.model)
        for i, s in enumerate(routing.cascade.models)
    ]
    clf = routing.classifier
    refs += [(("routing", "classifier", "strong"), clf.strong)]
    refs += [(("routing", "classifier", "weak"), clf.weak)]
    refs += [(("routing", "classifier", "candidates", i), c) for i, c in enumerate(clf.candidates)]
    refs += [(("ab", "reference_model"), config.ab.reference_model or None)]
    for loc, name in refs:
        if name is not None and name not in names:
            raise config.error(loc, f"unknown model {name!r} (not in models:)")
    rule_names: set[str] = set()
    for index, rule in enumerate(routing.rules):
        if rule.name in rule_names:
            raise config.error(
                ("routing", "rules", index, "name"), f"duplicate rule name {rule.name!r}"
            )
        rule_names.add(rule.name)


def parse_config(text: str, source: str = "<config>") -> RouterConfig:
    """Validate YAML text; ``source`` names it in error messages.

    Raises:
        ConfigError: "SOURCE:LINE: KEY: problem" for the first problem found.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(f"{source}:1: (top level): nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{line}: invalid YAML: {problem}") from None
    if root is None:
        raise ConfigError(f"{source}:1: the file is empty; expected a mapping with a models: list")
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a scalar"
        line = root.start_mark.line + 1
        raise ConfigError(f"{source}:{line}: (top level): must be a mapping, got {kind}")
    lines: dict[Loc, int] = {}
    _map_lines(root, (), lines, source)
    data = yaml.safe_load(text)
    try:
        config = RouterConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _strip_loc(err["loc"])
        raise ConfigError(
            f"{source}:{_line_of(lines, loc)}: {format_loc(loc)}: {_problem(err)}"
        ) from None
    if not config.version:
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        config = config.model_copy(update={"version": f"sha256:{digest}"})
    config._source = source
    config._lines = lines
    _check_references(config)
    return config


def load_config(path: str | Path) -> RouterConfig:
    """Read and validate one YAML config file.

    A relative ``routing.classifier.model_dir`` is resolved against the file's directory.

    Raises:
        ConfigError: "FILE:LINE: KEY: problem" (also when the file cannot be read).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{path}:1: cannot read the config file: {reason}") from None
    config = parse_config(text, str(path))
    model_dir = config.routing.classifier.model_dir
    if model_dir is not None and not Path(model_dir).is_absolute():
        resolved = str((path.parent / model_dir).resolve())
        classifier = config.routing.classifier.model_copy(update={"model_dir": resolved})
        routing = config.routing.model_copy(update={"classifier": classifier})
        source, lines = config._source, config._lines
        config = config.model_copy(update={"routing": routing})
        config._source, config._lines = source, lines
    return config
