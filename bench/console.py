"""Console responsiveness: the full console over a 100-node simulated fleet at speed 60.

Runs the real console app headless (Textual's test driver, 160x45) with the real engine
thread behind it, for a bounded wall-clock time, in two modes measured in the same run:

- baseline: two simulated nodes at speed 1 (an idle console);
- gated: a 100-node Walker shell (10 planes of 10) over the demo's five stations at
  speed 60, nodes transmitting during their contacts (operations as they are);
- all-in-view: the same, every node transmitting all the time (the worst case: 400
  packets per simulated second, 24,000 per wall second).

Prints per mode: refreshes per second (the app redraws at most ten times a second), the
time one refresh of all panes takes (median, 95th percentile, max), how late a 50 ms UI
timer fires (the console's responsiveness to keys: median, 95th percentile, max), frames
archived per second and how far simulated time fell behind. The ratios are each load's
95th-percentile timer lateness over the baseline's.

    python bench/console.py                 # 3 x 40 s
    python bench/console.py --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from groundctl.config import demo_config_path, parse_config
from groundctl.ui.app import ConsoleApp
from groundctl.ui.backend import Backend

START = "2026-11-29T00:00:00+00:00"


def fleet_config(nodes: int):
    """The demo's stations with a Walker shell of `nodes` (10 per plane)."""
    demo = demo_config_path()
    text = demo.read_text()
    planes = max(1, nodes // 10)
    text = text.replace(
        'walker = { name_format = "ODC-{n:02d}", planes = 4, per_plane = 6,',
        f'walker = {{ name_format = "ODC-{{n:03d}}", planes = {planes}, per_plane = 10,',
    )
    return parse_config(text, demo)


async def measure(
    label: str, nodes: int, speed: float, seconds: float, gate: bool = False
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = fleet_config(nodes)
        names = "" if nodes >= 100 else "ODC-001,ODC-002"
        backend = Backend(
            config,
            Path(tmp) / "console.db",
            sim=True,
            sim_options={"speed": speed, "start": START, "gate": gate, "nodes": names},
        )
        app = ConsoleApp(backend)
        refresh_ms: list[float] = []
        original = app.refresh_panes

        def timed() -> None:
            t0 = time.perf_counter()
            original()
            refresh_ms.append((time.perf_counter() - t0) * 1000)

        app.refresh_panes = timed  # type: ignore[method-assign]
        late_ms: list[float] = []
        async with app.run_test(size=(160, 45)) as pilot:
            while not app.started:
                await pilot.pause(0.1)
            loop = asyncio.get_running_loop()
            archived0 = _archived(backend)
            t_end = loop.time() + seconds
            expected = loop.time() + 0.05
            while loop.time() < t_end:
                await asyncio.sleep(0.05)
                now = loop.time()
                late_ms.append(max(0.0, (now - expected) * 1000))
                expected = now + 0.05
            archived = _archived(backend) - archived0
            lag = backend.state.lag_s
            await app.action_quit()
        backend.stop()
    q = statistics.quantiles
    result = {
        "refreshes_per_s": len(refresh_ms) / seconds,
        "refresh_median_ms": statistics.median(refresh_ms),
        "refresh_p95_ms": q(refresh_ms, n=20)[18],
        "refresh_max_ms": max(refresh_ms),
        "late_median_ms": statistics.median(late_ms),
        "late_p95_ms": q(late_ms, n=20)[18],
        "late_max_ms": max(late_ms),
        "frames_per_s": archived / seconds,
        "lag_s": lag,
    }
    print(
        f"{label:<11} refreshes {result['refreshes_per_s']:5.1f}/s   "
        f"refresh {result['refresh_median_ms']:6.1f} / {result['refresh_p95_ms']:6.1f} / "
        f"{result['refresh_max_ms']:6.1f} ms   "
        f"timer late {result['late_median_ms']:6.1f} / {result['late_p95_ms']:6.1f} / "
        f"{result['late_max_ms']:6.1f} ms   "
        f"{result['frames_per_s']:8.0f} frames/s   lag {result['lag_s']:5.1f} s"
    )
    return result


def _archived(backend: Backend) -> int:
    engine = backend.session.engine if backend.session else None
    writer = engine.writer if engine else None
    return int(writer.committed_frames) if writer is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    print("console over the simulator: refresh and timer lateness as median / p95 / max")
    base = asyncio.run(measure("baseline", 2, 1.0, args.seconds))
    gated = asyncio.run(measure("gated", 100, 60.0, args.seconds, gate=True))
    load = asyncio.run(measure("all-in-view", 100, 60.0, args.seconds))
    for name, result in (("gated", gated), ("all-in-view", load)):
        ratio = result["late_p95_ms"] / max(base["late_p95_ms"], 0.1)
        print(f"ratio {name}: p95 timer lateness / idle = {ratio:.1f}x")


if __name__ == "__main__":
    main()
