"""Link budgets, and the downlink capacity of predicted passes.

A `LinkBudget` turns where a node is in a station's sky (elevation, slant range) into the
useful downlink rate in bytes per second. Three kinds:

- ``table``: rate steps by elevation, ``((min_elevation_deg, bytes_per_s), ...)``; the
  rate is the step of the highest minimum elevation at or below the node's elevation,
  nothing below the lowest.
- ``fspl``: a free-space link budget. From the slant range d and the frequency f,
  ``FSPL = 20 log10(4 pi d f / c)`` and
  ``C/N0 = EIRP + G/T - FSPL - losses + 228.6`` (dB-Hz, 228.6 being -10 log10 of
  Boltzmann's constant); a bit rate Rb of the modem works when
  ``Eb/N0 = C/N0 - 10 log10(Rb) >= required Eb/N0 + implementation margin`` and the
  elevation is at least the budget's (and that step's) minimum; the highest such bit
  rate is used, converted to bytes.
- ``margin``: the simulator's own rule (`SIMULATOR_BUDGET`): a link margin that falls
  with range exactly as free-space loss does,
  ``margin = reference_margin_db + 20 log10(reference_range_km / range)``, and rate steps
  ``((min_margin_db, bytes_per_s), ...)`` chosen like the table's.

Every kind loses `overhead` (0 to 1) of its rate to framing and protocol.

`pass_capacities` integrates the rate over each pass, all passes at once: one sgp4 call
per node over the samples of all its passes, then the predictor's own frames
(groundctl.orbits.geometry: TEME rotated by the IAU 1982 sidereal angle of UT1, look angles
from the station's WGS84 east-north-up frame), as groundctl.orbits.track does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import WGS72, Satrec

from groundctl.orbits.geometry import (
    DAY_S,
    enu_basis,
    gmst1982,
    hermite,
    look_angles,
    station_ecef,
    teme_to_ecef,
)
from groundctl.orbits.model import Pass, Station
from groundctl.orbits.track import JD_UNIX_EPOCH
from groundctl.sim.node import NodeParams

Array = NDArray[np.float64]
BudgetKind = Literal["table", "fspl", "margin"]

SPEED_OF_LIGHT_M_S = 299_792_458.0
BOLTZMANN_DB = 228.6  # -10 log10(k), dBW/(K Hz)
# Grid intervals where the rate steps are re-sampled this much finer (see pass_capacities).
REFINE_SUBSTEPS = 16


def fspl_db(range_km: ArrayLike, frequency_hz: float) -> Array:
    """Free-space path loss (dB) over `range_km` at `frequency_hz`: 20 log10(4 pi d f / c)."""
    d_m = np.asarray(range_km, dtype=np.float64) * 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        loss: Array = 20.0 * np.log10(4.0 * math.pi * d_m * frequency_hz / SPEED_OF_LIGHT_M_S)
    return loss


def _steps(value: Array, thresholds: Array, rates: Array) -> Array:
    """The rate of the highest threshold at or below `value` (thresholds ascending), 0 below
    the lowest or where `value` is NaN."""
    index = np.searchsorted(thresholds, value, side="right") - 1
    ok = (index >= 0) & np.isfinite(value)
    out: Array = np.where(ok, rates[np.clip(index, 0, rates.size - 1)], 0.0)
    return out


@dataclass(frozen=True)
class LinkBudget:
    """How fast a node can downlink to a station, from elevation and slant range.

    Build one with `LinkBudget.table`, `LinkBudget.fspl` or `LinkBudget.margin`; the
    fields of the other kinds keep their defaults. Values are checked on construction
    (ValueError).
    """

    kind: BudgetKind
    overhead: float = 0.0
    # table: ((min_elevation_deg, bytes_per_s), ...), elevations strictly increasing
    rates: tuple[tuple[float, float], ...] = ()
    # fspl
    frequency_hz: float = 0.0
    eirp_dbw: float = 0.0
    gt_dbk: float = 0.0
    losses_db: float = 0.0
    required_ebn0_db: float = 0.0
    margin_db: float = 0.0
    rate_steps_bps: tuple[float, ...] = ()  # bit rates, strictly increasing
    min_elevation_deg: float = -90.0
    step_min_elevation_deg: tuple[float, ...] = ()  # empty, or one per rate step
    # margin: margin_db = reference_margin_db + 20 log10(reference_range_km / range_km)
    reference_margin_db: float = 0.0
    reference_range_km: float = 0.0
    margin_steps: tuple[tuple[float, float], ...] = ()  # ((min_margin_db, bytes_per_s), ...)

    def __post_init__(self) -> None:
        if not 0.0 <= self.overhead < 1.0:
            raise ValueError(f"overhead must be in [0, 1), not {self.overhead}")
        if self.kind == "table":
            _check_steps(self.rates, "rates")
        elif self.kind == "fspl":
            if not self.frequency_hz > 0:
                raise ValueError("frequency_hz must be positive")
            if not self.rate_steps_bps:
                raise ValueError("rate_steps_bps must not be empty")
            if any(not r > 0 for r in self.rate_steps_bps):
                raise ValueError("rate_steps_bps must be positive")
            if any(b <= a for a, b in itertools.pairwise(self.rate_steps_bps)):
                raise ValueError("rate_steps_bps must be strictly increasing")
            if self.step_min_elevation_deg and len(self.step_min_elevation_deg) != len(
                self.rate_steps_bps
            ):
                raise ValueError("step_min_elevation_deg needs one value per rate step")
        elif self.kind == "margin":
            if not self.reference_range_km > 0:
                raise ValueError("reference_range_km must be positive")
            _check_steps(self.margin_steps, "margin_steps")
        else:
            raise ValueError(f"unknown link budget kind {self.kind!r}")

    # --- constructors -------------------------------------------------------------------
    @classmethod
    def table(cls, rates: Sequence[tuple[float, float]], *, overhead: float = 0.0) -> LinkBudget:
        """Rate steps by elevation: ((min_elevation_deg, bytes_per_s), ...), ascending."""
        return cls("table", overhead, rates=tuple((float(e), float(r)) for e, r in rates))

    @classmethod
    def fspl(
        cls,
        *,
        frequency_hz: float,
        eirp_dbw: float,
        gt_dbk: float,
        losses_db: float,
        required_ebn0_db: float,
        margin_db: float,
        rate_steps_bps: Sequence[float],
        min_elevation_deg: float = -90.0,
        step_min_elevation_deg: Sequence[float] = (),
        overhead: float = 0.0,
    ) -> LinkBudget:
        """A free-space link budget with the modem's bit rates (ascending)."""
        return cls(
            "fspl",
            overhead,
            frequency_hz=float(frequency_hz),
            eirp_dbw=float(eirp_dbw),
            gt_dbk=float(gt_dbk),
            losses_db=float(losses_db),
            required_ebn0_db=float(required_ebn0_db),
            margin_db=float(margin_db),
            rate_steps_bps=tuple(float(r) for r in rate_steps_bps),
            min_elevation_deg=float(min_elevation_deg),
            step_min_elevation_deg=tuple(float(e) for e in step_min_elevation_deg),
        )

    @classmethod
    def margin(
        cls,
        *,
        reference_margin_db: float,
        reference_range_km: float,
        steps: Sequence[tuple[float, float]],
        overhead: float = 0.0,
    ) -> LinkBudget:
        """A link margin falling as free-space loss does from `reference_margin_db` at
        `reference_range_km`, with rate steps ((min_margin_db, bytes_per_s), ...)."""
        return cls(
            "margin",
            overhead,
            reference_margin_db=float(reference_margin_db),
            reference_range_km=float(reference_range_km),
            margin_steps=tuple((float(m), float(r)) for m, r in steps),
        )

    # --- the rate -----------------------------------------------------------------------
    def cn0_dbhz(self, range_km: ArrayLike) -> Array:
        """C/N0 (dB-Hz) of an fspl budget at `range_km`."""
        cn0: Array = (
            self.eirp_dbw
            + self.gt_dbk
            - fspl_db(range_km, self.frequency_hz)
            - self.losses_db
            + BOLTZMANN_DB
        )
        return cn0

    def link_margin_db(self, range_km: ArrayLike) -> Array:
        """The margin (dB) of a `margin` budget at `range_km` (as the simulator computes
        it, without its noise)."""
        r = np.maximum(np.asarray(range_km, dtype=np.float64), 1.0)
        margin: Array = self.reference_margin_db + 20.0 * np.log10(self.reference_range_km / r)
        return margin

    def rate(self, elevation_deg: ArrayLike, range_km: ArrayLike) -> Array:
        """Useful downlink rate (bytes/s) at these elevations (deg) and slant ranges (km);
        the two broadcast. NaN inputs give 0."""
        el = np.asarray(elevation_deg, dtype=np.float64)
        rng = np.asarray(range_km, dtype=np.float64)
        el, rng = np.broadcast_arrays(el, rng)
        if self.kind == "table":
            thresholds = np.array([e for e, _ in self.rates])
            rates = np.array([r for _, r in self.rates])
            raw = _steps(el, thresholds, rates)
        elif self.kind == "margin":
            thresholds = np.array([m for m, _ in self.margin_steps])
            rates = np.array([r for _, r in self.margin_steps])
            raw = _steps(self.link_margin_db(rng), thresholds, rates)
        else:
            cn0 = self.cn0_dbhz(rng)
            needed = self.required_ebn0_db + self.margin_db
            step_min = self.step_min_elevation_deg or (-90.0,) * len(self.rate_steps_bps)
            bits = np.zeros(el.shape)
            for bps, step_el in zip(self.rate_steps_bps, step_min, strict=True):
                ok = (cn0 - 10.0 * math.log10(bps) >= needed) & (
                    el >= max(self.min_elevation_deg, step_el)
                )
                bits = np.where(ok, bps, bits)  # ascending: the highest that works wins
            raw = bits / 8.0
        out: Array = raw * (1.0 - self.overhead)
        return out


