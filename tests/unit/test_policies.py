"""Policies on fake predicted quality: modes, filters, overrides, rules, cascade, default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from router_core._config_loader import parse_config
from router_core._decision import QualityPredictor, RouteRequest
from router_core._policies import POLICIES, Policy
from router_core._router import Router
from router_core.errors import NoRouteAvailable

CATALOG = """\
version: test-1
models:
  - name: strong
    base_url: https://s.example/v1
    input_price_per_mtok: 10
    output_price_per_mtok: 30
    context_window: 100000
    capabilities: {tools: true, json: true}
  - name: mid
    provider: anthropic
    base_url: https://m.example
    input_price_per_mtok: 1
    output_price_per_mtok: 2
    context_window: 16000
    capabilities: {tools: true}
  - name: weak
    base_url: https://w.example/v1
    input_price_per_mtok: 0.2
    output_price_per_mtok: 0.2
    context_window: 4000
  - name: local
    base_url: http://127.0.0.1:8080/v1
    context_window: 2000
    quality_ref: weak
"""


class FakePredictor:
    """Fixed predicted quality per trained output; records the metadata it was given."""

    def __init__(self, quality: Mapping[str, float], card: dict[str, Any] | None = None) -> None:
        self.model_names = tuple(quality)
        self._q = np.array(list(quality.values()), dtype=np.float32)
        self.card = card or {}
        self.metas: list[tuple[str, ...]] = []

    def predict(self, text: str, meta: Sequence[str] = ()) -> np.ndarray:
        self.metas.append(tuple(meta))
        return self._q

    def score_response(self, prompt: str, response: str, model: str) -> float:
        return 0.25 if model == "weak" else 0.75


Q = {"strong": 0.9, "mid": 0.8, "weak": 0.6}


def make(routing: str = "", quality: Mapping[str, float] = Q, **card: Any) -> Router:
    text = CATALOG + ("routing:\n" + routing if routing else "")
    return Router(parse_config(text), FakePredictor(quality, card))


def route(router: Router, text: str = "hello", **fields: Any) -> Any:
    return router.decide(RouteRequest(text, **fields))


def test_registry_holds_the_three_policies() -> None:
    assert set(POLICIES) == {"rules", "classifier", "cascade"}
    assert all(issubclass(cls, Policy) and cls.name == name for name, cls in POLICIES.items())
    with pytest.raises(TypeError):
        Policy(None)  # type: ignore[abstract,arg-type]


def test_fake_satisfies_the_protocol() -> None:
    assert isinstance(FakePredictor(Q), QualityPredictor)


# --- threshold mode ---------------------------------------------------------------------

THRESHOLD = "  classifier: {mode: threshold, strong: strong, weak: weak, threshold: 0.5}\n"


def test_threshold_routes_strong_when_score_reaches_it() -> None:
    router = make(THRESHOLD, {"strong": 0.8, "mid": 0.8, "weak": 0.7})
    decision = route(router)  # score (0.8 - 0.7 + 1) / 2 = 0.55
    assert decision.model == "strong"
    assert decision.strategy == "classifier"
    assert "score 0.550" in decision.reason
    assert route(router, threshold=0.6).model == "weak"
    assert route(router, threshold=0.55).model == "strong"  # >= is strong


def test_threshold_priority_shifts_it() -> None:
    router = make(THRESHOLD, {"strong": 0.8, "mid": 0.8, "weak": 0.7})
    assert route(router, priority="balanced").model == "strong"
    assert route(router, priority="cost").model == "weak"  # threshold 0.6
    router = make(THRESHOLD, {"strong": 0.7, "mid": 0.8, "weak": 0.8})  # score 0.45
    assert route(router).model == "weak"
    assert route(router, priority="quality").model == "strong"  # threshold 0.4


def test_threshold_score_kind_from_the_model_card() -> None:
    router = make(THRESHOLD, {"strong": 0.9, "mid": 0.8, "weak": 0.7}, routing_score="weak")
    decision = route(router)  # 1 - 0.7 = 0.3 < 0.5
    assert decision.model == "weak"
    assert "score 0.300" in decision.reason


def test_threshold_with_a_filtered_model_uses_the_other() -> None:
    router = make(THRESHOLD, {"strong": 0.9, "mid": 0.8, "weak": 0.1})
    decision = route(router, capabilities=("json",))  # only strong has json
    assert decision.model == "strong"
    assert "weak model filtered out" in decision.reason
    decision = route(router, max_cost_usd=0.001)  # strong costs ~0.0077
    assert decision.model == "weak"


# --- quality_target mode ----------------------------------------------------------------


def test_quality_target_picks_the_cheapest_reaching_it() -> None:
    router = make("  classifier: {mode: quality_target, quality_target: 0.75}\n")
    decision = route(router)
    assert decision.model == "mid"
    assert decision.reason.startswith("quality_target 0.750")
    assert route(router, quality_target=0.85).model == "strong"
    assert route(router, quality_target=0.5).model == "local"  # free, predicted as weak


def test_quality_target_none_reaching_picks_the_best() -> None:
    router = make("  classifier: {mode: quality_target, quality_target: 0.75}\n")
    decision = route(router, quality_target=0.99)
    assert decision.model == "strong"
    assert "none reaches it" in decision.reason


def test_quality_target_priority_shifts_it() -> None:
    router = make(
        "  classifier: {mode: quality_target, quality_target: 0.75, priority_shift: 0.2}\n"
    )
    assert route(router).model == "mid"
    assert route(router, priority="quality").model == "strong"  # target 0.95: none, best
    assert route(router, priority="cost").model == "local"  # target 0.55
    assert route(router, priority="cost", quality_target=0.75).model == "mid"  # explicit: as given


# --- cost_aware mode --------------------------------------------------------------------


def test_cost_aware_maximises_quality_minus_lambda_cost() -> None:
    text = "x" * 4000  # 1000 tokens; strong costs 0.0177, mid 0.0015, weak 0.00025
    router = make("  classifier: {mode: cost_aware, lambda: 1}\n")
    assert route(router, text).model == "strong"
    router = make("  classifier: {mode: cost_aware, lambda: 20}\n")
    # strong 0.9-0.354=0.546, mid 0.8-0.03=0.77, weak 0.6-0.005, local 0.6
    decision = route(router, text)
    assert decision.model == "mid"
    assert decision.reason.startswith("cost_aware lambda 20")


def test_cost_aware_priority_multiplies_lambda() -> None:
    text = "x" * 4000
    router = make("  classifier: {mode: cost_aware, lambda: 5, priority_lambda_factor: 100}\n")
    assert route(router, text).model == "strong"  # 0.9-0.0885 > 0.8-0.0075
    assert route(router, text, priority="cost").model == "local"  # lambda 100
    assert route(router, text, priority="quality").model == "strong"


# --- filters, fallbacks, scores ----------------------------------------------------------


def test_capabilities_filter_candidates() -> None:
    router = make("  classifier: {mode: quality_target, quality_target: 0.5}\n")
    decision = route(router, capabilities=("tools",))
    assert decision.model == "mid"
    assert set(decision.costs) == {"strong", "mid"}
    assert set(decision.scores) == {"strong", "mid"}
    assert decision.fallbacks == ("strong",)


def test_context_window_filters_candidates() -> None:
    router = make("  classifier: {mode: quality_target, quality_target: 0.5}\n")
    # 3900 input tokens + 256 output estimate: fits strong and mid only
    decision = route(router, input_tokens=3900)
    assert decision.model == "mid"
    assert "weak" not in decision.costs and "local" not in decision.costs
    assert route(router, input_tokens=1500).model == "local"


def test_max_cost_filters_candidates() -> None:
    router = make("  classifier: {mode: quality_target, quality_target: 0.85}\n")
    decision = route(router, "x" * 4000, max_cost_usd=0.002)
    assert decision.model == "mid"  # strong is over the cap; best remaining
    assert "strong" not in decision.costs


def test_fallbacks_by_descending_quality_then_cost() -> None:
    router = make("  classifier: {mode: quality_target, quality_target: 0.95}\n")
    decision = route(router)
    assert decision.model == "strong"
    assert decision.fallbacks == ("mid", "local", "weak")  # local ties weak, cheaper


def test_scores_and_costs_cover_every_candidate() -> None:
    decision = route(make(), "y" * 400)
    assert decision.scores == pytest.approx({"strong": 0.9, "mid": 0.8, "weak": 0.6, "local": 0.6})
    assert decision.costs["strong"] == pytest.approx((100 * 10 + 256 * 30) / 1e6)
    assert decision.costs["local"] == 0.0
    assert decision.input_tokens == 100


def test_unpredicted_models_are_not_classifier_candidates() -> None:
    text = CATALOG.replace("    quality_ref: weak\n", "")
    router = Router(parse_config(text), FakePredictor(Q))
    decision = router.decide(RouteRequest("hi", quality_target=0.5))
    assert decision.model == "weak"
    assert "local" not in decision.scores
    assert decision.fallbacks[-1] == "local"  # unpredicted: last, catalog order


def test_task_type_reaches_the_predictor_as_metadata() -> None:
    router = make()
    route(router, task_type="code")
    route(router)
    assert router.quality_model.metas[-2:] == [("task_type=code",), ()]  # type: ignore[union-attr]


# --- rules ------------------------------------------------------------------------------

RULES = """\
  rules:
    - {name: by-task, match: {task_type: [code, sql]}, model: strong, category: coding}
    - {name: by-priority, match: {priority: cost}, model: weak}
    - {name: by-tenant, match: {tenant: acme}, model: mid}
    - {name: by-tag, match: {tags: [beta, internal]}, model: local}
    - {name: long, match: {min_tokens: 1000}, model: mid}
    - {name: short, match: {max_tokens: 2}, model: weak}
    - {name: by-regex, match: {regex: '^translate\\b'}, model: mid}
    - {name: by-keyword, match: {keywords: [Proof, theorem]}, model: strong}
    - {name: both, match: {tenant: ops, priority: [quality, balanced]}, model: weak}
