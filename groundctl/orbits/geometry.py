"""Vectorised geometry: Earth rotation, station frames, look angles, interpolation.

All functions work on NumPy arrays and broadcast; lengths are km, angles radians unless
a name says `_deg`, times are seconds or Julian dates as named.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# WGS84 ellipsoid, for station positions.
WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
DAY_S = 86400.0
JD_J2000 = 2451545.0
EARTH_RADIUS_KM = 6378.137


def gmst1982(jd_ut1: Array | float) -> tuple[Array, float]:
    """Greenwich mean sidereal angle (IAU 1982) in radians, and its rate in rad/s.

    The TEME frame of SGP4 is defined against this angle: rotating a TEME vector by it
    about z gives the pseudo Earth-fixed frame. `jd_ut1` is a UT1 Julian date.
    """
    jd = np.asarray(jd_ut1, dtype=np.float64)
    t = (jd - JD_J2000) / 36525.0
    seconds = 67310.54841 + (876600.0 * 3600.0 + 8640184.812866) * t
    seconds = seconds + (0.093104 - 6.2e-6 * t) * t * t
    theta = np.mod(seconds, DAY_S) / DAY_S * 2.0 * math.pi
    # d(theta)/dt: one sidereal turn per sidereal day, in rad/s (rate terms in t are ~1e-12).
    rate = 7.292115146706979e-5
    return theta, rate


def teme_to_ecef(
    r_teme: Array, v_teme: Array, theta: Array, theta_rate: float
) -> tuple[Array, Array]:
    """Rotate TEME position/velocity (km, km/s; shape (..., 3)) into the Earth-fixed frame.

    `theta` (rad) broadcasts against the leading axes of `r_teme`. Polar motion is
    neglected (a few metres), as is usual for pass prediction.
    """
    c = np.cos(theta)
    s = np.sin(theta)
    x, y, z = r_teme[..., 0], r_teme[..., 1], r_teme[..., 2]
    vx, vy, vz = v_teme[..., 0], v_teme[..., 1], v_teme[..., 2]
    xe = c * x + s * y
    ye = -s * x + c * y
    vxe = c * vx + s * vy + theta_rate * ye
    vye = -s * vx + c * vy - theta_rate * xe
    return np.stack((xe, ye, z), axis=-1), np.stack((vxe, vye, vz), axis=-1)


def station_ecef(lat_deg: float, lon_deg: float, alt_m: float) -> Array:
    """Earth-fixed position (km) of a point given WGS84 geodetic latitude, longitude, height."""
    lat = math.radians(lat_deg)
    lon = math.radians(lon_deg)
    n = WGS84_A_KM / math.sqrt(1.0 - WGS84_E2 * math.sin(lat) ** 2)
    h = alt_m / 1000.0
    return np.array(
        [
            (n + h) * math.cos(lat) * math.cos(lon),
            (n + h) * math.cos(lat) * math.sin(lon),
            (n * (1.0 - WGS84_E2) + h) * math.sin(lat),
        ]
    )


def enu_basis(lat_deg: float, lon_deg: float) -> Array:
    """Rows: east, north, up unit vectors (Earth-fixed) at a geodetic latitude/longitude."""
    lat = math.radians(lat_deg)
    lon = math.radians(lon_deg)
    sl, cl = math.sin(lat), math.cos(lat)
    so, co = math.sin(lon), math.cos(lon)
    return np.array(
        [
            [-so, co, 0.0],
            [-sl * co, -sl * so, cl],
            [cl * co, cl * so, sl],
        ]
    )


def look_angles(rho_enu: Array) -> tuple[Array, Array, Array]:
    """Elevation (deg), azimuth (deg, 0..360 clockwise from north), range (km) of ENU vectors."""
    e, n, u = rho_enu[..., 0], rho_enu[..., 1], rho_enu[..., 2]
    rng = np.sqrt(e * e + n * n + u * u)
    el = np.degrees(np.arcsin(np.clip(u / rng, -1.0, 1.0)))
    az = np.mod(np.degrees(np.arctan2(e, n)), 360.0)
    return el, az, rng


def hermite(p0: Array, v0: Array, p1: Array, v1: Array, s: Array, h: float) -> tuple[Array, Array]:
    """Cubic Hermite interpolation of position and velocity between two samples.

    `p0, v0` at the start and `p1, v1` at the end of an interval of `h` seconds; `s` in
    [0, 1] is the fraction of the interval (broadcast over the last axis of p/v).
    For a low Earth orbit sampled every 120 s the position error is a few metres.
    """
    s = s[..., None]
    s2 = s * s
    s3 = s2 * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    pos = h00 * p0 + h10 * h * v0 + h01 * p1 + h11 * h * v1
    d00 = 6 * s2 - 6 * s
    d10 = 3 * s2 - 4 * s + 1
    d01 = -6 * s2 + 6 * s
    d11 = 3 * s2 - 2 * s
    vel = (d00 * p0 + d01 * p1) / h + d10 * v0 + d11 * v1
    return pos, vel


def mask_elevation(az_deg: Array, mask: tuple[tuple[float, float], ...]) -> Array:
    """Horizon-mask elevation (deg) at azimuths, linear between points, wrapping at north."""
    if not mask:
        return np.full_like(np.asarray(az_deg, dtype=np.float64), -90.0)
    az = np.array([p[0] for p in mask])
    el = np.array([p[1] for p in mask])
    return np.asarray(np.interp(az_deg, az, el, period=360.0), dtype=np.float64)
