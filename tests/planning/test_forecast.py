"""Forecasts of a node's sunlight, battery and temperatures for fleet planning.

Oracles: the simulator itself. Sunlight against what `SimFleet` hands its nodes each
second; eclipse intervals against a brute-force scan; the state-of-charge forecast
against a `SimNode` stepped every second with the same jobs and sunlight; the start
state against housekeeping a simulated node sent, decoded by the telemetry pipeline
with the `odc-node` mission database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.mdb.codec import encode_command
from groundctl.mdb.loader import load_mission
from groundctl.planning.forecast import (
    ForecastState,
    NodeStart,
    eclipses,
    forecast,
    lit_matrix,
    step,
    sunlit_fraction,
)
from groundctl.sim.fleet import SimFleet
from groundctl.sim.node import Contact, NodeParams, NodeState, SimNode
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor

ROOT = Path(__file__).parents[2]
START = datetime(2026, 11, 29, tzinfo=UTC)
START_S = START.timestamp()
NODES = ("ODC-02", "ODC-09", "ODC-20")  # one from each of three planes
DAY = 86400


@pytest.fixture(scope="module")
def config():
    return load_config(demo_config_path())


@pytest.fixture(scope="module")
def satellites(config):
    return load_fleet(config, now=START).satellites(list(NODES))


@pytest.fixture(scope="module")
def mission():
    return load_mission(ROOT / "data" / "missions" / "odc-node.toml")


@pytest.fixture(scope="module")
def fleet_lit(config, satellites):
    """The sunlight SimFleet gives each node at every second of a day: (times, lit)."""
    fleet = SimFleet(satellites, config.stations, start_s=START_S, seed=1, gate=False)
    seen = {name: {} for name in NODES}
    for name in NODES:
        # record what the fleet hands the node (its physics is not under test here)
        def record(t, lit, contact, dt=1.0, _name=name):
            seen[_name][t] = lit

        fleet.nodes[name].step = record
    fleet.advance(START_S + DAY)
    times = START_S + np.arange(1, DAY + 1, dtype=np.float64)
    lit = np.array([[seen[name][t] for t in times.tolist()] for name in NODES])
    return times, lit


def tles(satellites):
    return [(s.line1, s.line2) for s in satellites]


# --- sunlight ----------------------------------------------------------------------------


def test_lit_matrix_is_the_simulators_sunlight_over_a_day(satellites, fleet_lit):
    times, simulated = fleet_lit
    lit = lit_matrix(tles(satellites), times)
    assert lit.shape == (len(NODES), DAY) and lit.dtype == np.bool_
    for row in simulated:
        assert 0.55 < row.mean() < 0.75  # eclipses every orbit, lit most of the time
    np.testing.assert_array_equal(lit, simulated)


def test_lit_matrix_on_a_coarse_grid_samples_the_same_sunlight(satellites, fleet_lit):
    times, simulated = fleet_lit
    coarse = times[::60]
    np.testing.assert_array_equal(lit_matrix(tles(satellites), coarse), simulated[:, ::60])
    assert lit_matrix([], coarse).shape == (0, coarse.size)


def brute_force_eclipses(lit, times):
    out, start = [], None
    for t, is_lit in zip(times.tolist(), lit.tolist(), strict=True):
        if not is_lit and start is None:
            start = t
        elif is_lit and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, float(times[-1])))
    return out


def test_eclipses_are_the_dark_spans_of_a_1s_scan(fleet_lit):
    times, simulated = fleet_lit
    for row in simulated:
        expected = brute_force_eclipses(row, times)
        assert 14 <= len(expected) <= 17  # about one per 95-minute orbit
        assert eclipses(row, times) == expected
        # on the planner's 60 s grid: the same eclipses, each edge within a step
        coarse = eclipses(row[::60], times[::60])
        assert len(coarse) == len(expected)
        for (a, b), (c, d) in zip(coarse, expected, strict=True):
            assert 0 <= a - c < 60
            cut = d == times[-1] and b == times[::60][-1]  # under way at the window's end
            assert 0 <= b - d < 60 or cut


def test_eclipses_cut_at_the_ends_of_the_window():
    times = np.arange(10, dtype=np.float64)
    lit = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 0], dtype=bool)
    assert eclipses(lit, times) == [(0.0, 2.0), (4.0, 5.0), (7.0, 9.0)]
    assert eclipses(np.ones(10, dtype=bool), times) == []
    assert eclipses(np.zeros(0, dtype=bool), np.zeros(0)) == []


def test_sunlit_fraction_is_the_mean_of_the_seconds_of_each_step(satellites, fleet_lit):
    times, simulated = fleet_lit
    hours = 6 * 3600
    grid = np.concatenate(([START_S], times[59:hours:60]))  # START_S, +60, +120, ...
    fraction = sunlit_fraction(tles(satellites), grid)
    # the seconds (t_k, t_k+1] the simulator steps through in each interval
    expected = simulated[:, :hours].reshape(len(NODES), -1, 60).mean(axis=-1)
    np.testing.assert_allclose(fraction[:, :-1], expected, atol=1e-12)
    assert np.all(fraction[:, -1] == 0)
    partial = (expected > 0) & (expected < 1)
    assert partial.sum() >= 3 * 6  # boundaries were crossed mid-step


# --- the battery and temperatures -----------------------------------------------------


def run_sim_node(mission, lit_1s, mode, jobs_at_s, jobs):
    """A SimNode stepped every second for len(lit_1s) - 1 seconds from START_S: `jobs`
    long jobs submitted at `jobs_at_s`; its state every second."""

    def command(name, **arguments):
        return encode_command(mission, mission.commands[name], arguments)

    node = SimNode("ODC-02", 11)
    node.receive(command("SET_POWER_MODE", mode=mode), START_S)
    s = node.state
    start = NodeStart(
        soc=s.soc,
        radiator_c=s.radiator_c,
        gpu_c=s.gpu_c,
        cpu_c=s.cpu_c,
        battery_c=s.battery_c,
        power_mode=s.power_mode,
    )
    soc, gpu_c, radiator_c, busy = [s.soc], [s.gpu_c], [s.radiator_c], []
    for k in range(1, len(lit_1s)):
        t = START_S + k
        if k == jobs_at_s:
            for job in range(jobs):
                raw = command("SUBMIT_JOB", job_id=job + 1, gpu_seconds=50000, priority="NORMAL")
                node.receive(raw, t)
        node.step(t, bool(lit_1s[k]), None)
        busy.append(len(node._running()))
        soc.append(s.soc)
        gpu_c.append(s.gpu_c)
        radiator_c.append(s.radiator_c)
    return node, start, np.array(soc), np.array(gpu_c), np.array(radiator_c), busy


@pytest.mark.parametrize(
    ("mode", "jobs_at_s", "jobs"), [("PERFORMANCE", 600, 8), ("NOMINAL", 1800, 6), ("ECO", 60, 3)]
)
def test_soc_forecast_follows_the_simulated_node_for_three_hours(
    satellites, mission, mode, jobs_at_s, jobs
):
    span = 3 * 3600
    t_1s = START_S + np.arange(span + 1, dtype=np.float64)
    lit_1s = lit_matrix(tles(satellites[:1]), t_1s)[0]
    node, start, soc, gpu_c, radiator_c, busy = run_sim_node(mission, lit_1s, mode, jobs_at_s, jobs)
    assert max(busy) == jobs  # the simulated jobs did run
    assert soc.max() - soc.min() > 0.1  # the battery worked: charged and drained

    t = t_1s[::60]
    lit = lit_1s[::60]
    plan = np.where(t - START_S >= jobs_at_s, float(jobs), 0.0)
    no_downlink = np.zeros(t.size, dtype=bool)
    sunlit = sunlit_fraction(tles(satellites[:1]), t, lit[None, :])[0]
    fc = forecast(node.params, start, t, lit, plan, no_downlink, sunlit=sunlit)
    assert fc.soc.shape == t.shape
    assert np.max(np.abs(fc.soc - soc[::60])) < 0.01
    assert np.max(np.abs(fc.gpu_c - gpu_c[::60])) < 1.5
    assert np.max(np.abs(fc.radiator_c - radiator_c[::60])) < 1.5
    # shadow boundaries to the step only (the trapezoidal rule): still close
    coarse = forecast(node.params, start, t, lit, plan, no_downlink)
    assert np.max(np.abs(coarse.soc - soc[::60])) < 0.02


def test_step_in_a_planners_loop_is_the_forecast():
    params = NodeParams()
    start = NodeStart(soc=0.5, results_pending_b=1e9, storage_used_b=1e9)
    t = START_S + 60.0 * np.arange(121)
    lit = (np.arange(121) % 95) < 60
    busy = np.full(121, 4.0)
    down = np.arange(121) < 10
    fc = forecast(params, start, t, lit, busy, down)
    state = ForecastState.start(start)
    for k in range(1, 121):
        step(state, (float(lit[k - 1]) + float(lit[k])) / 2, busy[k - 1], down[k - 1], params, 60.0)
        assert state.soc == fc.soc[k]
        assert state.gpu_c == fc.gpu_c[k]
    # 4 GPUs at NOMINAL speed wrote results; the first 10 minutes downlinked the backlog
    assert state.downlinked_b == pytest.approx(1e9 + 4 * 0.75 * 60 * 10 * 1e6)
    assert state.storage_used_b == pytest.approx(4 * 0.75 * 60 * 110 * 1e6)


def test_low_battery_forecast_goes_to_safe_mode():
    params = NodeParams()
    t = START_S + 60.0 * np.arange(60)
    fc = forecast(
        params,
        NodeStart(soc=0.15, power_mode=3),
        t,
        np.zeros(60, dtype=bool),
        np.full(60, 8.0),
        np.zeros(60, dtype=bool),
    )
    assert fc.power_mode[0] == 3 and fc.power_mode[-1] == 0
    assert np.all(np.diff(fc.soc) <= 0) and fc.soc[-1] > 0.0
    assert fc.gpu_busy[-1] == 0.0


# --- where a forecast starts ------------------------------------------------------------


def test_from_telemetry_reads_decoded_housekeeping(mission):
    node = SimNode("ODC-02", 5)
    processor = TelemetryProcessor(default=mission)

    def command(name, **arguments):
        node.receive(encode_command(mission, mission.commands[name], arguments), node.t)

    contact = Contact("lab", 1000.0)
    command("SET_POWER_MODE", mode="PERFORMANCE")
    command("SUBMIT_JOB", job_id=1, gpu_seconds=120, priority="NORMAL")
    command("SUBMIT_JOB", job_id=2, gpu_seconds=50000, priority="NORMAL")
    command("SET_THROTTLE", level="LOW")
    for k in range(1, 1201):
        node.step(START_S + k, k % 900 < 600, contact)
        for raw in node.take_packets():
            processor.process(Frame(raw, START_S + k, "sim", "ODC-02"))
    values = processor.env["ODC-02"]
    s = node.state
    assert s.storage_used_b > 0 and s.results_pending_b > 0  # job 1 finished

    start = NodeStart.from_telemetry(values)
    assert start.soc == pytest.approx(s.soc, abs=0.005)
    assert start.power_mode == 3
    assert start.throttle == 1
    assert start.pointing == s.pointing == 1
    assert start.heater_on is False
    assert start.gpu_c == pytest.approx(s.gpu_c, abs=0.5)
    assert start.cpu_c == pytest.approx(s.cpu_c, abs=0.5)
    assert start.radiator_c == pytest.approx(s.radiator_c, abs=0.5)
    assert start.battery_c == pytest.approx(s.battery_c, abs=0.5)
    assert start.storage_used_b == pytest.approx(s.storage_used_b, abs=1e6)
    assert start.results_pending_b == pytest.approx(s.results_pending_b, abs=1)

    # numbers for the states, as raw telemetry would have them
    numeric = dict(values)
    numeric["POWER_HK.POWER_MODE"] = 1
    numeric["THERMAL_HK.THROTTLE_LEVEL"] = "4"
    numeric["THERMAL_HK.HEATER_BATTERY"] = 1
    again = NodeStart.from_telemetry(numeric)
    assert (again.power_mode, again.throttle, again.heater_on) == (1, 4, True)


def test_from_telemetry_without_values_is_the_simulators_default_state():
    default = NodeState()
    start = NodeStart.from_telemetry({"POWER_HK.BATT_SOC": 55.0, "POWER_HK.POWER_MODE": "ECO"})
    assert start.soc == pytest.approx(0.55)
    assert start.power_mode == 1
    assert start.gpu_c == default.gpu_c and start.radiator_c == default.radiator_c
    assert start.battery_c == default.battery_c and start.cpu_c == default.cpu_c
    assert start.throttle == default.throttle_cmd and start.heater_on == default.heater_battery
    assert start.storage_used_b == default.storage_used_b == 0.0
    assert NodeStart.from_telemetry({}) == NodeStart()
    # unknown state names and missing values fall back too
    odd = NodeStart.from_telemetry({"POWER_HK.POWER_MODE": "WARP", "THERMAL_HK.GPU_TEMP": None})
    assert odd.power_mode == default.power_mode and odd.gpu_c == default.gpu_c
