"""`groundctl tle`: check TLE files, fetch TLE sets from CelesTrak, list what is archived."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from groundctl.cli import cli, context, err_console
from groundctl.errors import UsageError
from groundctl.fleet import fleet_from_tles
from groundctl.orbits.tle import load_tle_file


@cli.group()
def tle() -> None:
    """Check, fetch and list TLE sets.

    \b
    Examples:
      groundctl tle check fleet.tle
      groundctl tle fetch                       # the config's CelesTrak sources
      groundctl tle fetch --group stations --catnr 25544
      groundctl tle list
    """


class _Group(click.ParamType):  # type: ignore[type-arg]
    name = "GROUP"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = value.strip()
        if not text or not all(c.isalnum() or c in "-_." for c in text):
            self.fail(f"{value!r} is not a CelesTrak group name (e.g. starlink)", param, ctx)
        return text


GROUP = _Group()


@tle.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--max-age-days",
    type=click.FloatRange(min=0.01),
    default=7.0,
    show_default=True,
    help="Report TLEs whose epoch is older than this.",
)
def check(files: tuple[str, ...], max_age_days: float) -> None:
    """Validate TLE/3LE/OMM files: checksums, field ranges, pairing, staleness.

    Each bad record is reported as FILE:LINE: FIELD: what is wrong; the exit status is
    1 when any file has a problem, 0 when all are clean (stale TLEs are a warning).

    \b
    Examples:
      groundctl tle check fleet.tle
      groundctl tle check --max-age-days 3 data/tle/*.tle
    """
    bad = 0
    now = datetime.now(UTC)
    for name in files:
        tles, problems = load_tle_file(name)
        fleet = fleet_from_tles(tles, problems, now=now, max_age_days=max_age_days)
        for problem in fleet.problems:
            click.echo(str(problem))
        bad += len(fleet.problems)
        if not tles and not fleet.problems:
            click.echo(f"{name}: no TLE found (empty, or not a TLE, 3LE or OMM file)")
            bad += 1
        newest = max((t.epoch for t in tles), default=None)
        count = len(fleet.problems)
        summary = f"{name}: {len(tles)} TLEs, {count} problem{'' if count == 1 else 's'}"
        if newest is not None:
            summary += f", newest epoch {newest:%Y-%m-%d %H:%M}Z"
        if fleet.stale:
            summary += f", {len(fleet.stale)} older than {max_age_days:g} days"
        err_console.print(summary, markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(1 if bad else 0)


@tle.command()
@click.option(
    "--group", "groups", multiple=True, type=GROUP, help="A CelesTrak GP group (repeatable)."
)
@click.option(
    "--catnr",
    "catnrs",
    multiple=True,
    type=click.IntRange(min=1, max=999_999_999),
    help="A catalogue number (repeatable).",
)
@click.option("--base-url", help="GP server base URL (default: the config's [tle] base_url).")
@click.option("--force", is_flag=True, help="Fetch even if the archived set is under 2 h old.")
@click.pass_context
def fetch(
    ctx: click.Context,
    groups: tuple[str, ...],
    catnrs: tuple[int, ...],
    base_url: str | None,
    force: bool,
) -> None:
    """Fetch TLE sets from CelesTrak's GP service into the archive.

    Without --group/--catnr, fetches every `celestrak_group` / `celestrak_catnr` fleet
    source of the config. Sets are archived with their source URL and fetch time; a set
    fetched less than 2 hours ago is reused (CelesTrak's request to its users) unless
    --force. When the server cannot be reached, the last good archived set stays in use
    and the command says how old it is. Exit status 1 if a query has no set at all.

    \b
    Examples:
      groundctl tle fetch
      groundctl tle fetch --group starlink --force
      groundctl tle fetch --catnr 25544 --base-url http://mirror.example:8080
    """
    from groundctl.fleet import gp_queries
    from groundctl.links.celestrak import GPQuery
    from groundctl.tle_update import update_tles

    cfg = context.config(ctx)
    queries = [GPQuery(group=g) for g in groups] + [GPQuery(catnr=n) for n in catnrs]
    if not queries:
        for source in cfg.fleet:
            queries.extend(gp_queries(source))
    if not queries:
        raise UsageError(
            f"{cfg.path}: no CelesTrak sources in [[fleet]] and no --group/--catnr given",
            hint='add [[fleet]] celestrak_group = "..." or pass --group NAME',
        )
    db = context.archive(ctx, cfg)
    outcomes = asyncio.run(
        update_tles(
            db,
            queries,
            base_url=(base_url or cfg.tle.base_url).rstrip("/"),
            timeout_s=cfg.tle.timeout_s,
            retries=cfg.tle.retries,
            force=force,
        )
    )
    failed = 0
    colours = {"fetched": "green", "cached": "cyan", "stale-fallback": "yellow", "failed": "red"}
    for outcome in outcomes:
        colour = colours.get(outcome.status, "white")
        line = (
            f"[{colour}]{outcome.status:>14}[/] {escape(str(outcome.query))}: {outcome.count} TLEs"
        )
        if outcome.message:
            line += f" — {escape(outcome.message)}"
        err_console.print(line, soft_wrap=True, highlight=False)
        for problem in outcome.problems[:10]:
            err_console.print(
                f"    skipped: {problem}", markup=False, highlight=False, soft_wrap=True
            )
        if len(outcome.problems) > 10:
            err_console.print(f"    ... and {len(outcome.problems) - 10} more problems")
        failed += outcome.status == "failed"
    raise SystemExit(1 if failed else 0)


@tle.command("list")
@click.pass_context
def list_sets(ctx: click.Context) -> None:
    """List the TLE sets in the archive, newest first.

    \b
    Example:
      groundctl tle list
    """
    cfg = context.config(ctx)
    db = context.archive(ctx, cfg)
    now = datetime.now(UTC)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("Id", "Source", "Query", "Fetched (UTC)", "Age", "TLEs"):
        table.add_column(column, overflow="fold")
    for s in db.tle_sets():
        age_h = (now - s.fetched_at).total_seconds() / 3600
        table.add_row(
            str(s.id),
            s.source,
            s.query,
            f"{s.fetched_at:%Y-%m-%d %H:%M}",
            f"{age_h:.1f} h",
            str(s.count),
        )
    Console(highlight=False).print(table)
