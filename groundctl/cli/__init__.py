"""The `groundctl` command line: one click group, one module per command family."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from groundctl import __version__
from groundctl.errors import GroundctlError

err_console = Console(stderr=True, highlight=False)


def report(error: GroundctlError) -> None:
    """Print a user-facing error: title, message and hint, never a traceback."""
    err_console.print(f"[bold red]{error.title}:[/] {escape(error.message)}", soft_wrap=True)
    if error.hint:
        err_console.print(f"  [yellow]hint:[/] {escape(error.hint)}", soft_wrap=True)


class GroundctlGroup(click.Group):
    """A click group that turns GroundctlError into a clear message and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GroundctlError as error:
            report(error)
            sys.exit(2)


@click.group(cls=GroundctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="groundctl")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="GROUNDCTL_CONFIG",
    help="Config file (TOML). Default: ./groundctl.toml if present, else the embedded "
    "demo config. Environment: GROUNDCTL_CONFIG.",
)
@click.option(
    "--archive",
    "archive_path",
    type=click.Path(dir_okay=False),
    envvar="GROUNDCTL_ARCHIVE",
    help="SQLite archive file. Default: the config's [archive] path, else ./groundctl.db. "
    "Environment: GROUNDCTL_ARCHIVE.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, archive_path: str | None) -> None:
    """groundctl: mission operations for fleets of orbital compute nodes.

    Predicts contacts between nodes and ground stations, ingests TLEs, talks to nodes
    through link adapters, simulates a fleet, keeps everything in a SQLite archive and
    replays what it recorded.

    \b
    Examples:
      groundctl passes                      # next 24 h of contacts of the demo fleet
      groundctl passes --node ODC-07 --json
      groundctl --config ops.toml tle fetch
      groundctl sim --speed 60 --duration 3600
      groundctl passes --flown              # the passes flown and archived
      groundctl replay 42 --console         # flown pass 42 again, in the console
      groundctl links
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["archive_path"] = archive_path


def main() -> None:
    """Console-script entry point."""
    from groundctl.cli import commands  # noqa: F401  (registers the subcommands)

    add_plugin_commands()
    cli(obj={})


def add_plugin_commands() -> None:
    """Add the commands plugins register in the `groundctl.commands` entry-point group
    (e.g. `groundctl agent` from groundctl-mqtt). A plugin that fails to load is reported
    in one line and left out; the rest of the command line works."""
    from importlib.metadata import entry_points

    for point in entry_points(group="groundctl.commands"):
        if point.name in cli.commands:
            continue
        try:
            command = point.load()
        except Exception as error:  # a broken plugin must not break groundctl
            err_console.print(
                f"[yellow]plugin command {escape(point.name)} ({escape(point.value)}) is not "
                f"available:[/] {escape(f'{type(error).__name__}: {error}')}",
                soft_wrap=True,
            )
            continue
        if isinstance(command, click.Command):
            cli.add_command(command, point.name)