def _check_steps(steps: tuple[tuple[float, float], ...], name: str) -> None:
    if not steps:
        raise ValueError(f"{name} must not be empty")
    if any(not math.isfinite(t) or not (math.isfinite(r) and r >= 0) for t, r in steps):
        raise ValueError(f"{name}: thresholds must be finite, rates finite and >= 0")
    if any(b[0] <= a[0] for a, b in itertools.pairwise(steps)):
        raise ValueError(f"{name}: thresholds must be strictly increasing")


def simulator_budget(params: NodeParams | None = None) -> LinkBudget:
    """The link budget of groundctl.sim.node (`SimNode.step`, "link and downlink").

    The simulator computes ``margin = 6 + 20 log10(1500 / range_km)`` dB (plus Gaussian
    noise of 0.2 dB) and downlinks ``downlink_rate_bps`` bytes/s when the margin is at
    least 3 dB, half that from 1 dB, nothing below. That margin falls with range exactly
    as free-space path loss does (20 dB a decade), so it is an fspl budget whose
    Eb/N0 - required - implementation margin is 6 dB at 1500 km; but its half rate needs
    only 2 dB less margin, not the 3 dB that halving the bit rate alone gives, so it is
    expressed in the `margin` form (full rate up to 2119 km, half to 2667 km). The noise
    is left out: it blurs the two range thresholds by about +-50 km, symmetrically. No
    elevation limit: the simulator has contact wherever the station's mask is cleared,
    which is what a predicted pass is. No overhead: the rate is already in useful bytes.
    """
    p = params or NodeParams()
    return LinkBudget.margin(
        reference_margin_db=6.0,
        reference_range_km=1500.0,
        steps=((1.0, 0.5 * p.downlink_rate_bps), (3.0, p.downlink_rate_bps)),
    )