"""


@pytest.mark.parametrize(
    ("fields", "model", "rule"),
    [
        ({"task_type": "sql"}, "strong", "by-task"),
        ({"priority": "cost"}, "weak", "by-priority"),
        ({"tenant": "acme"}, "mid", "by-tenant"),
        ({"tags": ("x", "internal")}, "local", "by-tag"),
        ({"text": "w" * 4000}, "mid", "long"),
        ({"text": "tiny"}, "weak", "short"),
        ({"text": "translate this sentence please"}, "mid", "by-regex"),
        ({"text": "write a PROOF of the claim here"}, "strong", "by-keyword"),
        ({"tenant": "ops"}, "weak", "both"),  # empty priority counts as balanced
    ],
)
def test_rules_match_on_every_field(fields: dict[str, Any], model: str, rule: str) -> None:
    router = make(RULES)
    text = fields.pop("text", "an ordinary question of medium size")
    decision = route(router, text, **fields)
    assert (decision.model, decision.strategy, decision.reason) == (model, "rules", f"rule {rule}")


def test_rules_that_do_not_match_fall_through() -> None:
    router = make(RULES + "  classifier: {quality_target: 0.85}\n")
    for fields in ({"task_type": "chat"}, {"tenant": "other"}, {"tags": ("gamma",)}):
        decision = route(router, "an ordinary question of medium size", **fields)
        assert decision.strategy == "classifier", fields
    decision = route(router, "please translate this", tenant="ops", priority="quality")
    assert decision.reason == "rule both"
    decision = route(router, "please translate this", tenant="ops", priority="cost")
    assert decision.reason == "rule by-priority"  # earlier rule wins


def test_rule_category_and_task_type_precedence() -> None:
    router = make(RULES)
    assert route(router, task_type="code").category == "code"
    router = make("  rules:\n    - {name: r, match: {tenant: t}, model: mid, category: billing}\n")
    assert route(router, tenant="t").category == "billing"
    assert route(router).category == "general"


def test_rule_whose_model_is_filtered_is_skipped() -> None:
    router = make(RULES)
    decision = route(router, "a question of medium size", tenant="acme", capabilities=("json",))
    assert decision.model == "strong"
    assert decision.strategy == "classifier"


# --- cascade ----------------------------------------------------------------------------

CASCADE = """\
  strategy: cascade
  cascade:
    models:
      - {model: weak, min_confidence: 0.8}
      - {model: mid, min_confidence: 0.6}
      - {model: strong, min_confidence: 0.9}
