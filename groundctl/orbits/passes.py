"""Pass prediction for whole constellations, vectorised over satellites and times.

How it works (and why it is both fast and exact):

1. Propagate every satellite on a coarse grid (120 s) with sgp4's `SatrecArray`, keeping
   position *and velocity* in TEME.
2. For each station, compute elevation and the sign of its rate at each grid point. A
   pass is a local maximum of elevation, so each grid interval where the rate goes from
   rising to falling holds one; this finds every pass however short, even one that
   rises and sets between two grid points, without sampling finely.
3. Between grid points the orbit is interpolated with cubic Hermite polynomials from the
   sampled positions and velocities (a few metres of error in low Earth orbit), so the
   maximum (TCA) and the threshold crossings (AOS, LOS) are found by bisection to a
   millisecond without calling sgp4 again.
4. Stations with a horizon mask are then scanned finely (5 s) inside each candidate
   pass; every segment above the mask becomes a pass of its own.

Skyfield remains the reference: the tests compare against a brute-force 1 s scan done
with Skyfield's own frames, and `bench/passes.py` against Skyfield's `find_events`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context

import numpy as np
from numpy.typing import NDArray
from sgp4.api import SGP4_ERRORS, WGS72, Satrec, SatrecArray

from groundctl.orbits.geometry import (
    DAY_S,
    EARTH_RADIUS_KM,
    enu_basis,
    gmst1982,
    hermite,
    look_angles,
    mask_elevation,
    station_ecef,
    teme_to_ecef,
)
from groundctl.orbits.model import Pass, Prediction, PropagationProblem, Station

Array = NDArray[np.float64]

COARSE_STEP_S = 120.0
MASK_SCAN_STEP_S = 5.0
# The grid starts this long before the window and ends this long after it, so that a
# pass in progress at either edge gets its true AOS and LOS.
EDGE_PAD_S = 1800.0
BISECTION_STEPS = 18  # 120 s / 2**18 < 1 ms
CHUNK_SATELLITES = 600


@dataclass(frozen=True)
class Satellite:
    """What the predictor needs to know about one node."""

    name: str
    norad_id: int
    line1: str
    line2: str
    priority: int = 0


@dataclass(frozen=True)
class _StationGeometry:
    name: str
    position_km: Array
    enu: Array
    min_elevation_deg: float
    mask: tuple[tuple[float, float], ...]

    @property
    def lowest_threshold_deg(self) -> float:
        if not self.mask:
            return self.min_elevation_deg
        return max(self.min_elevation_deg, min(el for _, el in self.mask))


# Columns of the raw result table, one row per pass; times in seconds from window start.
_COLUMNS = (
    "sat",
    "station",
    "aos",
    "tca",
    "los",
    "max_el",
    "aos_az",
    "tca_az",
    "los_az",
    "tca_range",
    "sunlit",
)


def _geometry(station: Station) -> _StationGeometry:
    return _StationGeometry(
        name=station.name,
        position_km=station_ecef(station.lat_deg, station.lon_deg, station.alt_m),
        enu=enu_basis(station.lat_deg, station.lon_deg),
        min_elevation_deg=station.min_elevation_deg,
        mask=station.horizon_mask,
    )


def _to_jd(t: datetime) -> tuple[float, float]:
    """Julian date of a UTC datetime as (whole, fraction) for sgp4."""
    seconds = (t - datetime(2000, 1, 1, 12, tzinfo=UTC)).total_seconds()
    days, rem = divmod(seconds, DAY_S)
    return 2451545.0 + days, rem / DAY_S


class _Track:
    """One chunk of satellites sampled on the grid, with interpolation between samples."""

    def __init__(
        self,
        satrecs: Sequence[Satrec],
        jd0: tuple[float, float],
        dut1_s: float,
        grid_s: Array,
        step_s: float,
    ) -> None:
        self.step_s = step_s
        self.grid_s = grid_s
        self.jd0 = jd0
        self.dut1_s = dut1_s
        whole = np.full(grid_s.shape, jd0[0])
        frac = jd0[1] + grid_s / DAY_S
        errors, r, v = SatrecArray(list(satrecs)).sgp4(whole, frac)
        # After a node's first failure (decay, eccentricity out of range) sgp4 may return
        # error 0 again with meaningless positions: nothing after it is trusted.
        bad = np.logical_or.accumulate(errors != 0, axis=1)
        r[bad] = np.nan
        v[bad] = np.nan
        self.errors = errors
        self.r = r  # (n_sat, n_time, 3) TEME km
        self.v = v  # (n_sat, n_time, 3) TEME km/s

    def theta(self, t_s: Array) -> tuple[Array, float]:
        jd_ut1 = self.jd0[0] + self.jd0[1] + (t_s + self.dut1_s) / DAY_S
        return gmst1982(jd_ut1)

    def grid_ecef(self) -> tuple[Array, Array]:
        theta, rate = self.theta(self.grid_s)
        return teme_to_ecef(self.r, self.v, theta[None, :], rate)

    def teme(self, sat: NDArray[np.intp], t_s: Array) -> tuple[Array, Array]:
        """TEME position and velocity of satellites `sat` at times `t_s` (paired arrays)."""
        last = len(self.grid_s) - 2
        k = np.clip(((t_s - self.grid_s[0]) // self.step_s).astype(np.intp), 0, last)
        s = (t_s - self.grid_s[k]) / self.step_s
        return hermite(
            self.r[sat, k], self.v[sat, k], self.r[sat, k + 1], self.v[sat, k + 1], s, self.step_s
        )

    def at(self, sat: NDArray[np.intp], t_s: Array) -> tuple[Array, Array]:
        """Earth-fixed position and velocity of satellites `sat` at times `t_s` (paired)."""
        pos, vel = self.teme(sat, t_s)
        theta, rate = self.theta(t_s)
        return teme_to_ecef(pos, vel, theta, rate)

    def sunlit(self, sat: NDArray[np.intp], t_s: Array, sun: tuple[Array, Array]) -> Array:
        """1.0 where the satellite is in sunlight at t_s, else 0.0.

        `sun` is (times, TEME positions km) on a coarse grid; the Sun moves about a
        degree a day around the Earth, so linear interpolation is exact enough. The node
        is lit unless the segment from it to the Sun's centre passes through the Earth.
        """
        times, positions = sun
        sun_km = np.stack([np.interp(t_s, times, positions[:, i]) for i in range(3)], axis=-1)
        r, _ = self.teme(sat, t_s)
        d = sun_km - r
        along = -np.sum(r * d, axis=-1) / np.sum(d * d, axis=-1)
        closest = r + np.clip(along, 0.0, 1.0)[:, None] * d
        blocked = (along > 0) & (np.linalg.norm(closest, axis=-1) < EARTH_RADIUS_KM)
        lit: Array = (~blocked).astype(np.float64)
        return lit


def _elevation_and_rate(
    station: _StationGeometry, r: Array, v: Array
) -> tuple[Array, Array, Array, Array]:
    """Elevation (deg), a value with the sign of d(elevation)/dt, azimuth (deg), range (km)."""
    rho_enu = (r - station.position_km) @ station.enu.T
    vel_enu = v @ station.enu.T
    el, az, rng = look_angles(rho_enu)
    rate = _rate(rho_enu[..., 2], rng * rng, vel_enu[..., 2], np.sum(rho_enu * vel_enu, axis=-1))
    return el, rate, az, rng


def _rate(up: Array, range2: Array, up_rate: Array, rho_dot_v: Array) -> Array:
    """A value with the sign of d(elevation)/dt: d(up/range)/dt times range**3 (> 0)."""
    return up_rate * range2 - up * rho_dot_v


def _sin_el_and_rate(station: _StationGeometry, r: Array, v: Array) -> tuple[Array, Array]:
    """sin(elevation) and the rate sign, without trigonometry (the refinement hot path)."""
    dx = r[..., 0] - station.position_km[0]
    dy = r[..., 1] - station.position_km[1]
    dz = r[..., 2] - station.position_km[2]
    ux, uy, uz = station.enu[2]
    up = dx * ux + dy * uy + dz * uz
    range2 = dx * dx + dy * dy + dz * dz
    up_rate = v[..., 0] * ux + v[..., 1] * uy + v[..., 2] * uz
    rho_dot_v = dx * v[..., 0] + dy * v[..., 1] + dz * v[..., 2]
    return up / np.sqrt(range2), _rate(up, range2, up_rate, rho_dot_v)


def _solve(f: Callable[[Array], Array], lo: Array, hi: Array, steps: int = 10) -> Array:
    """Vectorised root of f in [lo, hi] where f(lo) and f(hi) differ in sign.

    Bisection narrows each bracket to (hi - lo) / 2**steps, then one false-position step
    on the (by then nearly linear) function lands within a millisecond.
    """
    lo = lo.copy()
    hi = hi.copy()
    f_lo = f(lo)
    f_hi = f(hi)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        left = np.signbit(f_mid) == np.signbit(f_lo)
        lo = np.where(left, mid, lo)
        f_lo = np.where(left, f_mid, f_lo)
        hi = np.where(left, hi, mid)
        f_hi = np.where(left, f_hi, f_mid)
    span = f_hi - f_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        root = lo - f_lo * (hi - lo) / span
    bad = ~np.isfinite(root) | (root < lo) | (root > hi)
    return np.where(bad, 0.5 * (lo + hi), root)


def _edge_candidates(
    below: NDArray[np.bool_],
    sin_el: Array,
    peak_sat: NDArray[np.intp],
    peak_k: NDArray[np.intp],
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(satellite, grid index) of the highest sample of every interval above the threshold
    that touches the first or last grid point and holds no elevation maximum.

    Such an interval is one a node never rises into or sets from within the grid (a pass
    longer than the padding, or a node that never sets); every other interval has a
    maximum and is found by the rate test.
    """
    n = below.shape[1]
    sats: list[int] = []
    ks: list[int] = []
    for s in np.flatnonzero(~below[:, 0] | ~below[:, -1]).tolist():
        row = below[s]
        peaks = peak_k[peak_sat == s]
        intervals = []
        if not row[0]:
            end = int(np.argmax(row)) if row.any() else n
            intervals.append((0, end))
        if not row[-1]:
            start = n - int(np.argmax(row[::-1])) if row.any() else 0
            if not intervals or intervals[0] != (start, n):
                intervals.append((start, n))
        for start, end in intervals:
            if not np.any((peaks >= start - 1) & (peaks < end)):
                sats.append(s)
                ks.append(start + int(np.argmax(sin_el[s, start:end])))
    return np.array(sats, dtype=np.intp), np.array(ks, dtype=np.intp)


