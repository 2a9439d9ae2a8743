"""Link budgets and pass capacities against outside oracles.

- The rate functions against figures worked out here from the textbook formulas (the
  ITU form of free-space loss, 92.45 + 20 log10(d km) + 20 log10(f GHz)).
- SIMULATOR_BUDGET against the simulator itself: a SimNode downlinking in contact at
  several ranges, noise included (ranges well away from the thresholds).
- pass_capacities against a brute-force one-second loop: sgp4 called directly for each
  second, rotated from TEME to GCRS and seen from the station with Skyfield's own frames
  (IAU 2000A, WGS84), integrated second by second.
- The [planning] config: every bad value gives one error naming file, line and key.
"""

from __future__ import annotations

import math
import random
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sgp4.api import WGS72, Satrec
from skyfield.api import EarthSatellite, load, wgs84
from skyfield.sgp4lib import TEME

from groundctl.config import _Reader, demo_config_path, load_config
from groundctl.errors import ConfigError
from groundctl.fleet import load_fleet
from groundctl.orbits.model import Pass, Station
from groundctl.orbits.passes import predict
from groundctl.planning.budget import (
    SIMULATOR_BUDGET,
    LinkBudget,
    fspl_db,
    pass_capacities,
    simulator_budget,
)
from groundctl.planning.config import PlanningConfig, read_planning
from groundctl.sim.node import Contact, NodeParams, SimNode
from groundctl.tomlreader import parse_toml

TS = load.timescale(builtin=True)
C = 299_792_458.0

TABLE = LinkBudget.table([(5.0, 2.0e6), (20.0, 10.0e6), (45.0, 18.75e6)], overhead=0.1)
X_BAND = dict(
    frequency_hz=8.2e9,
    eirp_dbw=13.0,
    gt_dbk=31.0,
    losses_db=3.0,
    required_ebn0_db=4.4,
    margin_db=3.0,
)


def itu_fspl(range_km: float, frequency_hz: float) -> float:
    return 92.45 + 20 * math.log10(range_km) + 20 * math.log10(frequency_hz / 1e9)


# --- rate functions ----------------------------------------------------------------------
def test_table_rate_is_the_step_at_or_below_the_elevation():
    el = np.array([-3.0, 4.999, 5.0, 12.0, 19.99, 20.0, 44.0, 45.0, 89.0, np.nan])
    expected = np.array([0, 0, 2e6, 2e6, 2e6, 10e6, 10e6, 18.75e6, 18.75e6, 0]) * 0.9
    assert TABLE.rate(el, np.full(el.shape, 1000.0)) == pytest.approx(expected)
    # elevation and range broadcast; range plays no part in a table
    assert TABLE.rate(np.array([[30.0], [50.0]]), np.array([500.0, 3000.0])).shape == (2, 2)
    assert TABLE.rate(30.0, np.array([500.0, 3000.0])) == pytest.approx([9e6, 9e6])


def test_free_space_loss_matches_the_itu_formula():
    for d in (500.0, 1000.0, 2500.0):
        for f in (2.2e9, 8.2e9, 26e9):
            assert float(fspl_db(d, f)) == pytest.approx(itu_fspl(d, f), abs=0.01)
    # a figure worked out by hand: 92.45 + 60 + 18.276 dB
    assert float(fspl_db(1000.0, 8.2e9)) == pytest.approx(170.73, abs=0.01)


