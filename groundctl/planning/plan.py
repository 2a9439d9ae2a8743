"""The fleet plan: which node downlinks how much through which pass, and when its jobs run.

Pure: given the window, the nodes (start state, queued jobs, design figures), their
predicted passes with each pass's downlink capacity, and when each node is in sunlight,
`make_plan` returns the plan and the forecast it implies. Nothing here reads files or
the clock.

**What a node can be told, and when.** A node hears the ground only in contact, so the
plan decides at each contact (its AOS), for the time until the node's next contact:
the power mode and compute throttle it runs at, which queued jobs to submit, and how
many bytes to downlink in this pass. In between, the node runs on its own.

**Objective and constraints** (docs/planning.md):

1. hard limits, over the whole window and the lookahead after each decision: the
   battery's state of charge never below `min_soc` (plus a margin for what the
   forecast does not know), storage never above `storage_high_water`, the GPUs'
   equilibrium temperature never above `thermal_max_c`;
2. within them, deliver as many result bytes as possible: run as fast as the battery
   and the storage allow, submit jobs in priority order, downlink everything a pass can
   carry;
3. fair share: where passes compete for a station's antennas, the antenna goes to the
   node of higher priority (`[nodes]` priority, as in the stations' contact plan), then
   to the node that has been given the smallest share of its demand so far (max-min),
   then to the bigger pass.

What cannot fit is reported with its reason: jobs deferred (storage high-water, no
power, no time), backlog left in storage at the end, passes without an antenna.

The forecast steps every node with the simulator's own power and thermal models
(`groundctl.sim.physics`), without the simulator's noise.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from groundctl.orbits.model import Pass, Station
from groundctl.planning.forecast import ForecastState, NodeStart, eclipses, power_and_heat
from groundctl.sim import physics
from groundctl.sim.physics import NodeParams

Policy = Literal["plan", "naive"]
IDLE = (1, 4)  # ECO, SUSPENDED: compute stopped, the bus at its lowest load short of SAFE
LOOKAHEAD_S = 2 * 3600.0  # after the next contact: the node must be able to idle this long
ARM_DELAY_S = 120.0  # after results land in a pass, before the downlink is started again


@dataclass(frozen=True)
class Job:
    """A compute job queued on the ground for a node."""

    node: str
    job_id: int
    gpu_s: float
    priority: int = 1  # 0 LOW .. 3 URGENT


@dataclass(frozen=True)
class Contact:
    """A predicted pass the planner may use: `capacity_b` is what its link can carry."""

    node: str
    station: str
    aos_s: float
    los_s: float
    max_elevation_deg: float
    capacity_b: float
    source: Pass | None = field(default=None, compare=False, repr=False)  # the prediction
    priority: int = 0  # the node's contact-plan priority ([nodes] priority)


@dataclass(frozen=True)
class Limits:
    min_soc: float = 0.3
    storage_high_water: float = 0.9
    thermal_max_c: float = 80.0
    soc_margin: float = 0.03  # kept above min_soc for what the forecast does not know
    storage_margin: float = 0.01  # kept below the high-water mark, likewise
    downlink_trust: float = 0.9  # of a pass's capacity counted on when freeing storage


@dataclass(frozen=True)
class NodeInput:
    name: str
    start: NodeStart
    jobs: tuple[Job, ...] = ()
    params: NodeParams = field(default_factory=NodeParams)


@dataclass
class PassPlan:
    """One pass and what the plan does with it."""

    contact: Contact
    granted: bool
    antenna: int | None = None
    reason: str = ""
    mode: int | None = None  # the power mode and throttle commanded at AOS
    throttle: int | None = None
    submitted: tuple[int, ...] = ()  # jobs submitted at AOS
    downlink_b: float = 0.0  # bytes the forecast downlinks in this pass
    # START_DOWNLINK commands of this pass: (time, max bytes). At AOS when results are
    # waiting; else, and again after the node has sent all it had, when results land
    # (plus a margin): a node told to downlink with nothing waiting just stops.
    downlinks: list[tuple[float, float]] = field(default_factory=list)
    capacity_left: float = 0.0  # what the pass can carry from AOS (set at the decision)
    decision: str = ""  # why this setting

    @property
    def node(self) -> str:
        return self.contact.node


@dataclass
class NodePlan:
    """One node's plan and forecast."""

    node: str
    passes: list[PassPlan] = field(default_factory=list)
    start_setting: tuple[int, int] = (2, 0)  # power mode and throttle it starts in
    job_start_s: dict[int, float] = field(default_factory=dict)
    job_end_s: dict[int, float] = field(default_factory=dict)
    jobs_failed: list[int] = field(default_factory=list)
    deferred: list[tuple[Job, str]] = field(default_factory=list)
    delivered_b: float = 0.0
    produced_b: float = 0.0
    backlog_b: float = 0.0  # results still in storage at the end
    soc: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    storage_b: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    gpu_c: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    storage_cap_b: float = 0.0
    eclipses: list[tuple[float, float]] = field(default_factory=list)  # in the window
    why: dict[int, str] = field(default_factory=dict)  # job left on the ground -> why

    @property
    def max_gpu_c(self) -> float:
        """Hottest GPU temperature of the forecast."""
        return float(self.gpu_c.max()) if self.gpu_c.size else math.nan

    @property
    def min_soc(self) -> float:
        return float(self.soc.min()) if self.soc.size else math.nan

    @property
    def max_storage(self) -> float:
        """Highest storage use, as a fraction of the node's storage."""
        return float(self.storage_b.max()) / self.storage_cap_b if self.storage_b.size else 0.0