def _max_slant_range_km(station: _StationGeometry, radius_km: Array, elevation_deg: float) -> Array:
    """Slant range (km) to a point at geocentric `radius_km` seen at `elevation_deg`."""
    rs = float(np.linalg.norm(station.position_km))
    se = float(np.sin(np.radians(elevation_deg)))
    reach: Array = -rs * se + np.sqrt(np.maximum(rs * rs * se * se + radius_km**2 - rs * rs, 0.0))
    return reach


def _predict_chunk(
    satrecs: Sequence[Satrec],
    stations: Sequence[_StationGeometry],
    jd0: tuple[float, float],
    dut1_s: float,
    t_start_s: float,
    t_end_s: float,
    step_s: float,
    sun: tuple[Array, Array] | None = None,
) -> tuple[dict[str, Array], list[tuple[int, int, float]]]:
    """Predict passes of one chunk of satellites; returns result columns and sgp4 errors.

    Times are seconds from the window start. Errors are (satellite index, code, first
    time). `sun` is (times, TEME positions in km) sampled over the grid, for `sunlit`.
    """
    n_steps = int(np.ceil((t_end_s - t_start_s + 2 * EDGE_PAD_S) / step_s))
    grid = t_start_s - EDGE_PAD_S + step_s * np.arange(n_steps + 1, dtype=np.float64)
    track = _Track(satrecs, jd0, dut1_s, grid, step_s)
    errors: list[tuple[int, int, float]] = []
    for i in np.flatnonzero(track.errors.any(axis=1)):
        first = int(np.argmax(track.errors[i] != 0))
        errors.append((int(i), int(track.errors[i, first]), float(grid[first])))

    r_ecef, v_ecef = track.grid_ecef()
    radius = np.linalg.norm(r_ecef, axis=-1)
    speed = np.linalg.norm(v_ecef, axis=-1)
    out: dict[str, list[Array]] = {c: [] for c in _COLUMNS}
    for station_index, station in enumerate(stations):
        threshold = station.lowest_threshold_deg
        sin_threshold = np.sin(np.radians(threshold))
        sin_el, rate = _sin_el_and_rate(station, r_ecef, v_ecef)
        # A maximum of elevation lies in (k, k+1] where the rate goes from > 0 to <= 0.
        peak = (rate[:, :-1] > 0) & (rate[:, 1:] <= 0)
        # Drop maxima that cannot reach the threshold: within the interval the range is at
        # least (range_k + range_k1 - speed * step) / 2, and above the threshold it must be
        # under the slant range to the satellite's altitude at the threshold elevation.
        rng = np.sqrt(np.sum((r_ecef - station.position_km) ** 2, axis=-1))
        reach = _max_slant_range_km(
            station, np.maximum(radius[:, :-1], radius[:, 1:]) + 5.0, threshold
        )
        closest = 0.5 * (
            rng[:, :-1] + rng[:, 1:] - 1.05 * np.maximum(speed[:, :-1], speed[:, 1:]) * step_s
        )
        peak &= closest <= reach
        sat, k = np.nonzero(peak)
        below = sin_el < sin_threshold
        edge_sat, edge_k = _edge_candidates(below, sin_el, sat, k)
        if sat.size == 0 and edge_sat.size == 0:
            continue

        def rate_at(t: Array, sat: NDArray[np.intp] = sat, st: _StationGeometry = station) -> Array:
            return _sin_el_and_rate(st, *track.at(sat, t))[1]

        tca = _solve(rate_at, grid[k], grid[k + 1]) if sat.size else np.empty(0)
        max_sin = _sin_el_and_rate(station, *track.at(sat, tca))[0] if sat.size else tca
        # Intervals above the threshold at the grid's edges with no maximum inside: their
        # highest sample stands for TCA.
        sat = np.concatenate((sat, edge_sat))
        k = np.concatenate((k, edge_k))
        tca = np.concatenate((tca, grid[edge_k]))
        max_sin = np.concatenate((max_sin, sin_el[edge_sat, edge_k]))
        keep = max_sin > sin_threshold
        sat, k, tca, max_sin = sat[keep], k[keep], tca[keep], max_sin[keep]
        if sat.size == 0:
            continue

        # Bracket AOS between the last grid point at or before k below the threshold and
        # the next one (or TCA); LOS likewise after k.
        idx = np.arange(below.shape[1])
        last_below = np.maximum.accumulate(np.where(below, idx, -1), axis=1)
        next_below = np.minimum.accumulate(np.where(below, idx, below.shape[1])[:, ::-1], axis=1)[
            :, ::-1
        ]
        ka = last_below[sat, k]
        kb = next_below[sat, np.minimum(k + 1, below.shape[1] - 1)]
        # Two maxima above the threshold with no dip below it between them (a slow, high
        # orbit) are one pass: keep its highest maximum as TCA.
        order = np.lexsort((-max_sin, kb, ka, sat))
        sat, k, tca, ka, kb = sat[order], k[order], tca[order], ka[order], kb[order]
        distinct = np.ones(sat.size, dtype=bool)
        distinct[1:] = (sat[1:] != sat[:-1]) | (ka[1:] != ka[:-1]) | (kb[1:] != kb[:-1])
        sat, k, tca, ka, kb = sat[distinct], k[distinct], tca[distinct], ka[distinct], kb[distinct]
        clipped_start = ka < 0
        clipped_end = kb >= below.shape[1]
        ka = np.maximum(ka, 0)
        kb = np.minimum(kb, below.shape[1] - 1)
        aos_lo = grid[ka]
        aos_hi = np.minimum(grid[np.minimum(ka + 1, len(grid) - 1)], tca)
        los_lo = np.maximum(grid[np.maximum(kb - 1, 0)], tca)
        los_hi = grid[kb]

        def above_by(
            t: Array,
            sat: NDArray[np.intp] = sat,
            st: _StationGeometry = station,
            floor: float = sin_threshold,
        ) -> Array:
            return _sin_el_and_rate(st, *track.at(sat, t))[0] - floor

        aos = np.where(clipped_start, grid[0], _solve(above_by, aos_lo, aos_hi))
        los = np.where(clipped_end, grid[-1], _solve(above_by, los_lo, los_hi))

        if station.mask:
            sat, aos, tca, los = _mask_segments(track, station, sat, aos, tca, los)
            if sat.size == 0:
                continue

        # Keep passes that overlap the window.
        inside = (los > t_start_s) & (aos < t_end_s)
        sat, aos, tca, los = sat[inside], aos[inside], tca[inside], los[inside]
        looks = [_elevation_and_rate(station, *track.at(sat, t)) for t in (aos, tca, los)]
        out["sat"].append(sat.astype(np.float64))
        out["station"].append(np.full(sat.shape, float(station_index)))
        out["aos"].append(aos)
        out["tca"].append(tca)
        out["los"].append(los)
        out["max_el"].append(looks[1][0])
        out["aos_az"].append(looks[0][2])
        out["tca_az"].append(looks[1][2])
        out["los_az"].append(looks[2][2])
        out["tca_range"].append(looks[1][3])
        out["sunlit"].append(
            track.sunlit(sat, tca, sun) if sun is not None else np.zeros(sat.shape)
        )
    columns = {
        c: (np.concatenate(v) if v else np.empty(0, dtype=np.float64)) for c, v in out.items()
    }
    return columns, errors


