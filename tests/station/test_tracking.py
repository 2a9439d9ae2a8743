"""Pointing and Doppler geometry, against Skyfield (an independent implementation)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from skyfield.api import EarthSatellite, load, wgs84

from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.orbits.passes import predict
from groundctl.orbits.track import look_angles_at
from groundctl.station.tracking import (
    C_M_S,
    doppler,
    lead_s,
    look,
    plan_axes,
    rotator_azimuth,
    separation_deg,
)

START = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture(scope="module")
def passes():
    config = load_config(demo_config_path())
    sats = load_fleet(config, now=START).satellites(["ODC-07"])
    prediction = predict(sats, config.stations, START, START + timedelta(hours=24))
    stations = {s.name: s for s in config.stations}
    return sats[0], stations, sorted(prediction.passes, key=lambda p: p.aos)


def test_range_rate_and_look_angles_agree_with_skyfield(passes):
    sat, stations, found = passes
    ts = load.timescale()
    skyfield_sat = EarthSatellite(sat.line1, sat.line2, sat.name, ts)
    for p in found[:6]:
        station = stations[p.station]
        topos = wgs84.latlon(station.lat_deg, station.lon_deg, station.alt_m)
        for t in np.linspace(p.aos.timestamp(), p.los.timestamp(), 7):
            ours = look(sat.line1, sat.line2, station, float(t))
            when = ts.from_datetime(datetime.fromtimestamp(float(t), UTC))
            relative = (skyfield_sat - topos).at(when)
            alt, az, distance = relative.altaz()
            *_, range_rate = relative.frame_latlon_and_rates(topos)
            assert ours.range_rate_m_s == pytest.approx(range_rate.km_per_s * 1000, abs=0.2)
            assert ours.range_km == pytest.approx(distance.km, abs=0.05)
            assert separation_deg(ours.az_deg, ours.el_deg, az.degrees, alt.degrees) < 0.02
            # and Doppler within 1 Hz of the formula on Skyfield's range rate
            rr = range_rate.km_per_s * 1000
            down, up = doppler(437_000_000, 145_900_000, ours.range_rate_m_s)
            assert abs(down - 437_000_000 * (1 - rr / C_M_S)) < 1.0
            assert abs(up - 145_900_000 * (1 + rr / C_M_S)) < 1.0


def test_doppler_is_whole_hertz_and_signed_by_the_motion():
    down, up = doppler(437_000_000, 145_900_000, -7000.0)  # approaching
    assert isinstance(down, int) and isinstance(up, int)
    assert down > 437_000_000 and up < 145_900_000
    assert doppler(437_000_000, None, 7000.0)[1] is None
    assert down - 437_000_000 == round(437_000_000 * 7000 / C_M_S)


def track(az_start: float, az_end: float, n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """A pass sweeping azimuth from az_start to az_end (the short or given way), rising to
    80 degrees in the middle."""
    az = np.linspace(az_start, az_end, n) % 360.0
    el = 80.0 * np.sin(np.linspace(0, math.pi, n))
    return az, el


def test_a_north_crossing_pass_is_one_sweep_on_a_rotator_that_goes_past_north():
    az, el = track(300.0, 420.0)  # 300 -> 360/0 -> 60
    plan = plan_axes(az, el, min_az=-180.0, max_az=450.0, max_el=90.0)
    assert not plan.flip and not plan.unwinds
    # followed step by step from the plan's start, the azimuth never jumps
    reference, previous = plan.start_az_deg, None
    for a in az:
        r = rotator_azimuth(a, reference, -180.0, 450.0)
        if previous is not None:
            assert abs(r - previous) < 10.0
        assert -180.0 <= r <= 450.0
        reference = previous = r


def test_a_north_crossing_pass_flips_on_a_0_to_360_rotator_with_180_elevation():
    az, el = track(300.0, 420.0)
    flipped = plan_axes(az, el, min_az=0.0, max_az=360.0, max_el=180.0)
    assert flipped.flip and not flipped.unwinds
    raz, rel = flipped.direction(350.0, 30.0)
    assert (raz, rel) == (170.0, 150.0)
    # the flipped sweep (120 -> 240) stays inside 0..360
    rotated = [flipped.direction(a, e)[0] for a, e in zip(az, el, strict=True)]
    assert min(rotated) > 0 and max(rotated) < 360
    # without 180 degrees of elevation, the antenna must unwind once, at north
    unwinding = plan_axes(az, el, min_az=0.0, max_az=360.0, max_el=90.0)
    assert unwinding.unwinds and not unwinding.flip
    assert unwinding.unwind_az_deg is not None and unwinding.unwind_az_deg < 10.0


def test_a_pass_that_fits_is_not_flipped_and_starts_near_the_antenna():
    az, el = track(100.0, 200.0)
    plan = plan_axes(az, el, min_az=-180.0, max_az=450.0, max_el=180.0, current_az=-200.0)
    assert not plan.flip and plan.start_az_deg == pytest.approx(-260.0 + 360.0)
    plan = plan_axes(az, el, min_az=-180.0, max_az=450.0, max_el=180.0, current_az=400.0)
    assert plan.start_az_deg == pytest.approx(100.0)  # 460 is beyond 450


def test_lead_keeps_half_a_threshold_ahead():
    assert lead_s(0.5, 2.0, 10.0) == 2.0  # 1 degree at 0.5 deg/s
    assert lead_s(0.01, 2.0, 10.0) == 10.0  # capped
    assert lead_s(0.0, 2.0, 10.0) == 0.0


def test_look_is_the_pass_predictors_geometry(passes):
    sat, stations, found = passes
    p = found[0]
    station = stations[p.station]
    aos = look(sat.line1, sat.line2, station, p.aos.timestamp())
    az, el, rng = look_angles_at(sat.line1, sat.line2, station, [p.aos.timestamp()])
    assert (aos.az_deg, aos.el_deg, aos.range_km) == pytest.approx((az[0], el[0], rng[0]), abs=1e-9)
    assert aos.el_deg == pytest.approx(station.min_elevation_deg, abs=0.05)
