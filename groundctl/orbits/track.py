"""Where a node is in a station's sky: look angles at given times, and a pass's track.

The frames are the pass predictor's (groundctl.orbits.passes): SGP4 in TEME, rotated into
the Earth-fixed frame by the IAU 1982 sidereal angle of UT1, seen from the station's
WGS84 position in its east-north-up frame. So the elevation at a predicted pass's AOS and
LOS is the station's threshold, and the maximum along the track is the pass's maximum.

Pure: NumPy and sgp4 only. Times are Unix seconds (UTC), angles degrees, ranges km.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import WGS72, Satrec

from groundctl.orbits.geometry import (
    DAY_S,
    enu_basis,
    gmst1982,
    look_angles,
    station_ecef,
    teme_to_ecef,
)
from groundctl.orbits.model import Pass, Station

Array = NDArray[np.float64]

JD_UNIX_EPOCH = 2440587.5  # Julian date of 1970-01-01T00:00Z
TRACK_STEP_S = 10.0


@lru_cache(maxsize=64)
def _dut1_of_day(day: int) -> float:
    """UT1 - UTC (s) on a UTC day (days since the Unix epoch), from Skyfield's built-in
    tables; it changes by under 2 ms a day, so one value per day is exact enough."""
    from groundctl.orbits.passes import dut1_seconds

    return dut1_seconds(datetime.fromtimestamp(day * DAY_S + DAY_S / 2, UTC))


@lru_cache(maxsize=256)
def _satrec(line1: str, line2: str) -> Satrec:
    return Satrec.twoline2rv(line1, line2, WGS72)


@lru_cache(maxsize=64)
def _station_frame(lat_deg: float, lon_deg: float, alt_m: float) -> tuple[Array, Array]:
    return station_ecef(lat_deg, lon_deg, alt_m), enu_basis(lat_deg, lon_deg)


def look_angles_at(
    line1: str,
    line2: str,
    station: Station,
    times_s: ArrayLike,
    *,
    dut1_s: float | None = None,
) -> tuple[Array, Array, Array]:
    """Azimuth (deg, clockwise from north), elevation (deg) and range (km) of the node with
    these TLE lines, seen from `station` at `times_s` (Unix seconds; any shape, the results
    have the same). Where sgp4 cannot propagate, the results are NaN. `dut1_s` (UT1 - UTC)
    defaults to Skyfield's built-in table at the first time, as the predictor does."""
    shape = np.shape(times_s)
    t = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if t.size == 0:
        empty = np.empty(shape, dtype=np.float64)
        return empty, empty.copy(), empty.copy()
    days = np.floor(t / DAY_S)
    whole = JD_UNIX_EPOCH + days
    fraction = (t - days * DAY_S) / DAY_S
    errors, r, v = _satrec(line1, line2).sgp4_array(whole, fraction)
    r = np.asarray(r, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    bad = np.asarray(errors) != 0
    r[bad] = np.nan
    v[bad] = np.nan
    if dut1_s is None:
        dut1_s = _dut1_of_day(int(days[0]))
    theta, rate = gmst1982(whole + (fraction + dut1_s / DAY_S))
    ecef, _ = teme_to_ecef(r, v, theta, rate)
    position, enu = _station_frame(station.lat_deg, station.lon_deg, station.alt_m)
    el, az, rng = look_angles((ecef - position) @ enu.T)
    return az.reshape(shape), el.reshape(shape), rng.reshape(shape)


@dataclass(frozen=True)
class PassTrack:
    """A pass sampled from AOS to LOS (both included): times (Unix s), azimuth and
    elevation (deg), range (km), as parallel arrays."""

    times_s: Array
    az_deg: Array
    el_deg: Array
    range_km: Array

    @property
    def aos_s(self) -> float:
        return float(self.times_s[0])

    @property
    def los_s(self) -> float:
        return float(self.times_s[-1])

    def points(self) -> list[tuple[float, float, float]]:
        """(time_s, az_deg, el_deg) of every sample."""
        return list(
            zip(self.times_s.tolist(), self.az_deg.tolist(), self.el_deg.tolist(), strict=True)
        )

    def at(self, time_s: float) -> tuple[float, float, float] | None:
        """(az_deg, el_deg, range_km) at `time_s`, interpolated linearly between samples
        (azimuth the short way round north); None outside the pass."""
        times = self.times_s
        if not times[0] <= time_s <= times[-1]:
            return None
        if times.size == 1:
            return float(self.az_deg[0]), float(self.el_deg[0]), float(self.range_km[0])
        i = min(int(np.searchsorted(times, time_s, side="right")) - 1, times.size - 2)
        span = float(times[i + 1] - times[i])
        f = (time_s - float(times[i])) / span if span > 0 else 0.0
        a0, a1 = float(self.az_deg[i]), float(self.az_deg[i + 1])
        turn = (a1 - a0 + 180.0) % 360.0 - 180.0
        el = float(self.el_deg[i]) + f * float(self.el_deg[i + 1] - self.el_deg[i])
        rng = float(self.range_km[i]) + f * float(self.range_km[i + 1] - self.range_km[i])
        return (a0 + f * turn) % 360.0, el, rng


def track_of(
    pass_: Pass, line1: str, line2: str, station: Station, step_s: float = TRACK_STEP_S
) -> PassTrack:
    """Sample `pass_` every `step_s` from its AOS, and at its LOS."""
    if step_s <= 0:
        raise ValueError("step_s must be positive")
    aos = pass_.aos.timestamp()
    los = pass_.los.timestamp()
    times = np.arange(aos, los, step_s, dtype=np.float64)
    if times.size == 0 or los - times[-1] > 1e-6:
        times = np.append(times, los)
    else:
        times[-1] = los
    az, el, rng = look_angles_at(line1, line2, station, times)
    return PassTrack(times, az, el, rng)


def pass_track(
    pass_: Pass, line1: str, line2: str, station: Station, step_s: float = TRACK_STEP_S
) -> list[tuple[float, float, float]]:
    """(time_s, az_deg, el_deg) from AOS to LOS every `step_s`, LOS included."""
    return track_of(pass_, line1, line2, station, step_s).points()


def sky_xy(az_deg: float, el_deg: float) -> tuple[float, float]:
    """A direction on a polar sky plot of unit radius: (east, north), the zenith at the
    centre, the horizon on the unit circle (elevation linear in the radius)."""
    radius = (90.0 - el_deg) / 90.0
    az = math.radians(az_deg)
    return radius * math.sin(az), radius * math.cos(az)