def _mask_segments(
    track: _Track,
    station: _StationGeometry,
    sat: NDArray[np.intp],
    aos: Array,
    tca: Array,
    los: Array,
) -> tuple[NDArray[np.intp], Array, Array, Array]:
    """Split candidate passes (above the lowest mask value) into segments above the mask.

    Each candidate is sampled every MASK_SCAN_STEP_S; sign changes of
    elevation - max(min elevation, mask(azimuth)) are refined by bisection. A segment's TCA
    is the candidate's TCA if it falls inside the segment, else the segment's end nearer it.
    """

    def margin(s: NDArray[np.intp], t: Array) -> Array:
        r, v = track.at(s, t)
        el, _, az, _ = _elevation_and_rate(station, r, v)
        limit = np.maximum(station.min_elevation_deg, mask_elevation(az, station.mask))
        return el - limit

    counts = np.maximum(np.ceil((los - aos) / MASK_SCAN_STEP_S).astype(np.intp), 1) + 1
    owner = np.repeat(np.arange(sat.size), counts)
    offsets = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    times = np.minimum(aos[owner] + offsets * MASK_SCAN_STEP_S, los[owner])
    # The candidate's own AOS/LOS sit on the lowest threshold: nudge inwards by 1 ms.
    times = np.clip(times, aos[owner] + 1e-3, los[owner] - 1e-3)
    values = margin(sat[owner], times)
    above = values > 0
    same = owner[1:] == owner[:-1]
    rise = np.flatnonzero(same & ~above[:-1] & above[1:]) + 1
    fall = np.flatnonzero(same & above[:-1] & ~above[1:])
    starts = np.flatnonzero(above & np.concatenate(([True], ~same)))  # above at first sample
    ends = np.flatnonzero(above & np.concatenate((~same, [True])))  # above at last sample

    rise_t = (
        _solve(lambda t: margin(sat[owner[rise]], t), times[rise - 1], times[rise])
        if rise.size
        else np.empty(0)
    )
    fall_t = (
        _solve(lambda t: margin(sat[owner[fall]], t), times[fall], times[fall + 1])
        if fall.size
        else np.empty(0)
    )

    # Events in sample order: a segment opens at a rise or an "above at first sample",
    # and closes at a fall or an "above at last sample".
    open_idx = np.concatenate((rise, starts))
    open_t = np.concatenate((rise_t, aos[owner[starts]]))
    close_idx = np.concatenate((fall, ends))
    close_t = np.concatenate((fall_t, los[owner[ends]]))
    o = np.argsort(open_idx, kind="stable")
    c = np.argsort(close_idx, kind="stable")
    open_idx, open_t = open_idx[o], open_t[o]
    close_idx, close_t = close_idx[c], close_t[c]
    cand = owner[open_idx]
    seg_tca = np.clip(tca[cand], open_t, close_t)
    return sat[cand], open_t, seg_tca, close_t


