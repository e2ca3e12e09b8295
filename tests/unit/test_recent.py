"""The recorder's bounded map of recent request ids: eviction order, shared values, memory."""

from __future__ import annotations

import tracemalloc
import uuid

from router_svc._recent import RecentRequests


def test_keeps_the_last_ids_and_forgets_the_oldest() -> None:
    recent = RecentRequests(3)
    for i in range(5):
        recent.add(f"r{i}", f"m{i}", "general", "")
    assert len(recent) == 3
    assert recent.get("r0") is None and recent.get("r1") is None
    got = recent.get("r4")
    assert got is not None and (got.model, got.category, got.ab_arm) == ("m4", "general", "")


def test_a_re_recorded_id_takes_the_new_value_and_the_bound_holds() -> None:
    recent = RecentRequests(2)
    recent.add("a", "m1", "general", "")
    recent.add("a", "m2", "code", "routed")  # the same request rewritten (e.g. completed)
    got = recent.get("a")
    assert got is not None and (got.model, got.category, got.ab_arm) == ("m2", "code", "routed")
    for i in range(10):
        recent.add(f"x{i}", "m", "general", "")
    assert len(recent) == 2 and recent.get("a") is None


def test_requests_with_the_same_outcome_share_one_value() -> None:
    recent = RecentRequests(10)
    recent.add("a", "m", "general", "")
    recent.add("b", "m", "general", "")
    recent.add("c", "m", "code", "")
    assert recent.get("a") is recent.get("b")
    assert recent.get("a") is not recent.get("c")


def test_an_entry_costs_well_under_an_ordered_dict_of_own_values() -> None:
    ids = [uuid.uuid4().hex for _ in range(20_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        recent = RecentRequests(len(ids))
        for i in ids:
            recent.add(i, "gpt-4-1106-preview", "general", "")
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / len(ids)
    finally:
        tracemalloc.stop()
    assert len(recent) == len(ids)
    # an OrderedDict with a KnownRequest per entry measured ~147 bytes besides the id strings
    assert per_entry < 80, per_entry