SIMULATOR_BUDGET = simulator_budget()


# --- capacity of passes --------------------------------------------------------------------
@lru_cache(maxsize=64)
def _dut1_of_day(day: int) -> float:
    """UT1 - UTC (s) on a UTC day (days since the Unix epoch), as the predictor takes it."""
    from groundctl.orbits.passes import dut1_seconds

    return dut1_seconds(datetime.fromtimestamp(day * DAY_S + DAY_S / 2, UTC))


@lru_cache(maxsize=1024)
def _satrec(line1: str, line2: str) -> Satrec:
    return Satrec.twoline2rv(line1, line2, WGS72)


def _sample_times(
    aos: Array, tca: Array, los: Array, step_s: float
) -> tuple[NDArray[np.intp], Array]:
    """(pass index, time) of every sample, by pass then time: AOS, every step_s after it,
    TCA and LOS."""
    intervals = np.maximum(np.ceil((los - aos) / step_s - 1e-9), 1).astype(np.intp)
    counts = intervals + 1
    owner = np.repeat(np.arange(aos.size), counts)
    offsets = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    times = np.minimum(aos[owner] + offsets * step_s, los[owner])
    owner = np.concatenate((owner, np.arange(aos.size)))
    times = np.concatenate((times, np.clip(tca, aos, los)))
    order = np.lexsort((times, owner))
    return owner[order], times[order]


