"""Power, thermal and storage forecasts of nodes, for a given job plan.

The forecast is the simulator's own model (`groundctl.sim.physics`, the functions
`SimNode.step` calls) without its noise: noise-free array power, no faults, stepped at
the planner's pace (60 s) instead of every second, with exponential thermal lags so
that the long step follows the simulator's per-second relaxation. Sunlight comes from
the same orbit propagation (sgp4), the same Sun (DE421, `sun_teme`) and the same
shadow test as `SimFleet`.

Use `lit_matrix` for sunlight, `NodeStart.from_telemetry` for where a node is now, and
either `forecast` for a whole plan or `ForecastState` + `step` inside a planner's own
time loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sgp4.api import Satrec, SatrecArray

from groundctl.orbits.geometry import DAY_S, EARTH_RADIUS_KM
from groundctl.orbits.passes import sun_teme
from groundctl.sim import physics
from groundctl.sim.node import NodeState
from groundctl.sim.physics import POINTING_MODES, POWER_MODES, THROTTLE_LEVELS, NodeParams

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_CHUNK_TIMES = 20_000  # times propagated at once (memory: nodes x chunk x 3 floats)


# --- sunlight ----------------------------------------------------------------------------


def lit_matrix(tles: Sequence[tuple[str, str]], t_s: FloatArray) -> BoolArray:
    """Whether each node (TLE line 1, line 2) is in sunlight at each Unix time `t_s`:
    shape (n_nodes, n_times), as `SimFleet` decides it (a propagation error: not lit)."""
    times = np.asarray(t_s, dtype=np.float64)
    out = np.zeros((len(tles), times.size), dtype=np.bool_)
    if not len(tles) or not times.size:
        return out
    satrecs = SatrecArray([Satrec.twoline2rv(line1, line2) for line1, line2 in tles])
    t0 = float(times.min())
    start = datetime.fromtimestamp(t0, UTC)
    sun_t, sun_pos = sun_teme(start, 0.0, float(times.max()) - t0 + 600.0)
    for lo in range(0, times.size, _CHUNK_TIMES):
        chunk = times[lo : lo + _CHUNK_TIMES]
        # Julian date split as SimFleet splits it, for the same positions
        jd = 2440587.5 + chunk / DAY_S
        whole = np.floor(jd)
        errors, r, _ = satrecs.sgp4(whole, jd - whole)  # (nodes, times, 3)
        rel = chunk - t0
        sun = np.stack([np.interp(rel, sun_t, sun_pos[:, k]) for k in range(3)], axis=-1)
        d = sun[None, :, :] - r
        along = -np.sum(r * d, axis=-1) / np.sum(d * d, axis=-1)
        closest = r + np.clip(along, 0.0, 1.0)[..., None] * d
        shadow = (along > 0) & (np.linalg.norm(closest, axis=-1) < EARTH_RADIUS_KM)
        out[:, lo : lo + chunk.size] = ~shadow & (errors == 0)
    return out


def sunlit_fraction(
    tles: Sequence[tuple[str, str]],
    t_s: FloatArray,
    lit: BoolArray | None = None,
    resolution_s: float = 1.0,
) -> FloatArray:
    """Fraction of each interval (t_s[k], t_s[k+1]] in sunlight, shape (n_nodes, n_times)
    (the last column 0): the intervals whose ends differ in `lit` (computed if not given)
    are sampled every `resolution_s` at the ends of the sub-steps, as the simulator steps."""
    times = np.asarray(t_s, dtype=np.float64)
    if lit is None:
        lit = lit_matrix(tles, times)
    ends = np.asarray(lit, dtype=np.bool_)
    out = np.zeros(ends.shape, dtype=np.float64)
    if times.size < 2:
        return out
    out[:, :-1] = ends[:, 1:]  # an interval with no boundary is as its end
    nodes, intervals = np.nonzero(ends[:, :-1] != ends[:, 1:])
    for i, k in zip(nodes.tolist(), intervals.tolist(), strict=True):
        span = times[k + 1] - times[k]
        n = max(1, math.ceil(span / resolution_s - 1e-9))
        samples = times[k] + span * np.arange(1, n + 1) / n
        out[i, k] = float(np.mean(lit_matrix([tles[i]], samples)[0]))
    return out


def eclipses(lit_row: BoolArray, t_s: FloatArray) -> list[tuple[float, float]]:
    """Eclipse intervals (start, end) in Unix seconds from one node's row of lit: from
    the first time not lit to the first time lit again (to the grid's resolution); an
    eclipse under way at either end of `t_s` is cut there."""
    lit = np.asarray(lit_row, dtype=np.bool_)
    times = np.asarray(t_s, dtype=np.float64)
    if lit.shape != times.shape:
        raise ValueError(f"lit_row has shape {lit.shape}, t_s {times.shape}")
    if not lit.size:
        return []
    dark = (~lit).astype(np.int8)
    edges = np.diff(np.concatenate(([0], dark, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # index of the first lit time after each eclipse
    last = times.size - 1
    return [
        (float(times[a]), float(times[min(b, last)]))
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


# --- where a node starts ----------------------------------------------------------------

_DEFAULT = NodeState()


@dataclass(frozen=True)
class NodeStart:
    """The state a forecast starts from (defaults: the simulator's `NodeState`)."""

    soc: float = _DEFAULT.soc  # 0..1
    radiator_c: float = _DEFAULT.radiator_c
    gpu_c: float = _DEFAULT.gpu_c
    cpu_c: float = _DEFAULT.cpu_c
    battery_c: float = _DEFAULT.battery_c
    heater_on: bool = _DEFAULT.heater_battery
    storage_used_b: float = _DEFAULT.storage_used_b
    results_pending_b: float = _DEFAULT.results_pending_b
    power_mode: int = _DEFAULT.power_mode  # index into POWER_MODES
    throttle: int = _DEFAULT.throttle_cmd  # index into THROTTLE_LEVELS
    pointing: int = _DEFAULT.pointing  # index into POINTING_MODES

    @classmethod
    def from_telemetry(cls, values: Mapping[str, Any]) -> NodeStart:
        """From a node's latest decoded telemetry, keyed "PACKET.PARAMETER" with
        engineering values as the telemetry pipeline keeps them (BATT_SOC in %,
        STORAGE_USED in GB, states by name or number); missing values: the defaults."""

        def number(key: str) -> float | None:
            value = _unwrap(values.get(key))
            if value is None or isinstance(value, str):
                return None
            number = float(value)
            return number if math.isfinite(number) else None

        def state(key: str, names: Sequence[str]) -> int | None:
            value = _unwrap(values.get(key))
            if value is None:
                return None
            if isinstance(value, str):
                upper = value.strip().upper()
                if upper in names:
                    return names.index(upper)
                if not upper.isdigit():
                    return None
                value = int(upper)
            index = int(value)
            return index if 0 <= index < len(names) else None

        found: dict[str, Any] = {}
        soc = number("POWER_HK.BATT_SOC")
        if soc is not None:
            found["soc"] = min(1.0, max(0.0, soc / 100.0))
        for name, key in (
            ("radiator_c", "THERMAL_HK.RADIATOR_TEMP"),
            ("gpu_c", "THERMAL_HK.GPU_TEMP"),
            ("cpu_c", "THERMAL_HK.CPU_TEMP"),
            ("battery_c", "THERMAL_HK.BATT_TEMP"),
            ("results_pending_b", "COMPUTE_HK.RESULTS_PENDING"),
        ):
            value = number(key)
            if value is not None:
                found[name] = value
        storage_gb = number("COMPUTE_HK.STORAGE_USED")
        if storage_gb is not None:
            found["storage_used_b"] = storage_gb * 1e9
        heater = state("THERMAL_HK.HEATER_BATTERY", ("OFF", "ON"))
        if heater is not None:
            found["heater_on"] = bool(heater)
        for name, key, names in (
            ("power_mode", "POWER_HK.POWER_MODE", POWER_MODES),
            ("throttle", "THERMAL_HK.THROTTLE_LEVEL", THROTTLE_LEVELS),
            ("pointing", "ATTITUDE_HK.POINTING_MODE", POINTING_MODES),
        ):
            index = state(key, names)
            if index is not None:
                found[name] = index
        return cls(**found)


def _unwrap(value: Any) -> Any:
    """A telemetry value, or the `.value` of a sample-like object."""
    if hasattr(value, "value") and not isinstance(value, (str, bytes, int, float)):
        value = value.value
    if isinstance(value, np.generic):
        value = value.item()
    return value


# --- stepping ---------------------------------------------------------------------------


@dataclass
class ForecastState:
    """A node's state during a forecast; `step` changes it in place.

    `throttle_cmd` is the commanded throttle (held through the forecast);
    `throttle_protect` is thermal protection, modelled as the simulator does. The last
    step's power figures are kept for the planner.
    """

    soc: float
    radiator_c: float
    gpu_c: float
    cpu_c: float
    battery_c: float
    heater_on: bool
    storage_used_b: float
    results_pending_b: float
    power_mode: int
    throttle_cmd: int
    pointing: int
    throttle_protect: int = 0
    # the last step's figures
    gpu_busy: float = 0.0  # GPU-equivalents working (running GPUs x speed)
    load_w: float = 0.0
    array_w: float = 0.0
    downlinked_b: float = 0.0  # total over the forecast
    safe_mode: bool = False  # autonomous safe mode (low battery) happened

    @classmethod
    def start(cls, start: NodeStart) -> ForecastState:
        """The forecast state at the start."""
        return cls(
            soc=start.soc,
            radiator_c=start.radiator_c,
            gpu_c=start.gpu_c,
            cpu_c=start.cpu_c,
            battery_c=start.battery_c,
            heater_on=start.heater_on,
            storage_used_b=start.storage_used_b,
            results_pending_b=start.results_pending_b,
            power_mode=start.power_mode,
            throttle_cmd=start.throttle,
            pointing=start.pointing,
        )

    @property
    def throttle(self) -> int:
        """The throttle in effect: the commanded one or thermal protection's, the higher."""
        return max(self.throttle_cmd, self.throttle_protect)

    @property
    def speed(self) -> float:
        """Speed of each running job now (GPU-seconds per second)."""
        return physics.compute_speed(self.power_mode, self.throttle)


def power_and_heat(
    state: ForecastState,
    lit: bool | float,
    gpu_busy: float,
    downlink_active: bool,
    params: NodeParams,
    dt: float,
) -> None:
    """The battery, temperatures and thermal protection of one step (`step` without the
    storage; the fleet planner keeps storage itself, results landing as jobs end):
    `gpu_busy` GPU-equivalents working, `lit` the fraction of the step in sunlight.
    Below the low-battery mark the node goes to safe mode, as the simulator's does."""
    gpu_w = physics.gpu_power_w(gpu_busy, params)
    load = physics.load_w(state.power_mode, gpu_w, downlink_active, state.heater_on, False, params)
    sunlit = min(1.0, max(0.0, float(lit)))
    available = physics.array_w(sunlit > 0.0, state.pointing, params) * sunlit
    state.soc, _ = physics.battery_step(state.soc, available, load, params, dt)
    state.gpu_busy = gpu_busy
    state.load_w = load
    state.array_w = available
    if state.soc < params.low_battery_soc and state.power_mode != 0:
        state.power_mode = 0  # autonomous safe mode: SAFE, sun-pointing
        state.pointing = 0
        state.safe_mode = True
    thermal = physics.thermal_step(
        state.radiator_c,
        state.gpu_c,
        state.cpu_c,
        state.battery_c,
        state.heater_on,
        load,
        gpu_w,
        sunlit < 0.5,
        physics.cpu_util(gpu_busy, params),
        False,
        params,
        dt,
        exact=True,
    )
    state.radiator_c, state.gpu_c, state.cpu_c, state.battery_c, state.heater_on = thermal
    state.throttle_protect = physics.thermal_protection(state.gpu_c, state.throttle_protect)


def step(
    state: ForecastState,
    lit: bool | float,
    gpus_running: float,
    downlink_active: bool,
    params: NodeParams,
    dt: float,
) -> None:
    """Advance one node by `dt` seconds with `gpus_running` jobs on its GPUs (the mode and
    throttle set their speed), in sunlight or not, downlinking (in contact, at the full
    rate) or not: battery, temperatures, thermal protection, storage. `lit` may be the
    fraction of the step in sunlight (array power in proportion, the eclipse sink when
    less than half).

    The simulator's model without its noise. Results are written as the GPUs work (the
    simulator writes a job's results when it ends) and leave storage at the nominal
    downlink rate while `downlink_active`.
    """
    running = min(float(params.gpus), max(0.0, gpus_running))
    gpu_busy = running * state.speed
    power_and_heat(state, lit, gpu_busy, downlink_active, params, dt)

    capacity_b = params.storage_mb * 1e6
    written = min(gpu_busy * dt * params.result_bytes_per_gpu_s, capacity_b - state.storage_used_b)
    written = max(0.0, written)
    state.storage_used_b += written
    state.results_pending_b += written
    if downlink_active:
        sent = min(params.downlink_rate_bps * dt, state.results_pending_b)
        state.results_pending_b -= sent
        state.storage_used_b = max(0.0, state.storage_used_b - sent)
        state.downlinked_b += sent


# --- a whole plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """A node's forecast at each time of `t_s` (index 0: the start)."""

    t_s: FloatArray
    soc: FloatArray
    gpu_c: FloatArray
    radiator_c: FloatArray
    battery_c: FloatArray
    cpu_c: FloatArray
    storage_used_b: FloatArray
    results_pending_b: FloatArray
    load_w: FloatArray  # over the interval ending at each time (0 at the start)
    gpu_busy: FloatArray  # likewise: GPU-equivalents working
    throttle: NDArray[np.int64]  # in effect at each time
    power_mode: NDArray[np.int64]


def forecast(
    params: NodeParams,
    start: NodeStart,
    t_s: FloatArray,
    lit_row: BoolArray,
    gpu_busy: FloatArray,
    downlink: BoolArray,
    *,
    sunlit: FloatArray | None = None,
) -> Forecast:
    """Forecast one node over the times `t_s` (Unix seconds, increasing) for a plan:
    over each interval [t_s[k], t_s[k+1]) the node has `gpu_busy[k]` jobs running on
    its GPUs (the mode and throttle set their speed) and the downlink on if
    `downlink[k]` (their last elements are not used); its sunlight is the mean of
    `lit_row` at both ends (the trapezoidal rule: half lit across a shadow boundary),
    or, given `sunlit` (a row of `sunlit_fraction`), `sunlit[k]`: the shadow boundaries
    to the second rather than to the step."""
    times = np.asarray(t_s, dtype=np.float64)
    n = times.size
    lit = np.asarray(lit_row, dtype=np.bool_)
    busy = np.asarray(gpu_busy, dtype=np.float64)
    down = np.asarray(downlink, dtype=np.bool_)
    for name, array in (("lit_row", lit), ("gpu_busy", busy), ("downlink", down)):
        if array.shape != times.shape:
            raise ValueError(f"{name} has shape {array.shape}, t_s {times.shape}")
    if n > 1 and np.any(np.diff(times) <= 0):
        raise ValueError("t_s must increase")
    columns = ("soc", "gpu_c", "radiator_c", "battery_c", "cpu_c", "storage_used_b",
               "results_pending_b", "load_w", "gpu_busy")  # fmt: skip
    out = {name: np.zeros(n) for name in columns}
    throttle = np.zeros(n, dtype=np.int64)
    mode = np.zeros(n, dtype=np.int64)
    state = ForecastState.start(start)
    if sunlit is None:
        fraction = (lit[:-1].astype(np.float64) + lit[1:]) / 2.0
    else:
        fraction = np.asarray(sunlit, dtype=np.float64)
        if fraction.shape != times.shape:
            raise ValueError(f"sunlit has shape {fraction.shape}, t_s {times.shape}")
    fraction_list = fraction.tolist()
    busy_list, down_list = busy.tolist(), down.tolist()
    time_list = times.tolist()
    for k in range(n):
        if k:
            dt = time_list[k] - time_list[k - 1]
            step(state, fraction_list[k - 1], busy_list[k - 1], down_list[k - 1], params, dt)
            out["load_w"][k] = state.load_w
            out["gpu_busy"][k] = state.gpu_busy
        out["soc"][k] = state.soc
        out["gpu_c"][k] = state.gpu_c
        out["radiator_c"][k] = state.radiator_c
        out["battery_c"][k] = state.battery_c
        out["cpu_c"][k] = state.cpu_c
        out["storage_used_b"][k] = state.storage_used_b
        out["results_pending_b"][k] = state.results_pending_b
        throttle[k] = state.throttle
        mode[k] = state.power_mode
    return Forecast(t_s=times, throttle=throttle, power_mode=mode, **out)
