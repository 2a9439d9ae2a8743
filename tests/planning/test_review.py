"""`groundctl plan --review`: a plan flown by the simulator through the whole ground
segment, then compared with what the archive says was flown.

Four nodes, two hours. The plan's commands are queued in the archive first (time-tagged:
`groundctl plan --queue`; the same commands as its procedure), then a session on the
simulator releases them at their passes and verifies them, archiving the telemetry the
review reads. The oracle for "flown" is the simulator's telemetry in the archive, not the
plan.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from testsupport import aio

from groundctl.archive import open_archive
from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.cli.plan import queue_plan
from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.links.base import LinkState
from groundctl.planning.fleet import plan_commands, plan_fleet, plan_json, plan_procedure
from groundctl.planning.plan import Job
from groundctl.planning.review import review
from groundctl.session import Session

CONFIG = load_config(demo_config_path())
START = datetime(2026, 11, 29, tzinfo=UTC)
NODES = ("ODC-01", "ODC-07", "ODC-13", "ODC-19")
HOURS = 2.0
CMD = re.compile(r'cmd\("([^"]+)", at=datetime\.fromisoformat\("([^"]+)"\)')


@aio
async def test_review_compares_the_plan_with_what_was_flown(tmp_path: Path) -> None:
    satellites = load_fleet(CONFIG, now=START).satellites(list(NODES))
    jobs = [Job(n, k, 900.0) for n in NODES for k in range(1, 9)]
    plan, _ = plan_fleet(CONFIG, START, HOURS, satellites=satellites, jobs=jobs)
    assert plan.delivered_b > 0
    doc = plan_json(plan)
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    archive = tmp_path / "flown.db"

    # queue the plan's commands, time-tagged, as `groundctl plan --queue` does
    queued = await queue_plan(CONFIG, archive, plan)
    assert queued == len(plan_commands(plan)) == len(CMD.findall(plan_procedure(plan)))

    # fly it: the simulator at 300x (as fast as it goes, contacts would pass before the
    # commander's release loop sees them), the commander releasing them
    sim = {
        "speed": 300.0,
        "start": START.isoformat(),
        "nodes": ",".join(NODES),
        "duration": (HOURS + 1.5) * 3600,
    }  # fmt: skip  (news of late jobs comes down)
    flying = Session(CONFIG, archive, sim=True, sim_options=sim)
    await flying.start()
    try:
        link = flying.links[0]
        while link.state not in (LinkState.DOWN, LinkState.CLOSED):  # the end of --duration
            await asyncio.sleep(0.05)  # polling for the end of the simulated window
        assert flying.commander is not None
        left = await flying.commander.queued()
    finally:
        await flying.stop()
    assert left == []  # every planned command went out

    db = open_archive(archive)
    try:
        nodes = {n.node: n for n in review(doc, db)}
        statuses = dict(
            db.conn.execute("SELECT status, count(*) FROM commands GROUP BY status").fetchall()
        )
    finally:
        db.close()
    assert set(nodes) == set(NODES)
    assert statuses.get("completed", 0) >= 0.9 * sum(statuses.values()), statuses
    planned = sum(n.planned_b for n in nodes.values())
    flown = sum(n.flown_b for n in nodes.values())
    assert 0.8 * planned <= flown <= 1.2 * planned, (planned, flown)
    for n in nodes.values():
        assert n.passes_flown == n.passes_planned  # no other node competes for antennas
        if n.jobs_known:  # heard from since its jobs ended: their "done" events are in
            assert abs(n.flown_jobs - n.planned_jobs) <= 1, (n.node, n.flown_jobs, n.planned_jobs)
        else:
            assert n.flown_jobs <= n.planned_jobs
        if n.passes_flown:  # (ODC-19's passes all go to ODC-01, of higher priority)
            assert n.seen_min_soc >= plan.limits.min_soc
    assert sum(n.jobs_known and n.planned_jobs > 0 for n in nodes.values()) >= 2

    result = CliRunner().invoke(
        cli, ["--archive", str(archive), "plan", "--review", str(tmp_path / "plan.json")], obj={}
    )
    assert result.exit_code == 0, result.output
    assert "planned vs flown" in result.output
    assert all(node in result.output for node in NODES)