@dataclass
class Plan:
    start_s: float
    end_s: float
    step_s: float
    limits: Limits
    policy: Policy
    times: NDArray[np.float64]
    nodes: dict[str, NodePlan]
    passes: list[PassPlan]
    jobs: dict[str, tuple[Job, ...]] = field(default_factory=dict)  # the queued jobs given

    @property
    def delivered_b(self) -> float:
        return sum(n.delivered_b for n in self.nodes.values())

    def violations(self) -> list[str]:
        """Every limit the forecast breaks, one line each (empty for a good plan)."""
        lines = []
        for n in self.nodes.values():
            if n.min_soc < self.limits.min_soc:
                lines.append(
                    f"{n.node}: state of charge {n.min_soc:.1%} < {self.limits.min_soc:.0%}"
                )
            if n.max_storage > self.limits.storage_high_water:
                lines.append(
                    f"{n.node}: storage {n.max_storage:.1%} > {self.limits.storage_high_water:.0%}"
                )
        return lines


# --- antennas: fair share --------------------------------------------------------------------
def assign_antennas(
    contacts: Sequence[Contact], stations: Mapping[str, Station], demand_b: Mapping[str, float]
) -> list[tuple[bool, int | None, str]]:
    """For each contact: (granted, antenna, reason). Node priority first, as in the
    stations' contact plan; then greedy max-min: the next grant goes to the contact whose
    node has had the smallest share of its demand so far (then the bigger capacity, then
    the earlier AOS). A contact overlapping the station's granted contacts on every
    antenna (with the turnaround) is refused, naming who holds them; so is one that
    overlaps a contact its node already holds (a node has one transmitter)."""
    granted: dict[str, float] = defaultdict(float)
    result: list[tuple[bool, int | None, str]] = [(False, None, "")] * len(contacts)
    held: dict[tuple[str, int], list[tuple[float, float, int]]] = defaultdict(list)
    node_held: dict[str, list[tuple[float, float, int]]] = defaultdict(list)

    def share(node: str) -> float:
        return granted[node] / max(demand_b.get(node, 0.0), 1.0)

    def key(i: int) -> tuple[int, float, float, float]:
        c = contacts[i]
        return (-c.priority, share(c.node), -c.capacity_b, c.aos_s)

    heap = [(key(i), i) for i in range(len(contacts))]
    heapq.heapify(heap)
    while heap:
        k, i = heapq.heappop(heap)
        current = key(i)
        if current != k:  # its node was granted something since: re-rank
            heapq.heappush(heap, (current, i))
            continue
        c = contacts[i]
        station = stations.get(c.station)
        antennas = station.antennas if station is not None else 1
        gap = station.turnaround_s if station is not None else 0.0
        mine = next(
            (j for (a, b, j) in node_held[c.node] if a < c.los_s and c.aos_s < b), None
        )  # fmt: skip
        if mine is not None:  # one transmitter: one station at a time
            result[i] = (False, None, f"node busy: its pass at {contacts[mine].station}")
            continue
        blockers = []
        for antenna in range(1, antennas + 1):
            clash = next(
                (
                    j for (a, b, j) in held[(c.station, antenna)]
                    if a < c.los_s + gap and c.aos_s - gap < b
                ),
                None,
            )  # fmt: skip
            if clash is None:
                held[(c.station, antenna)].append((c.aos_s, c.los_s, i))
                node_held[c.node].append((c.aos_s, c.los_s, i))
                granted[c.node] += c.capacity_b
                result[i] = (True, antenna, f"antenna {antenna}")
                break
            blockers.append(contacts[clash].node)
        else:
            result[i] = (False, None, "antenna busy: " + ", ".join(sorted(set(blockers))))
    return result


