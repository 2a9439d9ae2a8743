"""Look angles and pass tracks against Skyfield, and against the pass predictor.

Skyfield is the independent oracle (its own frames: IAU 2000A nutation, ITRS, WGS84);
the predictor's passes check that the track shares its frames: the elevation at AOS and
LOS is the station's threshold there, the highest point is the pass's maximum.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from skyfield.api import EarthSatellite, load, wgs84

from groundctl.orbits.geometry import mask_elevation
from groundctl.orbits.model import Station
from groundctl.orbits.passes import Satellite, predict
from groundctl.orbits.track import PassTrack, look_angles_at, pass_track, sky_xy, track_of

FIXTURE = Path(__file__).parents[1] / "fixtures" / "starlink-2026-05-13.tle"
START = datetime(2026, 5, 14, 0, 0, tzinfo=UTC)
TS = load.timescale(builtin=True)
WALLOPS = Station("Wallops", 37.9402, -75.4664, 10.0, 10.0)
TROMSO = Station("Tromso", 69.6625, 18.9408, 100.0, 5.0)
MASKED = Station(
    "Masked", 47.88, 11.08, 600.0, 5.0, horizon_mask=((0.0, 5.0), (90.0, 20.0), (200.0, 12.0))
)


def starlink(every: int, limit: int) -> list[Satellite]:
    lines = FIXTURE.read_text().splitlines()
    sats = []
    for i in range(0, len(lines), 3 * every):
        name, l1, l2 = lines[i].strip(), lines[i + 1], lines[i + 2]
        sats.append(Satellite(name, int(l1[2:7]), l1, l2))
        if len(sats) == limit:
            break
    return sats


def skyfield_look(sat: Satellite, station: Station, times_s: np.ndarray):
    es = EarthSatellite(sat.line1, sat.line2, sat.name, TS)
    where = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)
    t = TS.from_datetime(START) + (times_s - START.timestamp()) / 86400.0
    alt, az, distance = (es - where).at(t).altaz()
    return az.degrees, alt.degrees, distance.km


def az_difference(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("station", [WALLOPS, TROMSO], ids=lambda s: s.name)
def test_look_angles_match_skyfield(station):
    sats = starlink(every=900, limit=4)
    times = START.timestamp() + np.arange(0.0, 6 * 3600.0, 7.3)
    for sat in sats:
        az, el, rng = look_angles_at(sat.line1, sat.line2, station, times)
        sf_az, sf_el, sf_rng = skyfield_look(sat, station, times)
        assert np.max(np.abs(el - sf_el)) < 0.1
        assert np.max(np.abs(rng - sf_rng)) < 1.0
        # Azimuth is only well defined away from the zenith.
        up = el < 85.0
        assert np.max(az_difference(az[up], sf_az[up])) < 0.1
        assert np.all((az >= 0.0) & (az < 360.0))


def test_look_angles_keep_the_shape_of_the_times():
    sat = starlink(every=900, limit=1)[0]
    t0 = START.timestamp()
    az, el, rng = look_angles_at(sat.line1, sat.line2, WALLOPS, t0)
    assert az.shape == el.shape == rng.shape == ()
    grid = t0 + np.arange(6.0).reshape(2, 3)
    az2, el2, _ = look_angles_at(sat.line1, sat.line2, WALLOPS, grid)
    assert az2.shape == (2, 3)
    assert el2[0, 0] == pytest.approx(float(el))
    empty = look_angles_at(sat.line1, sat.line2, WALLOPS, np.empty(0))
    assert all(a.shape == (0,) for a in empty)


@pytest.mark.parametrize("station", [WALLOPS, TROMSO, MASKED], ids=lambda s: s.name)
def test_track_agrees_with_the_predicted_passes(station):
    sats = starlink(every=600, limit=6)
    prediction = predict(sats, [station], START, START + timedelta(hours=8))
    by_name = {s.name: s for s in sats}
    checked = 0
    for p in prediction.passes:
        sat = by_name[p.node]
        track = track_of(p, sat.line1, sat.line2, station)
        assert track.aos_s == p.aos.timestamp() and track.los_s == p.los.timestamp()
        assert np.all(np.diff(track.times_s) > 0) and np.all(np.diff(track.times_s) <= 10.0)
        # At AOS and LOS the node is on the station's threshold (mask included).
        for i, az in ((0, p.aos_azimuth_deg), (-1, p.los_azimuth_deg)):
            threshold = max(
                station.min_elevation_deg, float(mask_elevation(az, station.horizon_mask))
            )
            assert track.el_deg[i] == pytest.approx(threshold, abs=0.2)
            assert az_difference(track.az_deg[i], az) < 0.1
        # The highest point is the pass's maximum, at TCA.
        tca = p.tca.timestamp()
        az, el, rng = look_angles_at(sat.line1, sat.line2, station, np.array([tca]))
        assert el[0] == pytest.approx(p.max_elevation_deg, abs=0.01)
        assert rng[0] == pytest.approx(p.tca_range_km, abs=0.5)
        assert np.max(track.el_deg) <= p.max_elevation_deg + 0.01
        checked += 1
    assert checked >= 5


def test_pass_track_is_time_az_el_and_matches_skyfield():
    sat = starlink(every=900, limit=3)[1]
    p = predict([sat], [WALLOPS], START, START + timedelta(hours=12)).passes[0]
    points = pass_track(p, sat.line1, sat.line2, WALLOPS, step_s=30)
    times = np.array([t for t, _, _ in points])
    assert times[0] == p.aos.timestamp() and times[-1] == p.los.timestamp()
    assert np.allclose(np.diff(times)[:-1], 30.0)
    sf_az, sf_el, _ = skyfield_look(sat, WALLOPS, times)
    assert np.max(np.abs(np.array([e for _, _, e in points]) - sf_el)) < 0.1
    assert np.max(az_difference([a for _, a, _ in points], sf_az)) < 0.1


def test_interpolated_point_is_close_to_the_exact_one():
    sat = starlink(every=900, limit=3)[1]
    p = predict([sat], [WALLOPS], START, START + timedelta(hours=12)).passes[0]
    track = track_of(p, sat.line1, sat.line2, WALLOPS)
    assert track.at(p.aos.timestamp() - 1) is None and track.at(p.los.timestamp() + 1) is None
    times = np.linspace(p.aos.timestamp(), p.los.timestamp(), 97)
    az, el, rng = look_angles_at(sat.line1, sat.line2, WALLOPS, times)
    for i, t in enumerate(times):
        point = track.at(float(t))
        assert point is not None
        assert az_difference(point[0], az[i]) < 1.0
        assert point[1] == pytest.approx(el[i], abs=0.2)
        assert point[2] == pytest.approx(rng[i], abs=5.0)
        assert point[1] >= WALLOPS.min_elevation_deg - 1e-3


def test_interpolation_turns_the_short_way_round_north():
    track = PassTrack(
        np.array([0.0, 10.0]), np.array([350.0, 10.0]), np.array([20.0, 30.0]), np.ones(2)
    )
    point = track.at(5.0)
    assert point is not None
    assert az_difference(point[0], 0.0) < 1e-9
    assert point[1] == pytest.approx(25.0)


def test_sky_xy_puts_north_up_east_right_and_the_horizon_on_the_unit_circle():
    assert sky_xy(0.0, 90.0) == pytest.approx((0.0, 0.0))
    assert sky_xy(0.0, 0.0) == pytest.approx((0.0, 1.0))
    assert sky_xy(90.0, 0.0) == pytest.approx((1.0, 0.0))
    x, y = sky_xy(225.0, 45.0)
    assert math.hypot(x, y) == pytest.approx(0.5)
    assert x < 0 and y < 0
