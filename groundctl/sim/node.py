"""One simulated orbital compute node: physics, flight software, faults.

Pure code: the node is stepped by its fleet (`SimFleet`) with the sunlight and contact it
has at each simulated second, takes command packets, and returns the telemetry packets
it sends. Everything random comes from the node's own seeded generator, so a fleet with
the same seed, start time and commands produces the same bytes.

The models are simple, but they have the couplings an operator must learn to manage:

- **Power**: the array gives `array_w` in sunlight (half when not sun-pointing), nothing
  in eclipse; the battery integrates array power minus load (charge limited, shunted
  when full); its voltage follows the state of charge and the current.
- **Compute**: jobs run on `gpus` GPUs at a speed set by the power mode and the throttle;
  GPU power follows; a finished job writes its results to storage.
- **Thermal**: all load ends as heat in the radiator loop, which holds the radiator at
  10 degC or above and rejects at most `radiator_w_per_k` per kelvin above the sink
  (colder in eclipse). GPU and CPU temperatures sit above the radiator by their power.
  Thermal protection throttles compute above 85 degC and suspends it above 89 degC.
- **Storage and downlink**: results wait in storage until downlinked during contacts at
  the link's rate (less when the link margin is thin).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from dataclasses import dataclass, field

from groundctl.sim import physics, wire
from groundctl.sim.physics import POINTING_MODES as POINTING_MODES
from groundctl.sim.physics import POWER_MODES as POWER_MODES
from groundctl.sim.physics import THROTTLE_LEVELS as THROTTLE_LEVELS
from groundctl.sim.physics import NodeParams as NodeParams

FAULTS = {
    1: "SENSOR_STUCK",
    2: "BATTERY_UNDERVOLTAGE",
    3: "THERMAL_RUNAWAY",
    4: "SEU_REBOOT",
    5: "PACKET_CORRUPTION",
    6: "LINK_DROP",
}
FAULT_CODES = {name: code for code, name in FAULTS.items()}

# The models' constants live in `physics`; these names stay for older imports.
_THROTTLE_SPEED = physics.THROTTLE_SPEED
_MODE_SPEED = physics.MODE_SPEED
_BASE_LOAD_W = physics.BASE_LOAD_W
_CELLS = physics.CELLS
_SHORTED_CELLS = physics.SHORTED_CELLS

# Thermistor curves of the radiator and battery sensors: (counts, degC), counts rising
# as the temperature falls.
_RADIATOR_NTC = (
    (200, 80.0),
    (600, 40.0),
    (1200, 0.0),
    (2000, -40.0),
    (2800, -80.0),
    (3600, -120.0),
)
_BATTERY_NTC = ((400, 60.0), (1000, 40.0), (1800, 20.0), (2600, 0.0), (3400, -20.0))


@dataclass(frozen=True)
class Contact:
    """What the node's transceiver sees of a ground station this second."""

    station: str
    range_km: float


@dataclass
class Job:
    job_id: int
    gpu_s: float
    priority: int
    left_s: float


@dataclass
class NodeEvent:
    time_s: float
    app: str
    event_id: int
    severity: str
    text: str


@dataclass
class NodeState:
    """Everything that changes. Counters are flight-software counters (reset on boot)."""

    soc: float = 0.8
    power_mode: int = 2
    throttle_cmd: int = 0
    throttle_protect: int = 0
    pointing: int = 1
    radiator_c: float = 12.0
    gpu_c: float = 15.0
    cpu_c: float = 22.0
    battery_c: float = 18.0
    heater_battery: bool = False
    jobs: list[Job] = field(default_factory=list)
    jobs_done: int = 0
    jobs_failed: int = 0
    storage_used_b: float = 0.0
    results_pending_b: float = 0.0
    downlink_active: bool = False
    downlink_left_b: float = 0.0
    downlinked_b: float = 0.0  # total ever, for the ground's bookkeeping
    cmd_count: int = 0
    err_count: int = 0
    auth_failures: int = 0
    last_fc: int = 0
    booting_until: float | None = None
    boot_reason: str = ""
    # live electrical values of the last step
    sa_w: float = 0.0
    load_w: float = 0.0
    batt_v: float = 110.0
    batt_a: float = 0.0
    gpu_busy: float = 0.0  # GPU-equivalents working this second
    rate_bps: float = 0.0
    margin_db: float = 0.0
    eclipse: bool = False