# --- one node over the window ---------------------------------------------------------------
@dataclass
class _Node:
    """A node's state as the forecast steps it."""

    phys: ForecastState  # battery, temperatures, mode, throttle, storage (forecast.py)
    onboard: list[list[float]] = field(default_factory=list)  # [job_id, gpu_s, priority, left]
    downlink_left_b: float = 0.0
    armed: int = -1  # the pass whose downlink starts when results are waiting
    arm_b: float = 0.0  # the bytes that pass can still carry
    arm_at: float = math.inf  # when to start it (results seen, plus a margin)


def _settings() -> list[tuple[int, int]]:
    """(power mode, throttle) from fastest to slowest compute, idle last."""
    options = [(m, t) for m in (1, 2, 3) for t in (0, 1, 2, 3)]
    options.sort(key=lambda o: (-physics.compute_speed(*o), physics.BASE_LOAD_W[o[0]]))
    return [*options, IDLE]


SETTINGS = _settings()


def _min_soc_path(
    soc: float,
    lit: NDArray[np.bool_],
    load: NDArray[np.float64],
    p: NodeParams,
    dt: float,
    array_w: float,
) -> float:
    """Lowest state of charge along a path of loads and lighting (the battery model of
    `physics.battery_step`, without its noise), vectorised: `array_w` in sunlight,
    charging capped by the charge limit, and the charge stops when full."""
    net = np.where(lit, np.minimum(array_w - load, p.charge_limit_w), -load)
    gain = np.where(net > 0, net * physics.CHARGE_EFFICIENCY, net) * dt / 3600 / p.battery_wh
    path = soc + np.cumsum(gain)
    over = np.maximum.accumulate(np.maximum(path - 1.0, 0.0))  # what a full battery sheds
    return float(min(soc, (path - over).min())) if path.size else soc


