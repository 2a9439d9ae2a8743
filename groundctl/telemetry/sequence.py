"""Per (node, packet id) sequence-count tracking: gaps, repeats and resets.

CCSDS sequence counts are 14 bits and wrap at 16384. After packet n the next is expected
to be n + 1. A jump forward by less than half the counter range is a gap (packets lost);
a count equal to the last one is a repeat; anything else (a jump back, or forward by half
the range or more) is a reset, as when flight software restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MODULUS = 16384


@dataclass(frozen=True)
class SequenceEvent:
    """Something unexpected in a sequence of counts."""

    node: str
    packet_id: int
    kind: Literal["gap", "repeat", "reset"]
    expected: int
    got: int
    missing: int = 0  # for gaps: how many packets were lost

    def describe(self) -> str:
        what = {
            "gap": f"gap: {self.missing} packet(s) missing",
            "repeat": "repeated packet",
            "reset": "sequence counter reset",
        }[self.kind]
        return (
            f"{self.node} id 0x{self.packet_id:04x}: {what} "
            f"(expected count {self.expected}, got {self.got})"
        )


class SequenceTracker:
    """Remembers the last count of every (node, packet id) stream."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, int], int] = {}

    def observe(self, node: str, packet_id: int, count: int) -> SequenceEvent | None:
        """Record `count`; return what was unexpected about it, if anything."""
        key = (node, packet_id)
        last = self._last.get(key)
        self._last[key] = count
        if last is None:
            return None
        expected = (last + 1) % MODULUS
        if count == expected:
            return None
        if count == last:
            return SequenceEvent(node, packet_id, "repeat", expected, count)
        ahead = (count - expected) % MODULUS
        if ahead < MODULUS // 2:
            return SequenceEvent(node, packet_id, "gap", expected, count, missing=ahead)
        return SequenceEvent(node, packet_id, "reset", expected, count)
