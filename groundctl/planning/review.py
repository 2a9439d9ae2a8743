"""Planned against flown: `groundctl plan --review PLAN.json` after the window.

The plan is the JSON `groundctl plan --json` wrote; the flown side comes from the archive:

- bytes downlinked in a pass: the node's `COMMS_HK.DOWNLINK_RATE` samples from its AOS to
  a minute after its LOS, integrated (each sample holds until the next, at most 30 s);
- whether the pass was flown: a flown pass of the node overlapping it (`flown_passes`);
- the battery's minimum: the lowest `POWER_HK.BATT_SOC` in the window. Telemetry comes
  only in contact, so this is the lowest the ground saw, not necessarily the lowest there
  was;
- jobs done: the node's "job N done" events (COMPUTE 22) in the window. A node tells of
  a finished job at its next contact: `jobs_known` says whether the ground has heard from
  it since the plan's last job there ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from groundctl.errors import GroundctlError

if TYPE_CHECKING:
    from groundctl.archive import Archive

HOLD_MAX_S = 30.0  # a rate sample counts until the next one, at most this long
AFTER_LOS_S = 60.0


class ReviewError(GroundctlError):
    title = "plan error"


@dataclass
class PassReview:
    node: str
    station: str
    aos_s: float
    los_s: float
    planned_b: float
    flown_b: float
    flown: bool


@dataclass
class NodeReview:
    node: str
    planned_b: float = 0.0
    flown_b: float = 0.0
    planned_min_soc: float = math.nan
    seen_min_soc: float = math.nan
    planned_jobs: int = 0
    flown_jobs: int = 0
    passes_planned: int = 0
    passes_flown: int = 0
    passes: list[PassReview] = field(default_factory=list)
    planned_jobs_end_s: float = math.nan  # when the last job the plan finishes ends
    heard_until_s: float = math.nan  # the end of the node's last flown pass in the archive

    @property
    def jobs_known(self) -> bool:
        """The ground has heard from the node since its planned jobs ended (jobs finish
        on board; their "done" events come down at the next contact)."""
        return not self.planned_jobs or self.heard_until_s >= self.planned_jobs_end_s

    @property
    def error_b(self) -> float:
        return self.flown_b - self.planned_b

    @property
    def error(self) -> float:
        """Flown bytes against planned, as a fraction (0: as planned)."""
        return self.error_b / self.planned_b if self.planned_b else 0.0


def _time(text: Any, where: str) -> float:
    if not isinstance(text, str):
        raise ReviewError(f"{where}: expected an ISO 8601 time, found {text!r}")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ReviewError(f"{where}: expected an ISO 8601 time, found {text!r}") from None


def review(plan: dict[str, Any], archive: Archive) -> list[NodeReview]:
    """Each node of `plan` (a `groundctl plan --json` document), planned against flown."""
    if not isinstance(plan, dict) or "passes" not in plan or "nodes" not in plan:
        raise ReviewError(
            "not a plan: expected the JSON of `groundctl plan --json` (with 'passes' and 'nodes')"
        )
    start, end = _time(plan.get("start"), "start"), _time(plan.get("end"), "end")
    if not isinstance(plan["nodes"], dict) or not isinstance(plan["passes"], list):
        raise ReviewError("not a plan: 'nodes' must be an object and 'passes' a list")
    nodes: dict[str, NodeReview] = {}
    for name, doc in plan["nodes"].items():
        jobs = doc.get("jobs", {}) if isinstance(doc, dict) else None
        if not isinstance(jobs, dict) or not all(isinstance(j, dict) for j in jobs.values()):
            raise ReviewError(f"nodes.{name}: expected an object with 'jobs' (an object)")
        ends = [_time(j["end"], f"nodes.{name}.jobs") for j in jobs.values() if j.get("end")]
        ends = [t for t in ends if t <= end]
        nodes[name] = NodeReview(name, planned_min_soc=float(doc.get("min_soc", math.nan)),
                                 planned_jobs=len(ends),
                                 planned_jobs_end_s=max(ends, default=math.nan))  # fmt: skip
    flown = {name: archive.flown_passes(node=name, start_s=start, end_s=end) for name in nodes}
    rates = {
        name: [(s.time_s, float(s.value)) for s in archive.query_samples(
            "COMMS_HK.DOWNLINK_RATE", node=name, start_s=start, end_s=end + 3600)]
        for name in nodes
    }  # fmt: skip
    for i, p in enumerate(plan["passes"]):
        if not isinstance(p, dict):
            raise ReviewError(f"passes[{i}]: expected an object, found {p!r}")
        if not p.get("granted"):
            continue
        node = p.get("node")
        if node not in nodes:
            raise ReviewError(f"passes[{i}]: node {node!r} is not among the plan's nodes")
        aos, los = _time(p.get("aos"), f"passes[{i}].aos"), _time(p.get("los"), f"passes[{i}].los")
        was = any(
            f["aos"] < los and (f["los"] is None or f["los"] > aos) for f in flown[node]
        )  # fmt: skip
        got = _integrate(rates[node], aos, los + AFTER_LOS_S)
        planned = p.get("downlink_bytes", 0)
        if not isinstance(planned, int | float):
            raise ReviewError(f"passes[{i}].downlink_bytes: expected a number, found {planned!r}")
        r = PassReview(node, str(p.get("station")), aos, los, float(planned), got, was)
        n = nodes[node]
        n.passes.append(r)
        n.planned_b += r.planned_b
        n.flown_b += r.flown_b
        n.passes_planned += 1
        n.passes_flown += was
    for name, n in nodes.items():
        heard = archive.flown_passes(node=name, start_s=start)
        n.heard_until_s = max((f["los"] or f["aos"] for f in heard), default=math.nan)
        socs = [float(s.value) / 100 for s in archive.query_samples(
            "POWER_HK.BATT_SOC", node=name, start_s=start, end_s=end)]  # fmt: skip
        n.seen_min_soc = min(socs) if socs else math.nan
        n.flown_jobs = archive.conn.execute(
            "SELECT count(*) FROM events WHERE node = ? AND source = 'COMPUTE' "
            "AND event_id = 22 AND time >= ? AND time < ?",
            (name, start, end),
        ).fetchone()[0]
    return list(nodes.values())


def _integrate(samples: list[tuple[float, float]], start: float, end: float) -> float:
    total = 0.0
    inside = [(t, v) for t, v in samples if start <= t < end]
    for (t, v), (t_next, _) in zip(inside, [*inside[1:], (end, 0.0)], strict=True):
        total += v * min(t_next - t, HOLD_MAX_S)
    return total
