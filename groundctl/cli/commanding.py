"""`groundctl cmd`, `groundctl queue`, `groundctl commands`, `groundctl run`, `groundctl key`.

Commands go through the same commander as the console's and procedures': validated
against the node's mission database, checked against the operator's role, confirmed
when hazardous, archived with their audit rows, released when the node is in contact and
verified from telemetry. Queued commands wait in the archive for the next contact, and
whichever groundctl is running then (console, `run`, `cmd --wait`) releases them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from groundctl.cli import cli, context, err_console
from groundctl.errors import CommandError, GroundctlError


class RunUsageError(GroundctlError):
    title = "usage error"


def _sim_options(
    speed: float, start: str | None, seed: int, faults: tuple[str, ...]
) -> dict[str, Any]:
    from groundctl.cli.passes import parse_time

    start_s = (
        parse_time(start, "--start").timestamp()
        if start
        else float(int(datetime.now(UTC).timestamp()))
    )
    return {
        "speed": speed,
        "seed": seed,
        "faults": ";".join(faults),
        "start": datetime.fromtimestamp(start_s, UTC).isoformat(),
    }


def _at(text: str | None) -> float | None:
    if text is None:
        return None
    from groundctl.cli.passes import parse_time

    return parse_time(text, "--at").timestamp()


def _utc(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _signals(stop: Callable[[], None]) -> None:
    """Ctrl-C and SIGTERM call `stop` (when running in the main thread, as the CLI does)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


_SIM_OPTIONS = [
    click.option(
        "--sim/--links",
        "sim",
        default=None,
        help="Run against the simulator, or the config's [links]. Default: the links when "
        "the config has any, else the simulator.",
    ),
    click.option(
        "--speed",
        type=float,
        default=1.0,
        show_default=True,
        help="Simulator: simulated seconds per second (0: as fast as possible).",
    ),
    click.option("--start", help="Simulator: simulated start, ISO 8601 UTC. Default: now."),
    click.option("--seed", type=int, default=0, show_default=True, help="Simulator: random seed."),
    click.option(
        "--fault",
        "faults",
        multiple=True,
        metavar="'NODE FAULT at S [for S]'",
        help="Simulator: inject a fault S seconds after the start (repeatable).",
    ),
]


def sim_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_SIM_OPTIONS):
        fn = option(fn)
    return fn


