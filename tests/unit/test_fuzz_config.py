"""Fuzzing the config loader: any text gives a RouterConfig or one ConfigError, never a crash.

(The feature extractor's fuzzing lives in test_features_equivalence.py: arbitrary Unicode,
megabyte inputs, non-string input, compiled == reference.)
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router_core._config_loader import parse_config
from router_core._config_schema import RouterConfig, RoutingConfig
from router_core.errors import ConfigError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRIED: Counter[str] = Counter()  # outcomes per test (counts: --hypothesis-show-statistics)
MESSAGE = re.compile(r"^<fuzz>:\d+: \S.*: .+")

VALID = {
    "version": "fuzz",
    "models": [
        {"name": "big", "provider": "openai", "base_url": "http://h/v1",
         "input_price_per_mtok": 10, "output_price_per_mtok": 30},
        {"name": "small", "provider": "anthropic", "base_url": "http://h",
         "input_price_per_mtok": 0.5, "output_price_per_mtok": 1.5},
    ],
    "routing": {
        "strategy": "rules_only",
        "default": "small",
        "rules": [{"name": "code", "match": {"task_type": "code"}, "model": "big"}],
        "classifier": {"mode": "cost_aware", "lambda": 2.0},
    },
    "limits": {"max_prompt_chars": 1000},
    "timeouts": {"attempt_timeout_s": 5},
    "retries": {"max_attempts": 2},
    "server": {"port": 0, "grace_s": 1},
    "auth": {"enabled": False, "keys": []},
}  # fmt: skip


def check(text: str, test: str) -> RouterConfig | None:
    """Parse; a ConfigError must read 'SOURCE:LINE: KEY: problem'. Counts the outcome."""
    try:
        config = parse_config(text, "<fuzz>")
    except ConfigError as exc:
        assert MESSAGE.match(str(exc)), str(exc)
        assert "\n" not in str(exc).rstrip("\n")
        TRIED[f"{test}: ConfigError"] += 1
        return None
    TRIED[f"{test}: valid"] += 1
    assert isinstance(config, RouterConfig)
    return config


@FUZZ
@given(st.text(max_size=2000))
def test_arbitrary_text(text: str) -> None:
    check(text, "arbitrary_text")


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=10), children, max_size=5),
    ),
    max_leaves=30,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


PATHS = _paths(VALID)


def _replaced(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(VALID))
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data  # type: ignore[no-any-return]


@FUZZ
@given(path=st.sampled_from(PATHS), value=yaml_values)
def test_one_key_gets_a_wrong_type_or_value(path: tuple[Any, ...], value: Any) -> None:
    text = yaml.safe_dump(_replaced(path, value), allow_unicode=True)
    check(text, "wrong_value")


@FUZZ
@given(key=st.text(min_size=1, max_size=20), value=yaml_values)
def test_unknown_keys_are_named(key: str, value: Any) -> None:
    data = yaml.safe_load(yaml.safe_dump(VALID))
    data["routing"][key] = value
    config = check(yaml.safe_dump(data, allow_unicode=True), "unknown_key")
    if key not in RoutingConfig.model_fields:
        assert config is None


@pytest.mark.parametrize("depth", [10, 65, 1000, 5000])
def test_deeply_nested_yaml_is_a_config_error(depth: int) -> None:
    text = "models: " + "[" * depth + "]" * depth
    with pytest.raises(ConfigError, match="nested too deeply|models"):
        parse_config(text, "<fuzz>")


def test_alias_bomb_stops_at_the_value_limit() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=False):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    lines.append("models: [{name: x, base_url: y}]")
    with pytest.raises(ConfigError, match="more than 100000 values"):
        parse_config("\n".join(lines), "<fuzz>")


def test_small_aliases_still_work() -> None:
    text = yaml.safe_dump(VALID) + "x-shared: &p {input_price_per_mtok: 1}\n"
    with pytest.raises(ConfigError, match="x-shared: unknown key"):
        parse_config(text, "<fuzz>")


def test_huge_config_is_accepted() -> None:
    data = yaml.safe_load(yaml.safe_dump(VALID))
    data["models"] += [
        {"name": f"m{i}", "base_url": f"http://h{i}/v1", "input_price_per_mtok": i}
        for i in range(500)
    ]
    config = parse_config(yaml.safe_dump(data), "<fuzz>")
    assert len(config.models) == 502
