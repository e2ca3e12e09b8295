"""``RouteDecision`` wire bytes written directly, for the Route and RouteStream hot path.

Building a ``pb.RouteDecision`` (one ``candidates.add`` per catalog model) and serialising it
costs about 20 us per decision; writing the same bytes from pre-encoded pieces costs a
quarter of that. The static parts of a decision (each candidate's model and provider, model
names, the config version, category names) are encoded once per catalog and string. Output
parses to exactly the message ``_convert.decision_to_proto`` builds (fields in number order,
proto3 defaults omitted, the optional ``predicted_quality`` present whenever scored), which
``tests/unit/test_grpc_wire.py`` checks. The servicer answers with a ``WireDecision`` (the
bytes plus the ``request_id`` that the auth interceptor reads); ``serialize``, the Router
service's response serializer, sends its bytes and serialises messages as usual.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_router.v1 import router_pb2 as pb

if TYPE_CHECKING:
    from router_core._config_schema import ModelSpec
    from router_core._decision import Decision

__all__ = ["WireDecision", "decision_bytes", "serialize"]

_pack_d = struct.Struct("<d").pack
_pack_qc = struct.Struct("<BdBd").pack  # predicted_quality (3) and estimated_cost_usd (4)
_pack_1d = struct.Struct("<Bd").pack
# candidate tags: 0x19 predicted_quality (field 3), 0x21 estimated_cost_usd (field 4), 64-bit
_NEG_ZERO = _pack_d(-0.0)

# what Decision.strategy may say -> the wire enum (same table as _convert._STRATEGIES_OUT)
_STRATEGY_FIELD: dict[str, bytes] = {
    name: b"\x20" + bytes([value])
    for name, value in {
        "rules": pb.STRATEGY_RULES,
        "rule": pb.STRATEGY_RULES,
        "rules_only": pb.STRATEGY_RULES,
        "default": pb.STRATEGY_DEFAULT,
        "classifier": pb.STRATEGY_CLASSIFIER,
        "cascade": pb.STRATEGY_CASCADE,
    }.items()
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes([i]) for i in range(128)]


def _len(n: int) -> bytes:
    return _SMALL[n] if n < 128 else _varint(n)


def _field(tag: int, text: str) -> bytes:
    """A string field (empty: omitted, as proto3 does)."""
    if not text:
        return b""
    data = text.encode()
    return bytes([tag]) + _len(len(data)) + data


# encoded string fields of low cardinality (model names, versions, categories, providers)
_fields: dict[tuple[int, str], bytes] = {}


def _cached(tag: int, text: str) -> bytes:
    key = (tag, text)
    out = _fields.get(key)
    if out is None:
        out = _field(tag, text)
        if len(_fields) >= 4096:  # caller-influenced values cannot grow it without bound
            _fields.clear()
        _fields[key] = out
    return out


# encoded fallback lists (field 7; an empty name is still sent, the field is repeated)
_lists: dict[tuple[str, ...], bytes] = {}


def _repeated(names: tuple[str, ...]) -> bytes:
    out = _lists.get(names)
    if out is None:
        out = b"".join(_field(0x3A, n) or b"\x3a\x00" for n in names)
        if len(_lists) >= 4096:
            _lists.clear()
        _lists[names] = out
    return out


class _Catalog:
    """Per candidate: its (model, provider) fields framed for quality and cost, one of them,
    or neither."""

    __slots__ = ("catalog", "rows")

    def __init__(self, catalog: Mapping[str, ModelSpec]) -> None:
        self.catalog = catalog
        rows = []
        for name, spec in catalog.items():
            head = _field(0x0A, name) + _field(0x12, spec.provider)
            # field 6, length-delimited: quality and cost / quality only / cost only
            both = b"\x32" + _len(len(head) + 18) + head
            one = b"\x32" + _len(len(head) + 9) + head
            rows.append((name, both, one, b"\x32" + _len(len(head)) + head))
        self.rows = tuple(rows)


_catalog_of: _Catalog | None = None


def _rows(catalog: Mapping[str, ModelSpec]) -> tuple[tuple[str, bytes, bytes, bytes], ...]:
    global _catalog_of
    cached = _catalog_of  # one object: read and replaced atomically
    if cached is None or cached.catalog is not catalog:
        cached = _catalog_of = _Catalog(catalog)
    return cached.rows


def decision_bytes(decision: Decision, request_id: str, catalog: Mapping[str, ModelSpec]) -> bytes:
    """The serialized ``RouteDecision`` that ``decision_to_proto`` would build."""
    score = decision.scores.get
    cost_of = decision.costs.get
    reason = decision.reason
    parts = [
        _field(0x0A, request_id),
        _cached(0x12, decision.model),
        _cached(0x1A, decision.provider),
        _STRATEGY_FIELD.get(decision.strategy, b""),
        _field(0x2A, reason) if reason else b"",
    ]
    add = parts.append
    pack_qc, pack_1d = _pack_qc, _pack_1d
    for name, both, one, bare in _rows(catalog):
        quality = score(name)
        cost = cost_of(name)
        if quality is not None:
            if cost:  # decision_to_proto sends ``cost or 0.0``: -0.0 is omitted here
                add(both + pack_qc(0x19, quality, 0x21, cost))
            else:
                add(one + pack_1d(0x19, quality))
        elif cost is not None:
            if cost or _pack_d(cost) == _NEG_ZERO:
                add(one + pack_1d(0x21, cost))
            else:  # cost 0.0 (omitted on the wire) and no score: names only
                add(bare)
    add(_repeated(decision.fallbacks))
    add(_cached(0x42, decision.config_version))
    us = round(decision.decision_us)
    if us > 0:
        add(b"\x48" + (_SMALL[us] if us < 128 else _varint(us)))
    add(_cached(0x52, decision.category))
    if decision.monitor_note:
        add(_field(0x5A, decision.monitor_note))
    for step in decision.cascade:
        body = _cached(0x0A, step.model)
        if step.min_confidence or _pack_d(step.min_confidence) == _NEG_ZERO:
            body += _pack_1d(0x11, step.min_confidence)
        add(b"\x62" + _len(len(body)) + body)
    return b"".join(parts)


class WireDecision:
    """A serialized ``RouteDecision`` and its request id (what interceptors may look at)."""

    __slots__ = ("data", "request_id")

    def __init__(self, data: bytes, request_id: str) -> None:
        self.data = data
        self.request_id = request_id

    def to_proto(self) -> pb.RouteDecision:
        """The message (for tests and debugging; not on the hot path)."""
        return pb.RouteDecision.FromString(self.data)  # type: ignore[no-any-return]


def serialize(message: Any) -> bytes:
    """Response serializer of the Router service: a ``WireDecision`` sends its bytes, messages
    serialise as usual."""
    if type(message) is WireDecision:
        return message.data
    return message.SerializeToString()  # type: ignore[no-any-return]
