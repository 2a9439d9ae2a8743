"""`groundctl console` and `groundctl demo`: the operator's console (groundctl.ui)."""

from __future__ import annotations

from typing import Any

import click

from groundctl.cli import cli, context
from groundctl.cli.commanding import _sim_options, sim_options

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