def test_fspl_rate_picks_the_highest_bit_rate_that_closes():
    # With a weak transmitter the three modem rates close at different ranges.
    params = {**X_BAND, "eirp_dbw": 4.0}
    budget = LinkBudget.fspl(**params, rate_steps_bps=[50e6, 100e6, 150e6], overhead=0.2)
    needed = params["required_ebn0_db"] + params["margin_db"]  # 7.4 dB

    def cn0(d_km: float) -> float:  # dB-Hz, from the formula, independently
        return 4.0 + 31.0 - itu_fspl(d_km, 8.2e9) - 3.0 + 228.6

    def range_where_closes(bps: float) -> float:  # Eb/N0 == needed
        fspl = 4.0 + 31.0 - 3.0 + 228.6 - 10 * math.log10(bps) - needed
        return 10 ** ((fspl - 92.45 - 20 * math.log10(8.2)) / 20)

    edges = [range_where_closes(b) for b in (150e6, 100e6, 50e6)]
    # by hand: FSPL may reach 171.44 dB at 150 Mbps (81.76 dB-bit/s), 173.20 dB at 100 Mbps,
    # 176.21 dB at 50 Mbps; with 170.73 dB at 1000 km: 1086 km, 1329 km, 1880 km
    assert edges == pytest.approx([1085.5, 1329.5, 1880.2], abs=0.5)
    ranges = np.array([800.0, 1050.0, 1120.0, 1300.0, 1360.0, 1850.0, 1910.0, 3000.0])
    expected = [150e6, 150e6, 100e6, 100e6, 50e6, 50e6, 0.0, 0.0]
    for d, bps in zip(ranges, expected, strict=True):
        ebn0 = cn0(d) - 10 * math.log10(bps) if bps else None
        assert ebn0 is None or ebn0 >= needed
    got = budget.rate(np.full(ranges.shape, 40.0), ranges)
    assert got == pytest.approx(np.array(expected) / 8 * 0.8, rel=1e-12)
    # C/N0 as the budget computes it, against the hand formula
    assert float(budget.cn0_dbhz(1000.0)) == pytest.approx(cn0(1000.0), abs=0.01)


def test_fspl_minimum_elevations_gate_the_steps():
    budget = LinkBudget.fspl(
        **X_BAND,
        rate_steps_bps=[50e6, 100e6, 150e6],
        min_elevation_deg=5.0,
        step_min_elevation_deg=[0.0, 10.0, 30.0],
    )
    el = np.array([3.0, 7.0, 15.0, 35.0, np.nan])
    # at 1000 km this budget closes every rate (Eb/N0 at 150 Mbps = 17.1 dB)
    got = budget.rate(el, np.full(el.shape, 1000.0))
    assert got == pytest.approx([0.0, 50e6 / 8, 100e6 / 8, 150e6 / 8, 0.0])
    assert budget.rate(35.0, np.nan) == pytest.approx(0.0)


