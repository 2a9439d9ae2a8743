"""The planner on its own: antenna grants checked by brute force, fair share, the plan's
forecast against its limits, the job file's errors, the procedure it writes (every
command valid for the mission database), `groundctl plan` and bench/plan.py."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.commanding.syntax import parse, validate
from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.mdb.loader import load_mission
from groundctl.orbits.model import Station
from groundctl.paths import data_dir
from groundctl.planning.fleet import PlanError, plan_fleet, plan_procedure, read_jobs
from groundctl.planning.forecast import NodeStart
from groundctl.planning.plan import Contact, Job, NodeInput, assign_antennas, make_plan

ROOT = Path(__file__).parents[2]
CONFIG = load_config(demo_config_path())
START = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_plan():  # type: ignore[no-untyped-def]
    satellites = load_fleet(CONFIG, now=START).satellites(None)
    jobs = [Job(s.name, 1 + k, 3600.0, k % 4) for s in satellites for k in range(30)]
    starts = {s.name: NodeStart(soc=0.6, storage_used_b=6e11, results_pending_b=6e11)
              for s in satellites}  # fmt: skip
    plan, _ = plan_fleet(CONFIG, START, 24.0, satellites=satellites, jobs=jobs, starts=starts)
    return plan, jobs


def test_antennas_never_double_booked_and_refusals_are_real(demo_plan) -> None:  # type: ignore[no-untyped-def]
    plan, _ = demo_plan
    stations = {s.name: s for s in CONFIG.stations}
    granted = [pp for pp in plan.passes if pp.granted]
    assert granted and any(not pp.granted for pp in plan.passes)
    for i, a in enumerate(granted):
        for b in granted[i + 1 :]:  # one transmitter: never two stations at once
            if a.node == b.node:
                assert b.contact.aos_s >= a.contact.los_s or a.contact.aos_s >= b.contact.los_s
        gap = stations[a.contact.station].turnaround_s
        for b in granted[i + 1 :]:
            if (a.contact.station, a.antenna) != (b.contact.station, b.antenna):
                continue
            apart = (
                b.contact.aos_s >= a.contact.los_s + gap or a.contact.aos_s >= b.contact.los_s + gap
            )
            assert apart, (a.contact, b.contact)
    for pp in plan.passes:
        if pp.granted:
            continue
        if pp.reason.startswith("node busy: "):  # its node holds an overlapping pass
            assert any(
                g.node == pp.node and g.contact.aos_s < pp.contact.los_s
                and pp.contact.aos_s < g.contact.los_s for g in granted
            ), pp.contact  # fmt: skip
            continue
        # refused: every antenna of its station holds an overlapping granted contact
        station = stations[pp.contact.station]
        for antenna in range(1, station.antennas + 1):
            assert any(
                g.contact.station == station.name and g.antenna == antenna
                and g.contact.aos_s < pp.contact.los_s + station.turnaround_s
                and pp.contact.aos_s - station.turnaround_s < g.contact.los_s
                for g in granted
            ), pp.contact  # fmt: skip
        assert pp.reason.startswith("antenna busy: ")


def test_fair_share_between_nodes_with_the_same_demand() -> None:
    station = Station("GS", 0.0, 0.0, antennas=1)
    contacts = [
        Contact(node, "GS", 1000.0 * k, 1000.0 * k + 500, 40.0, 1e9)
        for k in range(10)
        for node in ("A", "B")
    ]
    decided = assign_antennas(contacts, {"GS": station}, {"A": 5e9, "B": 5e9})
    won = [c.node for c, (g, _, _) in zip(contacts, decided, strict=True) if g]
    assert won.count("A") == won.count("B") == 5
    # a node that needs less gets less, a node that needs more gets more
    decided = assign_antennas(contacts, {"GS": station}, {"A": 1e9, "B": 9e9})
    won = [c.node for c, (g, _, _) in zip(contacts, decided, strict=True) if g]
    assert won.count("B") > won.count("A") >= 1


def test_plan_forecast_respects_limits_and_reports_what_does_not_fit(demo_plan) -> None:  # type: ignore[no-untyped-def]
    plan, jobs = demo_plan
    assert plan.violations() == []
    for node in plan.nodes.values():
        assert node.min_soc >= plan.limits.min_soc
        assert node.max_storage <= plan.limits.storage_high_water
        # every job submitted has started by the end of the window; every one not
        # submitted is deferred with its reason; none is both
        submitted = _submitted(plan, node.node)
        deferred = {job.job_id for job, _ in node.deferred}
        mine = {j.job_id for j in jobs if j.node == node.node}
        assert mine == submitted | deferred and not submitted & deferred
        assert submitted <= set(node.job_start_s)
        for _, why in node.deferred:
            assert why.split(":")[0] in ("storage high-water", "power", "thermal", "no time",
                                         "no contact in the window to submit it")  # fmt: skip
    assert plan.delivered_b > 0


def _submitted(plan, node: str) -> set[int]:  # type: ignore[no-untyped-def]
    return {j for pp in plan.passes if pp.node == node for j in pp.submitted}


def test_naive_plan_breaks_the_limits_the_plan_keeps() -> None:
    t = 60.0 * np.arange(24 * 60 + 200)
    lit = np.array([(t % 5700) < 3600])
    contacts = [Contact("N", "GS", 900.0 + 10800 * k, 1380.0 + 10800 * k, 50.0, 4e9)
                for k in range(8)]  # fmt: skip
    node = NodeInput("N", NodeStart(soc=0.6, storage_used_b=8.5e11, results_pending_b=8.5e11),
                     tuple(Job("N", k, 7200.0) for k in range(1, 41)))  # fmt: skip
    stations = {"GS": Station("GS", 0.0, 0.0)}
    good = make_plan(0.0, 86400.0, [node], contacts, lit, stations)
    naive = make_plan(0.0, 86400.0, [node], contacts, lit, stations, policy="naive")
    assert good.violations() == []
    assert any("state of charge" in v for v in naive.violations())
    assert any("storage" in v for v in naive.violations())
    # the plan held back because of the limits the naive way broke, and says so
    decisions = [pp.decision for pp in good.nodes["N"].passes if pp.granted]
    assert any("storage high-water" in d or "power" in d for d in decisions), decisions
    assert good.nodes["N"].deferred  # not everything fits in the day


def test_job_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text('[[jobs]]\nnode = "ODC-07"\nid = 1\ngpu_seconds = 3600\npriority = "SOON"\n')
    with pytest.raises(PlanError) as caught:
        read_jobs(path, ["ODC-07"])
    assert caught.value.message == (
        f"{path}:5: jobs[0].priority: expected one of LOW, NORMAL, HIGH, URGENT (or 0..3), "
        "found 'SOON'"
    )
    path.write_text('[[jobs]]\nnode = "ODC-99"\nid = 1\ngpu_seconds = 3600\n')
    with pytest.raises(PlanError, match="no node 'ODC-99' in the fleet"):
        read_jobs(path, ["ODC-07"])
    path.write_text('[[jobs]]\nnode = "ODC-07"\nid = 1\ngpu_seconds = 0\n')
    with pytest.raises(PlanError, match=r"jobs\[0\]\.gpu_seconds"):
        read_jobs(path, ["ODC-07"])
    path.write_text('[[jobs]]\nnode = "ODC-07"\nid = 1\ngpu_seconds = 5\n' * 2)
    with pytest.raises(PlanError, match="listed twice"):
        read_jobs(path, ["ODC-07"])


def test_procedure_commands_are_valid_and_time_tagged(demo_plan) -> None:  # type: ignore[no-untyped-def]
    plan, _ = demo_plan
    text = plan_procedure(plan)
    tree = ast.parse(text)  # it is Python
    calls = re.findall(r'cmd\("([^"]+)", at=datetime.fromisoformat\("([^"]+)"\)', text)
    granted = [pp for pp in plan.passes if pp.granted and pp.mode is not None]
    assert len(calls) >= 2 * len(granted)
    mission = load_mission(data_dir() / "missions" / "odc-node.toml")
    for command, at in calls:
        validate(parse(command), mission)  # the mission database accepts it
        when = datetime.fromisoformat(at).timestamp()
        node = command.split()[0]
        # tagged for a time within one of the node's granted passes (AOS, or a downlink
        # started when results land), and never before the window
        assert (
            any(pp.node == node and pp.contact.aos_s <= when < pp.contact.los_s for pp in granted)
            or when == plan.start_s
        ), (command, at)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)


def test_cli_plan_json_and_procedure(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.toml"
    jobs.write_text("".join(
        f'[[jobs]]\nnode = "ODC-07"\nid = {k}\ngpu_seconds = 3600\n' for k in range(1, 6)
    ))  # fmt: skip
    procedure = tmp_path / "plan.py"
    result = CliRunner().invoke(
        cli,
        ["--archive", str(tmp_path / "none.db"), "plan", "--start", "2026-11-29T00:00Z",
         "--hours", "6", "--jobs", str(jobs), "--node", "ODC-07", "--json",
         "--procedure", str(procedure)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["violations"] == [] and set(data["nodes"]) == {"ODC-07"}
    started = set(data["nodes"]["ODC-07"]["jobs"])
    assert started and started <= {str(k) for k in range(1, 6)}
    assert "SUBMIT_JOB job_id=1" in procedure.read_text()
    bad = CliRunner().invoke(cli, ["plan", "--node", "ODC-99"], obj={})
    assert bad.exit_code != 0 and "no node odc-99 in the fleet" in bad.output.lower()


@pytest.mark.slow
def test_bench_quick_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plan.py"), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"baseline \(pass prediction \+ contact plan\): [\d.]+ s", done.stdout)
    assert re.search(r"plan: [\d.]+ s \(passes [\d.]+, capacity", done.stdout)
    assert "limits broken: 0" in done.stdout
    assert re.search(r"ratio \(plan / baseline\): [\d.]+", done.stdout)


def test_a_node_not_sun_pointing_is_planned_on_half_its_array() -> None:
    """Pointed at the ground (NADIR), the array gives half its power: the plan must
    count on that half, and the forecast (the simulator's model) shows it did."""
    t = 60.0 * np.arange(24 * 60 + 200)
    lit = np.array([(t % 5700) < 3600])
    contacts = [Contact("N", "GS", 900.0 + 10800 * k, 1380.0 + 10800 * k, 50.0, 4e9)
                for k in range(8)]  # fmt: skip
    start = NodeStart(soc=0.7, pointing=2)  # NADIR
    node = NodeInput("N", start, tuple(Job("N", k, 7200.0) for k in range(1, 40)))
    plan = make_plan(0.0, 86400.0, [node], contacts, lit, {"GS": Station("GS", 0.0, 0.0)})
    assert plan.violations() == []
    assert plan.nodes["N"].job_start_s  # and it still runs some jobs


def test_job_ids_are_shown_as_ranges() -> None:
    from groundctl.cli.plan import id_ranges

    assert id_ranges([8, 1, 2, 3, 5, 7, 12]) == "1-3, 5, 7-8, 12"
    assert id_ranges([]) == ""


def test_the_config_names_the_job_file(tmp_path: Path) -> None:
    from groundctl.config import parse_config
    from groundctl.errors import ConfigError

    (tmp_path / "jobs.toml").write_text('[[jobs]]\nnode = "ODC-07"\nid = 5\ngpu_seconds = 600\n')
    text = demo_config_path().read_text()
    text = text.replace('path = "../missions/', f'path = "{ROOT}/data/missions/')
    config = parse_config(text + '\n[planning]\njobs = "jobs.toml"\n', tmp_path / "ops.toml")
    assert config.planning.jobs_file == tmp_path / "jobs.toml"
    with pytest.raises(ConfigError, match=r"planning\.jobs: file .*nope\.toml does not exist"):
        parse_config(text + '\n[planning]\njobs = "nope.toml"\n', tmp_path / "ops.toml")
    # groundctl plan takes it when --jobs is not given
    (tmp_path / "ops.toml").write_text(text + '\n[planning]\njobs = "jobs.toml"\n')
    result = CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "ops.toml"), "--archive", str(tmp_path / "none.db"),
         "plan", "--start", "2026-11-29T00:00Z", "--hours", "6", "--node", "ODC-07", "--json"],
        obj={},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5" in json.loads(result.output)["nodes"]["ODC-07"]["jobs"]
