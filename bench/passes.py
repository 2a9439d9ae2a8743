"""Benchmark: pass prediction for the whole real Starlink set x 4 stations x 24 h.

Prints, from one run on this machine:
- wall time of groundctl's vectorised predictor over the whole set (all cores);
- wall time of a per-satellite Skyfield `find_events` loop over a sample, scaled to the
  same number of satellite-station-days (the baseline);
- their ratio on a line `ratio: N`;
- peak memory (this process and the largest worker process);
- how many events (rise, culmination, set) of the sample the predictor matched within 1 s.

Usage: python bench/passes.py [--sample N] [--tle FILE]
Targets (issue 2): under 10 s for the whole set, at least 20 times the baseline, every
event of the sample matched.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from skyfield.api import EarthSatellite, load, wgs84

from groundctl.orbits.model import Station
from groundctl.orbits.passes import Satellite, predict
from groundctl.orbits.tle import load_tle_file

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 5, 14, tzinfo=UTC)
HOURS = 24.0
STATIONS = [
    Station("Wallops", 37.9402, -75.4664, 10.0, 10.0),
    Station("Weilheim", 47.8813, 11.0783, 600.0, 10.0),
    Station("Hartebeesthoek", -25.8872, 27.7077, 1540.0, 10.0),
    Station("Awarua", -46.5290, 168.3808, 10.0, 10.0),
]


def peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=150, help="satellites in the Skyfield loop")
    parser.add_argument(
        "--tle", type=Path, default=ROOT / "data" / "tle" / "starlink-2026-05-13.tle"
    )
    args = parser.parse_args()

    tles, problems = load_tle_file(args.tle)
    satellites = [Satellite(t.name, t.norad_id, t.line1, t.line2) for t in tles]
    end = START + timedelta(hours=HOURS)
    print(f"fleet: {len(satellites)} satellites from {args.tle.name} ({len(problems)} bad lines)")
    print(f"work: {len(satellites)} x {len(STATIONS)} stations x {HOURS:g} h")

    t0 = time.perf_counter()
    prediction = predict(satellites, STATIONS, START, end)
    vector_s = time.perf_counter() - t0
    own_mb, worker_mb = peak_mb()
    print(
        f"vectorised: {vector_s:.2f} s, {len(prediction.passes)} passes, "
        f"{len(prediction.problems)} nodes with sgp4 errors"
    )

    # Baseline: Skyfield's find_events, one call per satellite and station.
    ts = load.timescale(builtin=True)
    step = max(1, len(satellites) // args.sample)
    sample = satellites[::step][: args.sample]
    t_start, t_end = ts.from_datetime(START), ts.from_datetime(end)
    events = []
    t0 = time.perf_counter()
    for sat in sample:
        es = EarthSatellite(sat.line1, sat.line2, sat.name, ts)
        for station in STATIONS:
            where = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)
            times, kinds = es.find_events(where, t_start, t_end, station.min_elevation_deg)
            for t, kind in zip(times.utc_datetime(), kinds, strict=True):
                events.append((sat.name, station.name, int(kind), t))
    loop_s = time.perf_counter() - t0
    work = len(sample) * len(STATIONS) * HOURS / 24
    rate = work / loop_s
    scaled_s = len(satellites) * len(STATIONS) * HOURS / 24 / rate
    print(
        f"skyfield loop: {loop_s:.2f} s for {len(sample)} satellites "
        f"({rate:.0f} satellite-station-days/s), scaled to the whole set: {scaled_s:.1f} s"
    )

    index: dict[tuple[str, str], list] = {}
    for p in prediction.passes:
        index.setdefault((p.node, p.station), []).append(p)
    matched = 0
    worst = 0.0
    for node, station, kind, t in events:
        candidates = index.get((node, station), [])
        attr = ("aos", "tca", "los")[kind]
        errors = [abs((getattr(p, attr) - t).total_seconds()) for p in candidates]
        best = min(errors, default=float("inf"))
        if best <= 1.0:
            matched += 1
            worst = max(worst, best)
        else:
            print(f"  unmatched: {node} {station} {attr} {t:%H:%M:%S.%f} (nearest {best:.2f} s)")
    print(f"sample events matched within 1 s: {matched}/{len(events)} (worst {worst:.3f} s)")
    print(f"peak memory: {own_mb:.0f} MB (main process), {worker_mb:.0f} MB (largest worker)")
    print(f"ratio: {scaled_s / vector_s:.1f}")


if __name__ == "__main__":
    main()