@dataclass(frozen=True)
class _Samples:
    """Where the nodes are at the samples: Earth-fixed position and velocity (km, km/s),
    seen from each sample's station (position and east-north-up basis)."""

    r: Array
    v: Array
    origin: Array
    basis: Array

    def look(self, index: NDArray[np.intp], r: Array) -> tuple[Array, Array]:
        """Elevation (deg) and range (km) of positions `r` (shape (len(index), ..., 3))
        seen from the stations of samples `index`."""
        extra = r.ndim - 2
        origin = self.origin[index].reshape(index.size, *(1,) * extra, 3)
        rho_enu = np.einsum("n...k,nik->n...i", r - origin, self.basis[index])
        el, _, rng = look_angles(rho_enu)
        return el, rng


def _propagate(
    day0: int,
    times: Array,
    node_of: NDArray[np.intp],
    lines: Sequence[tuple[str, str]],
    station_of: NDArray[np.intp],
    stations: Sequence[Station],
    dut1_s: float,
) -> _Samples:
    """Node `node_of[i]` at `times[i]` seconds after the start of Unix day `day0`, seen
    from station `station_of[i]`, for every i: one sgp4 call per node; NaN where sgp4
    fails."""
    days = np.floor(times / DAY_S)
    whole = JD_UNIX_EPOCH + day0 + days
    fraction = (times - days * DAY_S) / DAY_S
    r = np.empty((times.size, 3))
    v = np.empty((times.size, 3))
    order = np.argsort(node_of, kind="stable")
    bounds = np.flatnonzero(np.diff(node_of[order])) + 1
    for group in np.split(order, bounds):
        if group.size == 0:
            continue
        line1, line2 = lines[int(node_of[group[0]])]
        errors, rg, vg = _satrec(line1, line2).sgp4_array(whole[group], fraction[group])
        bad = np.asarray(errors) != 0
        r[group] = np.where(bad[:, None], np.nan, rg)
        v[group] = np.where(bad[:, None], np.nan, vg)
    theta, rate = gmst1982(whole + (fraction + dut1_s / DAY_S))
    ecef, vel = teme_to_ecef(r, v, theta, rate)
    positions = np.array([station_ecef(s.lat_deg, s.lon_deg, s.alt_m) for s in stations])
    bases = np.array([enu_basis(s.lat_deg, s.lon_deg) for s in stations])
    return _Samples(ecef, vel, positions[station_of], bases[station_of])


def _integrate(
    budget: LinkBudget,
    owner: NDArray[np.intp],
    t: Array,
    samples: _Samples,
    index: NDArray[np.intp],
    n: int,
) -> Array:
    """Trapezoid integral of budget.rate over each owner's samples (`index` into
    `samples`, contiguous per owner, in time order).

    The rate is a step function of time; the trapezoid rule alone would place a step
    anywhere in its interval. So each interval whose two ends differ is re-sampled
    REFINE_SUBSTEPS times finer, the orbit interpolated between its ends with cubic
    Hermite polynomials (metres of error, no sgp4 call): a step then lands within
    step_s / REFINE_SUBSTEPS / 2 of where it is. With TCA among the samples the rate rises
    then falls in every pass, so an interval with equal ends holds no step.
    """
    el, rng = samples.look(index, samples.r[index])
    rate = np.nan_to_num(budget.rate(el, rng))
    same = owner[1:] == owner[:-1]
    dt = t[1:] - t[:-1]
    area = 0.5 * (rate[1:] + rate[:-1]) * dt
    jump = np.flatnonzero(same & (rate[1:] != rate[:-1]))
    if jump.size:
        a, b = index[jump], index[jump + 1]
        h = dt[jump][:, None]
        s = np.broadcast_to(
            np.linspace(0.0, 1.0, REFINE_SUBSTEPS + 1)[1:-1], (jump.size, REFINE_SUBSTEPS - 1)
        )
        r = samples.r
        v = samples.v
        # velocities scaled by the interval: hermite() with a unit interval
        pos, _ = hermite(
            r[a][:, None, :], (v[a] * h)[:, None, :], r[b][:, None, :], (v[b] * h)[:, None, :],
            s, 1.0,
        )  # fmt: skip
        sub_el, sub_rng = samples.look(a, pos)
        sub = np.nan_to_num(budget.rate(sub_el, sub_rng))
        ends = np.concatenate((rate[jump, None], sub, rate[jump + 1, None]), axis=1)
        inner = 0.5 * (ends[:, 1:] + ends[:, :-1]).sum(axis=1) / REFINE_SUBSTEPS
        area[jump] = inner * dt[jump]
    total: Array = np.asarray(
        np.bincount(owner[:-1][same], weights=area[same], minlength=n), dtype=np.float64
    )
    return total


