"""Antenna pointing and Doppler for a pass: pure geometry and decisions, no I/O.

Where the node is (azimuth, elevation, range and range rate) comes from the same SGP4
frames as pass prediction (`groundctl.orbits.track.look_angles_at`); the range rate is
the central difference of the range over a quarter second either side, which is exact to
well under a millimetre per second (a hundredth of a hertz at 437 MHz).

Pointing a rotator is a matter of azimuth representation. A rotator's azimuth runs over
`min_az..max_az` (often -180..450 or 0..360), so a pass that crosses north (359 -> 1)
must be followed in one continuous sweep: `plan_axes` unwraps the pass's azimuth track
and shifts it by whole turns to fit the rotator's range. When no shift fits and the
rotator's elevation goes to 180 degrees, it tracks flipped (azimuth + 180, elevation
180 - el), which turns a north-crossing overhead pass into one that stays clear of the
azimuth stop. When neither fits, the antenna has to unwind once, and the plan says where.

Doppler, first order (the second-order term is under 0.3 Hz for LEO at 437 MHz), with
range rate `rr` positive when the node moves away:

    downlink (what the station receives) = f_down * (1 - rr / c)
    uplink (what the station sends, so the node hears f_up) = f_up * (1 + rr / c)

rounded to whole hertz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from groundctl.orbits.model import Station
from groundctl.orbits.track import look_angles_at

C_M_S = 299_792_458.0
RATE_STEP_S = 0.25  # half the interval of the central difference giving the range rate

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Look:
    """Where the node is seen from the station at `time_s`."""

    time_s: float
    az_deg: float
    el_deg: float
    range_km: float
    range_rate_m_s: float  # positive: moving away


def look(line1: str, line2: str, station: Station, time_s: float) -> Look:
    """The node's look angles, range and range rate at `time_s` (NaN where SGP4 fails)."""
    times = np.array([time_s, time_s - RATE_STEP_S, time_s + RATE_STEP_S])
    az, el, rng = look_angles_at(line1, line2, station, times)
    rate_m_s = (float(rng[2]) - float(rng[1])) * 1000.0 / (2 * RATE_STEP_S)
    return Look(time_s, float(az[0]), float(el[0]), float(rng[0]), rate_m_s)


def doppler(
    downlink_hz: int | None, uplink_hz: int | None, range_rate_m_s: float
) -> tuple[int | None, int | None]:
    """The (downlink, uplink) frequencies to tune for `range_rate_m_s`, whole hertz."""
    beta = range_rate_m_s / C_M_S
    down = None if downlink_hz is None else round(downlink_hz * (1.0 - beta))
    up = None if uplink_hz is None else round(uplink_hz * (1.0 + beta))
    return down, up


def separation_deg(az1: float, el1: float, az2: float, el2: float) -> float:
    """The angle between two pointing directions (great circle), degrees."""
    a1, e1, a2, e2 = map(math.radians, (az1, el1, az2, el2))
    cos = math.sin(e1) * math.sin(e2) + math.cos(e1) * math.cos(e2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


@dataclass(frozen=True)
class AxisPlan:
    """How a pass is mapped onto a rotator's axes.

    `turns` whole turns are added to the pass's unwrapped azimuth (`flip`: after adding
    180 and mirroring the elevation). `unwinds` is True when the pass cannot be followed
    in one sweep within the rotator's azimuth range: the antenna then takes the other
    way round once, at `unwind_az_deg` (the pass's azimuth where it crosses the stop).
    """

    flip: bool = False
    turns: int = 0
    start_az_deg: float = 0.0  # the rotator azimuth at AOS, in the plan
    unwinds: bool = False
    unwind_az_deg: float | None = None

    def direction(self, az_deg: float, el_deg: float) -> tuple[float, float]:
        """The pass's (az, el) as the rotator's (az, el) before choosing the turn."""
        if self.flip:
            return (az_deg + 180.0) % 360.0, 180.0 - el_deg
        return az_deg % 360.0, el_deg


def plan_axes(
    az_deg: Array,
    el_deg: Array,
    *,
    min_az: float,
    max_az: float,
    max_el: float,
    current_az: float | None = None,
) -> AxisPlan:
    """The way to follow a pass (its azimuth and elevation samples from AOS to LOS) with a
    rotator of azimuth range min_az..max_az and elevation up to max_el.

    Prefers tracking unflipped in one sweep; of the whole-turn shifts that fit, the one
    starting nearest `current_az` (else nearest the middle of the range). Then flipped, if
    the rotator's elevation reaches 180. Otherwise unflipped, unwinding once.
    """
    az = np.asarray(az_deg, dtype=np.float64)
    el = np.asarray(el_deg, dtype=np.float64)
    reference = current_az if current_az is not None else (min_az + max_az) / 2
    options: list[tuple[bool, Array]] = [(False, az)]
    if max_el >= 180.0 - 1e-6:
        options.append((True, az + 180.0))
    for flip, track in options:
        unwrapped = np.degrees(np.unwrap(np.radians(track % 360.0)))
        low, high = float(unwrapped.min()), float(unwrapped.max())
        fits = [
            k
            for k in range(
                math.floor((min_az - high) / 360.0), math.ceil((max_az - low) / 360.0) + 1
            )
            if low + 360.0 * k >= min_az - 1e-9 and high + 360.0 * k <= max_az + 1e-9
        ]
        if fits:
            best = min(fits, key=lambda k: abs(float(unwrapped[0]) + 360.0 * k - reference))
            return AxisPlan(flip, best, float(unwrapped[0]) + 360.0 * best)
    del el  # the elevation only matters for whether flipping is possible
    # No sweep fits: follow unflipped, taking the other way round where the track meets
    # the stop (the azimuth representation nearest the previous one within the range).
    unwrapped = np.degrees(np.unwrap(np.radians(az % 360.0)))
    start = float(unwrapped[0])
    k = min(
        range(math.floor((min_az - start) / 360.0), math.ceil((max_az - start) / 360.0) + 1),
        key=lambda k: (
            abs(start + 360.0 * k - reference)
            if min_az <= start + 360.0 * k <= max_az
            else math.inf
        ),
    )
    shifted = unwrapped + 360.0 * k
    outside = np.nonzero((shifted < min_az) | (shifted > max_az))[0]
    at = float(az[outside[0]] % 360.0) if outside.size else None
    return AxisPlan(False, k, start + 360.0 * k, unwinds=True, unwind_az_deg=at)


def rotator_azimuth(az_deg: float, reference: float, min_az: float, max_az: float) -> float:
    """`az_deg` as the rotator azimuth within min_az..max_az nearest `reference` (the
    previous command, or the plan's track): whole turns added or taken away."""
    candidates = [
        az_deg % 360.0 + 360.0 * k
        for k in range(math.floor((min_az - 360.0) / 360.0), math.ceil(max_az / 360.0) + 1)
    ]
    inside = [a for a in candidates if min_az - 1e-9 <= a <= max_az + 1e-9]
    if not inside:
        raise ValueError(f"azimuth {az_deg:.2f} cannot be reached in {min_az:g}..{max_az:g}")
    return min(inside, key=lambda a: abs(a - reference))


def lead_s(rate_deg_s: float, threshold_deg: float, max_lead_s: float) -> float:
    """How far ahead to point: the time the node takes to cross half the threshold, so
    the antenna waits for it half a threshold ahead and is resent when it is half a
    threshold past (the error stays within half the threshold either way)."""
    if rate_deg_s <= 0 or not math.isfinite(rate_deg_s):
        return 0.0
    return min(max_lead_s, threshold_deg / 2.0 / rate_deg_s)
