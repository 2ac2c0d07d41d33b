"""Which messages are repeats (QoS 1 redelivery, a device resending): pure, bounded memory.

Keys per device are kept in arrival order, so expiry by the window and the per-device
cap both pop from the front: O(1) per message, no periodic scan.
"""

from __future__ import annotations

from collections.abc import Iterable

Key = tuple[int, float]


class Deduper:
    def __init__(self, window_s: float, per_device_cap: int = 4096) -> None:
        self.window_s = window_s
        self.cap = per_device_cap
        self._seen: dict[str, dict[Key, float]] = {}

    def __len__(self) -> int:
        return sum(len(d) for d in self._seen.values())

    def is_repeat(self, device: str, key: Key, now: float) -> bool:
        keys = self._seen.get(device)
        if keys is None:
            return False
        at = keys.get(key)
        return at is not None and at >= now - self.window_s

    def add(self, device: str, key: Key, at: float) -> None:
        keys = self._seen.get(device)
        if keys is None:
            keys = self._seen[device] = {}
        keys[key] = at
        horizon = at - self.window_s
        while keys:
            first = next(iter(keys))
            if len(keys) > self.cap or keys[first] < horizon:
                del keys[first]
            else:
                break

    def load(self, rows: Iterable[tuple[str, int, float, float]]) -> None:
        """Rebuild from the persisted keys (device, seq, k, at), oldest first."""
        for device, seq, k, at in rows:
            self.add(device, (seq, k), at)