def test_budgets_check_their_values():
    with pytest.raises(ValueError, match="overhead"):
        LinkBudget.table([(5.0, 1e6)], overhead=1.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        LinkBudget.table([(5.0, 1e6), (5.0, 2e6)])
    with pytest.raises(ValueError, match="rate_steps_bps"):
        LinkBudget.fspl(**X_BAND, rate_steps_bps=[])
    with pytest.raises(ValueError, match="one value per rate step"):
        LinkBudget.fspl(**X_BAND, rate_steps_bps=[1e6, 2e6], step_min_elevation_deg=[5.0])


# --- the simulator's budget --------------------------------------------------------------
def sim_rates(range_km: float, seconds: int, seed: int) -> list[float]:
    node = SimNode("ODC-01", seed=seed)
    s = node.state
    s.downlink_active = True
    s.results_pending_b = s.storage_used_b = 4e9  # 200 s at 18.75 MB/s: never runs dry
    s.downlink_left_b = math.inf
    rates = []
    for t in range(seconds):
        node.step(float(t), True, Contact("GS", range_km))
        node.take_packets()
        rates.append(s.rate_bps)
    return rates


@pytest.mark.parametrize("range_km", [600.0, 1200.0, 1800.0, 2400.0, 3000.0, 4500.0])
def test_simulator_budget_is_what_the_simulator_does(range_km):
    # thresholds: full rate to 2118.8 km (3 dB), half to 2667.4 km (1 dB); noise 0.2 dB
    expected = float(SIMULATOR_BUDGET.rate(30.0, range_km))
    rates = sim_rates(range_km, 200, seed=int(range_km))
    assert set(rates) == {expected}
    full = NodeParams().downlink_rate_bps
    assert expected in (full, full / 2, 0.0)


def test_simulator_budget_thresholds_and_params():
    full = NodeParams().downlink_rate_bps
    edge_full = 1500.0 * 10 ** (3 / 20)  # 2118.8 km
    edge_half = 1500.0 * 10 ** (5 / 20)  # 2667.4 km
    got = SIMULATOR_BUDGET.rate(
        np.zeros(4), np.array([edge_full - 1, edge_full + 1, edge_half - 1, edge_half + 1])
    )
    assert got == pytest.approx([full, full / 2, full / 2, 0.0])
    faster = simulator_budget(NodeParams(downlink_rate_bps=1e6))
    assert faster.rate(0.0, 1000.0) == pytest.approx(1e6)


# --- pass capacities ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    config = load_config(demo_config_path())
    fleet = load_fleet(config)
    start = fleet.tles[0].epoch + timedelta(days=1)
    prediction = predict(fleet.satellites(), config.stations, start, start + timedelta(hours=12))
    tles = {t.name: (t.line1, t.line2) for t in fleet.tles}
    stations = {s.name: s for s in config.stations}
    return prediction.passes, tles, stations


def oracle_capacity(p: Pass, lines: tuple[str, str], station: Station, budget: LinkBudget):
    """Brute force: every second from AOS to LOS (and LOS), sgp4 called for each second,
    TEME -> GCRS and the station's position and zenith from Skyfield; trapezoid rule."""
    satrec = Satrec.twoline2rv(*lines, WGS72)
    duration = p.duration_s
    offsets = np.append(np.arange(0.0, duration, 1.0), duration)
    unix = p.aos.timestamp() + offsets
    r_teme = np.empty((offsets.size, 3))
    for i, u in enumerate(unix):
        jd = 2440587.5 + u / 86400.0
        whole = math.floor(jd)
        error, r, _ = satrec.sgp4(whole, jd - whole)
        assert error == 0
        r_teme[i] = r
    t = TS.from_datetime(p.aos) + offsets / 86400.0
    r_gcrs = np.einsum("jin,nj->ni", TEME.rotation_at(t), r_teme)  # rotation_at: GCRS -> TEME
    here = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)
    above = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m + 1000)
    site = here.at(t).position.km.T
    up = above.at(t).position.km.T - site
    up /= np.linalg.norm(up, axis=1)[:, None]
    rho = r_gcrs - site
    rng = np.linalg.norm(rho, axis=1)
    el = np.degrees(np.arcsin(np.sum(rho * up, axis=1) / rng))
    # the oracle's frames agree with Skyfield's own satellite pipeline
    every_minute = TS.from_datetime(p.aos) + offsets[::60] / 86400.0
    sky_el, _, sky_rng = (EarthSatellite(*lines, ts=TS) - here).at(every_minute).altaz()
    assert np.max(np.abs(sky_el.degrees - el[::60])) < 0.01
    assert np.max(np.abs(sky_rng.km - rng[::60])) < 0.05
    rate = budget.rate(el, rng)
    return float(np.sum(0.5 * (rate[1:] + rate[:-1]) * np.diff(offsets)))


FSPL_STEPPED = LinkBudget.fspl(
    **{**X_BAND, "eirp_dbw": 4.0},
    rate_steps_bps=[50e6, 100e6, 150e6],
    min_elevation_deg=12.0,
    overhead=0.05,
)


