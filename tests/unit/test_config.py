"""Config loading: defaults, the shipped file, and one-line FILE:LINE: KEY errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from router_core._config_loader import default_config_path, load_config, parse_config
from router_core._config_schema import RouterConfig
from router_core.errors import ConfigError

MINIMAL = """\
models:
  - name: big
    base_url: https://api.example.com/v1
    input_price_per_mtok: 10
    output_price_per_mtok: 30
  - name: small
    base_url: https://api.example.com/v1
    input_price_per_mtok: 0.5
    output_price_per_mtok: 1.5
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    assert "\n" not in message
    return message[len(str(path)) :]


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.model_names() == ("big", "small")
    assert config.models[0].model == "big"  # upstream id defaults to the name
    assert config.models[0].provider == "openai"
    assert config.routing.strategy == "classifier"
    assert config.routing.classifier.mode == "quality_target"
    assert config.server.port == 50051
    assert config.retries.max_attempts == 3
    assert config.version.startswith("sha256:")


def test_version_is_a_stable_hash_unless_given() -> None:
    assert parse_config(MINIMAL).version == parse_config(MINIMAL).version
    assert parse_config(MINIMAL).version != parse_config(MINIMAL + "# changed\n").version
    assert parse_config("version: v7\n" + MINIMAL).version == "v7"


def test_config_is_frozen() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(Exception, match="frozen"):
        config.models[0].name = "other"  # type: ignore[misc]


def test_shipped_default_config_validates() -> None:
    config = load_config(default_config_path())
    names = config.model_names()
    assert "local" in names
    local = config.models[names.index("local")]
    assert local.base_url == "http://127.0.0.1:8080/v1"
    assert local.quality_ref == "mistralai/mistral-7b-chat"  # a trained output, not a catalog name
    assert all(m.input_price_per_mtok >= 0 for m in config.models)
    assert config.routing.default in names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL + "routing:\n  rules:\n    - name: r\n      model: big\n      match:\n"
            "        priority: urgent\n",
            ":15: routing.rules[0].match.priority: must be one of cost, balanced, quality",
        ),
        (
            MINIMAL.replace("input_price_per_mtok: 10", "input_price_per_mtok: cheap"),
            ":4: models[0].input_price_per_mtok: input should be a valid number",
        ),
        (
            MINIMAL.replace("    input_price_per_mtok: 0.5", "    colour: blue"),
            ":8: models[1].colour: unknown key",
        ),
        (MINIMAL + "routing:\n  default: huge\n", ":11: routing.default: unknown model 'huge'"),
        (
            MINIMAL + "routing:\n  rules:\n    - name: r\n      model: nope\n",
            ":13: routing.rules[0].model: unknown model 'nope'",
        ),
        (
            MINIMAL + "routing:\n  cascade:\n    models:\n      - model: small\n      - model: x\n",
            ":14: routing.cascade.models[1].model: unknown model 'x'",
        ),
        (
            MINIMAL
            + "routing:\n  classifier:\n    mode: threshold\n    strong: big\n    weak: tiny\n",
            ":14: routing.classifier.weak: unknown model 'tiny'",
        ),
        (
            MINIMAL + "routing:\n  rules:\n    - name: r\n      model: big\n      match:\n"
            "        regex: '([a-z'\n",
            ":15: routing.rules[0].match.regex: invalid regular expression",
        ),
        (
            MINIMAL + "  - name: big\n    base_url: http://x\n",
            ":10: models[2].name: duplicate model name 'big'",
        ),
        ("", ":1: the file is empty"),
        ("# only a comment\n", ":1: the file is empty"),
        ("- a\n- b\n", ":1: (top level): must be a mapping, got a list"),
        ("just text\n", ":1: (top level): must be a mapping, got a scalar"),
        ("models: [\n", ":2: invalid YAML"),
        ("routing: {}\n", ":1: models: required key is missing"),
        ("models: []\n", ":1: models: needs at least 1 item(s)"),
        (MINIMAL + "server:\n  port: 70000\n", ":11: server.port: input should be less than"),
        (
            MINIMAL + "routing:\n  strategy: magic\n",
            ":11: routing.strategy: must be one of classifier",
        ),
        (
            MINIMAL + "routing:\n  classifier:\n    lambda: -1\n",
            ":12: routing.classifier.lambda: input should be greater than or equal to 0",
        ),
        (
            MINIMAL + "routing:\n  classifier: {mode: threshold}\n",
            ":11: routing.classifier: threshold mode needs both strong and weak models",
        ),
        (
            MINIMAL + "routing:\n  strategy: cascade\n",
            ":10: routing: strategy cascade needs routing.cascade.models",
        ),
        (MINIMAL + "models: []\n", ":10: models: duplicate key"),
        (
            MINIMAL.replace("  - name: small", "  - name: small\n    provider: azure"),
            ":7: models[1].provider: must be one of openai, anthropic",
        ),
        (
            MINIMAL
            + "routing:\n  rules:\n    - {name: a, model: big}\n    - {name: a, model: small}\n",
            ":13: routing.rules[1].name: duplicate rule name 'a'",
        ),
        (
            MINIMAL + "ab:\n  reference_model: ghost\n",
            ":11: ab.reference_model: unknown model 'ghost'",
        ),
    ],
    ids=lambda v: v.splitlines()[0][:40] if isinstance(v, str) and v else "empty",
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(tmp_path, text).startswith(expected)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.yaml:1: cannot read the config file"):
        load_config(tmp_path / "absent.yaml")


def test_single_strings_are_accepted_for_lists() -> None:
    text = (
        MINIMAL + "routing:\n  rules:\n    - name: r\n      model: big\n      match: {tags: vip}\n"
    )
    assert parse_config(text).routing.rules[0].match.tags == ("vip",)


def test_relative_model_dir_resolves_against_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "routing:\n  classifier:\n    model_dir: models/v2\n")
    config = load_config(path)
    assert config.routing.classifier.model_dir == str((tmp_path / "models" / "v2").resolve())
    assert config.source == str(path)


def test_errors_after_load_still_cite_lines(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(path)
    assert str(config.error(("models", 1, "name"), "bad")) == f"{path}:6: models[1].name: bad"


def test_every_section_is_optional_and_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "config.md").read_text(encoding="utf-8")
    for section in RouterConfig.model_fields:
        assert f"`{section}`" in doc or f"{section}:" in doc, section


def test_event_loop_defaults_to_uvloop_and_rejects_unknown_loops(tmp_path: Path) -> None:
    assert parse_config(MINIMAL).server.event_loop == "uvloop"
    assert parse_config(MINIMAL + "server:\n  event_loop: asyncio\n").server.event_loop == "asyncio"
    message = error_of(tmp_path, MINIMAL + "server:\n  event_loop: trio\n")
    assert "server.event_loop" in message and "uvloop" in message, message
