"""bench/replay.py runs: a smoke test of `--quick` (not timed: no figure is judged).

Oracle: the benchmark's own baseline, the same frames through ingest, must have gone
through as many frames and samples as the replay, for both sources.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
RUN = re.compile(
    r"^  (replay --max|baseline \(ingest\)): ([\d,]+) frames \(([\d,]+) samples\) in "
    r"[\d.]+ s = [\d,]+ frames/s, [\d,]+ samples/s",
    re.MULTILINE,
)


@pytest.mark.slow
def test_quick_run_prints_rates_and_ratios_for_both_sources():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replay.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("cFS lab: "), out
    assert "\nfleet: " in out, out
    runs = RUN.findall(out)
    assert [label for label, _, _ in runs] == ["replay --max", "baseline (ingest)"] * 2, out
    for replayed, baseline in (runs[0:2], runs[2:4]):
        assert replayed[1:] == baseline[1:], out  # the same frames and samples
        assert int(replayed[1].replace(",", "")) > 0, out
    assert len(re.findall(r"^  ratio \(replay / baseline, frames/s\): \d+\.\d\d$", out, re.M)) == 2
