"""What every command needs: the config, the archive, and how to print problems."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from groundctl.config import (
    DEFAULT_CONFIG_NAME,
    Config,
    FleetSource,
    load_config,
    resolve_config_path,
)
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


def optional_config(ctx: click.Context) -> Config | None:
    """The config when one is given or ./groundctl.toml exists; None instead of the demo."""
    obj = ctx.find_root().obj
    if obj.get("config_path") or Path(DEFAULT_CONFIG_NAME).is_file():
        return config(ctx)
    return None


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
    """A lookup of the newest archived CelesTrak set for a fleet source (no network).

    Sets are found by their GP query (group or catalogue number), whichever server or
    mirror `groundctl tle fetch` got them from.
    """

    def lookup(source: FleetSource) -> tuple[list[TLE], datetime] | None:
        from groundctl.fleet import gp_queries

        db = archive(ctx, cfg)
        tles: list[TLE] = []
        oldest: datetime | None = None
        for query in gp_queries(source):
            stored = db.latest_tle_set_for_query(str(query))
            if stored is None:
                return None
            tles.extend(stored.tles)
            oldest = stored.fetched_at if oldest is None else min(oldest, stored.fetched_at)
        return (tles, oldest) if oldest is not None else None

    return lookup
