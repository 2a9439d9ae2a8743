"""The command palette finds nodes and parameters: choosing a parameter plots it."""

from __future__ import annotations

from testsupport import aio, until
from ui_support import make_backend

from groundctl.ui.app import ConsoleApp
from groundctl.ui.panes.telemetry import TelemetryPane


@aio
async def test_the_palette_plots_a_parameter_it_finds(tmp_path):
    backend = make_backend(tmp_path, gate=False, speed=5, nodes="ODC-01,ODC-07")
    app = ConsoleApp(backend)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: app.started, "the ground segment")
        telemetry = app.main_screen.query_one(TelemetryPane)
        await until(pilot, lambda: telemetry.node == "ODC-01", "ODC-01 shown")
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        app.screen.query_one("Input").value = "ODC-07 POWER_HK.BATT_SOC"
        await until(
            pilot,
            lambda: (
                "ODC-07"
                in str(app.screen.query("OptionList").first().get_option_at_index(0).prompt)
            ),
            "a hit",
        )
        await pilot.press("enter")
        await until(pilot, lambda: ("ODC-07", "POWER_HK.BATT_SOC") in telemetry.traces, "the plot")
        assert telemetry.node == "ODC-07"
        await app.action_quit()
