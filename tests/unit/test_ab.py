"""A/B assignment (deterministic shares, eligibility, shadow cap) and the arm comparison."""

from __future__ import annotations

import pytest

from router_core._config_ops import ABSettings, ShadowSettings
from router_core._decision import Decision
from router_svc._ab import ABAssigner, ShadowBudget, compare, wilson
from router_svc._storage import DecisionRecord, StoredDecision

PROV = {"small": "openai", "big": "anthropic", "other": "openai"}.__getitem__


def decision(model: str = "small", category: str = "code") -> Decision:
    return Decision(
        model=model, provider=PROV(model), strategy="classifier", reason="r", scores={},
        costs={"small": 0.001, "big": 0.01}, fallbacks=("big",), category=category,
    )  # fmt: skip


def settings(**kw: object) -> ABSettings:
    base: dict[str, object] = {"enabled": True, "reference_model": "big", "shares": {"code": 0.2}}
    base.update(kw)
    return ABSettings(**base)  # type: ignore[arg-type]


def test_share_is_respected_and_assignment_is_deterministic() -> None:
    ab = ABAssigner(settings())
    arms = [ab.assign(decision(), f"req-{i}", PROV)[1] for i in range(4000)]
    share = arms.count("reference") / len(arms)
    assert 0.17 < share < 0.23
    assert arms == [
        ABAssigner(settings()).assign(decision(), f"req-{i}", PROV)[1] for i in range(4000)
    ]


def test_reference_arm_replaces_the_model_and_notes_it() -> None:
    ab = ABAssigner(settings(shares={"*": 1.0}))
    d, arm = ab.assign(decision(), "x", PROV)
    assert arm == "reference"
    assert (d.model, d.provider, d.fallbacks) == ("big", "anthropic", ("small",))
    assert "A/B reference arm" in d.monitor_note


def test_categories_without_share_and_ineligible_requests_stay_routed() -> None:
    ab = ABAssigner(settings(shares={"code": 1.0}))
    assert ab.assign(decision(category="chat"), "x", PROV)[1] == "routed"
    d = Decision(model="small", provider="openai", strategy="rules", reason="r", scores={},
                 costs={"small": 0.001}, fallbacks=())  # fmt: skip
    assert ab.assign(d, "x", PROV) == (d, "")
    assert ABAssigner(settings(enabled=False)).assign(decision(), "x", PROV)[1] == ""


def test_shadow_mode_keeps_the_routed_model() -> None:
    ab = ABAssigner(settings(shares={"*": 1.0}, shadow=ShadowSettings(enabled=True)))
    d, arm = ab.assign(decision(), "x", PROV)
    assert arm == "shadow" and d.model == "small"


def test_shadow_budget_caps_per_utc_day() -> None:
    now = [1_800_000_000.0]
    b = ShadowBudget(0.01, clock=lambda: now[0])
    assert b.try_spend(0.006) and not b.try_spend(0.006)
    now[0] += 86_400
    assert b.try_spend(0.006)


def test_wilson_interval() -> None:
    lo, hi = wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert wilson(0.0, 0) == (0.0, 1.0)
    assert wilson(1.0, 10)[1] == 1.0


def _row(rid: str, arm: str, score: float | None, category: str = "code") -> StoredDecision:
    rec = DecisionRecord(request_id=rid, ts=0.0, tenant="t", model="m", provider="p",
                         strategy="s", category=category, ab_arm=arm, cost_usd=0.01)  # fmt: skip
    return StoredDecision(rec, score, 0 if score is None else 1)


def test_compare_per_category_with_intervals() -> None:
    rows = [_row(f"a{i}", "routed", 1.0 if i < 60 else 0.0) for i in range(100)]
    rows += [_row(f"b{i}", "reference", 1.0 if i < 80 else 0.0) for i in range(100)]
    rows += [_row("c", "routed", None), _row("d", "", 1.0)]
    (c,) = compare(rows)
    assert (c.routed.n, c.reference.n) == (100, 100)
    assert c.routed.mean == pytest.approx(0.6) and c.reference.mean == pytest.approx(0.8)
    assert c.diff == pytest.approx(-0.2)
    assert c.diff_ci[0] < -0.2 < c.diff_ci[1] < 0  # the gap is significant at this n
    assert c.routed.ci[0] < 0.6 < c.routed.ci[1]


def test_compare_files_a_request_under_the_category_its_feedback_names() -> None:
    rows = [_row("a", "routed", 1.0), _row("b", "reference", 0.0)]
    rows.append(
        StoredDecision(_row("c", "reference", 0.5).record, 0.5, 1, feedback_category="math")
    )
    by_cat = {c.category: c for c in compare(rows)}
    assert set(by_cat) == {"code", "math"}
    assert (by_cat["code"].routed.n, by_cat["code"].reference.n) == (1, 1)
    assert (by_cat["math"].routed.n, by_cat["math"].reference.n) == (0, 1)


def test_shadow_budget_counts_the_shared_total_and_releases_failed_calls() -> None:
    b = ShadowBudget(1.0, clock=lambda: 1_800_000_000.0)
    assert b.try_spend(0.3)
    b.update("2027-01-15", 0.6)  # other replicas' shadow calls, from the shared counter
    assert b.spent == pytest.approx(0.9) and not b.try_spend(0.2)
    b.release(0.3)  # our call failed: no record, the reservation goes back
    assert b.try_spend(0.4) and b.spent == pytest.approx(1.0)
    b.update("2027-01-14", 5.0)  # another day's figure is ignored
    assert b.spent == pytest.approx(1.0)
