"""Staleness: a packet not refreshed within its expected period raises an alert.

A packet type with `period_s` in the mission database is stale for a node when nothing
has arrived for `factor * period_s` (default 3 periods: one late packet is not news).
Time is the caller's clock (receive time, or the replay clock), in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StaleChange:
    """A stream became stale or fresh again."""

    node: str
    packet: str
    stale: bool
    last_seen_s: float
    time_s: float


class StalenessMonitor:
    """Tracks the last arrival of every (node, packet) stream that has an expected period."""

    def __init__(self, periods: dict[str, float], factor: float = 3.0) -> None:
        self.limits = {name: period * factor for name, period in periods.items()}
        self._last: dict[tuple[str, str], float] = {}
        self._stale: set[tuple[str, str]] = set()
        self._known: set[tuple[str, str]] = set()  # streams seen before a pause

    def seen(self, node: str, packet: str, time_s: float) -> StaleChange | None:
        """Record an arrival; returns the change if the stream was stale until now."""
        key = (node, packet)
        if packet not in self.limits:
            return None
        self._last[key] = time_s
        if key in self._stale:
            self._stale.discard(key)
            return StaleChange(node, packet, False, time_s, time_s)
        return None

    def assume_stale(self, node: str, packet: str, last_seen_s: float) -> None:
        """Start a stream as stale (an alert restored from an earlier run)."""
        if packet in self.limits:
            self._last[(node, packet)] = last_seen_s
            self._stale.add((node, packet))

    def pause(self, node: str) -> None:
        """The node went out of contact (LOS): silence is expected, nothing goes stale.
        Streams already stale stay so until data arrives again."""
        for key in [k for k in self._last if k[0] == node]:
            self._known.add(key)
            del self._last[key]

    def expect(self, node: str, time_s: float) -> None:
        """The node came into contact (AOS) at `time_s`: each stream it sent before must
        arrive again within its limit, or it goes stale."""
        for key in [k for k in self._known if k[0] == node]:
            self._last.setdefault(key, time_s)

    def check(self, now_s: float) -> list[StaleChange]:
        """Streams found stale at `now_s` (each reported once). A change's `time_s` is
        when the stream went stale (its last arrival + its limit), not when the check
        ran: so live, simulated and replayed telemetry, checked at different moments,
        raise the same alert at the same time."""
        changes = []
        for key, last in self._last.items():
            limit = self.limits[key[1]]
            if key not in self._stale and now_s - last > limit:
                self._stale.add(key)
                changes.append(StaleChange(key[0], key[1], True, last, last + limit))
        return changes