def _chunk_worker(
    lines: Sequence[tuple[str, str]],
    stations: Sequence[_StationGeometry],
    jd0: tuple[float, float],
    dut1_s: float,
    t_start_s: float,
    t_end_s: float,
    step_s: float,
    sun: tuple[Array, Array] | None,
) -> tuple[dict[str, Array], list[tuple[int, int, float]]]:
    satrecs = [Satrec.twoline2rv(l1, l2, WGS72) for l1, l2 in lines]
    return _predict_chunk(satrecs, stations, jd0, dut1_s, t_start_s, t_end_s, step_s, sun)


def dut1_seconds(t: datetime) -> float:
    """UT1 - UTC in seconds at `t`, from Skyfield's built-in tables (no download)."""
    from skyfield.api import load

    ts = load.timescale(builtin=True)
    return float(ts.from_datetime(t).dut1)


def predict(
    satellites: Sequence[Satellite],
    stations: Sequence[Station],
    start: datetime,
    end: datetime,
    *,
    workers: int | None = None,
    step_s: float = COARSE_STEP_S,
    progress: Callable[[int, int], None] | None = None,
    sunlit: bool = True,
) -> Prediction:
    """Predict every pass of `satellites` over `stations` between `start` and `end` (UTC).

    Passes that overlap the window are returned whole (true AOS/LOS even outside it),
    sorted by AOS. Satellites whose orbit sgp4 cannot propagate (decayed, bad elements)
    are reported in `Prediction.problems` for the first failing time; their passes before
    that are kept. `workers` processes share the satellites (default: one per core for
    fleets over a few thousand satellites). `progress(done, total)` is called per chunk.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware UTC datetimes")
    if end <= start:
        raise ValueError("end must be after start")
    geometries = [_geometry(s) for s in stations]
    jd0 = _to_jd(start)
    dut1 = dut1_seconds(start)
    t_end_s = (end - start).total_seconds()
    chunks = [
        satellites[i : i + CHUNK_SATELLITES] for i in range(0, len(satellites), CHUNK_SATELLITES)
    ]
    if workers is None:
        workers = min(os.cpu_count() or 1, max(1, len(satellites) // 2000))
    results: list[tuple[dict[str, Array], list[tuple[int, int, float]]]] = []
    sun = sun_teme(start, -EDGE_PAD_S, t_end_s + EDGE_PAD_S) if sunlit else None
    args = [
        ([(s.line1, s.line2) for s in chunk], geometries, jd0, dut1, 0.0, t_end_s, step_s, sun)
        for chunk in chunks
    ]
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for done, result in enumerate(pool.map(_chunk_worker, *zip(*args, strict=True))):
                results.append(result)
                if progress:
                    progress(done + 1, len(chunks))
    else:
        for done, a in enumerate(args):
            results.append(_chunk_worker(*a))
            if progress:
                progress(done + 1, len(chunks))

    columns: dict[str, list[Array]] = {c: [] for c in _COLUMNS}
    problems: list[PropagationProblem] = []
    for chunk_index, (cols, errors) in enumerate(results):
        base = chunk_index * CHUNK_SATELLITES
        for c in _COLUMNS:
            columns[c].append(cols[c] + (base if c == "sat" else 0))
        for i, code, t in errors:
            sat = satellites[base + i]
            problems.append(
                PropagationProblem(
                    node=sat.name,
                    norad_id=sat.norad_id,
                    code=code,
                    message=SGP4_ERRORS.get(code, f"sgp4 error {code}"),
                    first_time=start + timedelta(seconds=max(t, -EDGE_PAD_S)),
                )
            )
    table = {c: np.concatenate(v) if v else np.empty(0) for c, v in columns.items()}
    order = np.lexsort((table["station"], table["sat"], table["aos"]))
    table = {c: v[order] for c, v in table.items()}
    passes = _to_passes(table, satellites, stations, start)
    return Prediction(passes=tuple(passes), problems=tuple(problems), start=start, end=end)


def sun_teme(start: datetime, t0_s: float, t1_s: float) -> tuple[Array, Array]:
    """The Sun's geocentric position in TEME (km) every 10 minutes over [t0_s, t1_s]."""
    from skyfield.api import load
    from skyfield.sgp4lib import TEME

    from groundctl.orbits.sun import sun_gcrs_km

    t_s = np.arange(t0_s, t1_s + 600.0, 600.0)
    ts = load.timescale(builtin=True)
    times = ts.from_datetime(start) + t_s / DAY_S
    rotation = TEME.rotation_at(times)  # (3, 3, n), TEME -> GCRS is its transpose
    sun = sun_gcrs_km(times)  # (3, n)
    return t_s, np.einsum("ijn,jn->ni", rotation, sun)


