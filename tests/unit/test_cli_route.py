"""``llm-router check-config`` and ``llm-router route`` (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router_core._config_loader import default_config_path
from router_svc.cli import main

RULES_ONLY = """\
version: cli-test
models:
  - {name: big, base_url: https://b.example/v1, input_price_per_mtok: 10, output_price_per_mtok: 30,
     capabilities: {tools: true}}
  - {name: small, base_url: https://s.example/v1, input_price_per_mtok: 0.5}
routing:
  strategy: rules_only
  default: small
  rules:
    - {name: coding, match: {task_type: code}, model: big}
  cascade:
    models: [{model: small, min_confidence: 0.6}, {model: big}]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(RULES_ONLY, encoding="utf-8")
    return path


def test_check_config_ok(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(config_file)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{config_file}: ok (2 models, 1 rules, strategy rules_only)"
    )


def test_check_config_shipped_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(default_config_path())]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_check_config_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(RULES_ONLY.replace("default: small", "default: medium"), encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err.strip()
        == f"{path}:8: routing.default: unknown model 'medium' (not in models:)"
    )


def test_route_prints_a_readable_decision(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["route", "def f(): pass", "--config", str(config_file), "--task-type", "code"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("model:     big (openai)")
    assert "rules: rule coding" in out


def test_route_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["route", "hello", "--config", str(config_file), "--json", "--tenant", "t1"]
    assert main(args) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["model"] == "small"
    assert decision["strategy"] == "default"
    assert decision["fallbacks"] == ["big"]
    assert decision["config_version"] == "cli-test"
    assert decision["cascade"] == []


def test_route_cascade_without_a_scorer_is_refused(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["route", "hello", "--config", str(config_file), "--strategy", "cascade"]
    assert main(args) == 2
    assert "strategy cascade is not available" in capsys.readouterr().err


def test_route_filters_from_flags(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["route", "hi", "--config", str(config_file), "--capability", "tools", "--json"]) == 0
    )
    decision = json.loads(capsys.readouterr().out)
    assert decision["model"] == "big"  # the default lacks tools
    assert set(decision["costs"]) == {"big"}


def test_route_errors_exit_2(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "hi", "--config", str(config_file), "--capability", "vision"]) == 2
    assert "no configured model fits" in capsys.readouterr().err
    assert main(["route", "hi", "--config", str(config_file), "--target", "h:1"]) == 2
    assert "exclude each other" in capsys.readouterr().err