def pass_capacities(
    passes: Sequence[Pass],
    tles: Mapping[str, tuple[str, str]],
    stations: Mapping[str, Station],
    budget_for: Callable[[str, str], LinkBudget],
    step_s: float = 10.0,
) -> NDArray[np.float64]:
    """Downlink capacity (bytes) of each pass: the useful rate integrated from AOS to LOS.

    `tles` maps node name to its TLE lines, `stations` station name to the station,
    `budget_for(station, node)` gives the budget of a pair (called once per pair).
    The pass is sampled at AOS, every `step_s` after it, and at LOS, all passes at once
    (one sgp4 call per node), and at TCA; the rate is integrated with the trapezoid rule,
    intervals where it steps being re-sampled REFINE_SUBSTEPS times finer (the orbit
    interpolated with cubic Hermite polynomials), since a step function is what a budget
    mostly is. Where sgp4 fails the rate is 0. Raises KeyError for a node or station that
    is not in the mappings.
    """
    if step_s <= 0:
        raise ValueError("step_s must be positive")
    n = len(passes)
    if n == 0:
        return np.zeros(0)
    node_names = sorted({p.node for p in passes})
    station_names = sorted({p.station for p in passes})
    node_index = {name: i for i, name in enumerate(node_names)}
    station_index = {name: i for i, name in enumerate(station_names)}
    lines = [tles[name] for name in node_names]
    station_list = [stations[name] for name in station_names]

    budgets: dict[tuple[str, str], LinkBudget] = {}
    budget_ids: dict[LinkBudget, int] = {}
    pass_budget = np.empty(n, dtype=np.intp)
    for i, p in enumerate(passes):
        pair = (p.station, p.node)
        budget = budgets.get(pair)
        if budget is None:
            budget = budgets[pair] = budget_for(*pair)
        pass_budget[i] = budget_ids.setdefault(budget, len(budget_ids))
    budget_list = list(budget_ids)

    # Times in seconds from the start of the first AOS's day: microseconds stay exact.
    first = min(p.aos for p in passes)
    day0 = int(first.timestamp() // DAY_S)
    epoch = datetime.fromtimestamp(day0 * DAY_S, UTC)
    aos = np.array([(p.aos - epoch).total_seconds() for p in passes])
    tca = np.array([(p.tca - epoch).total_seconds() for p in passes])
    los = np.array([(p.los - epoch).total_seconds() for p in passes])
    node_of_pass = np.array([node_index[p.node] for p in passes], dtype=np.intp)
    station_of_pass = np.array([station_index[p.station] for p in passes], dtype=np.intp)
    # Passes grouped by budget, so that each budget's samples are contiguous.
    order = np.argsort(pass_budget, kind="stable")
    owner, times = _sample_times(aos[order], tca[order], los[order], step_s)
    dut1 = _dut1_of_day(day0)
    samples = _propagate(
        day0,
        times,
        node_of_pass[order][owner],
        lines,
        station_of_pass[order][owner],
        station_list,
        dut1,
    )
    capacity = np.zeros(n)
    sample_budget = pass_budget[order][owner]
    bounds = np.flatnonzero(np.diff(sample_budget)) + 1
    for part in np.split(np.arange(owner.size), bounds):
        b = budget_list[int(sample_budget[part[0]])]
        capacity += _integrate(b, owner[part], times[part], samples, part, n)
    result: NDArray[np.float64] = np.zeros(n)
    result[order] = capacity
    return result
