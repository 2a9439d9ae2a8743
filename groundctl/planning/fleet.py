"""From a config to a plan: the fleet's passes and their capacities, sunlight, each node's
latest state and its queued jobs, then `groundctl.planning.plan.make_plan`.

Also the job file (`--jobs`), the plan as JSON, and the plan as a procedure.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from groundctl.config import Config
from groundctl.errors import GroundctlError
from groundctl.orbits.passes import Satellite, predict
from groundctl.planning.budget import pass_capacities
from groundctl.planning.forecast import NodeStart, lit_matrix
from groundctl.planning.plan import (
    LOOKAHEAD_S,
    Contact,
    Job,
    Limits,
    NodeInput,
    Plan,
    Policy,
    make_plan,
)
from groundctl.sim.physics import POWER_MODES, THROTTLE_LEVELS
from groundctl.tomlreader import Keys, TomlReader, parse_toml, read_text

PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")


class PlanError(GroundctlError):
    """A job file or a planning request that cannot be used."""

    title = "plan error"


@dataclass(frozen=True)
class Timings:
    """Where planning time went (seconds)."""

    predict_s: float
    capacity_s: float
    sunlight_s: float
    plan_s: float

    @property
    def total_s(self) -> float:
        return self.predict_s + self.capacity_s + self.sunlight_s + self.plan_s


def read_jobs(path: Path, nodes: Sequence[str] | None = None) -> list[Job]:
    """The queued jobs of a TOML job file: `[[jobs]]` with node, id, gpu_seconds and
    priority (LOW, NORMAL, HIGH, URGENT or 0..3; default NORMAL). PlanError naming the
    file, line and field for anything else."""
    text = read_text(path, PlanError, "job file")
    raw = parse_toml(text, path, PlanError, hint="a [[jobs]] table per job")
    reader = TomlReader(path, text)
    reader.error_class = PlanError
    reader.check_keys(raw, {"jobs"}, ())
    entries = raw.get("jobs", [])
    if not isinstance(entries, list):
        raise reader.error(("jobs",), "expected [[jobs]] tables")
    jobs: list[Job] = []
    seen: set[tuple[str, int]] = set()
    for i, entry in enumerate(entries):
        keys: Keys = ("jobs", i)
        table = reader.table(entry, keys)
        reader.check_keys(table, {"node", "id", "gpu_seconds", "priority"}, keys)
        node = reader.string(table, "node", keys)
        job_id = reader.integer(table, "id", keys, low=1, high=2**32 - 1)
        gpu_s = reader.integer(table, "gpu_seconds", keys, low=1, high=604800)
        priority_raw = table.get("priority", "NORMAL")
        if isinstance(priority_raw, str) and priority_raw.upper() in PRIORITIES:
            priority = PRIORITIES.index(priority_raw.upper())
        elif (
            isinstance(priority_raw, int)
            and not isinstance(priority_raw, bool)
            and 0 <= priority_raw <= 3
        ):
            priority = priority_raw
        else:
            raise reader.error(
                (*keys, "priority"),
                f"expected one of {', '.join(PRIORITIES)} (or 0..3), found {priority_raw!r}",
            )
        if (node, job_id) in seen:
            raise reader.error((*keys, "id"), f"job {job_id} of {node} is listed twice")
        seen.add((node, job_id))
        if nodes is not None and node not in nodes:
            raise reader.error(
                (*keys, "node"),
                f"no node {node!r} in the fleet",
                hint="nodes: "
                + ", ".join(sorted(nodes)[:12])
                + (" ..." if len(nodes) > 12 else ""),
            )
        jobs.append(Job(node, job_id, float(gpu_s), priority))
    return jobs


def plan_fleet(
    config: Config,
    start: datetime,
    hours: float,
    *,
    satellites: Sequence[Satellite],
    jobs: Sequence[Job] = (),
    starts: Mapping[str, NodeStart] | None = None,
    policy: Policy = "plan",
) -> tuple[Plan, Timings]:
    """The plan of `satellites` over the config's stations for `hours` from `start`."""
    planning = config.planning
    end = start.timestamp() + hours * 3600
    t0 = time.perf_counter()
    prediction = predict(
        satellites, config.stations, start, datetime.fromtimestamp(end, UTC), workers=1
    )
    t1 = time.perf_counter()
    tles = {s.name: (s.line1, s.line2) for s in satellites}
    stations = {s.name: s for s in config.stations}
    passes = list(prediction.passes)
    capacities = pass_capacities(passes, tles, stations, planning.budget_for)
    contacts = [
        Contact(p.node, p.station, p.aos.timestamp(), p.los.timestamp(), p.max_elevation_deg,
                float(c), p, p.priority)
        for p, c in zip(passes, capacities, strict=True)
    ]  # fmt: skip
    t2 = time.perf_counter()
    step = planning.step_s
    steps = math.ceil(hours * 3600 / step) + math.ceil(LOOKAHEAD_S / step) + 1
    times = start.timestamp() + step * np.arange(steps, dtype=np.float64)
    lit = lit_matrix([tles[s.name] for s in satellites], times)
    t3 = time.perf_counter()
    by_node: dict[str, list[Job]] = {}
    for job in jobs:
        by_node.setdefault(job.node, []).append(job)
    nodes = [
        NodeInput(s.name, (starts or {}).get(s.name, NodeStart()), tuple(by_node.get(s.name, ())))
        for s in satellites
    ]
    limits = Limits(min_soc=planning.min_soc, storage_high_water=planning.storage_high_water)
    plan = make_plan(
        start.timestamp(), end, nodes, contacts, lit, stations,
        step_s=step, limits=limits, policy=policy,
    )  # fmt: skip
    t4 = time.perf_counter()
    return plan, Timings(t1 - t0, t2 - t1, t3 - t2, t4 - t3)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain data (`groundctl plan --json`, and what `--review` reads back)."""
    passes = [
        {
            "node": pp.node,
            "station": pp.contact.station,
            "aos": _iso(pp.contact.aos_s),
            "los": _iso(pp.contact.los_s),
            "max_elevation_deg": round(pp.contact.max_elevation_deg, 2),
            "capacity_bytes": round(pp.contact.capacity_b),
            "granted": pp.granted,
            "antenna": pp.antenna,
            "reason": pp.reason,
            "power_mode": POWER_MODES[pp.mode] if pp.mode is not None else None,
            "throttle": THROTTLE_LEVELS[pp.throttle] if pp.throttle is not None else None,
            "submit_jobs": list(pp.submitted),
            "downlink_bytes": round(pp.downlink_b),
            "downlinks": [{"at": _iso(t), "max_bytes": round(b)} for t, b in pp.downlinks],
            "decision": pp.decision,
        }
        for pp in plan.passes
    ]
    nodes = {}
    step = max(1, len(plan.times) // 96)  # 96 points of each curve (every 15 min of a day)
    for name, n in plan.nodes.items():
        nodes[name] = {
            "delivered_bytes": round(n.delivered_b),
            "produced_bytes": round(n.produced_b),
            "backlog_bytes": round(n.backlog_b),
            "min_soc": round(n.min_soc, 4),
            "max_storage": round(n.max_storage, 4),
            "max_gpu_temp_c": round(n.max_gpu_c, 1),
            "eclipses": [[_iso(a), _iso(b)] for a, b in n.eclipses],
            "jobs": {
                str(job_id): {
                    "start": _iso(t),
                    "end": _iso(n.job_end_s[job_id]) if job_id in n.job_end_s else None,
                }
                for job_id, t in sorted(n.job_start_s.items())
            },
            "jobs_failed": n.jobs_failed,
            "deferred": [{"job": j.job_id, "reason": why} for j, why in n.deferred],
            "curves": {
                "time": [_iso(t) for t in plan.times[::step]],
                "soc": [round(float(v), 4) for v in n.soc[::step]],
                "storage_bytes": [round(float(v)) for v in n.storage_b[::step]],
                "gpu_temp_c": [round(float(v), 1) for v in n.gpu_c[::step]],
            },
        }
    return {
        "start": _iso(plan.start_s),
        "end": _iso(plan.end_s),
        "policy": plan.policy,
        "limits": {
            "min_soc": plan.limits.min_soc,
            "storage_high_water": plan.limits.storage_high_water,
            "thermal_max_c": plan.limits.thermal_max_c,
        },
        "delivered_bytes": round(plan.delivered_b),
        "violations": plan.violations(),
        "passes": passes,
        "nodes": nodes,
    }


@dataclass(frozen=True)
class PlannedCommand:
    """One command of the plan: its text, its time tag, and the decision behind it."""

    text: str
    at_s: float
    why: str


def plan_commands(plan: Plan) -> list[PlannedCommand]:
    """The plan as commands, pass by pass: at AOS, the power mode and throttle when they
    change and the jobs to submit; the downlinks at their own times (at AOS, or when
    results land during the pass)."""
    commands: list[PlannedCommand] = []
    setting: dict[str, tuple[int, int]] = {}
    for pp in plan.passes:
        if not pp.granted or pp.mode is None or pp.throttle is None:
            continue
        why = f"{pp.node} at {pp.contact.station}: {pp.decision}"
        aos = pp.contact.aos_s
        mode, throttle = setting.get(pp.node) or plan.nodes[pp.node].start_setting
        if pp.mode != mode:
            commands.append(PlannedCommand(
                f"{pp.node} SET_POWER_MODE mode={POWER_MODES[pp.mode]}", aos, why))  # fmt: skip
        if pp.throttle != throttle:
            commands.append(PlannedCommand(
                f"{pp.node} SET_THROTTLE level={THROTTLE_LEVELS[pp.throttle]}", aos, why
            ))  # fmt: skip
        setting[pp.node] = (pp.mode, pp.throttle)
        jobs = {j.job_id: j for j in _jobs_of(plan, pp.node)}
        for job_id in pp.submitted:
            job = jobs.get(job_id)
            if job is not None:
                text = (f"{pp.node} SUBMIT_JOB job_id={job_id} gpu_seconds={int(job.gpu_s)} "
                        f"priority={PRIORITIES[job.priority]}")  # fmt: skip
                commands.append(PlannedCommand(text, aos, why))
        for when, max_bytes in pp.downlinks:
            text = f"{pp.node} START_DOWNLINK max_bytes={math.ceil(max_bytes)}"
            commands.append(PlannedCommand(text, when, why))
    return commands


def plan_procedure(plan: Plan, source: str = "") -> str:
    """The plan as a procedure for `groundctl run`: each granted pass's commands queued,
    time-tagged (store and forward: released when the node is in contact). Review it,
    then run it; nothing is sent before."""
    lines = [
        f'"""Fleet plan {_iso(plan.start_s)} to {_iso(plan.end_s)}{source}.',
        "",
        "Generated by `groundctl plan --procedure`: review it before running it. Each",
        "command is queued now, time-tagged for its pass's AOS; the run then waits until",
        "the last pass is over, so that the commands go out and are verified as it runs",
        "(stopped early, it cancels what it queued and has not sent).",
        '"""',
        "",
        "from datetime import datetime",
        "",
        "from groundctl.procedures import cmd, log, now, wait",
        "",
        "",
        "def main() -> None:",
    ]
    commands = plan_commands(plan)
    last_why = ""
    for command in commands:
        if command.why != last_why:
            lines.append(f"    # {command.why}")
            last_why = command.why
        at = f'datetime.fromisoformat("{_iso(command.at_s)}")'
        lines.append(f'    cmd("{command.text}", at={at}, wait=False)')
    last_los = max((pp.contact.los_s for pp in plan.passes if pp.granted), default=plan.start_s)
    end = f'datetime.fromisoformat("{_iso(last_los + 60)}")'
    lines.append(f'    log("{len(commands)} commands queued; waiting for the last pass to end")')
    lines.append(f"    wait(max(0.0, ({end} - now()).total_seconds()))")
    lines.append('    log("the plan\'s passes are over")')
    return "\n".join(lines) + "\n"


def _jobs_of(plan: Plan, node: str) -> list[Job]:
    return list(plan.jobs.get(node, ()))


def dump(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2)
