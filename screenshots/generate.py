"""Regenerate the screenshots in this folder: python screenshots/generate.py

Each screenshot is rendered from the embedded demo at a fixed time, so it only changes
when groundctl's output does.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from groundctl.cli.passes import render_table
from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def passes_screenshot(width: int, name: str) -> Path:
    cfg = load_config(demo_config_path())
    fleet = load_fleet(cfg, now=NOW)
    sats = fleet.satellites()
    prediction = predict(sats, cfg.stations, NOW, NOW + timedelta(hours=24))
    planned = sorted(plan_contacts(prediction.passes, cfg.stations), key=lambda p: p.aos)
    prediction = replace(prediction, passes=tuple(planned))
    console = Console(
        record=True,
        width=width,
        force_terminal=True,
        color_system="truecolor",
        file=io.StringIO(),
    )
    title = (
        f"{len(planned)} passes, {len(sats)} nodes, {len(cfg.stations)} stations, "
        f"{NOW:%Y-%m-%d %H:%M}Z +24h, {sum(1 for p in planned if p.scheduled)} scheduled"
    )
    console.print("$ groundctl passes", style="bold")
    console.print(render_table(planned, NOW, 18, title, width))
    path = HERE / name
    path.write_text(console.export_svg(title="groundctl passes"))
    return path


if __name__ == "__main__":
    for width, name in ((120, "passes.svg"), (80, "passes-80x24.svg")):
        print(passes_screenshot(width, name))
