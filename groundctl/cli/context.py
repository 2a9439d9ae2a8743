"""What every command needs: the config, the archive, and how to print problems."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from groundctl.config import Config, FleetSource, load_config, resolve_config_path
from groundctl.orbits.model import TLE

if TYPE_CHECKING:
    from groundctl.archive import Archive
    from groundctl.fleet import CachedSet


def config(ctx: click.Context) -> Config:
    """The config chosen by --config / GROUNDCTL_CONFIG / ./groundctl.toml / the demo."""
    obj = ctx.find_root().obj
    if "config" not in obj:
        obj["config"] = load_config(resolve_config_path(obj.get("config_path")))
    cfg: Config = obj["config"]
    return cfg


def archive_path(ctx: click.Context, cfg: Config | None) -> Path:
    """--archive / GROUNDCTL_ARCHIVE, else the config's [archive] path, else ./groundctl.db."""
    explicit = ctx.find_root().obj.get("archive_path")
    if explicit:
        return Path(explicit)
    return cfg.archive_path if cfg is not None else Path("groundctl.db")


def archive(ctx: click.Context, cfg: Config | None) -> Archive:
    """Open (creating and migrating if needed) the archive; closed when the command ends."""
    from groundctl.archive import open_archive

    obj = ctx.find_root().obj
    if "archive" not in obj:
        db = open_archive(archive_path(ctx, cfg))
        ctx.find_root().call_on_close(db.close)
        obj["archive"] = db
    opened: Archive = obj["archive"]
    return opened


def cached_sets(ctx: click.Context, cfg: Config) -> CachedSet:
    """A lookup of the newest archived CelesTrak set for a fleet source (no network)."""

    def lookup(source: FleetSource) -> tuple[list[TLE], datetime] | None:
        from groundctl.links.celestrak import GPQuery
        from groundctl.tle_update import source_url

        queries = (
            [GPQuery(group=source.celestrak_group)]
            if source.celestrak_group
            else [GPQuery(catnr=n) for n in source.celestrak_catnr]
        )
        db = archive(ctx, cfg)
        tles: list[TLE] = []
        oldest: datetime | None = None
        for query in queries:
            stored = db.latest_tle_set(source_url(cfg.tle.base_url, query))
            if stored is None:
                return None
            tles.extend(stored.tles)
            oldest = stored.fetched_at if oldest is None else min(oldest, stored.fetched_at)
        return (tles, oldest) if oldest is not None else None

    return lookup