# --- groundctl cmd ------------------------------------------------------------------------
@cli.command("cmd")
@click.argument("command", nargs=-1, required=True)
@click.option("--confirm", is_flag=True, help="Confirm a hazardous command (archived).")
@click.option("--at", "at_text", metavar="TIME", help="Time tag: release at this UTC time.")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Keep running until the command is verified, through to the node's next contact, "
    "its time tag or the commands ahead of it. Default: verify it when it can go within "
    "a few seconds, else leave it queued in the archive and exit.",
)
@click.option("--timeout", type=float, help="Give up waiting after this many seconds (clock).")
@sim_options
@click.pass_context
def cmd(
    ctx: click.Context,
    command: tuple[str, ...],
    confirm: bool,
    at_text: str | None,
    wait: bool,
    timeout: float | None,
    sim: bool | None,
    speed: float,
    start: str | None,
    seed: int,
    faults: tuple[str, ...],
) -> None:
    """Send a command: NODE COMMAND [ARGUMENT=VALUE ...].

    The command is checked against the node's mission database and your role; a
    hazardous one needs --confirm. It is sent when the node is in contact and verified
    from its telemetry (accepted, completed, or failed / timed out). When it must wait
    (for the node's next contact, its --at time tag, or commands ahead of it) it stays
    queued in the archive and this exits, unless --wait. Exit status 0 when completed
    (or left queued), 1 when it failed or timed out, 2 when it was refused.

    \b
    Examples:
      groundctl cmd ODC-07 SET_POWER_MODE mode=ECO
      groundctl cmd ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=2h priority=HIGH
      groundctl cmd --confirm ODC-07 REBOOT
      groundctl cmd --at 2026-12-01T06:00Z ODC-07 START_DOWNLINK
      groundctl --config lab.toml cmd cfs ES_NOOP
    """
    from groundctl.commanding.syntax import parse

    cfg = context.config(ctx)
    path = context.archive_path(ctx, cfg)
    text = " ".join(command)
    line = parse(text)  # a syntax error before anything starts
    at = _at(at_text)
    out = Console(highlight=False, soft_wrap=True)

    async def main() -> int:
        from groundctl.bus import CommandMessage
        from groundctl.session import Session

        session = Session(cfg, path, sim=sim, sim_options=_sim_options(speed, start, seed, faults))
        await session.start()
        try:
            assert session.commander is not None and session.engine is not None
            subscription = session.engine.bus.subscribe(CommandMessage)
            outcome = await session.commander.issue(line, confirm=confirm, at=at)

            def show(message: CommandMessage) -> bool:
                if message.command_id != outcome.command_id:
                    return False
                detail = f"  {message.detail}" if message.detail else ""
                out.print(f"{_utc(message.time_s)}  {message.stage:<9}{escape(detail)}")
                return True

            clock = session.engine.clock
            deadline = None if timeout is None else clock() + timeout
            stop = asyncio.Event()
            _signals(stop.set)
            while not outcome.done.is_set():
                if stop.is_set():
                    out.print(f"command {outcome.command_id}: stopped while {outcome.stage}")
                    return 1
                if deadline is not None and clock() >= deadline:
                    gave_up = f"gave up after {timeout:g} s ({outcome.stage})"
                    out.print(f"command {outcome.command_id}: {gave_up}")
                    return 1
                try:
                    message = await asyncio.wait_for(subscription.get(), 0.1)
                except TimeoutError:
                    continue
                if show(message) and not wait and _left_queued(message, clock()):
                    out.print(
                        f"command {outcome.command_id} stays queued in {path} "
                        "(groundctl queue list; it is released by whichever groundctl runs then)"
                    )
                    return 0
            for message in subscription.drain():
                show(message)
            ok = outcome.stage in ("completed", "accepted", "sent")
            out.print(f"command {outcome.command_id}: {outcome.stage}")
            return 0 if ok else 1
        finally:
            await session.stop()

    try:
        code = asyncio.run(main())
    except CommandError:
        raise
    ctx.exit(code)


def _left_queued(message: Any, now_s: float) -> bool:
    """A `cmd` without --wait stops here: the command waits for a contact or a time tag
    more than a few seconds away (or for another command), and stays queued."""
    if message.stage != "queued" or not message.detail.startswith("waiting"):
        return False
    return message.release_at is None or message.release_at - now_s > 5.0


# --- groundctl queue -----------------------------------------------------------------------
@cli.group("queue")
def queue() -> None:
    """The store-and-forward queue: commands waiting for their node's next contact or
    their time tag (kept in the archive; released in order at AOS)."""


