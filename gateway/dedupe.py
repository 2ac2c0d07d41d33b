"""Which messages are repeats (QoS 1 redelivery, a device resending): pure, bounded memory.

Keys of all devices in one dict, and in a deque in arrival (time) order: expiry by the
window and the cap both pop from the front, O(1) per message with no periodic scan (a
dict used as a queue is not: iterating from its front walks the holes its deletions left,
which took a third of the gateway's CPU at the cap). The
cap bounds memory whatever the number of devices (about 300 bytes a key in the gateway's
RSS, measured: 100,000 keys are about 30 MB). Repeats worth catching are recent: a redelivery is one of the broker's
``receive_maximum`` messages in flight, a device resend one of its own few in flight, so
the cap only shortens the window under a sustained flood (100,000 keys last 100 s at
1,000 readings/s; a site of 1,000 devices reporting every minute keeps the whole hour).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

Key = tuple[int, float]


class Deduper:
    def __init__(self, window_s: float, max_keys: int = 100_000) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self._seen: dict[tuple[str, int, float], float] = {}
        self._order: deque[tuple[str, int, float]] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def is_repeat(self, device: str, key: Key, now: float) -> bool:
        at = self._seen.get((device, *key))
        return at is not None and at >= now - self.window_s

    def add(self, device: str, key: Key, at: float) -> None:
        """Remember a key first seen at ``at`` (a key already known keeps its first time)."""
        seen, order = self._seen, self._order
        full = (device, *key)
        if full in seen:
            return
        seen[full] = at
        order.append(full)
        horizon = at - self.window_s
        while order and (len(order) > self.max_keys or seen[order[0]] < horizon):
            del seen[order.popleft()]

    def load(self, rows: Iterable[tuple[str, int, float, float]]) -> None:
        """Rebuild from the persisted keys (device, seq, k, at), oldest first."""
        for device, seq, k, at in rows:
            self.add(device, (seq, k), at)
