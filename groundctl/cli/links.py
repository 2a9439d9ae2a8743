"""`groundctl links`: the link adapters installed, their options, and broken plugins."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from groundctl.cli import cli, err_console


@cli.command("links")
def links_command() -> None:
    """List the link adapters installed (built-in and plugins) and their options.

    Adapters register under the entry-point group `groundctl.links`; one that fails to
    load is listed with its error, and the others still work.

    \b
    Example:
      groundctl links
    """
    from groundctl.links.registry import GROUP, discover

    adapters, broken = discover()
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", title=f"entry points: {GROUP}")
    for column in ("Adapter", "Option", "Type", "Default", "Meaning"):
        table.add_column(column, overflow="fold")
    for name in sorted(adapters):
        adapter = adapters[name]
        table.add_row(f"[bold]{name}[/]", "", "", "", escape(adapter.DESCRIPTION))
        for option in adapter.OPTIONS:
            default = "required" if option.required else repr(option.default)
            table.add_row("", option.name, option.type.__name__, default, escape(option.help))
    Console(highlight=False).print(table)
    for bad in broken:
        err_console.print(
            f"[red]broken adapter[/] {escape(bad.name)} ({escape(bad.target)}): "
            f"{escape(bad.error)}",
            soft_wrap=True,
        )
    raise SystemExit(1 if broken else 0)
