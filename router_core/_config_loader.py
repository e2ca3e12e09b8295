"""Loading the router configuration: one YAML file, validated once, frozen.

``load_config(path)`` parses the file, maps every key path to its line with ``yaml.compose``,
validates with pydantic (unknown keys are errors) and checks that every model a rule, the
cascade, the classifier or the default names is in the catalog. Errors read
``FILE:LINE: KEY.PATH: problem``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from router_core._config_locations import (
    Loc,
    format_loc,
    line_of,
    map_lines,
    pydantic_problem,
    strip_loc,
)
from router_core._config_schema import RouterConfig
from router_core.errors import ConfigError

__all__ = ["default_config_path", "load_config", "parse_config"]


def default_config_path() -> Path:
    """The shipped default config (``router_core/data/default_config.yaml``)."""
    return Path(__file__).resolve().parent / "data" / "default_config.yaml"


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
    map_lines(root, (), lines, source)
    data = yaml.safe_load(text)
    try:
        config = RouterConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = strip_loc(err["loc"])
        raise ConfigError(
            f"{source}:{line_of(lines, loc)}: {format_loc(loc)}: {pydantic_problem(err)}"
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