def _to_passes(
    table: dict[str, Array],
    satellites: Sequence[Satellite],
    stations: Sequence[Station],
    start: datetime,
) -> list[Pass]:
    # Round to the microsecond once, in bulk: timedelta construction dominates otherwise.
    def times(col: str) -> list[datetime]:
        micro = np.round(table[col] * 1e6).astype(np.int64).tolist()
        return [start + timedelta(microseconds=m) for m in micro]

    aos, tca, los = times("aos"), times("tca"), times("los")
    sat_idx = table["sat"].astype(np.intp).tolist()
    st_idx = table["station"].astype(np.intp).tolist()
    max_el = np.round(table["max_el"], 4).tolist()
    aos_az = np.round(table["aos_az"], 3).tolist()
    tca_az = np.round(table["tca_az"], 3).tolist()
    los_az = np.round(table["los_az"], 3).tolist()
    rng = np.round(table["tca_range"], 3).tolist()
    lit_list = (table["sunlit"] > 0.5).tolist()
    passes = []
    for i in range(len(aos)):
        sat = satellites[sat_idx[i]]
        passes.append(
            Pass(
                node=sat.name,
                norad_id=sat.norad_id,
                station=stations[st_idx[i]].name,
                aos=aos[i],
                tca=tca[i],
                los=los[i],
                max_elevation_deg=max_el[i],
                aos_azimuth_deg=aos_az[i],
                tca_azimuth_deg=tca_az[i],
                los_azimuth_deg=los_az[i],
                tca_range_km=rng[i],
                sunlit=bool(lit_list[i]),
                priority=sat.priority,
            )
        )
    return passes