def _plan_node(
    node: NodeInput,
    passes: list[PassPlan],
    times: NDArray[np.float64],
    lit: NDArray[np.bool_],
    limits: Limits,
    policy: Policy,
) -> NodePlan:
    p = node.params
    s0 = node.start
    dt = float(times[1] - times[0]) if len(times) > 1 else 60.0
    n_window = len(times)
    state = _Node(ForecastState.start(s0))
    storage_cap = p.storage_mb * 1e6
    high_water = (limits.storage_high_water - limits.storage_margin) * storage_cap
    queue = sorted(node.jobs, key=lambda j: -j.priority)  # stable: given order per priority
    plan = NodePlan(node.name, passes=passes, storage_cap_b=storage_cap,
                    start_setting=(s0.power_mode, s0.throttle))  # fmt: skip
    granted = [pp for pp in passes if pp.granted]
    start = times[0]

    def index(t: float) -> int:
        return int(min(max(math.ceil((t - start) / dt - 1e-9), 0), len(lit)))

    aos_k = [index(pp.contact.aos_s) for pp in granted]
    los_k = [max(index(pp.contact.los_s), a + 1) for pp, a in zip(granted, aos_k, strict=True)]
    soc = np.empty(n_window)
    storage = np.empty(n_window)
    gpu = np.empty(n_window)
    rate = np.zeros(len(lit))  # downlink bytes/s the link offers each step
    for pp, a, b in zip(granted, aos_k, los_k, strict=True):
        rate[a:b] = pp.contact.capacity_b / ((b - a) * dt)
    decisions = {a: j for j, a in enumerate(aos_k)}
    carried: dict[int, float] = defaultdict(float)  # pass -> bytes downlinked in it
    in_pass = np.full(len(lit), -1)
    for j, (a, b) in enumerate(zip(aos_k, los_k, strict=True)):
        in_pass[a:b] = j

    for k in range(n_window):
        decision = decisions.get(k)
        if decision is not None:
            _decide(state, granted[decision], queue, decision, aos_k, los_k, lit, rate, p,
                    limits, dt, high_water, policy, float(times[k]), plan.why)  # fmt: skip
        _step(state, bool(lit[k]), rate[k], p, dt, times[k], plan, storage_cap, carried,
              int(in_pass[k]), granted)  # fmt: skip
        soc[k], storage[k], gpu[k] = state.phys.soc, state.phys.storage_used_b, state.phys.gpu_c
    for j, pp in enumerate(granted):
        pp.downlink_b = carried[j]
    for job in queue:
        plan.deferred.append((job, _why_deferred(job, plan)))
    plan.soc, plan.storage_b, plan.gpu_c = soc, storage, gpu
    plan.eclipses = eclipses(lit[:n_window], times)
    plan.backlog_b = state.phys.results_pending_b
    return plan


def _why_deferred(job: Job, plan: NodePlan) -> str:
    """Why a job was still on the ground at the end: the reason of the last decision
    that left it there."""
    return plan.why.get(job.job_id, "no contact in the window to submit it")