@queue.command("list")
@click.option("--node", help="Only this node's commands.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.pass_context
def queue_list(ctx: click.Context, node: str | None, as_json: bool) -> None:
    """List queued commands in release order, with when they are expected to go."""
    records = _store_call(ctx, lambda store: store.queued(node))
    _print_commands(records, as_json, empty="no queued commands")


@queue.command("cancel")
@click.argument("command_id", type=int)
@click.option("--reason", default="", help="Why (archived with the cancellation).")
@click.pass_context
def queue_cancel(ctx: click.Context, command_id: int, reason: str) -> None:
    """Cancel a queued command."""
    from groundctl.commanding.roles import check_role

    def cancel(store: Any, actor: Any) -> None:
        record = _queued(store, command_id)
        check_role(actor.role, actor.operator, record.text, record.hazardous)
        store.cancel(command_id, datetime.now(UTC).timestamp(), actor, reason)

    _store_call(ctx, cancel, with_actor=True)
    click.echo(f"command {command_id} cancelled")


@queue.command("edit")
@click.argument("command_id", type=int)
@click.option("--command", "text", help="The whole new command line (same node and command).")
@click.option("--at", "at_text", metavar="TIME", help="New time tag (UTC).")
@click.option(
    "--next-contact", is_flag=True, help="Drop the time tag: release at the next contact."
)
@click.pass_context
def queue_edit(
    ctx: click.Context, command_id: int, text: str | None, at_text: str | None, next_contact: bool
) -> None:
    """Change a queued command's arguments or release time."""
    from groundctl.commanding.roles import check_role
    from groundctl.commanding.syntax import parse, validate
    from groundctl.session import load_missions

    if text is None and at_text is None and not next_contact:
        raise RunUsageError("nothing to change", hint="give --command, --at or --next-contact")
    if at_text is not None and next_contact:
        raise RunUsageError("--at and --next-contact contradict each other")
    cfg = context.config(ctx)
    at = _at(at_text)

    def edit(store: Any, actor: Any) -> Any:
        record = _queued(store, command_id)
        arguments = new_text = None
        if text is not None:
            line = parse(text)
            missions, default = load_missions(cfg, [line.node])
            mission = missions.get(line.node, default)
            assert mission is not None
            valid = validate(line, mission)
            if (valid.node, valid.name) != (record.node, record.command):
                raise CommandError(
                    f"command {command_id} is {record.node} {record.command}: an edit may "
                    "change its arguments, not its node or command",
                    hint="cancel it and issue the other command",
                )
            arguments, new_text = dict(valid.values), valid.text
            check_role(actor.role, actor.operator, valid.text, valid.hazardous)
        else:
            check_role(actor.role, actor.operator, record.text, record.hazardous)
        release = "time" if at is not None else ("now" if next_contact else None)
        return store.edit(
            command_id,
            datetime.now(UTC).timestamp(),
            actor,
            arguments=arguments,
            text=new_text,
            release=release,
            release_at=at,
        )

    updated = _store_call(ctx, edit, with_actor=True)
    _print_commands([updated], False, empty="")


def _queued(store: Any, command_id: int) -> Any:
    try:
        record = store.get(command_id)
    except KeyError:
        raise CommandError(f"no command {command_id} in the archive") from None
    if record.status != "queued":
        raise CommandError(f"command {command_id} is {record.status}, no longer queued")
    return record


def _store_call(ctx: click.Context, fn: Callable[..., Any], with_actor: bool = False) -> Any:
    from groundctl.archive.commands import Actor, CommandStore
    from groundctl.commander import login_name

    cfg = context.config(ctx)
    store = CommandStore(context.archive_path(ctx, cfg))
    try:
        store.open()
        if with_actor:
            user = login_name()
            return fn(store, Actor(user, cfg.commanding.role_of(user)))
        return fn(store)
    finally:
        store.close()


# --- groundctl commands ---------------------------------------------------------------------
@cli.command("commands")
@click.option("--node", help="Only this node's commands.")
@click.option("--status", help="Only commands with this status (queued, completed, failed...).")
@click.option("--limit", type=int, default=30, show_default=True, help="How many, newest first.")
@click.option("--stages", "show_stages", is_flag=True, help="Each command's stages with times.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.pass_context
def commands(
    ctx: click.Context,
    node: str | None,
    status: str | None,
    limit: int,
    show_stages: bool,
    as_json: bool,
) -> None:
    """Commands sent and queued, newest first, with their verification outcome."""

    def read(store: Any) -> tuple[list[Any], dict[int, list[Any]]]:
        records = store.recent(limit, node, status)
        stages = {r.id: store.stages(r.id) for r in records} if show_stages or as_json else {}
        return records, stages

    records, stages = _store_call(ctx, read)
    _print_commands(records, as_json, empty="no commands", stages=stages)


def _print_commands(
    records: list[Any], as_json: bool, *, empty: str, stages: dict[int, list[Any]] | None = None
) -> None:
    import json

    stages = stages or {}
    if as_json:
        for r in records:
            row = {
                "id": r.id,
                "created": _utc(r.created),
                "operator": r.operator,
                "node": r.node,
                "command": r.command,
                "arguments": r.arguments,
                "text": r.text,
                "status": r.status,
                "detail": r.detail,
                "release": r.release,
                "release_at": _utc(r.release_at) or None,
                "stages": [
                    {"time": _utc(t), "stage": s, "detail": d} for t, s, d in stages.get(r.id, [])
                ],
            }
            click.echo(json.dumps(row))
        return
    if not records:
        click.echo(empty)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("id", "created", "operator", "command", "status", "release", "detail"):
        table.add_column(column, overflow="fold")
    for r in records:
        release = r.release if r.release == "now" else f"{r.release} {_utc(r.release_at)}"
        if r.release == "now" and r.status == "queued":
            release = f"next contact {_utc(r.release_at)}".strip()
        table.add_row(
            str(r.id),
            _utc(r.created),
            r.operator,
            escape(r.text),
            r.status,
            release,
            escape(r.detail),
        )
        for t, stage, detail in stages.get(r.id, []):
            table.add_row("", _utc(t), "", "", f"  {stage}", "", escape(detail))
    Console(highlight=False).print(table)


# --- groundctl run ------------------------------------------------------------------------
@cli.command("run")
@click.argument("procedure", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-a",
    "--arg",
    "--args",
    "args",
    multiple=True,
    metavar="NAME=VALUE",
    help="A procedure argument (repeatable; several in one quoted string work too).",
)
@click.option("--dry-run", is_flag=True, help="Validate every command and check; send nothing.")
@sim_options
@click.pass_context
def run(
    ctx: click.Context,
    procedure: Path,
    args: tuple[str, ...],
    dry_run: bool,
    sim: bool | None,
    speed: float,
    start: str | None,
    seed: int,
    faults: tuple[str, ...],
) -> None:
    """Run a procedure (a Python file with a main function) headless.

    Each step is printed and archived with the run. Exit status 0 when every step passed,
    1 at the first failed command, check or timeout (or an error in the procedure), 2 for
    a usage error. Procedures are written with the API in groundctl.procedures
    (docs/procedures.md); examples are in data/procedures/.

    \b
    Examples:
      groundctl run data/procedures/pass_health.py -a node=ODC-07 --sim --speed 60
      groundctl run data/procedures/compute_campaign.py --dry-run
      groundctl --config lab.toml run data/procedures/cfs_lab_check.py
    """
    from groundctl.procedures.runner import ProcedureRunner

    given: dict[str, str] = {}
    for item in args:
        for word in item.split():
            name, equals, value = word.partition("=")
            if not equals or not name:
                raise RunUsageError(f"--arg {word!r}: expected NAME=VALUE")
            given[name] = value
    if not procedure.is_file():
        raise RunUsageError(f"procedure {procedure} does not exist")
    cfg = context.config(ctx)
    path = context.archive_path(ctx, cfg)
    out = Console(highlight=False, soft_wrap=True)

    def show(line: str) -> None:
        out.print(escape(line))

    async def main() -> int:
        from groundctl.session import Session

        session = None
        if not dry_run:
            session = Session(
                cfg,
                path,
                sim=sim,
                sim_options=_sim_options(speed, start, seed, faults),
                source="procedure",
                stations=True,
            )
            await session.start()
        runner = ProcedureRunner(
            procedure,
            given,
            config=cfg,
            archive_path=path,
            session=session,
            dry_run=dry_run,
            out=show,
        )
        _signals(runner.interrupt)
        try:
            result = await runner.run()
        finally:
            if session is not None:
                await session.stop()
        return result.exit_code

    ctx.exit(asyncio.run(main()))


# --- groundctl key -------------------------------------------------------------------------
@cli.group("key")
def key() -> None:
    """Command authentication keys (HMAC-SHA256, one per node)."""


@key.command("new")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def key_new(path: Path) -> None:
    """Write a new random 256-bit key to PATH (hex, file mode 600; never overwritten).

    Give it to the node's flight software and name it in the config:
    [nodes.NAME] key_file = "PATH" (or put the hex in an environment variable and use
    key_env).
    """
    from groundctl.commanding.auth import generate_key

    if path.exists():
        raise RunUsageError(
            f"{path} exists: keys are never overwritten", hint="choose another path"
        )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except OSError as error:
        raise RunUsageError(
            f"cannot create {path}: {error.strerror or error}",
            hint="check the folder exists and is writable",
        ) from None
    with os.fdopen(fd, "w") as f:
        f.write(generate_key() + "\n")
    err_console.print(f"new key written to {path} (mode 600)")
