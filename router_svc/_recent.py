"""A bounded map of the most recent request ids to what feedback needs to know about them.

The recorder remembers the last ``limit`` requests (50,000 by default) so that feedback for a
recent request is answered without a database read. At that size the map is a noticeable part
of the server's memory, so it is kept compact (measured with tracemalloc, 32-character ids):

- a plain ``dict`` plus a ``deque`` of ids for the eviction order: ~46 bytes per entry besides
  the id string, where an ``OrderedDict`` costs ~91;
- the values are interned: requests with the same (model, category, A/B arm) share one
  ``KnownRequest`` object instead of carrying their own (~56 bytes each).

An id recorded twice keeps its first place in the eviction order (it may be forgotten early;
feedback then falls back to the database).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["KnownRequest", "RecentRequests"]

_MAX_INTERNED = 4096  # distinct (model, category, arm) values kept shared; beyond: not shared


@dataclass(frozen=True, slots=True)
class KnownRequest:
    """What feedback needs to know about a recent request without reading the database."""

    model: str
    category: str
    ab_arm: str


class RecentRequests:
    """The last ``limit`` request ids and their ``KnownRequest`` (not thread-safe: the
    recorder's lock guards it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._map: dict[str, KnownRequest] = {}
        self._order: deque[str] = deque()
        self._values: dict[tuple[str, str, str], KnownRequest] = {}

    def __len__(self) -> int:
        return len(self._map)

    def add(self, request_id: str, model: str, category: str, ab_arm: str) -> None:
        """Remember ``request_id``; forget the oldest id beyond ``limit``."""
        key = (model, category, ab_arm)
        value = self._values.get(key)
        if value is None:
            value = KnownRequest(model, category, ab_arm)
            if len(self._values) < _MAX_INTERNED:
                self._values[key] = value
        if request_id not in self._map:
            self._order.append(request_id)
        self._map[request_id] = value
        while len(self._order) > self.limit:
            self._map.pop(self._order.popleft(), None)

    def get(self, request_id: str) -> KnownRequest | None:
        return self._map.get(request_id)