def _decide(
    state: _Node,
    pp: PassPlan,
    queue: list[Job],
    j: int,
    aos_k: list[int],
    los_k: list[int],
    lit: NDArray[np.bool_],
    rate: NDArray[np.float64],
    p: NodeParams,
    limits: Limits,
    dt: float,
    high_water: float,
    policy: Policy,
    now_s: float,
    why: dict[int, str],
) -> None:
    """At AOS of `pp`: choose the setting, the jobs to submit, the bytes to downlink."""
    k0 = aos_k[j]
    k_next = aos_k[j + 1] if j + 1 < len(aos_k) else len(lit)
    k_end = min(len(lit), k_next + int(LOOKAHEAD_S / dt))
    pass_bytes = float(rate[k0 : los_k[j]].sum() * dt)
    if policy == "naive":
        pp.mode, pp.throttle = 3, 0
        pp.submitted = tuple(job.job_id for job in queue)
        for job in queue:
            state.onboard.append([job.job_id, job.gpu_s, job.priority, job.gpu_s])
        queue.clear()
        state.phys.power_mode, state.phys.throttle_cmd = 3, 0
        if state.phys.results_pending_b > 0:
            state.downlink_left_b = math.inf
            pp.downlinks.append((pp.contact.aos_s, 0.0))  # max_bytes=0: everything
        pp.decision = "naive: everything, always"
        return
    onboard_s = sum(job[3] for job in state.onboard)  # GPU-seconds left to run
    onboard_full_s = sum(job[1] for job in state.onboard)  # whose results are still to land
    span_s = (k_next - k0) * dt
    limited: list[str] = []  # why the faster settings were refused
    for mode, throttle in SETTINGS:
        speed = physics.compute_speed(mode, throttle)
        want_s = p.gpus * speed * span_s  # GPU-seconds this setting runs till next AOS
        chosen: list[Job] = []
        total = onboard_s
        # a job's results land when it finishes: count all of each job against storage
        landing = state.phys.storage_used_b + onboard_full_s * p.result_bytes_per_gpu_s
        landing -= limits.downlink_trust * min(pass_bytes, state.phys.results_pending_b)
        full = False
        for job in queue:
            if total >= want_s:
                break
            if landing + job.gpu_s * p.result_bytes_per_gpu_s > high_water:
                full = True
                break
            chosen.append(job)
            total += job.gpu_s
            landing += job.gpu_s * p.result_bytes_per_gpu_s
        busy = min(p.gpus, len(state.onboard) + len(chosen)) * speed
        if speed > 0 and busy == 0 and (mode, throttle) != IDLE:
            if full and "storage high-water" not in limited:
                limited.append("storage high-water")
            continue  # nothing it may run: idle instead
        gpu_w = physics.gpu_power_w(busy, p)
        load = np.full(k_end - k0, physics.BASE_LOAD_W[IDLE[0]] + physics.HEATER_W)
        load[: k_next - k0] = physics.load_w(mode, gpu_w, False, True, False, p)
        load[: los_k[j] - k0] += p.transmitter_w
        sunlit_w = physics.array_w(True, state.phys.pointing, p)  # half when not sun-pointing
        low = _min_soc_path(state.phys.soc, lit[k0:k_end], load, p, dt, sunlit_w)
        heat = physics.HEAT_FRACTION * float(load[0]) / p.radiator_w_per_k
        radiator_eq = max(physics.RADIATOR_MIN_C, physics.SINK_LIT_C + heat)
        gpu_eq = radiator_eq + physics.GPU_K_PER_W * gpu_w
        ok_power = low >= limits.min_soc + limits.soc_margin
        ok_heat = gpu_eq <= limits.thermal_max_c
        if (mode, throttle) != IDLE and not (ok_power and ok_heat):
            refused = "power" if not ok_power else "thermal"
            if refused not in limited:
                limited.append(refused)
            continue
        if full and "storage high-water" not in limited:
            limited.append("storage high-water")
        if not ok_power:
            limited.append("power (idle, and still short)")
        if full:
            left = "storage high-water: its results would not fit"
        elif "power" in limited:
            left = "power: the battery cannot carry more compute"
        elif "thermal" in limited:
            left = "thermal: the GPUs would run too hot for more compute"
        else:
            left = "no time: the GPUs had enough work until the next contact"
        for job in queue:
            if job not in chosen:
                why[job.job_id] = left
        pp.mode, pp.throttle = mode, throttle
        pp.submitted = tuple(job.job_id for job in chosen)
        for job in chosen:
            queue.remove(job)
            state.onboard.append([job.job_id, job.gpu_s, job.priority, job.gpu_s])
        state.phys.power_mode, state.phys.throttle_cmd = mode, throttle
        break
    _arm(state, pp, j, pass_bytes, now_s)
    names = physics.POWER_MODES[pp.mode or 0], physics.THROTTLE_LEVELS[pp.throttle or 0]
    limits_text = ", ".join(limited)
    pp.decision = f"{names[0]}/{names[1]}" + (f": limited by {limits_text}" if limited else "")


def _step(
    s: _Node,
    lit: bool,
    rate_bps: float,
    p: NodeParams,
    dt: float,
    t: float,
    plan: NodePlan,
    storage_cap: float,
    carried: dict[int, float],
    pass_index: int,
    granted: list[PassPlan],
) -> None:
    """One forecast step of the simulator's models (no noise)."""
    if s.armed >= 0:
        if pass_index != s.armed:
            s.armed = -1  # the pass is over
        elif s.phys.results_pending_b > 0 and s.arm_at == math.inf:
            s.arm_at = t + ARM_DELAY_S
        last_call = granted[s.armed].contact.los_s - ARM_DELAY_S if s.armed >= 0 else t
        if s.armed >= 0 and s.arm_at <= t < last_call and s.arm_b >= 1:
            s.downlink_left_b = s.arm_b
            granted[s.armed].downlinks.append((t, s.arm_b))
            s.armed, s.arm_at = -1, math.inf
    speed = s.phys.speed
    running = sorted(s.onboard, key=lambda job: -job[2])[: p.gpus]
    busy = len(running) * speed
    if speed > 0:
        for job in running:
            if job[3] == job[1]:
                plan.job_start_s.setdefault(int(job[0]), t)
            job[3] -= speed * dt
            if job[3] <= 0:
                s.onboard.remove(job)
                result = job[1] * p.result_bytes_per_gpu_s
                plan.job_end_s[int(job[0])] = t + dt
                if s.phys.storage_used_b + result > storage_cap:
                    plan.jobs_failed.append(int(job[0]))
                    continue
                s.phys.storage_used_b += result
                s.phys.results_pending_b += result
                plan.produced_b += result
    downlinking = rate_bps > 0 and s.downlink_left_b > 0 and s.phys.results_pending_b > 0
    power_and_heat(s.phys, lit, busy, downlinking, p, dt)
    if downlinking:
        sent = min(rate_bps * dt, s.phys.results_pending_b, s.downlink_left_b)
        s.phys.results_pending_b -= sent
        s.phys.storage_used_b = max(0.0, s.phys.storage_used_b - sent)
        s.downlink_left_b -= sent
        plan.delivered_b += sent
        carried[pass_index] += sent
        if (
            s.phys.results_pending_b <= 0 and pass_index >= 0
        ):  # the node stops: nothing left to send
            s.downlink_left_b = 0.0
            # the rest of the pass's capacity, for results that land before LOS
            s.armed, s.arm_at = pass_index, math.inf
            s.arm_b = max(0.0, granted[pass_index].capacity_left - carried[pass_index])