"""


def test_cascade_starts_cheapest_and_carries_the_steps() -> None:
    decision = route(make(CASCADE))
    assert decision.model == "weak"
    assert decision.strategy == "cascade"
    steps = [(s.model, s.min_confidence) for s in decision.cascade]
    assert steps == [("weak", 0.8), ("mid", 0.6), ("strong", 0.0)]  # the last is always accepted
    assert decision.fallbacks == ("local",)


def test_cascade_drops_filtered_steps() -> None:
    decision = route(make(CASCADE), capabilities=("tools",))
    assert decision.model == "mid"
    assert [(s.model, s.min_confidence) for s in decision.cascade] == [
        ("mid", 0.6),
        ("strong", 0.0),
    ]


# --- default ----------------------------------------------------------------------------


def test_default_when_no_classifier_candidate_remains() -> None:
    router = make("  default: mid\n  classifier: {candidates: [weak]}\n")
    assert route(router).model == "weak"
    decision = route(router, capabilities=("tools",))
    assert (decision.model, decision.strategy, decision.reason) == (
        "mid",
        "default",
        "default model",
    )


def test_default_filtered_out_uses_the_best_remaining() -> None:
    router = make("  strategy: rules_only\n  default: local\n")
    decision = route(router, input_tokens=3000)
    assert decision.strategy == "default"
    assert decision.model == "strong"  # no predictions in rules_only: catalog order
    assert "filtered out" in decision.reason


def test_nothing_fits_raises_no_route() -> None:
    with pytest.raises(NoRouteAvailable, match="no configured model fits"):
        route(make(), capabilities=("vision",))


# --- threshold calibrated from the model card ----------------------------------------------

CARD = {
    "routing_score": "diff",
    "routing_pair": {"strong": "strong", "weak": "weak"},
    "thresholds": {"score": "diff", "by_strong_share": {"0.3": 0.6, "0.5": 0.5}},
}
SHARE = "  classifier: {mode: threshold, strong: strong, weak: weak, strong_share: %s}\n"


def test_strong_share_takes_the_cards_threshold() -> None:
    # the card's threshold for 30% strong is 0.6; this prompt scores (0.9 - 0.6 + 1) / 2 = 0.65
    decision = route(make(SHARE % "0.3", **CARD))
    assert (decision.model, decision.reason) == ("strong", "threshold 0.600: score 0.650")
    router = make(SHARE % "0.3", {"strong": 0.8, "mid": 0.8, "weak": 0.7}, **CARD)  # score 0.55
    assert route(router).model == "weak"


def test_strong_share_missing_from_the_card_is_a_config_error() -> None:
    from router_core.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"strong_share: .*no threshold for share 0.7 \(has: 0.3, 0.5\)"
    ):
        make(SHARE % "0.7", **CARD)
    other = {**CARD, "routing_pair": {"strong": "strong", "weak": "mid"}}
    with pytest.raises(ConfigError, match="thresholds are for strong 'strong' / weak 'mid'"):
        make(SHARE % "0.3", **other)