class SimNode:
    """One node. `step(t, lit, contact)` once per simulated second; `receive(raw, t)` for
    each command packet that reaches it; `take_packets()` for what it transmits.

    With a `key`, every command must carry a valid security trailer (HMAC-SHA256 and a
    counter above the last accepted); those that do not are counted in
    `state.auth_failures` (not in the error counter) and never executed.
    """

    def __init__(
        self,
        name: str,
        seed: int,
        params: NodeParams | None = None,
        *,
        start_s: float = 0.0,
        orbit_period_s: float = 5730.0,
        key: bytes | None = None,
    ) -> None:
        self.name = name
        # With a key, only authenticated commands are taken (wire.check_auth). The last
        # counter accepted is kept in non-volatile memory: it survives reboots, so a
        # command recorded before one cannot be replayed after it.
        self.key = key
        self.auth_counter = 0
        self.params = params or NodeParams()
        self.rng = random.Random(seed)
        self.state = NodeState(soc=0.7 + 0.2 * self.rng.random())
        self.orbit_period_s = orbit_period_s
        self.t = start_s
        self.ticks = 0
        self.sequence: dict[int, int] = {}
        self.faults: dict[str, float] = {}  # fault name -> end time
        self.stuck_gpu_raw: int | None = None
        self.events: deque[NodeEvent] = deque()
        self.events_lost = 0  # on-board event log overflow
        self.out: list[bytes] = []

    # --- commands --------------------------------------------------------------------
    def receive(self, raw: bytes, t: float) -> None:
        """A command packet arrives (already known to be in contact)."""
        s = self.state
        if s.booting_until is not None or "LINK_DROP" in self.faults:
            return  # nobody listening
        command = wire.parse_command(raw, key=self.key, last_counter=self.auth_counter)
        if command.auth_failed:
            s.auth_failures += 1
            self._event(
                t, "CMD", command.event_id, "ERROR", f"authentication failed: {command.error}"
            )
            return
        if command.counter:
            self.auth_counter = command.counter  # authentic: this counter is used up
        if command.error:
            s.err_count += 1
            self._event(t, "CMD", command.event_id, "ERROR", f"command rejected: {command.error}")
            return
        fc = command.function_code
        assert fc is not None
        args = command.arguments
        error = self._execute(command.name, args, t)
        if error:
            s.err_count += 1
            self._event(t, "CMD", 7, "ERROR", f"{command.name} rejected: {error}")
            return
        s.last_fc = fc
        if command.name == "RESET_COUNTERS":
            s.cmd_count = s.err_count = s.auth_failures = 0
            self._event(t, "CMD", 2, "INFO", "command counters reset")
        else:
            s.cmd_count += 1
        seu = command.name == "INJECT_FAULT" and FAULTS[args[0]] == "SEU_REBOOT"
        if command.name == "REBOOT" or seu:
            # the command is counted in one last COMMS_HK before the computer goes down
            self._send(self._comms_packet(t))
            if seu:
                self.inject("SEU_REBOOT", t, float(args[1]))
            else:
                self._reboot(t, "REBOOT command")

    def _execute(self, name: str, args: tuple[int, ...], t: float) -> str:
        s = self.state
        if name == "NOOP":
            self._event(t, "CMD", 1, "INFO", f"NOOP received, {self.name} ok")
        elif name == "SET_POWER_MODE":
            if args[0] >= len(POWER_MODES):
                return f"mode {args[0]} unknown"
            s.power_mode = args[0]
            if args[0] != 0 and s.pointing == 0:
                s.pointing = 1
            self._event(t, "POWER", 10, "INFO", f"power mode {POWER_MODES[args[0]]}")
        elif name == "SUBMIT_JOB":
            job_id, gpu_s, priority = args
            if job_id < 1 or not 1 <= gpu_s <= 604800 or priority > 3:
                return "job_id, gpu_seconds or priority out of range"
            if any(j.job_id == job_id for j in s.jobs):
                return f"job {job_id} already queued"
            s.jobs.append(Job(job_id, float(gpu_s), priority, float(gpu_s)))
            self._event(t, "COMPUTE", 20, "INFO", f"job {job_id} queued ({gpu_s} GPU-s)")
        elif name == "CANCEL_JOB":
            kept = [j for j in s.jobs if j.job_id != args[0]]
            if len(kept) == len(s.jobs):
                return f"no job {args[0]}"
            s.jobs = kept
            self._event(t, "COMPUTE", 21, "INFO", f"job {args[0]} cancelled")
        elif name == "SET_THROTTLE":
            if args[0] >= len(THROTTLE_LEVELS):
                return f"level {args[0]} unknown"
            s.throttle_cmd = args[0]
            self._event(t, "THERMAL", 30, "INFO", f"throttle {THROTTLE_LEVELS[args[0]]}")
        elif name == "START_DOWNLINK":
            s.downlink_active = True
            s.downlink_left_b = float(args[0]) if args[0] else math.inf
            self._event(
                t, "COMMS", 40, "INFO", f"downlink started, {int(s.results_pending_b)} B queued"
            )
        elif name == "STOP_DOWNLINK":
            s.downlink_active = False
        elif name == "SAFE_MODE":
            self._safe_mode(t, "commanded")
        elif name == "INJECT_FAULT":
            fault = FAULTS.get(args[0])
            if fault is None:
                return f"fault {args[0]} unknown"
            if not 1 <= args[1] <= 86400:
                return f"duration {args[1]} s out of range"
            if fault != "SEU_REBOOT":  # that one after the command is counted (receive)
                self.inject(fault, t, float(args[1]))
        elif name == "CLEAR_FAULTS":
            self.faults.clear()
            self.stuck_gpu_raw = None
            self._event(t, "SIM", 91, "INFO", "injected faults cleared")
        return ""

    def inject(self, fault: str, t: float, duration_s: float) -> None:
        """Start a fault now (the simulator's fault schedule calls this too)."""
        self._event(t, "SIM", 90, "WARNING", f"fault {fault} injected for {duration_s:g} s")
        if fault == "SEU_REBOOT":
            self._reboot(t, "single-event upset")
            return
        self.faults[fault] = t + duration_s
        if fault == "SENSOR_STUCK":
            self.stuck_gpu_raw = _linear_raw(self.state.gpu_c)

    def _safe_mode(self, t: float, why: str) -> None:
        s = self.state
        s.power_mode = 0
        s.pointing = 0
        s.downlink_active = False
        self._event(t, "POWER", 10, "INFO", f"power mode SAFE ({why})")

    def _reboot(self, t: float, reason: str) -> None:
        s = self.state
        s.booting_until = t + self.params.boot_s
        s.boot_reason = reason
        lost = [j for j in s.jobs if j.left_s < j.gpu_s]
        s.jobs = [j for j in s.jobs if j.left_s >= j.gpu_s]  # running jobs are lost
        s.jobs_done = s.jobs_failed = 0
        s.cmd_count = s.err_count = s.auth_failures = s.last_fc = 0
        s.downlink_active = False
        s.throttle_cmd = s.throttle_protect = 0
        self.sequence.clear()
        if lost:
            self._event(t, "COMPUTE", 24, "WARNING", f"{len(lost)} running jobs lost in reboot")

    # --- events ----------------------------------------------------------------------
    def _event(self, t: float, app: str, event_id: int, severity: str, text: str) -> None:
        if len(self.events) >= 256:  # the on-board event log is a ring
            self.events.popleft()
            self.events_lost += 1
        self.events.append(NodeEvent(t, app, event_id, severity, text))

    # --- the second ------------------------------------------------------------------
    def step(self, t: float, lit: bool, contact: Contact | None, dt: float = 1.0) -> None:
        """Advance the physics to `t` and queue the packets due at `t` when in contact."""
        self.t = t
        s = self.state
        p = self.params
        for fault, end in list(self.faults.items()):
            if t >= end:
                del self.faults[fault]
                if fault == "SENSOR_STUCK":
                    self.stuck_gpu_raw = None
                self._event(t, "SIM", 92, "INFO", f"fault {fault} ended")
        booting = s.booting_until is not None
        if booting and s.booting_until is not None and t >= s.booting_until:
            s.booting_until = None
            booting = False
            self._event(t, "CMD", 5, "INFO", f"boot complete ({s.boot_reason})")
        s.eclipse = not lit

        # compute
        throttle = max(s.throttle_cmd, s.throttle_protect)
        speed = physics.compute_speed(s.power_mode, throttle, booting)
        running = self._running()
        s.gpu_busy = len(running) * speed
        if speed > 0:
            for job in running:
                job.left_s -= speed * dt
                if job.left_s <= 0:
                    self._finish(job, t)

        # power
        undervoltage = "BATTERY_UNDERVOLTAGE" in self.faults
        gpu_w = physics.gpu_power_w(s.gpu_busy, p)
        load = physics.load_w(
            s.power_mode, gpu_w, s.downlink_active, s.heater_battery, undervoltage, p
        )
        noise = self.rng.gauss(0.0, 0.004) if lit else 0.0
        available = physics.array_w(lit, s.pointing, p, noise)
        s.soc, net = physics.battery_step(s.soc, available, load, p, dt)
        s.batt_v, s.batt_a = physics.battery_electrics(s.soc, net, undervoltage, p)
        s.sa_w = available
        s.load_w = load
        if s.soc < p.low_battery_soc and s.power_mode != 0:
            self._event(t, "POWER", 11, "CRITICAL", f"battery at {s.soc:.0%}: autonomous safe mode")
            self._safe_mode(t, "low battery")

        # thermal
        cpu_util = self._cpu_util(booting)
        s.radiator_c, s.gpu_c, s.cpu_c, s.battery_c, s.heater_battery = physics.thermal_step(
            s.radiator_c, s.gpu_c, s.cpu_c, s.battery_c, s.heater_battery,
            load, gpu_w, s.eclipse, cpu_util, "THERMAL_RUNAWAY" in self.faults, p, dt,
        )  # fmt: skip
        protect = physics.thermal_protection(s.gpu_c, s.throttle_protect)
        if protect != s.throttle_protect:
            if protect:
                self._event(
                    t, "THERMAL", 31, "WARNING",
                    f"thermal protection: throttle {THROTTLE_LEVELS[protect]} "
                    f"(GPU {s.gpu_c:.1f} degC)",
                )  # fmt: skip
            else:
                self._event(t, "THERMAL", 32, "INFO", "thermal protection released")
            s.throttle_protect = protect

        # link and downlink
        if contact is not None:
            s.margin_db = 6.0 + 20.0 * math.log10(1500.0 / max(contact.range_km, 1.0))
            s.margin_db += self.rng.gauss(0.0, 0.2)
        else:
            s.margin_db = 0.0
        s.rate_bps = 0.0
        if s.downlink_active and contact is not None and not booting:
            if "LINK_DROP" not in self.faults and s.margin_db >= 1.0:
                s.rate_bps = p.downlink_rate_bps * (1.0 if s.margin_db >= 3.0 else 0.5)
            sent = min(s.rate_bps * dt, s.results_pending_b, s.downlink_left_b)
            s.results_pending_b -= sent
            s.storage_used_b = max(0.0, s.storage_used_b - sent)
            s.downlink_left_b -= sent
            s.downlinked_b += sent
            if s.results_pending_b <= 0 or s.downlink_left_b <= 0:
                s.downlink_active = False
                self._event(t, "COMMS", 41, "INFO", "downlink complete")

        self.ticks += 1
        if booting or contact is None or "LINK_DROP" in self.faults:
            return
        self._housekeeping(t, cpu_util)
        while self.events:
            e = self.events.popleft()
            self._send(wire.pack_event(self._next(wire.EVENT), e.time_s, e.app, e.event_id,
                                       e.severity, e.text))  # fmt: skip

    def _running(self) -> list[Job]:
        jobs = sorted(self.state.jobs, key=lambda j: -j.priority)  # stable: FIFO per priority
        return jobs[: self.params.gpus]

    def _finish(self, job: Job, t: float) -> None:
        s = self.state
        s.jobs.remove(job)
        result = job.gpu_s * self.params.result_bytes_per_gpu_s
        if s.storage_used_b + result > self.params.storage_mb * 1e6:
            s.jobs_failed += 1
            self._event(t, "COMPUTE", 23, "ERROR", f"job {job.job_id} failed: storage full")
            return
        s.jobs_done += 1
        s.storage_used_b += result
        s.results_pending_b += result
        self._event(t, "COMPUTE", 22, "INFO", f"job {job.job_id} done, {result / 1e6:.0f} MB")

    def _cpu_util(self, booting: bool) -> float:
        return physics.cpu_util(self.state.gpu_busy, self.params, booting)

    def _next(self, apid: int) -> int:
        n = self.sequence.get(apid, -1) + 1
        self.sequence[apid] = n & 0x3FFF
        return n

    def _send(self, packet: bytes) -> None:
        if "PACKET_CORRUPTION" in self.faults and self.rng.random() < 0.05:
            data = bytearray(packet)
            if self.rng.random() < 0.3:
                data = data[: self.rng.randrange(1, len(data))]  # cut short
            else:
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
            packet = bytes(data)
        self.out.append(packet)

    def _housekeeping(self, t: float, cpu_util: float) -> None:
        s = self.state
        p = self.params
        g = self.rng.gauss
        tick = self.ticks
        sa_v = 121.5 + g(0.0, 0.05) if s.sa_w > 0 else 0.0
        flags = (0x80 if s.eclipse else 0) | (0x40 if s.pointing in (0, 1) and not s.eclipse else 0)
        self._send(
            wire.pack(
                wire.POWER_HK, self._next(wire.POWER_HK), t,
                _u16(sa_v * 100), _u16(s.sa_w / sa_v * 1000 if sa_v else 0), _u16(s.sa_w * 10),
                _u16(s.batt_v * 100), _i16(s.batt_a * 100), min(200, round(s.soc * 200)),
                s.power_mode, _u16((100.0 + g(0.0, 0.05)) * 100), _u16(s.load_w * 10), flags,
            )
        )  # fmt: skip
        if tick % 2 == 0:
            gpu_raw = self.stuck_gpu_raw
            if gpu_raw is None:
                gpu_raw = _linear_raw(s.gpu_c + g(0.0, 0.1))
            heaters = (
                (0x80 if s.heater_battery else 0)
                | (0x40 if s.radiator_c < -30 else 0)
                | (0x20 if s.radiator_c < -50 else 0)
            )
            self._send(
                wire.pack(
                    wire.THERMAL_HK, self._next(wire.THERMAL_HK), t,
                    _linear_raw(s.cpu_c + g(0.0, 0.1)), gpu_raw,
                    _ntc_raw(_RADIATOR_NTC, s.radiator_c), _ntc_raw(_BATTERY_NTC, s.battery_c),
                    heaters, max(s.throttle_cmd, s.throttle_protect),
                )
            )  # fmt: skip
            running = min(len(s.jobs), p.gpus) if s.gpu_busy else 0
            free_mb = max(0, p.storage_mb - round(s.storage_used_b / 1e6))
            self._send(
                wire.pack(
                    wire.COMPUTE_HK, self._next(wire.COMPUTE_HK), t,
                    min(len(s.jobs) - running, 0xFFFF), running,
                    s.jobs_done, s.jobs_failed,
                    _u16(s.gpu_busy / p.gpus * 10000), _u16(cpu_util * 10000),
                    round(s.storage_used_b / 1e6), free_mb, round(s.results_pending_b),
                )
            )  # fmt: skip
        self._send(self._comms_packet(t))
        angle = 2 * math.pi * (t % self.orbit_period_s) / self.orbit_period_s
        rate = 360.0 / self.orbit_period_s
        jitter = 0.15 if s.pointing == 0 else 0.002
        self._send(
            wire.pack(
                wire.ATTITUDE_HK, self._next(wire.ATTITUDE_HK), t,
                math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2),
                g(0.0, jitter), g(0.0, jitter), rate + g(0.0, jitter),
                s.pointing, 0x80 if s.eclipse else 0,
            )
        )  # fmt: skip

    def _comms_packet(self, t: float) -> bytes:
        s = self.state
        return wire.pack(
            wire.COMMS_HK, self._next(wire.COMMS_HK), t,
            _i16(s.margin_db * 10), round(s.rate_bps), round(s.results_pending_b),
            0x80 if s.downlink_active else 0, s.last_fc,
            s.cmd_count & 0xFFFF, s.err_count & 0xFFFF, s.auth_failures & 0xFFFF,
        )  # fmt: skip

    def take_packets(self) -> list[bytes]:
        """The packets transmitted since the last call, in order."""
        out, self.out = self.out, []
        return out


def _u16(x: float) -> int:
    return min(0xFFFF, max(0, round(x)))


def _i16(x: float) -> int:
    return min(0x7FFF, max(-0x8000, round(x)))


def _linear_raw(celsius: float) -> int:
    """The CPU/GPU sensors: degC = -50 + 0.05 * counts (12-bit)."""
    return min(4095, max(0, round((celsius + 50.0) / 0.05)))


def _ntc_raw(curve: tuple[tuple[int, float], ...], celsius: float) -> int:
    """Counts a thermistor reads at `celsius` (linear between the curve's points)."""
    segments = list(itertools.pairwise(curve))
    (c0, t0), (c1, t1) = segments[0] if celsius > curve[0][1] else segments[-1]
    for (a, ta), (b, tb) in segments:
        if ta >= celsius >= tb:
            (c0, t0), (c1, t1) = (a, ta), (b, tb)
            break
    return min(4095, max(0, round(c0 + (celsius - t0) * (c1 - c0) / (t1 - t0))))
