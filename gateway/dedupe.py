"""Which messages are repeats (QoS 1 redelivery, a device resending): pure, bounded memory.

One insertion-ordered dict over all devices: keys arrive in time order, so expiry by the
window and the cap both pop from the front, O(1) per message with no periodic scan. The
cap bounds memory whatever the number of devices (about 180 bytes a key: 200,000 keys are
about 36 MB). Repeats worth catching are recent: a redelivery is one of the broker's
``receive_maximum`` messages in flight, a device resend one of its own few in flight, so
the cap only shortens the window under a sustained flood (200,000 keys last 200 s at
1,000 readings/s; a site of 1,000 devices reporting every minute keeps the whole hour).
"""

from __future__ import annotations

from collections.abc import Iterable

Key = tuple[int, float]


class Deduper:
    def __init__(self, window_s: float, max_keys: int = 200_000) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self._seen: dict[tuple[str, int, float], float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def is_repeat(self, device: str, key: Key, now: float) -> bool:
        at = self._seen.get((device, *key))
        return at is not None and at >= now - self.window_s

    def add(self, device: str, key: Key, at: float) -> None:
        seen = self._seen
        seen[(device, *key)] = at
        horizon = at - self.window_s
        while seen:
            first = next(iter(seen))
            if len(seen) > self.max_keys or seen[first] < horizon:
                del seen[first]
            else:
                break

    def load(self, rows: Iterable[tuple[str, int, float, float]]) -> None:
        """Rebuild from the persisted keys (device, seq, k, at), oldest first."""
        for device, seq, k, at in rows:
            self.add(device, (seq, k), at)
