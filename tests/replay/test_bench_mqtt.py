"""bench/mqtt.py runs: a smoke test of `--quick` (not timed: no figure is judged).

Oracle: the frames reached the console through the broker, without duplicates or errors,
and every figure the benchmark is for is printed: the baseline, both throughputs, the
latency and both ratios.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
THROUGH = re.compile(
    r"^  throughput, (backlog|live) \(.*\): ([\d,]+) frames at the console \(the agent "
    r"forwarded [\d,]+\); steady [\d,]+ frames/s, [\d,]+ samples/s; duplicates (\d+), "
    r"errors (\d+)$",
    re.MULTILINE,
)
LATENCY = re.compile(
    r"^  latency \(.*\): ([\d,]+) frames matched of [\d,]+; median [\d,]+\.\d ms, "
    r"p99 [\d,]+\.\d ms",
    re.MULTILINE,
)


@pytest.mark.slow
@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is needed (apt-get install mosquitto)")
def test_quick_run_prints_latency_throughput_and_ratios():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mqtt.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("fleet: "), out
    assert re.search(r"^  baseline \(.*\): [\d,]+ frames archived; steady [\d,]+ frames/s$",
                     out, re.M), out  # fmt: skip
    runs = THROUGH.findall(out)
    assert [label for label, *_ in runs] == ["backlog", "live"], out
    for _, frames, duplicates, errors in runs:
        assert int(frames.replace(",", "")) > 0, out
        assert (duplicates, errors) == ("0", "0"), out
    latency = LATENCY.search(out)
    assert latency is not None and int(latency[1].replace(",", "")) > 0, out
    ratios = re.findall(
        r"^  ratio \(console through the broker, (backlog|live) / baseline, frames/s\): "
        r"\d+\.\d\d$",
        out,
        re.M,
    )
    assert ratios == ["backlog", "live"], out
