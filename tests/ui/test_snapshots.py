"""SVG snapshots of the main screen at 160x45 and 80x24 and of the confirmation dialog.

The data are real but fixed (groundctl.ui.fixed): the simulator of two demo nodes runs
from a fixed start with a fixed seed for ten simulated minutes and stops, so the clock
and every value are the same on every run.

Update the snapshots after an intended change of the console's look with
`pytest tests/ui/test_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

import pytest
from ui_support import demo_config

from groundctl.ui.app import ConsoleApp
from groundctl.ui.backend import Backend
from groundctl.ui.fixed import confirm_dialog, drawn, finished_backend


def settled(tmp_path) -> Backend:
    """The console's fixed picture (groundctl.ui.fixed), with alice a flight director."""
    config = demo_config(tmp_path, '[operators]\nalice = "flight-director"\n')
    return finished_backend(config, tmp_path / "groundctl.db")


@pytest.fixture
def backend(tmp_path):
    backend = settled(tmp_path)
    yield backend
    backend.stop()


def test_main_screen_160x45(snap_compare, backend):
    app = ConsoleApp(backend)
    assert snap_compare(app, terminal_size=(160, 45), run_before=lambda p: drawn(app, p))


def test_main_screen_80x24(snap_compare, backend):
    app = ConsoleApp(backend)
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda p: drawn(app, p))


def test_hazardous_confirmation_dialog(snap_compare, backend):
    app = ConsoleApp(backend)

    async def run_before(pilot) -> None:
        await drawn(app, pilot)
        await confirm_dialog(app, pilot, "ODC-01 SAFE_MODE")

    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)
