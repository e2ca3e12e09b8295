"""Router: load_router, request validation, overrides, strategies, config/model fit."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import router_core
from router_core import Decision, Router, RouteRequest, load_router
from router_core._config_loader import default_config_path, load_config, parse_config
from router_core.errors import ConfigError, InvalidRequest, ModelError

CONFIG = """\
version: v-test
models:
  - {name: big, base_url: https://b.example/v1, input_price_per_mtok: 10, output_price_per_mtok: 30}
  - {name: small, quality_ref: trained-small, base_url: https://s.example/v1,
     input_price_per_mtok: 0.5, output_price_per_mtok: 1}
  - {name: edge, base_url: http://127.0.0.1:8080/v1, quality_ref: trained-small}
routing:
  default: small
  rules:
    - {name: vip, match: {tenant: vip}, model: big, category: premium}
  classifier: {mode: quality_target, quality_target: 0.7}
  cascade:
    models:
      - {model: edge, min_confidence: 0.5}
      - {model: big}
"""
# the trained outputs: "big" is trained under its own name, the others through quality_ref
QUALITY = {"big": 0.9, "trained-small": 0.6}


class FakePredictor:
    def __init__(self, quality: Mapping[str, float] = QUALITY, scorer: bool = True) -> None:
        self.model_names = tuple(quality)
        self._q = np.array(list(quality.values()), dtype=np.float32)
        self.has_scorer = scorer
        self.scored: list[str] = []

    def predict(self, text: str, meta: Sequence[str] = ()) -> np.ndarray:
        return self._q

    def score_response(self, prompt: str, response: str, model: str) -> float:
        self.scored.append(model)
        return 0.42


@pytest.fixture
def router() -> Router:
    return load_router(parse_config(CONFIG), quality_model=FakePredictor())


def test_public_api_is_exported() -> None:
    for name in ("load_router", "Router", "RouteRequest", "Decision", "POLICIES", "load_config"):
        assert name in router_core.__all__
        assert hasattr(router_core, name)


def test_route_returns_a_decision_with_scores(router: Router) -> None:
    decision = router.route("What is 2 + 2?", request_id="r1")
    assert isinstance(decision, Decision)
    assert decision.model == "big"  # the only one predicted to reach 0.7
    assert decision.scores == pytest.approx({"big": 0.9, "small": 0.6, "edge": 0.6})
    assert decision.config_version == "v-test"
    assert decision.request_id == "r1"
    assert decision.decision_us > 0
    assert decision.provider == "openai"


def test_decision_is_json_ready(router: Router) -> None:
    decision = router.route("hello", strategy="cascade")
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["model"] == decision.model
    assert data["cascade"] == [
        {"model": "edge", "min_confidence": 0.5},
        {"model": "big", "min_confidence": 0.0},
    ]


def test_overrides(router: Router) -> None:
    assert router.route("q", quality_target=0.95).model == "big"
    assert router.route("q", strategy="rules_only").strategy == "default"
    assert router.route("q", strategy="rules_only").model == "small"
    assert router.route("q", strategy="cascade").strategy == "cascade"
    assert router.route("q", tenant="vip", strategy="cascade").reason == "rule vip"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"priority": "urgent"}, "unknown priority 'urgent'"),
        ({"strategy": "magic"}, "unknown strategy 'magic'"),
        ({"capabilities": ["telepathy"]}, "unknown capability 'telepathy'"),
        ({"threshold": 1.5}, "threshold must be between 0 and 1"),
        ({"quality_target": -0.1}, "quality_target must be between 0 and 1"),
        ({"model": "big"}, "unknown request field"),
    ],
)
def test_invalid_requests(router: Router, fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        router.route("q", **fields)


def test_prompt_over_the_limit_is_invalid() -> None:
    config = parse_config(CONFIG + "limits: {max_prompt_chars: 10}\n")
    router = Router(config, FakePredictor())
    with pytest.raises(InvalidRequest, match="limit is 10"):
        router.route("x" * 11)
    assert router.route("x" * 10).model


def test_rules_only_needs_no_quality_model() -> None:
    config = parse_config(
        CONFIG.replace("  default: small", "  strategy: rules_only\n  default: small")
    )
    router = load_router(config)  # loads nothing: rules_only without model_dir
    assert router.quality_model is None
    decision = router.route("q")
    assert (decision.model, decision.scores) == ("small", {})
    with pytest.raises(InvalidRequest, match="strategy classifier is not available"):
        router.route("q", strategy="classifier")
    with pytest.raises(InvalidRequest, match="strategy cascade is not available: no router model"):
        router.route("q", strategy="cascade")


def test_cascade_needs_a_response_scorer() -> None:
    config = parse_config(CONFIG.replace("  default: small", "  strategy: cascade"))
    with pytest.raises(ConfigError, match="strategy cascade cannot run: .*no response scorer"):
        Router(config, FakePredictor(scorer=False))
    assert Router(config, FakePredictor()).route("q").strategy == "cascade"


def test_classifier_without_a_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="routing.strategy: strategy classifier cannot run"):
        Router(parse_config(CONFIG), None)


def test_quality_ref_must_be_a_trained_output(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("quality_ref: trained-small}", "quality_ref: ghost}"))
    with pytest.raises(ConfigError, match=rf"{path}:6: models\[2\].quality_ref: 'ghost' is not"):
        Router(load_config(path), FakePredictor())


def test_classifier_candidate_without_prediction_is_a_config_error() -> None:
    text = CONFIG.replace(", quality_ref: trained-small}", "}").replace(
        "quality_target: 0.7}", "quality_target: 0.7, candidates: [big, edge]}"
    )
    with pytest.raises(ConfigError, match=r"routing.classifier.candidates\[1\]: model 'edge'"):
        Router(parse_config(text), FakePredictor())


def test_score_response_maps_through_quality_ref(router: Router) -> None:
    assert router.score_response("p", "r", "edge") == pytest.approx(0.42)
    assert router.quality_model.scored == ["trained-small"]  # type: ignore[union-attr]
    with pytest.raises(InvalidRequest):
        router.score_response("p", "r", "nope")


def test_score_response_without_model() -> None:
    config = parse_config(CONFIG.replace("  default: small", "  strategy: rules_only"))
    with pytest.raises(ModelError):
        Router(config, None).score_response("p", "r", "big")


def test_load_router_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    router = load_router(path, quality_model=FakePredictor())
    assert router.config.source == str(path)
    assert router.catalog.names == ("big", "small", "edge")
    assert router.catalog.quality_name("edge") == "trained-small"


def test_shipped_config_with_a_fake_model() -> None:
    config = load_config(default_config_path())
    trained = sorted({m.quality_ref or m.name for m in config.models})
    fake = FakePredictor({name: 0.5 + i / 40 for i, name in enumerate(trained)})
    decision = load_router(config, quality_model=fake).route("Write a haiku about routers.")
    assert decision.model in config.model_names()
    assert set(decision.scores) == set(config.model_names())


_SHIPPED_MODEL = Path(router_core.__file__).parent / "data" / "default_model" / "model_card.json"


@pytest.mark.skipif(not _SHIPPED_MODEL.exists(), reason="the shipped model is not built yet")
def test_load_router_defaults_serve_out_of_the_box() -> None:
    router = load_router()
    decision = router.route("Prove that there are infinitely many primes.", task_type="math")
    assert decision.model in router.catalog
    assert len(decision.scores) == len(router.catalog)
    assert all(0.0 <= q <= 1.0 for q in decision.scores.values())


_router_for_hypothesis = load_router(parse_config(CONFIG), quality_model=FakePredictor())


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=2000),
    priority=st.sampled_from(["", "cost", "balanced", "quality"]),
    strategy=st.sampled_from(["", "classifier", "cascade", "rules_only"]),
    tenant=st.sampled_from(["", "vip", "other"]),
    threshold=st.none() | st.floats(0, 1),
    quality_target=st.none() | st.floats(0, 1),
)
def test_any_text_routes_to_a_catalog_model(
    text: str,
    priority: str,
    strategy: str,
    tenant: str,
    threshold: float | None,
    quality_target: float | None,
) -> None:
    request = RouteRequest(
        text,
        priority=priority,
        strategy=strategy,
        tenant=tenant,
        threshold=threshold,
        quality_target=quality_target,
    )
    decision = _router_for_hypothesis.decide(request)
    names = _router_for_hypothesis.catalog.names
    assert decision.model in names
    assert decision.model not in decision.fallbacks
    assert set(decision.fallbacks) <= set(names)
    assert decision.input_tokens >= 1
