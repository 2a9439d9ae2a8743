"""`groundctl console` and `groundctl demo`: the operator's console (groundctl.ui);
`run_replay_console` is the console over a replay (`groundctl replay --console`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from groundctl.cli import cli, context
from groundctl.cli.commanding import _sim_options, sim_options

if TYPE_CHECKING:
    from groundctl.config import Config
    from groundctl.mdb.model import Mission
    from groundctl.replay import ReplaySource

THEMES = ("dark", "light", "high-contrast")


def _run_console(ctx: click.Context, sim: bool | None, options: dict[str, Any], theme: str) -> None:
    from groundctl.ui.app import ConsoleApp
    from groundctl.ui.backend import Backend

    cfg = context.config(ctx)
    backend = Backend(cfg, context.archive_path(ctx, cfg), sim=sim, sim_options=options)
    app = ConsoleApp(backend, theme=theme)
    try:
        app.run()
    finally:
        backend.stop()  # flushes the archive whatever ended the app
    if app.start_error:
        raise click.ClickException(app.start_error)


def run_replay_console(
    config: Config,
    source: ReplaySource,
    output: Path,
    *,
    speed: float = 1.0,
    seek_s: float | None = None,
    paused: bool = False,
    missions: tuple[dict[str, Mission], Mission | None] | None = None,
    theme: str = "dark",
) -> None:
    """The console over a replay of `source` (groundctl.replay.resolve_source), writing
    what the replay produces to the archive `output`; blocks until the operator quits.

    The replay starts at `speed` (0: as fast as possible), from the first frame at or
    after `seek_s` (Unix seconds) when given, paused when `paused`. `missions` (node ->
    database, and the default) replaces the config's. Commanding is disabled; alerts are
    not acknowledged nor shelved. The app stays open at the end of the recording. The
    backend is always stopped (everything replayed is archived) before this returns.

    Raises LinkError (a GroundctlError) for bad replay options or speed before anything
    starts, and click.ClickException when the ground segment cannot start.
    """
    from groundctl.ui.app import ConsoleApp
    from groundctl.ui.backend import Backend

    backend = Backend(
        config,
        output,
        replay=source,
        replay_speed=speed,
        replay_seek_s=seek_s,
        replay_paused=paused,
        missions=missions,
    )
    app = ConsoleApp(backend, theme=theme)
    try:
        app.run()
    finally:
        backend.stop()  # flushes the archive whatever ended the app
    if app.start_error:
        raise click.ClickException(app.start_error)


@cli.command("console")
@click.option(
    "--theme", type=click.Choice(THEMES), default="dark", show_default=True, help="Colours."
)
@sim_options
@click.pass_context
def console(
    ctx: click.Context,
    theme: str,
    sim: bool | None,
    speed: float,
    start: str | None,
    seed: int,
    faults: tuple[str, ...],
) -> None:
    """The operator's console: passes, telemetry, alerts, commanding and events.

    Runs the config's links (or the simulator: --sim, or when the config has none) through
    the engine into the archive, and shows it all live. Keys: p t a c e go to a pane, z
    zooms it, ctrl+p finds anything, q quits (everything received is archived first).
    NO_COLOR is respected.

    \b
    Examples:
      groundctl console                         # the config's links
      groundctl console --sim --speed 10        # the simulated fleet, ten times real time
      groundctl --config lab.toml console       # a cFS lab
    """
    _run_console(ctx, sim, _sim_options(speed, start, seed, faults), theme)


@cli.command("demo")
@click.option(
    "--theme", type=click.Choice(THEMES), default="dark", show_default=True, help="Colours."
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated seconds per second (0: as fast as possible).",
)
@click.pass_context
def demo(ctx: click.Context, theme: str, speed: float) -> None:
    """The console on the embedded demo: 24 simulated nodes over five stations, now.

    Send a NOOP to a node in contact (the Passes pane shows which) from the command
    line (c): ODC-07 NOOP, and watch it verified. The archive is ./groundctl.db unless
    --archive says otherwise.
    """
    from groundctl.config import demo_config_path, load_config

    root = ctx.find_root().obj
    if not root.get("config_path"):
        root["config"] = load_config(demo_config_path())
    _run_console(ctx, True, _sim_options(speed, None, 0, ()), theme)
