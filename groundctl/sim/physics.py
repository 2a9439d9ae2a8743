"""The simulated node's power and thermal models, as pure functions.

`SimNode.step` calls these every simulated second, and fleet planning
(`groundctl.planning.forecast`) calls the same ones to forecast a node's battery and
temperatures: one model, two users. Nothing here is random; the simulator draws its
noise itself and passes it in (`array_w`'s `noise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

POWER_MODES = ("SAFE", "ECO", "NOMINAL", "PERFORMANCE")
THROTTLE_LEVELS = ("OFF", "LOW", "MEDIUM", "HIGH", "SUSPENDED")
POINTING_MODES = ("SAFE_SUN", "SUN_TRACK", "NADIR", "GROUND_TARGET", "INERTIAL")

THROTTLE_SPEED = (1.0, 0.75, 0.5, 0.25, 0.0)  # compute speed per throttle level
MODE_SPEED = (0.0, 0.4, 0.75, 1.0)  # compute speed per power mode
BASE_LOAD_W = (350.0, 500.0, 600.0, 700.0)  # bus load per power mode, without the GPUs
HEATER_W = 60.0  # battery heater
UNDERVOLTAGE_DRAIN_W = 400.0  # BATTERY_UNDERVOLTAGE: a shorted cell string drains the pack
CELLS = 28
SHORTED_CELLS = 6  # BATTERY_UNDERVOLTAGE: enough to fall below 90 V even when full
CHARGE_EFFICIENCY = 0.96
FULL_SOC = 0.999  # charging stops (the array is shunted) at or above this
HEAT_FRACTION = 0.85  # of the load, rejected through the radiator loop
SINK_LIT_C = -45.0
SINK_ECLIPSE_C = -70.0
RADIATOR_MIN_C = 10.0  # the loop holds the radiator at this or above
RUNAWAY_CONDUCTANCE = 0.2  # THERMAL_RUNAWAY: fraction of the radiator's conductance left
GPU_K_PER_W = 0.012
GPU_TAU_S = 120.0
CPU_TAU_S = 90.0
BATTERY_TAU_S = 1800.0
HEATER_ON_C = 8.0  # battery heater thermostat: on below, off above HEATER_OFF_C
HEATER_OFF_C = 12.0
THROTTLE_HIGH_C = 85.0  # thermal protection: HIGH throttle above, SUSPENDED above 89
SUSPEND_C = 89.0
RELEASE_C = 75.0  # thermal protection released below


@dataclass(frozen=True)
class NodeParams:
    """Design figures of a node (the `odc-node` mission database's node)."""

    array_w: float = 4800.0
    battery_wh: float = 6000.0
    battery_ohm: float = 0.08
    charge_limit_w: float = 2600.0
    gpus: int = 8
    gpu_w: float = 375.0  # per GPU at full speed
    transmitter_w: float = 120.0
    storage_mb: int = 1_000_000
    result_bytes_per_gpu_s: float = 1.0e6
    downlink_rate_bps: float = 18.75e6  # bytes per second, at a good margin
    radiator_w_per_k: float = 35.0
    radiator_tau_s: float = 900.0
    boot_s: float = 30.0
    low_battery_soc: float = 0.10  # autonomous safe mode below this


class Thermal(NamedTuple):
    """Temperatures (degC) and the battery heater after a thermal step."""

    radiator_c: float
    gpu_c: float
    cpu_c: float
    battery_c: float
    heater_on: bool


def compute_speed(power_mode: int, throttle: int, booting: bool = False) -> float:
    """Speed of each running job (GPU-seconds per second) in this mode and throttle."""
    return 0.0 if booting else MODE_SPEED[power_mode] * THROTTLE_SPEED[throttle]


def gpu_power_w(gpu_busy: float, params: NodeParams) -> float:
    """GPU power for `gpu_busy` GPU-equivalents working."""
    return params.gpu_w * gpu_busy


def cpu_util(gpu_busy: float, params: NodeParams, booting: bool = False) -> float:
    """CPU utilisation (0..1) driving `gpu_busy` GPU-equivalents."""
    if booting:
        return 0.0
    return min(1.0, 0.08 + 0.6 * gpu_busy / params.gpus)


def load_w(
    power_mode: int,
    gpu_w: float,
    downlink_active: bool,
    heater_on: bool,
    undervoltage_fault: bool,
    params: NodeParams,
) -> float:
    """Total bus load (W): the mode's base load, the GPUs, transmitter, heater, fault drain."""
    load = BASE_LOAD_W[power_mode] + gpu_w
    if downlink_active:
        load += params.transmitter_w
    if heater_on:
        load += HEATER_W
    if undervoltage_fault:
        load += UNDERVOLTAGE_DRAIN_W
    return load


def array_w(lit: bool, pointing: int, params: NodeParams, noise: float = 0.0) -> float:
    """Array power (W): full when sun-pointing, half otherwise, none in eclipse; `noise`
    is the simulator's relative fluctuation (0 for the noise-free model)."""
    sun_factor = 1.0 if pointing in (0, 1) else 0.5
    return params.array_w * sun_factor * (1.0 + noise) if lit else 0.0


def battery_step(
    soc: float, available_w: float, load_w: float, params: NodeParams, dt: float
) -> tuple[float, float]:
    """(new state of charge, net battery power in W): charge limited, stopped when full."""
    net = available_w - load_w
    if net > 0:
        net = 0.0 if soc >= FULL_SOC else min(net, params.charge_limit_w)
    efficiency = CHARGE_EFFICIENCY if net > 0 else 1.0
    soc = min(1.0, max(0.0, soc + net * efficiency * dt / 3600 / params.battery_wh))
    return soc, net


def battery_electrics(
    soc: float, net_w: float, undervoltage_fault: bool, params: NodeParams
) -> tuple[float, float]:
    """(terminal voltage V, current A, + charging) of the pack: 28 cells in series,
    3.04 V (empty) to 4.04 V (full) each; a failed string shorts some of them out."""
    cells = CELLS - (SHORTED_CELLS if undervoltage_fault else 0)
    v_oc = (85.0 + 28.0 * soc) * cells / CELLS
    amps = net_w / v_oc
    return v_oc + amps * params.battery_ohm, amps


def relaxation(dt: float, tau_s: float, exact: bool = False) -> float:
    """Fraction of the way to equilibrium a first-order lag goes in `dt`: the simulator's
    Euler step `min(1, dt/tau)`, or with `exact` the exponential `1 - exp(-dt/tau)`."""
    return -math.expm1(-dt / tau_s) if exact else min(1.0, dt / tau_s)


def thermal_step(
    radiator_c: float,
    gpu_c: float,
    cpu_c: float,
    battery_c: float,
    heater_on: bool,
    load_w: float,
    gpu_w: float,
    eclipse: bool,
    cpu_util: float,
    runaway_fault: bool,
    params: NodeParams,
    dt: float,
    exact: bool = False,
) -> Thermal:
    """Advance the radiator, GPU, CPU and battery temperatures and the heater thermostat
    (`exact`: exponential lags, for steps much longer than the simulator's second)."""
    heat = HEAT_FRACTION * load_w
    sink = SINK_ECLIPSE_C if eclipse else SINK_LIT_C
    g = params.radiator_w_per_k * (RUNAWAY_CONDUCTANCE if runaway_fault else 1.0)
    radiator_eq = max(RADIATOR_MIN_C, sink + heat / g)
    radiator_c += (radiator_eq - radiator_c) * relaxation(dt, params.radiator_tau_s, exact)
    gpu_c += (radiator_c + GPU_K_PER_W * gpu_w - gpu_c) * relaxation(dt, GPU_TAU_S, exact)
    cpu_c += (radiator_c + 12.0 + 18.0 * cpu_util - cpu_c) * relaxation(dt, CPU_TAU_S, exact)
    battery_eq = 15.0 + 0.2 * (radiator_c - 10.0) + (10.0 if heater_on else 0.0)
    battery_c += (battery_eq - battery_c) * relaxation(dt, BATTERY_TAU_S, exact)
    if battery_c < HEATER_ON_C:
        heater_on = True
    elif battery_c > HEATER_OFF_C:
        heater_on = False
    return Thermal(radiator_c, gpu_c, cpu_c, battery_c, heater_on)


def thermal_protection(gpu_c: float, protect: int) -> int:
    """The throttle level thermal protection holds at `gpu_c`, from its level `protect`."""
    if gpu_c > SUSPEND_C:
        return 4
    if gpu_c > THROTTLE_HIGH_C:
        return max(3, protect)
    if gpu_c < RELEASE_C:
        return 0
    return protect