@pytest.mark.parametrize(
    "budget", [TABLE, FSPL_STEPPED, SIMULATOR_BUDGET], ids=["table", "fspl", "simulator"]
)
def test_pass_capacities_match_a_brute_force_oracle(demo, budget):
    passes, tles, stations = demo
    by_el = sorted(passes, key=lambda p: p.max_elevation_deg)
    masked = [p for p in passes if p.station == "Awarua"]
    chosen = [by_el[-1], by_el[len(by_el) // 2], by_el[len(by_el) // 5], masked[0]]
    got = pass_capacities(chosen, tles, stations, lambda s, n: budget)
    for p, capacity in zip(chosen, got, strict=True):
        expected = oracle_capacity(p, tles[p.node], stations[p.station], budget)
        assert expected > 0
        assert capacity == pytest.approx(expected, rel=0.01), (p.station, p.max_elevation_deg)


def test_constant_rate_gives_rate_times_duration(demo):
    passes, tles, stations = demo
    flat = LinkBudget.table([(-90.0, 1000.0)])
    for step in (10.0, 7.3, 1000.0):
        got = pass_capacities(passes, tles, stations, lambda s, n: flat, step_s=step)
        assert got == pytest.approx([1000.0 * p.duration_s for p in passes], rel=1e-9)


def test_budget_for_is_asked_per_station_and_node_and_order_is_kept(demo):
    passes, tles, stations = demo
    asked: list[tuple[str, str]] = []

    def budget_for(station: str, node: str) -> LinkBudget:
        asked.append((station, node))
        return TABLE if station == "Weilheim" else SIMULATOR_BUDGET

    got = pass_capacities(passes, tles, stations, budget_for)
    assert len(asked) == len(set(asked)) == len({(p.station, p.node) for p in passes})
    table_only = pass_capacities(passes, tles, stations, lambda s, n: TABLE)
    sim_only = pass_capacities(passes, tles, stations, lambda s, n: SIMULATOR_BUDGET)
    expected = np.where([p.station == "Weilheim" for p in passes], table_only, sim_only)
    assert got == pytest.approx(expected, rel=1e-12)
    shuffled = list(range(len(passes)))
    random.Random(4).shuffle(shuffled)
    again = pass_capacities([passes[i] for i in shuffled], tles, stations, budget_for)
    assert again == pytest.approx(got[shuffled], rel=1e-12)
    assert pass_capacities([], tles, stations, budget_for).shape == (0,)


def test_a_finer_step_changes_little(demo):
    passes, tles, stations = demo
    coarse = pass_capacities(passes, tles, stations, lambda s, n: TABLE)
    fine = pass_capacities(passes, tles, stations, lambda s, n: TABLE, step_s=1.0)
    assert np.all(fine > 0)
    assert coarse == pytest.approx(fine, rel=5e-3)
    assert coarse.sum() == pytest.approx(fine.sum(), rel=5e-4)


# --- the [planning] config -----------------------------------------------------------------
PATH = Path("/cfg/groundctl.toml")
FSPL_KEYS = """model = "fspl"
frequency_hz = 8.2e9
eirp_dbw = 13
gt_dbk = 31
losses_db = 3
required_ebn0_db = 4.4
margin_db = 3
"""


def read(text: str) -> PlanningConfig:
    raw = parse_toml(text, PATH, ConfigError, "")
    return read_planning(_Reader(PATH, text), raw.get("planning"), stations=["GS-1", "GS-2"])


def test_config_defaults():
    for config in (read(""), read("[planning]\n")):
        assert config == PlanningConfig()
        assert (config.window_h, config.step_s, config.min_soc) == (24.0, 60.0, 0.3)
        assert config.storage_high_water == 0.9
        assert config.budget_for("GS-1", "ODC-01") is SIMULATOR_BUDGET


def test_config_full_example_and_most_specific_budget_first():
    config = read(
        "[planning]\nwindow_h = 12\nstep_s = 30\nmin_soc = 0.4\nstorage_high_water = 0.8\n"
        "[planning.budget]\noverhead = 0.1\n"
        "rates = [[5, 2.0e6], [20, 10.0e6], [45, 18.75e6]]\n"
        '[planning.budget."GS-1"]\n' + FSPL_KEYS + "rate_steps_bps = [50e6, 100e6, 150e6]\n"
        "min_elevation_deg = 5\nstep_min_elevation_deg = [5, 10, 20]\n"
        '[planning.budget."GS-1/ODC-07"]\nrates = [[0, 1e6]]\n'
    )
    assert (config.window_h, config.step_s, config.min_soc, config.storage_high_water) == (
        12.0,
        30.0,
        0.4,
        0.8,
    )
    assert config.default_budget == TABLE
    assert config.budget_for("GS-2", "ODC-07") == TABLE
    assert config.budget_for("GS-1", "ODC-07") == LinkBudget.table([(0.0, 1e6)])
    assert config.budget_for("GS-1", "ODC-01") == LinkBudget.fspl(
        **X_BAND,
        rate_steps_bps=[50e6, 100e6, 150e6],
        min_elevation_deg=5.0,
        step_min_elevation_deg=[5.0, 10.0, 20.0],
    )


def test_config_station_budgets_without_a_default_keep_the_simulators():
    config = read('[planning.budget."GS-2"]\nrates = [[10, 5e6]]\n')
    assert config.budget_for("GS-1", "ODC-01") is SIMULATOR_BUDGET
    assert config.budget_for("GS-2", "ODC-01") == LinkBudget.table([(10.0, 5e6)])


FSPL_HEAD = "[planning.budget]\n" + FSPL_KEYS  # 8 lines

BAD = [
    (
        '[planning]\nwindow_h = "long"\n',
        "2: planning.window_h: expected a number in h, found a string ('long')",
    ),
    (
        "[planning]\nwindow_h = 0\n",
        "2: planning.window_h: 0 is out of range: expected 0.1 to 720 h",
    ),
    ("[planning]\nstep_s = 0.5\n", "2: planning.step_s: 0.5 is out of range: expected 1 to 3600 s"),
    ("[planning]\nmin_soc = 1.5\n", "2: planning.min_soc: 1.5 is out of range: expected 0 to 1"),
    (
        "[planning]\nstorage_high_water = 0\n",
        "2: planning.storage_high_water: 0 leaves no storage to fill: expected more than 0, "
        "up to 1",
    ),
    ("[planning]\nhorizon = 3\n", "2: planning.horizon: unknown key 'horizon'"),
    ("planning = 3\n", "1: planning: expected a table, found a number (3)"),
    ("[planning]\nbudget = 3\n", "2: planning.budget: expected a table, found a number (3)"),
    (
        '[planning.budget]\nrates = [[5, 2.0e6], [20, "fast"]]\n',
        "2: planning.budget.rates[1]: expected [min_elevation_deg, bytes_per_s] (two numbers), "
        "found a list holding a string ('fast')",
    ),
    (
        "[planning.budget]\nrates = [[5, 2.0e6, 1]]\n",
        "2: planning.budget.rates[0]: expected [min_elevation_deg, bytes_per_s] (two numbers), "
        "found a list of 3",
    ),
    (
        "[planning.budget]\nrates = [5, 2.0e6]\n",
        "2: planning.budget.rates[0]: expected [min_elevation_deg, bytes_per_s] (two numbers), "
        "found a number (5)",
    ),
    (
        "[planning.budget]\nrates = [[5, 2.0e6], [5, 3.0e6]]\n",
        "2: planning.budget.rates[1]: expected elevations in increasing order, found 5 after 5",
    ),
    (
        "[planning.budget]\nrates = []\n",
        "2: planning.budget.rates: expected a list of [min_elevation_deg, bytes_per_s] pairs, "
        "found an empty list",
    ),
    (
        "[planning.budget]\nrates = [[95, 1e6]]\n",
        "2: planning.budget.rates[0]: elevation 95 is out of range: expected -90 to 90 deg",
    ),
    (
        "[planning.budget]\nrates = [[5, -1e6]]\n",
        "2: planning.budget.rates[0]: rate -1000000.0 is out of range: expected at least 0 bytes/s",
    ),
    (
        "[planning.budget]\noverhead = 1\nrates = [[5, 1e6]]\n",
        "2: planning.budget.overhead: 1 leaves no useful rate: expected 0 to less than 1",
    ),
    (
        "[planning.budget]\noverhead = -0.1\nrates = [[5, 1e6]]\n",
        "2: planning.budget.overhead: -0.1 is out of range: expected 0 to 1",
    ),
    ("[planning.budget]\noverhead = 0.1\n", "1: planning.budget.rates: missing"),
    (
        '[planning.budget]\nmodel = "ldpc"\n',
        "2: planning.budget.model: expected one of 'table', 'fspl', found 'ldpc'",
    ),
    (
        "[planning.budget]\nrates = [[5, 1e6]]\nfrequency_hz = 8e9\n",
        "3: planning.budget.frequency_hz: 'frequency_hz' belongs to a model = 'fspl' budget, "
        "this one is 'table'",
    ),
    (
        "[planning.budget]\nrates = [[5, 1e6]]\nspeed = 8e9\n",
        "3: planning.budget.speed: unknown key 'speed'",
    ),
    (FSPL_HEAD, "1: planning.budget.rate_steps_bps: missing"),
    (
        FSPL_HEAD + "rate_steps_bps = [100e6, 50e6]\n",
        "9: planning.budget.rate_steps_bps[1]: expected bit rates in increasing order, found "
        "5e+07 after 1e+08",
    ),
    (
        FSPL_HEAD + 'rate_steps_bps = [100e6, "x"]\n',
        "9: planning.budget.rate_steps_bps[1]: expected a number (bit rate), found a string ('x')",
    ),
    (
        FSPL_HEAD + "rate_steps_bps = 100e6\n",
        "9: planning.budget.rate_steps_bps: expected a list of numbers, found a number "
        "(100000000.0)",
    ),
    (
        FSPL_HEAD + "rate_steps_bps = [50e6, 100e6]\nstep_min_elevation_deg = [5]\n",
        "10: planning.budget.step_min_elevation_deg: expected one elevation per rate step (2), "
        "found 1",
    ),
    (
        FSPL_HEAD + "rate_steps_bps = [50e6]\nstep_min_elevation_deg = [95]\n",
        "10: planning.budget.step_min_elevation_deg[0]: 95 is out of range: expected -90 to 90",
    ),
    (
        FSPL_HEAD + "rate_steps_bps = [50e6]\nrates = [[5, 1e6]]\n",
        "10: planning.budget.rates: 'rates' belongs to a model = 'table' budget, this one is "
        "'fspl'",
    ),
    (
        FSPL_HEAD.replace("losses_db = 3", "losses_db = -3") + "rate_steps_bps = [50e6]\n",
        "6: planning.budget.losses_db: -3 is out of range: expected 0 to 100 dB",
    ),
    (
        FSPL_HEAD.replace("eirp_dbw = 13\n", "") + "rate_steps_bps = [50e6]\n",
        "1: planning.budget.eirp_dbw: missing",
    ),
    (
        '[planning.budget]\nmodel = "fspl"\nfrequency_hz = "X"\n',
        "3: planning.budget.frequency_hz: expected a number in Hz, found a string ('X')",
    ),
    (
        '[planning.budget."GS-9"]\nrates = [[5, 1e6]]\n',
        "1: planning.budget.GS-9: no station 'GS-9' in [[stations]]",
    ),
    (
        '[planning.budget."GS-1/"]\nrates = [[5, 1e6]]\n',
        "1: planning.budget.GS-1/: expected a station name or \"STATION/NODE\", found 'GS-1/'",
    ),
    (
        '[planning.budget."GS-1/ODC-07"]\nrates = [[5, "x"]]\n',
        "2: planning.budget.GS-1/ODC-07.rates[0]: expected [min_elevation_deg, bytes_per_s] "
        "(two numbers), found a list holding a string ('x')",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[1] for _, m in BAD])
def test_config_errors_name_file_line_key_and_value(text, message):
    with pytest.raises(ConfigError) as caught:
        read(text)
    assert caught.value.message == f"{PATH}:{message}"
