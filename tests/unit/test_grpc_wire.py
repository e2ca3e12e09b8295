"""router_svc._wire: the directly written RouteDecision bytes equal the protobuf serialisation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_router.v1 import router_pb2 as pb
from router_core._config_schema import ModelSpec
from router_core._decision import CascadeStep, Decision
from router_svc._convert import decision_to_proto, error_decision
from router_svc._wire import WireDecision, decision_bytes, serialize

NAMES = ("a", "bb", "modèle-ü", "x" * 130)
SPECS = {
    name: ModelSpec(name=name, provider=provider, base_url="http://127.0.0.1:9")
    for name, provider in zip(NAMES, ("openai", "anthropic", "openai", "anthropic"), strict=True)
}
texts = st.text(max_size=200)
floats = st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, 1e-300])
names = st.sampled_from(NAMES)


@st.composite
def decisions(draw: Any) -> Decision:
    return Decision(
        model=draw(names | texts),
        provider=draw(st.sampled_from(["openai", "anthropic", ""])),
        strategy=draw(st.sampled_from(["rules", "classifier", "cascade", "default", "new", ""])),
        reason=draw(texts),
        scores=draw(st.dictionaries(names, floats)),
        costs=draw(st.dictionaries(names, floats)),
        fallbacks=tuple(draw(st.lists(names | texts, max_size=5))),
        cascade=tuple(
            CascadeStep(m, c) for m, c in draw(st.lists(st.tuples(names, floats), max_size=3))
        ),
        category=draw(st.sampled_from(["general", "code", ""]) | texts),
        config_version=draw(texts),
        decision_us=draw(st.floats(min_value=-5, max_value=1e12)),
        monitor_note=draw(texts),
    )


@settings(max_examples=300, deadline=None)
@given(decisions(), texts)
def test_bytes_equal_the_protobuf_serialisation(decision: Decision, request_id: str) -> None:
    expected = decision_to_proto(decision, request_id, SPECS)
    data = decision_bytes(decision, request_id, SPECS)
    assert pb.RouteDecision.FromString(data) == expected
    assert data == expected.SerializeToString(deterministic=True)


def test_a_typical_decision_round_trips() -> None:
    decision = Decision(
        model="bb", provider="anthropic", strategy="classifier", reason="best value",
        scores={"bb": 0.8, "a": 0.9}, costs={"a": 0.01, "bb": 0.002, "x" * 130: 0.0},
        fallbacks=("a",), cascade=(CascadeStep("a", 0.7),), category="code",
        config_version="v7", decision_us=23.6,
    )  # fmt: skip
    out = pb.RouteDecision.FromString(decision_bytes(decision, "r9", SPECS))
    assert [c.model for c in out.candidates] == ["a", "bb", "x" * 130]
    assert out.candidates[0].predicted_quality == 0.9
    assert not out.candidates[2].HasField("predicted_quality")
    assert (out.request_id, out.strategy, out.decision_time_us) == (
        "r9",
        pb.STRATEGY_CLASSIFIER,
        24,
    )


def test_serialize_sends_wire_decisions_and_serialises_messages() -> None:
    message = error_decision("r", 3, "bad")
    wire = WireDecision(b"\x0a\x01r", "r")
    assert serialize(wire) == b"\x0a\x01r"
    assert wire.to_proto().request_id == "r"
    assert serialize(message) == message.SerializeToString()
