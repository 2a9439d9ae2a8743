"""The contact plan: which predicted passes get an antenna.

The rule, applied per station, is deterministic and documented in docs/passes.md:

1. Rank the station's passes by node priority (higher first), then maximum elevation
   (higher first), then AOS (earlier first), then node name.
2. Walk the ranking; grant each pass the lowest-numbered antenna that is free from AOS to
   LOS, counting the station's turnaround time before and after the contacts it already
   holds. A pass no antenna can take is not scheduled, and its `reason` names the
   contacts that hold the antennas.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from groundctl.orbits.model import Pass, Station


def _rank_key(p: Pass) -> tuple[int, float, float, str]:
    return (-p.priority, -p.max_elevation_deg, p.aos.timestamp(), p.node)


def _describe(p: Pass) -> str:
    return (
        f"{p.node} (priority {p.priority}, max {p.max_elevation_deg:.1f} deg, "
        f"{p.aos:%H:%M:%S}-{p.los:%H:%M:%S}Z)"
    )


def plan_contacts(passes: Sequence[Pass], stations: Sequence[Station]) -> list[Pass]:
    """Return `passes` (same order) with `scheduled`, `antenna` and `reason` decided.

    Raises ValueError if a pass names a station not in `stations`.
    """
    by_station: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(passes):
        by_station[p.station].append(i)
    known = {s.name: s for s in stations}
    result = list(passes)
    for name, indexes in by_station.items():
        station = known.get(name)
        if station is None:
            raise ValueError(f"pass at unknown station {name!r}")
        gap = timedelta(seconds=station.turnaround_s)
        # Per antenna: starts (sorted) and the granted passes in the same order.
        starts: list[list[float]] = [[] for _ in range(station.antennas)]
        held: list[list[Pass]] = [[] for _ in range(station.antennas)]
        for i in sorted(indexes, key=lambda j: _rank_key(passes[j])):
            p = passes[i]
            begin = (p.aos - gap).timestamp()
            finish = (p.los + gap).timestamp()
            blockers: list[Pass] = []
            granted = None
            for antenna in range(station.antennas):
                conflict = _overlap(starts[antenna], held[antenna], begin, finish)
                if conflict is None:
                    granted = antenna
                    break
                blockers.append(conflict)
            if granted is None:
                result[i] = replace(
                    p,
                    scheduled=False,
                    antenna=None,
                    reason="antenna busy: " + "; ".join(_describe(b) for b in blockers),
                )
                continue
            pos = bisect_left(starts[granted], p.aos.timestamp())
            starts[granted].insert(pos, p.aos.timestamp())
            held[granted].insert(pos, p)
            result[i] = replace(
                p, scheduled=True, antenna=granted + 1, reason=f"antenna {granted + 1}"
            )
    return result


def _overlap(starts: list[float], held: list[Pass], begin: float, finish: float) -> Pass | None:
    """The granted pass on this antenna that overlaps [begin, finish], if any.

    Passes granted on one antenna are disjoint and sorted, so the one starting last
    before `finish` also ends last: if it ends before `begin`, none overlaps.
    """
    pos = bisect_left(starts, finish)
    if pos > 0 and held[pos - 1].los.timestamp() > begin:
        return held[pos - 1]
    return None