def _arm(state: _Node, pp: PassPlan, j: int, pass_bytes: float, now_s: float) -> None:
    """The downlink of pass `j` (`pass_bytes` it can carry): at once when results are
    waiting, else armed for when they land during the pass."""
    state.downlink_left_b = 0.0
    state.armed, state.arm_at, state.arm_b = -1, math.inf, pass_bytes
    pp.capacity_left = pass_bytes
    if pass_bytes < 1:
        return
    if state.phys.results_pending_b > 0:
        state.downlink_left_b = pass_bytes
        pp.downlinks.append((max(pp.contact.aos_s, min(now_s, pp.contact.los_s - 1)), pass_bytes))
    else:
        state.armed = j


# --- the fleet --------------------------------------------------------------------------------
def make_plan(
    start_s: float,
    end_s: float,
    nodes: Sequence[NodeInput],
    contacts: Sequence[Contact],
    lit: NDArray[np.bool_],
    stations: Mapping[str, Station],
    *,
    step_s: float = 60.0,
    limits: Limits = Limits(),
    policy: Policy = "plan",
) -> Plan:
    """The plan for `nodes` from `start_s` to `end_s`.

    `lit[i, k]`: node `nodes[i]` in sunlight at `start_s + k * step_s`; it may run past
    the window (the lookahead after the last contacts uses it; 2 h more is plenty).
    `contacts`: the nodes' predicted passes in the window with their capacities.
    """
    steps = math.ceil((end_s - start_s) / step_s)
    times: NDArray[np.float64] = start_s + step_s * np.arange(steps, dtype=np.float64)
    if lit.shape[1] < len(times):
        raise ValueError(f"lit covers {lit.shape[1]} steps, the window {len(times)}")
    known = {n.name for n in nodes}
    usable = [
        c
        if c.aos_s >= start_s
        else replace(c, capacity_b=c.capacity_b * (c.los_s - start_s) / (c.los_s - c.aos_s))
        for c in contacts
        if c.node in known and c.los_s > start_s and c.aos_s < end_s
    ]  # fmt: skip  (a pass under way at the start: what is left of it)
    demand = {
        n.name: n.start.results_pending_b
        + sum(j.gpu_s for j in n.jobs) * n.params.result_bytes_per_gpu_s
        for n in nodes
    }
    if policy == "naive":  # every pass an antenna can take, first come first served
        decided = assign_antennas(usable, stations, dict.fromkeys(known, 0.0))
    else:
        decided = assign_antennas(usable, stations, demand)
    passes = [
        PassPlan(c, g, a, r) for c, (g, a, r) in zip(usable, decided, strict=True)
    ]  # fmt: skip
    passes.sort(key=lambda pp: (pp.contact.aos_s, pp.contact.node))
    by_node: dict[str, list[PassPlan]] = defaultdict(list)
    for pp in passes:
        by_node[pp.node].append(pp)
    plans = {
        n.name: _plan_node(n, by_node[n.name], times, lit[i], limits, policy)
        for i, n in enumerate(nodes)
    }
    jobs = {n.name: n.jobs for n in nodes}
    return Plan(start_s, end_s, step_s, limits, policy, times, plans, passes, jobs)
