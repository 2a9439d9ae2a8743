"""Synthetic fleets: a Walker delta shell of circular orbits, written out as TLEs.

Used for the demo and training fleets. The TLEs are real two-line element sets (valid
checksums, propagated by sgp4 like any other), with their epoch on the day asked for.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sgp4.api import WGS72, Satrec
from sgp4.exporter import export_tle

from groundctl.orbits.model import TLE

MU_KM3_S2 = 398600.8  # WGS72, the constants SGP4 uses
EARTH_RADIUS_KM = 6378.135  # WGS72
_EPOCH_1949 = datetime(1949, 12, 31, tzinfo=UTC)


def walker_shell(
    *,
    name_format: str,
    planes: int,
    per_plane: int,
    altitude_km: float,
    inclination_deg: float,
    epoch: datetime,
    phasing: int = 1,
    raan_offset_deg: float = 0.0,
    first_catalogue_number: int = 90001,
    source: str = "walker",
) -> list[TLE]:
    """TLEs of a Walker delta shell i:t/p/f with t = planes * per_plane nodes.

    Plane j has its ascending node at `raan_offset_deg + 360 * j / planes`; slot k of
    plane j is at mean anomaly `360 * k / per_plane + 360 * phasing * j / t`. Names come
    from `name_format` with {n} (1-based over the shell), {plane} and {slot} (1-based).
    `epoch` is timezone-aware UTC. Drag is zero: these orbits do not decay.
    """
    total = planes * per_plane
    semi_major = EARTH_RADIUS_KM + altitude_km
    mean_motion_rad_min = math.sqrt(MU_KM3_S2 / semi_major**3) * 60.0
    epoch_days = (epoch - _EPOCH_1949).total_seconds() / 86400.0
    tles: list[TLE] = []
    for j in range(planes):
        for k in range(per_plane):
            n = j * per_plane + k + 1
            satnum = first_catalogue_number + n - 1
            rec = Satrec()
            rec.sgp4init(
                WGS72,
                "i",
                satnum,
                epoch_days,
                0.0,  # bstar
                0.0,  # ndot
                0.0,  # nddot
                0.0001,  # eccentricity: near-circular
                0.0,  # argument of perigee
                math.radians(inclination_deg),
                math.radians((360.0 * k / per_plane + 360.0 * phasing * j / total) % 360.0),
                mean_motion_rad_min,
                math.radians((raan_offset_deg + 360.0 * j / planes) % 360.0),
            )
            line1, line2 = export_tle(rec)
            tles.append(
                TLE(
                    name=name_format.format(n=n, plane=j + 1, slot=k + 1),
                    line1=line1,
                    line2=line2,
                    norad_id=satnum,
                    epoch=epoch,
                    source=source,
                    line=0,
                )
            )
    return tles
