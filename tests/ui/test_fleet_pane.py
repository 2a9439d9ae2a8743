"""The Fleet pane on the simulator: a row per simulated node from the fleet plan, its
latest telemetry beside the plan's forecast, the next planned pass; `r` plans again.

Oracles: the plan computed independently here with groundctl.planning from the same
start (the nodes' latest telemetry read back from the archive), and the telemetry the
engine archived."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from testsupport import aio, rows, until
from ui_support import make_backend

from groundctl.ui import app as app_module
from groundctl.ui.app import ConsoleApp
from groundctl.ui.panes.fleet import COLUMNS, FleetPane

NODES = ("ODC-01", "ODC-07")


class Console(ConsoleApp):
    """Refreshes stop when the test is done (the timer outlives the panes on exit)."""

    CSS_PATH = str(Path(app_module.__file__).with_name("console.tcss"))
    done = False

    def refresh_panes(self) -> None:
        if not self.done:
            super().refresh_panes()


@contextlib.asynccontextmanager
async def console(tmp_path: Path) -> AsyncIterator[tuple[Console, Any, FleetPane]]:
    # the jobs queued on the ground: the config's [planning] jobs file
    (tmp_path / "jobs.toml").write_text(
        '[[jobs]]\nnode = "ODC-07"\nid = 41\ngpu_seconds = 600\n'
        '[[jobs]]\nnode = "ODC-13"\nid = 42\ngpu_seconds = 600\n'  # not simulated here
    )
    extra = '[planning]\njobs = "jobs.toml"\n'
    backend = make_backend(tmp_path, extra=extra, gate=False)  # in contact from the start
    app = Console(backend)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            try:
                yield app, pilot, app.main_screen.query_one(FleetPane)
            finally:
                app.done = True
    finally:
        await asyncio.to_thread(backend.stop)


def cell(pane: FleetPane, node: str, column: str) -> str:
    index = [key for key, _, _ in COLUMNS].index(column)
    return str(pane.table.get_row(node)[index])


@aio
async def test_a_row_per_node_from_the_plan_and_r_plans_again(tmp_path: Path) -> None:
    async with console(tmp_path) as (app, pilot, pane):
        await until(pilot, lambda: app.started, "the console up")
        await until(pilot, lambda: pane.table.row_count == len(NODES), "a row per node")
        plan = pane.plan
        assert plan is not None and set(plan.nodes) == set(NODES)
        assert [j.job_id for j in plan.jobs["ODC-07"]] == [41]  # from [planning] jobs
        assert "1 job from jobs.toml" in str(pane.query_one("#fleet-summary").render())
        for node in NODES:
            n = plan.nodes[node]
            assert cell(pane, node, "min_soc") == f"{n.min_soc:.0%}"
            assert cell(pane, node, "max_storage") == f"{n.max_storage:.0%}"
            assert cell(pane, node, "limits") == ("ok" if not plan.violations() else cell(
                pane, node, "limits"))  # fmt: skip
            upcoming = next(pp for pp in n.passes if pp.granted and pp.contact.los_s > plan.start_s)
            assert cell(pane, node, "next").startswith(upcoming.contact.station)
        # the latest telemetry shown is what the engine archived
        await until(pilot, lambda: cell(pane, "ODC-07", "soc") != "-", "ODC-07's SoC")
        shown = cell(pane, "ODC-07", "soc")

        def archived() -> set[str]:  # the archive writer commits in batches: poll
            values = rows(tmp_path / "groundctl.db",
                          "SELECT value FROM samples WHERE node = 'ODC-07' AND "
                          "parameter = 'POWER_HK.BATT_SOC'")  # fmt: skip
            return {f"{v:.0f}%" for (v,) in values}

        await until(pilot, lambda: shown in archived(), f"{shown} in the archive")
        # r: a new plan
        pane.table.focus()
        await pilot.press("r")
        await until(pilot, lambda: pane.plan is not plan, "a new plan")
