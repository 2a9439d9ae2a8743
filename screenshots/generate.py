"""Regenerate the screenshots in this folder: python screenshots/generate.py

Each screenshot is rendered from the embedded demo at a fixed time (the console's from a
finished simulation, groundctl.ui.fixed), so it only changes when groundctl's output does.
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


def console_screenshots() -> list[Path]:
    """The console over a finished simulation (groundctl.ui.fixed): the main screen at
    160x45 and 80x24, and the confirmation of a hazardous command."""
    import asyncio
    import tempfile

    from groundctl.ui.app import ConsoleApp
    from groundctl.ui.fixed import confirm_dialog, drawn, finished_backend

    cfg = load_config(demo_config_path())
    cfg = replace(cfg, commanding=replace(cfg.commanding, operators={"alice": "flight-director"}))
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        backend = finished_backend(cfg, Path(tmp) / "groundctl.db")
        try:
            for size, name, dialog in (
                ((160, 45), "console.svg", False),
                ((80, 24), "console-80x24.svg", False),
                ((160, 45), "console-confirm.svg", True),
            ):

                async def shoot(size=size, name=name, dialog=dialog) -> None:
                    app = ConsoleApp(backend)
                    async with app.run_test(size=size) as pilot:
                        await drawn(app, pilot)
                        if dialog:
                            await confirm_dialog(app, pilot, "ODC-01 SAFE_MODE")
                        (HERE / name).write_text(app.export_screenshot(title="groundctl console"))

                asyncio.run(shoot())
                written.append(HERE / name)
        finally:
            backend.stop()
    return written


if __name__ == "__main__":
    for width, name in ((120, "passes.svg"), (80, "passes-80x24.svg")):
        print(passes_screenshot(width, name))
    for path in console_screenshots():
        print(path)
