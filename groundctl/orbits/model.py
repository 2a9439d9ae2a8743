"""Frozen values that cross package boundaries: TLEs, stations, passes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sgp4.api import WGS72, Satrec


@dataclass(frozen=True)
class TLE:
    """One satellite's two-line element set, as read from a file, a config or a server.

    `name` is the node name the rest of groundctl uses (the 3LE name line, an OMM
    OBJECT_NAME, or a rename from the config); `epoch` is timezone-aware UTC.
    `source` is the file path or URL it came from and `line` the 1-based line number of
    line 1 in that source (0 when the source has no lines, e.g. OMM JSON).
    """

    name: str
    line1: str
    line2: str
    norad_id: int
    epoch: datetime
    source: str = ""
    line: int = 0

    def satrec(self) -> Satrec:
        """Return a fresh sgp4 `Satrec` built from the two lines (WGS72, as SGP4 expects)."""
        return Satrec.twoline2rv(self.line1, self.line2, WGS72)


@dataclass(frozen=True)
class Station:
    """A ground station: WGS84 geodetic position, elevation mask, number of antennas.

    `horizon_mask` is a tuple of (azimuth_deg, elevation_deg) points, azimuth increasing
    in [0, 360); the mask between points is interpolated linearly, wrapping at north. The
    effective threshold at an azimuth is the larger of `min_elevation_deg` and the mask.
    `turnaround_s` is the time an antenna needs between two contacts (slew, set-up).
    """

    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 0.0
    horizon_mask: tuple[tuple[float, float], ...] = ()
    antennas: int = 1
    turnaround_s: float = 0.0


@dataclass(frozen=True)
class Pass:
    """One contact of a node with a station: from AOS to LOS above the station's mask.

    Times are timezone-aware UTC datetimes. Angles in degrees, range in km.
    `sunlit` says whether the node is in sunlight at TCA.
    `scheduled` is None until a contact plan has decided; then True when an antenna
    is granted, False with `reason` saying why not.
    """

    node: str
    norad_id: int
    station: str
    aos: datetime
    tca: datetime
    los: datetime
    max_elevation_deg: float
    aos_azimuth_deg: float
    tca_azimuth_deg: float
    los_azimuth_deg: float
    tca_range_km: float
    sunlit: bool
    priority: int = 0
    scheduled: bool | None = None
    antenna: int | None = None
    reason: str = ""

    @property
    def duration_s(self) -> float:
        return (self.los - self.aos).total_seconds()


@dataclass(frozen=True)
class PropagationProblem:
    """A node whose orbit could not be propagated over part of the window (sgp4 error)."""

    node: str
    norad_id: int
    code: int
    message: str
    first_time: datetime


@dataclass(frozen=True)
class Prediction:
    """What a pass prediction run returns: passes sorted by AOS, and per-node problems."""

    passes: tuple[Pass, ...]
    problems: tuple[PropagationProblem, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
