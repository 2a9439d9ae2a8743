"""Benchmark: planning time of `groundctl plan` for 100 nodes x 10 stations x 24 h.

The fleet: a 100-node Walker shell (10 planes of 10, the demo's orbit) over the demo's
five stations and five more (Svalbard, Fairbanks, Kiruna, Singapore, Hawaii); every node
starts with its battery at 60 % and storage half full, with 40 one-hour jobs queued.
The plan (`groundctl.planning.fleet.plan_fleet`, what `groundctl plan` runs): pass
prediction, each pass's capacity from the link budget, sunlight of every node every
minute, then the plan itself. Target: under 5 s.

Baseline, in the same run: the contact plan of the same fleet and window
(`groundctl passes`: pass prediction and the stations' priority plan), the work the
ground does every day anyway. Prints the median of `--repeats` runs of each, the split of
the plan's time, and the ratio plan / baseline.

    python bench/plan.py                   # 100 nodes x 10 stations x 24 h, 3 repeats
    python bench/plan.py --quick           # 20 nodes x 6 h, 1 repeat: smoke test
    python bench/plan.py --nodes 200 --hours 48
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from groundctl.config import Config, demo_config_path, parse_config
from groundctl.fleet import load_fleet
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.planning.fleet import plan_fleet
from groundctl.planning.forecast import NodeStart
from groundctl.planning.plan import Job

START = datetime(2026, 11, 29, tzinfo=UTC)
MORE_STATIONS = """
[[stations]]
name = "Svalbard"
lat_deg = 78.2298
lon_deg = 15.4078
min_elevation_deg = 5
antennas = 2
turnaround_s = 60

[[stations]]
name = "Fairbanks"
lat_deg = 64.8592
lon_deg = -147.8497
min_elevation_deg = 10
turnaround_s = 60

[[stations]]
name = "Kiruna"
lat_deg = 67.8574
lon_deg = 20.9644
min_elevation_deg = 5
turnaround_s = 60

[[stations]]
name = "Singapore"
lat_deg = 1.3966
lon_deg = 103.8346
min_elevation_deg = 10
turnaround_s = 60

[[stations]]
name = "Hawaii"
lat_deg = 19.0139
lon_deg = -155.6633
min_elevation_deg = 10
turnaround_s = 60
"""


def fleet_config(nodes: int) -> Config:
    """The demo config with a Walker shell of `nodes` (10 per plane) and 10 stations."""
    demo = demo_config_path()
    text = demo.read_text()
    planes = max(1, nodes // 10)
    text = text.replace(
        'walker = { name_format = "ODC-{n:02d}", planes = 4, per_plane = 6,',
        f'walker = {{ name_format = "ODC-{{n:03d}}", planes = {planes}, '
        f"per_plane = {min(nodes, 10)},",
    )
    assert f"planes = {planes}" in text
    marker = "# Mission databases"
    text = text.replace(marker, MORE_STATIONS + "\n" + marker)
    return parse_config(text, demo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 nodes x 6 h, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.hours, args.repeats = 20, 6.0, 1
    config = fleet_config(args.nodes)
    satellites = load_fleet(config, now=START).satellites(None)
    jobs = [Job(s.name, 1 + k, 3600.0, 1) for s in satellites for k in range(40)]
    starts = {
        s.name: NodeStart(soc=0.6, storage_used_b=5e11, results_pending_b=5e11) for s in satellites
    }
    end = START + timedelta(hours=args.hours)

    def baseline() -> float:
        t0 = time.perf_counter()
        prediction = predict(satellites, config.stations, START, end, workers=1)
        plan_contacts(prediction.passes, config.stations)
        return time.perf_counter() - t0

    base, planned, splits = [], [], []
    result = None
    for _ in range(args.repeats):
        base.append(baseline())
        t0 = time.perf_counter()
        result, timings = plan_fleet(
            config, START, args.hours, satellites=satellites, jobs=jobs, starts=starts
        )
        planned.append(time.perf_counter() - t0)
        splits.append(timings)
    assert result is not None
    b, p = statistics.median(base), statistics.median(planned)
    t = splits[planned.index(sorted(planned)[len(planned) // 2])]
    granted = sum(1 for pp in result.passes if pp.granted)
    ran = sum(len(n.job_end_s) for n in result.nodes.values())
    print(
        f"fleet: {len(satellites)} nodes x {len(config.stations)} stations x {args.hours:g} h, "
        f"{len(jobs)} jobs; median of {args.repeats}"
    )
    print(f"  baseline (pass prediction + contact plan): {b:.2f} s")
    print(
        f"  plan: {p:.2f} s (passes {t.predict_s:.2f}, capacity {t.capacity_s:.2f}, "
        f"sunlight {t.sunlight_s:.2f}, plan {t.plan_s:.2f}); {len(result.passes)} passes, "
        f"{granted} used; {ran} jobs run; {result.delivered_b / 1e12:.2f} TB delivered; "
        f"limits broken: {len(result.violations())}"
    )
    print(f"  target 5 s: {'met' if p < 5.0 else 'NOT met'}")
    print(f"  ratio (plan / baseline): {p / b:.2f}")


if __name__ == "__main__":
    main()
