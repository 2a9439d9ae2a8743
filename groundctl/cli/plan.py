"""`groundctl plan`: the fleet plan for the next window (groundctl.planning)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from groundctl.cli import cli, context
from groundctl.cli.passes import parse_start
from groundctl.config import Config
from groundctl.errors import UsageError
from groundctl.fleet import load_fleet
from groundctl.planning.fleet import (
    plan_commands,
    plan_fleet,
    plan_json,
    plan_procedure,
    read_jobs,
)
from groundctl.planning.forecast import NodeStart
from groundctl.planning.plan import Plan
from groundctl.sim.physics import POWER_MODES, THROTTLE_LEVELS

# the telemetry a node's start state is read from (groundctl.planning.forecast)
START_PARAMETERS = (
    "POWER_HK.BATT_SOC", "THERMAL_HK.RADIATOR_TEMP", "THERMAL_HK.GPU_TEMP",
    "THERMAL_HK.CPU_TEMP", "THERMAL_HK.BATT_TEMP", "COMPUTE_HK.RESULTS_PENDING",
    "COMPUTE_HK.STORAGE_USED", "THERMAL_HK.HEATER_BATTERY", "POWER_HK.POWER_MODE",
    "THERMAL_HK.THROTTLE_LEVEL", "ATTITUDE_HK.POINTING_MODE",
)  # fmt: skip


def latest_starts(
    ctx: click.Context, nodes: list[str], before_s: float
) -> tuple[dict[str, NodeStart], dict[str, float]]:
    """Each node's start state from its latest archived telemetry before `before_s` (none:
    the defaults), and the time of that telemetry (its battery's state of charge)."""
    path = context.archive_path(ctx, context.optional_config(ctx))
    if not path.is_file():
        return {}, {}
    db = context.archive(ctx, context.optional_config(ctx))
    values: dict[str, dict[str, object]] = {}
    times: dict[str, float] = {}
    for parameter in START_PARAMETERS:
        for sample in db.latest_samples(parameter, end_s=before_s):
            if sample.node in nodes:
                values.setdefault(sample.node, {})[parameter] = sample.value
                if parameter == "POWER_HK.BATT_SOC":
                    times[sample.node] = sample.time_s
    return {node: NodeStart.from_telemetry(v) for node, v in values.items()}, times


@cli.command()
@click.option("--start", help="Start of the window, ISO 8601 UTC. Default: now.")
@click.option(
    "--hours", type=float, default=None, help="Window length. Default: [planning] window_h (24)."
)
@click.option("--node", "nodes", multiple=True, metavar="NAME", help="Only this node (repeatable).")
@click.option(
    "--jobs",
    "jobs_file",
    type=click.Path(dir_okay=False),
    help="TOML file of the jobs queued on the ground. Default: [planning] jobs, else none.",
)
@click.option("--naive", is_flag=True, help="Plan the naive baseline instead (for comparison).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.option(
    "--procedure",
    "procedure_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the plan as a procedure (review it, then `groundctl run` it).",
)
@click.option(
    "--queue",
    "to_queue",
    is_flag=True,
    help="Queue the plan's commands in the archive, time-tagged (review them with "
    "`groundctl queue list`; cancel or edit before their time).",
)
@click.option("--all-passes", is_flag=True, help="List passes without an antenna too.")
@click.option(
    "--review",
    "review_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Compare a plan (the JSON of --json) with what was flown, from the archive.",
)
@click.pass_context
def plan(
    ctx: click.Context,
    start: str | None,
    hours: float | None,
    nodes: tuple[str, ...],
    jobs_file: str | None,
    naive: bool,
    as_json: bool,
    procedure_file: str | None,
    to_queue: bool,
    all_passes: bool,
    review_file: str | None,
) -> None:
    """Plan the fleet's downlinks, jobs and power for the next window.

    For each pass: whether it gets an antenna (fair share of the stations between the
    nodes), its downlink capacity from the link budget ([planning] in the config), and
    what the node is told at AOS: power mode and throttle, jobs to submit, bytes to
    downlink. For each node: when its jobs run, its forecast battery state of charge and
    storage (the simulator's models, from its latest archived telemetry), what it
    delivers, and what cannot fit (jobs deferred, backlog left) with the reason. The
    plan never takes a node below [planning] min_soc or above storage_high_water
    (docs/planning.md).

    \b
    Examples:
      groundctl plan                                   # the demo fleet, next 24 h
      groundctl plan --jobs jobs.toml --hours 12
      groundctl plan --jobs jobs.toml --procedure tomorrow.py   # review, then run it
      groundctl plan --jobs jobs.toml --queue          # into the store-and-forward queue
      groundctl plan --jobs jobs.toml --naive          # what the naive way would do
      groundctl plan --json > plan.json
      groundctl plan --review plan.json                # after the window: planned vs flown
    """
    if review_file:
        show_review(ctx, Path(review_file), as_json)
        return
    cfg = context.config(ctx)
    t0 = parse_start(start)
    window = hours if hours is not None else cfg.planning.window_h
    if not 0 < window <= 168:
        raise UsageError(f"--hours {window:g} is out of range: expected more than 0, at most 168")
    fleet = load_fleet(cfg, now=t0)
    satellites = fleet.satellites(list(nodes) or None)
    if nodes and len(satellites) < len(set(nodes)):
        missing = sorted({n.lower() for n in nodes} - {s.name.lower() for s in satellites})
        raise UsageError(
            f"no node {', '.join(missing)} in the fleet", hint="nodes: " + ", ".join(fleet.names())
        )
    names = [s.name for s in satellites]
    job_path = Path(jobs_file) if jobs_file else cfg.planning.jobs_file
    jobs = read_jobs(job_path, fleet.names()) if job_path is not None else []
    jobs = [j for j in jobs if j.node in names]
    starts, heard = latest_starts(ctx, names, t0.timestamp())
    result, timings = plan_fleet(
        cfg, t0, window, satellites=satellites, jobs=jobs, starts=starts,
        policy="naive" if naive else "plan",
    )  # fmt: skip
    if procedure_file:
        source = f" ({len(names)} nodes, {len(jobs)} jobs)"
        try:
            Path(procedure_file).write_text(plan_procedure(result, source))
        except OSError as error:
            raise UsageError(
                f"--procedure {procedure_file}: cannot write it: {error.strerror or error}"
            ) from None
    queued = 0
    if to_queue:
        path = context.archive_path(ctx, cfg)
        queued = asyncio.run(queue_plan(cfg, path, result))
    if as_json:
        data = plan_json(result)
        data["timings_s"] = {
            "predict": round(timings.predict_s, 3),
            "capacity": round(timings.capacity_s, 3),
            "sunlight": round(timings.sunlight_s, 3),
            "plan": round(timings.plan_s, 3),
        }
        click.echo(json.dumps(data, indent=2))
        return
    out = Console()
    show(out, result, all_passes, heard)
    out.print(
        f"[dim]planned {len(names)} nodes over {len(cfg.stations)} stations in "
        f"{timings.total_s:.2f} s (passes {timings.predict_s:.2f}, capacity "
        f"{timings.capacity_s:.2f}, sunlight {timings.sunlight_s:.2f}, plan "
        f"{timings.plan_s:.2f})[/]"
    )
    if procedure_file:
        out.print(f"procedure written to {procedure_file}: review it, then groundctl run it")
    if to_queue:
        out.print(
            f"{queued} commands queued in {context.archive_path(ctx, cfg)}, time-tagged: "
            "groundctl queue list shows them; a console or groundctl run on this archive "
            "releases each at its pass"
        )


def _eclipse_text(spans: list[tuple[float, float]]) -> str:
    """How many eclipses, and how long they last together."""
    total = sum(b - a for a, b in spans)
    return f"{len(spans)} ({total / 3600:.1f} h)" if spans else "none"


def id_ranges(ids: tuple[int, ...] | list[int]) -> str:
    """Job ids, runs of consecutive ones shortened: 1-8, 12, 14-15."""
    parts: list[str] = []
    for job_id in sorted(ids):
        if parts and parts[-1].split("-")[-1] == str(job_id - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{job_id}"
        else:
            parts.append(str(job_id))
    return ", ".join(parts)


def _bytes(n: float) -> str:
    return decimal(int(n)).replace(" bytes", " B")


def _time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%d %H:%M")


def show(out: Console, result: Plan, all_passes: bool, heard: dict[str, float]) -> None:
    passes = Table(box=box.SIMPLE_HEAD, title="passes", title_justify="left")
    for column in ("AOS", "node", "station", "capacity", "downlink", "power/throttle", "jobs"):
        passes.add_column(
            column,
            justify="right" if column in ("capacity", "downlink") else "left",
            no_wrap=column != "jobs",
        )
    for pp in result.passes:
        if not pp.granted and not all_passes:
            continue
        setting = (
            f"{POWER_MODES[pp.mode]}/{THROTTLE_LEVELS[pp.throttle]}"
            if pp.mode is not None and pp.throttle is not None
            else f"[dim]{pp.reason}[/]"
        )
        jobs = id_ranges(pp.submitted)
        passes.add_row(_time(pp.contact.aos_s), pp.node, pp.contact.station,
                       _bytes(pp.contact.capacity_b), _bytes(pp.downlink_b),
                       setting, jobs)  # fmt: skip
    out.print(passes)
    nodes = Table(box=box.SIMPLE_HEAD, title="nodes", title_justify="left")
    for column in ("node", "jobs run/\nfailed/\ndeferred", "delivered", "backlog", "SoC\nmin",
                   "storage\nmax", "GPU\nmax", "eclipses\n(total)"):  # fmt: skip
        nodes.add_column(column, no_wrap=True, justify="left" if column == "node" else "right")
    why: list[str] = []
    for name, n in result.nodes.items():
        failed = len(n.jobs_failed)
        nodes.add_row(name, f"{len(n.job_end_s) - failed}/{failed}/{len(n.deferred)}",
                      _bytes(n.delivered_b), _bytes(n.backlog_b),
                      f"{n.min_soc:.0%}", f"{n.max_storage:.0%}", f"{n.max_gpu_c:.0f} °C",
                      _eclipse_text(n.eclipses))  # fmt: skip
        reasons: dict[str, int] = {}
        for _, reason in n.deferred:
            reasons[reason] = reasons.get(reason, 0) + 1
        why += [f"  {name}: {count} deferred: {reason}" for reason, count in reasons.items()]
    out.print(nodes)
    if why:
        out.print("jobs that do not fit:")
        for line in why:
            out.print(line, markup=False)
    granted = sum(1 for pp in result.passes if pp.granted)
    out.print(
        f"{granted} of {len(result.passes)} passes used; {_bytes(result.delivered_b)} delivered"
    )
    if heard:
        oldest = min(heard, key=lambda n: heard[n])
        age_h = (result.start_s - heard[oldest]) / 3600
        out.print(
            f"start state from telemetry for {len(heard)} of {len(result.nodes)} nodes "
            f"(the oldest, {oldest}'s, {age_h:.1f} h old: the forecast starts from it as if "
            "it were now); the others from the simulator's defaults"
        )
    else:
        out.print("no telemetry in the archive: every node starts from the simulator's defaults")
    problems = result.violations()
    if problems:
        out.print("[red]limits broken:[/] " + "; ".join(problems))
    else:
        out.print(
            f"[green]within limits[/]: state of charge >= {result.limits.min_soc:.0%}, "
            f"storage <= {result.limits.storage_high_water:.0%}"
        )


def show_review(ctx: click.Context, path: Path, as_json: bool) -> None:
    """`--review`: each node's planned bytes, battery minimum and jobs against flown."""
    from groundctl.planning.review import ReviewError, review

    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReviewError(f"{path}: cannot read the plan: {error}") from None
    db = context.archive(ctx, context.optional_config(ctx))
    nodes = review(doc, db)
    if as_json:
        click.echo(json.dumps([
            {"node": n.node, "planned_bytes": round(n.planned_b), "flown_bytes": round(n.flown_b),
             "error": round(n.error, 4), "passes_planned": n.passes_planned,
             "passes_flown": n.passes_flown, "planned_min_soc": n.planned_min_soc,
             "seen_min_soc": None if n.seen_min_soc != n.seen_min_soc else n.seen_min_soc,
             "planned_jobs_done": n.planned_jobs, "flown_jobs_done": n.flown_jobs,
             "jobs_known": n.jobs_known}
            for n in nodes
        ], indent=2))  # fmt: skip
        return
    out = Console()
    table = Table(box=box.SIMPLE_HEAD, title=f"plan {doc.get('start')} to {doc.get('end')}: "
                  "planned vs flown", title_justify="left")  # fmt: skip
    for column in ("node", "passes", "planned", "flown", "error", "min SoC plan/seen",
                   "jobs done plan/flown"):  # fmt: skip
        table.add_column(column)
    for n in nodes:
        seen = f"{n.seen_min_soc:.0%}" if n.seen_min_soc == n.seen_min_soc else "-"
        table.add_row(n.node, f"{n.passes_flown}/{n.passes_planned}", decimal(int(n.planned_b)),
                      decimal(int(n.flown_b)), f"{n.error:+.1%}",
                      f"{n.planned_min_soc:.0%} / {seen}",
                      f"{n.planned_jobs} / {n.flown_jobs}"
                      + ("" if n.jobs_known else " (not heard from since)"))  # fmt: skip
    out.print(table)
    planned = sum(n.planned_b for n in nodes)
    flown = sum(n.flown_b for n in nodes)
    out.print(f"fleet: planned {decimal(int(planned))}, flown {decimal(int(flown))}"
              + (f" ({flown / planned - 1:+.1%})" if planned else ""))  # fmt: skip
    out.print("[dim]min SoC seen: the lowest the telemetry showed (only in contact)[/]")


async def queue_plan(config: Config, archive: Path, result: Plan) -> int:
    """Queue the plan's commands in `archive`'s store-and-forward queue, each tagged with
    its time (validated, authorised and audited as any command). No link is opened: the
    nodes are made known from the plan."""
    import dataclasses

    from groundctl.config import NodeConfig
    from groundctl.session import Session

    nodes = {**config.nodes}
    for name in result.nodes:
        nodes.setdefault(name, NodeConfig(name=name))
    session = Session(dataclasses.replace(config, nodes=nodes), archive, links=[], source="plan")
    await session.start()
    try:
        assert session.commander is not None
        commands = plan_commands(result)
        for command in commands:
            await session.commander.issue(command.text, at=command.at_s, source="plan")
        return len(commands)
    finally:
        await session.stop()
