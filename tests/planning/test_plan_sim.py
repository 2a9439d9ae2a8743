"""The fleet plan executed by the simulator: 24 nodes, 24 h of simulated time.

The scenario is a tight one: every node starts with its battery at 55 % and its storage
75 % full of results waiting to go down, and 60 one-hour jobs queued. The plan's
commands (power mode, throttle, jobs, downlink) are sent to the simulated nodes at each
planned pass's AOS, through the simulator's own command path (packets encoded from the
mission database), with the plan's antenna schedule as the stations' schedule. The
oracle is the simulator's own state, read every simulated minute:

- executed, the plan keeps every node at or above the minimum state of charge and at or
  below the storage high-water mark;
- the naive baseline (downlink whenever in contact, run every queued job at once, in
  PERFORMANCE) breaks both limits on the same fleet;
- the plan delivers at least 90 % of the bytes it predicted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from groundctl.commanding.syntax import CommandLine, validate
from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.mdb.loader import load_mission
from groundctl.paths import data_dir
from groundctl.planning.fleet import PRIORITIES, plan_fleet
from groundctl.planning.forecast import NodeStart
from groundctl.planning.plan import Job, Plan, Policy
from groundctl.sim.fleet import SimFleet
from groundctl.sim.physics import POWER_MODES, THROTTLE_LEVELS

CONFIG = load_config(demo_config_path())
START = datetime(2026, 11, 29, tzinfo=UTC)
HOURS = 24.0
SOC0, STORAGE0 = 0.55, 0.75
STORAGE_B = 1e12  # the simulated node's storage (NodeParams.storage_mb)
JOBS_PER_NODE, JOB_GPU_S = 60, 3600


@dataclass
class Flown:
    plan: Plan
    min_soc: dict[str, float]
    max_storage: dict[str, float]
    delivered_b: float
    rejected: int


def scenario() -> tuple[list[Any], list[Job], dict[str, NodeStart]]:
    satellites = load_fleet(CONFIG, now=START).satellites(None)
    assert len(satellites) >= 24
    jobs = [
        Job(s.name, 1000 + k, float(JOB_GPU_S), 1)
        for s in satellites
        for k in range(JOBS_PER_NODE)
    ]  # fmt: skip
    stored = STORAGE0 * STORAGE_B
    starts = {
        s.name: NodeStart(soc=SOC0, storage_used_b=stored, results_pending_b=stored)
        for s in satellites
    }
    return satellites, jobs, starts


def fly(policy: Policy) -> Flown:
    satellites, jobs, starts = scenario()
    plan, _ = plan_fleet(
        CONFIG, START, HOURS, satellites=satellites, jobs=jobs, starts=starts, policy=policy
    )
    granted = [pp for pp in plan.passes if pp.granted]
    contacts = [replace(pp.contact.source, scheduled=True) for pp in granted if pp.contact.source]
    fleet = SimFleet(
        satellites, CONFIG.stations, start_s=START.timestamp(), gate=True, contacts=contacts
    )
    for name, node in fleet.nodes.items():
        node.state.soc = starts[name].soc
        node.state.storage_used_b = starts[name].storage_used_b
        node.state.results_pending_b = starts[name].results_pending_b
    mission = load_mission(data_dir() / "missions" / "odc-node.toml")
    job_of = {(j.node, j.job_id): j for j in jobs}

    def packet(node: str, name: str, **arguments: Any) -> bytes:
        typed = {k: str(v) for k, v in arguments.items()}
        return validate(CommandLine(node, name, typed), mission).packet

    # each pass's commands, sent a second after AOS (the node hears from AOS on)
    queue: list[tuple[float, str, list[bytes]]] = []
    for pp in granted:
        if pp.mode is None or pp.throttle is None:
            continue
        packets = [
            packet(pp.node, "SET_POWER_MODE", mode=POWER_MODES[pp.mode]),
            packet(pp.node, "SET_THROTTLE", level=THROTTLE_LEVELS[pp.throttle]),
        ]
        for job_id in pp.submitted:
            job = job_of[(pp.node, job_id)]
            packets.append(packet(pp.node, "SUBMIT_JOB", job_id=job_id,
                                  gpu_seconds=int(job.gpu_s),
                                  priority=PRIORITIES[job.priority]))  # fmt: skip
        queue.append((pp.contact.aos_s + 1.0, pp.node, packets))
        for when, max_bytes in pp.downlinks:  # naive: max_bytes 0, everything
            downlink = packet(pp.node, "START_DOWNLINK", max_bytes=math.ceil(max_bytes))
            queue.append((max(when, pp.contact.aos_s) + 1.0, pp.node, [downlink]))
    queue.sort(key=lambda q: q[0])
    min_soc = {n: node.state.soc for n, node in fleet.nodes.items()}
    max_storage = {n: node.state.storage_used_b / STORAGE_B for n, node in fleet.nodes.items()}
    end = START.timestamp() + HOURS * 3600
    rejected = 0
    t = START.timestamp()
    while t < end:
        t = min(t + 60.0, end)
        while queue and queue[0][0] <= t:
            when, node, packets = queue.pop(0)
            fleet.advance(when)
            for raw in packets:
                fleet.command(node, raw)
        fleet.advance(t)
        for name, node in fleet.nodes.items():
            min_soc[name] = min(min_soc[name], node.state.soc)
            max_storage[name] = max(max_storage[name], node.state.storage_used_b / STORAGE_B)
            rejected += node.state.err_count
            node.state.err_count = 0
    delivered = sum(node.state.downlinked_b for node in fleet.nodes.values())
    return Flown(plan, min_soc, max_storage, delivered, rejected)


@pytest.fixture(scope="module")
def planned() -> Flown:
    return fly("plan")


def test_the_executed_plan_keeps_every_node_within_its_limits(planned: Flown) -> None:
    limits = planned.plan.limits
    assert planned.rejected == 0  # every command was accepted by its node
    low = {n: round(v, 3) for n, v in planned.min_soc.items() if v < limits.min_soc}
    full = {n: round(v, 3) for n, v in planned.max_storage.items()
            if v > limits.storage_high_water}  # fmt: skip
    assert not low, f"below the minimum state of charge: {low}"
    assert not full, f"above the storage high-water mark: {full}"
    assert planned.plan.violations() == []  # and the plan's own forecast agrees


def test_the_plan_delivers_what_it_predicts(planned: Flown) -> None:
    predicted = planned.plan.delivered_b
    assert predicted > 0
    assert planned.delivered_b >= 0.9 * predicted, (planned.delivered_b, predicted)
    # and it did work: jobs ran on every node that could
    ran = sum(len(n.job_end_s) for n in planned.plan.nodes.values())
    assert ran > 0


def test_the_naive_baseline_breaks_the_limits() -> None:
    naive = fly("naive")
    limits = naive.plan.limits
    assert min(naive.min_soc.values()) < limits.min_soc
    assert max(naive.max_storage.values()) > limits.storage_high_water
