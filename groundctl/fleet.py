"""The fleet: every node's TLE, gathered from the config's sources, checked, named.

Sources (see docs/config.md): TLE/3LE/OMM files, TLE text in the config, synthetic Walker
shells, and CelesTrak GP queries whose newest set `groundctl tle fetch` cached in the
archive (loading never touches the network).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from groundctl.config import Config, FleetSource
from groundctl.errors import ConfigError
from groundctl.orbits.model import TLE
from groundctl.orbits.passes import Satellite
from groundctl.orbits.tle import TLEProblem, load_tle_file, parse_tle_text, stale
from groundctl.orbits.walker import walker_shell

if TYPE_CHECKING:
    from groundctl.links.celestrak import GPQuery

# Given a CelesTrak source of the config, return the cached TLEs (or None if never fetched).
CachedSet = Callable[[FleetSource], tuple[list[TLE], datetime] | None]


@dataclass(frozen=True)
class Fleet:
    """The loaded fleet: TLEs by node, plus what was wrong or old on the way in."""

    tles: tuple[TLE, ...]
    priorities: dict[str, int]
    problems: tuple[TLEProblem, ...] = ()
    stale: tuple[TLE, ...] = ()
    notes: tuple[str, ...] = ()
    # Sources whose TLEs came from the archive (CelesTrak sets): not to be archived again.
    archived_sources: frozenset[str] = frozenset()

    def satellites(self, nodes: Sequence[str] | None = None) -> list[Satellite]:
        """The nodes as predictor input, optionally only those named (case-insensitive)."""
        wanted = {n.lower() for n in nodes} if nodes else None
        return [
            Satellite(t.name, t.norad_id, t.line1, t.line2, self.priorities.get(t.name, 0))
            for t in self.tles
            if wanted is None or t.name.lower() in wanted
        ]

    def names(self) -> list[str]:
        return [t.name for t in self.tles]


def fleet_from_tles(
    tles: Sequence[TLE],
    problems: Sequence[TLEProblem] = (),
    *,
    now: datetime,
    max_age_days: float = 7.0,
    priorities: dict[str, int] | None = None,
    never_stale: frozenset[str] = frozenset(),
) -> Fleet:
    """Build a Fleet from TLEs.

    One TLE per catalogue number (the newest epoch wins); two different satellites with
    one name are both kept, the later renamed "NAME (catalogue number)". Both cases are
    reported as problems. TLEs older than `max_age_days` at `now` are flagged stale,
    except those whose source is in `never_stale` (synthetic shells, exact by design).
    """
    found = list(problems)
    by_number: dict[int, TLE] = {}
    for tle in tles:
        old = by_number.get(tle.norad_id)
        if old is None:
            by_number[tle.norad_id] = tle
            continue
        keep, drop = (tle, old) if tle.epoch >= old.epoch else (old, tle)
        found.append(
            TLEProblem(
                drop.source,
                drop.line,
                "catalogue number",
                f"catalogue {tle.norad_id} appears twice ({old.name!r} and {tle.name!r}); "
                f"keeping the one with epoch {keep.epoch:%Y-%m-%d %H:%M}Z",
            )
        )
        by_number[tle.norad_id] = keep
    by_name: dict[str, TLE] = {}
    for tle in by_number.values():
        if tle.name in by_name:
            renamed = f"{tle.name} ({tle.norad_id})"
            found.append(
                TLEProblem(
                    tle.source,
                    tle.line,
                    "node name",
                    f"{tle.name!r} is also catalogue {by_name[tle.name].norad_id}; this one "
                    f"is called {renamed!r}",
                )
            )
            tle = replace(tle, name=renamed)
        by_name[tle.name] = tle
    kept = tuple(by_name.values())
    checked = [t for t in kept if t.source not in never_stale]
    return Fleet(
        tles=kept,
        priorities=priorities or {},
        problems=tuple(found),
        stale=tuple(stale(checked, now, max_age_days)),
    )


def gp_queries(source: FleetSource) -> list[GPQuery]:
    """The CelesTrak GP queries of a fleet source (none for other kinds of source)."""
    from groundctl.links.celestrak import GPQuery

    queries = [GPQuery(group=source.celestrak_group)] if source.celestrak_group else []
    return queries + [GPQuery(catnr=n) for n in source.celestrak_catnr]


def load_fleet(
    config: Config,
    *,
    now: datetime | None = None,
    cached: CachedSet | None = None,
) -> Fleet:
    """Load every fleet source of `config`; staleness is judged at `now` (the window start).

    Bad TLE lines are reported in `Fleet.problems` and skipped. A CelesTrak source that
    was never fetched raises ConfigError with the command to run.
    """
    now = now or datetime.now(UTC)
    tles: list[TLE] = []
    problems: list[TLEProblem] = []
    priorities: dict[str, int] = {}
    notes: list[str] = []
    synthetic: set[str] = set()
    archived: set[str] = set()
    for source in config.fleet:
        loaded, found = _load_source(config, source, cached, notes)
        if source.walker is not None:
            synthetic.update(t.source for t in loaded)
        if source.celestrak_group or source.celestrak_catnr:
            archived.update(t.source for t in loaded)
        renamed = [replace(t, name=source.names.get(t.norad_id, t.name)) for t in loaded]
        for tle in renamed:
            priorities[tle.name] = config.priority_of(tle.name, source.priority)
        tles.extend(renamed)
        problems.extend(found)
    if not config.fleet:
        raise ConfigError(
            f"{config.path}: no [[fleet]] sources: there are no nodes to work with",
            hint='add e.g. [[fleet]] tle_file = "fleet.tle"  (see docs/config.md)',
        )
    fleet = fleet_from_tles(
        tles,
        problems,
        now=now,
        max_age_days=config.tle.max_age_days,
        priorities=priorities,
        never_stale=frozenset(synthetic),
    )
    return replace(fleet, notes=tuple(notes), archived_sources=frozenset(archived))


def _load_source(
    config: Config,
    source: FleetSource,
    cached: CachedSet | None,
    notes: list[str],
) -> tuple[list[TLE], list[TLEProblem]]:
    if source.tle_file is not None:
        return load_tle_file(source.tle_file)
    if source.tle_text is not None:
        return parse_tle_text(source.tle_text, f"{config.path} {source.key}.tle")
    if source.walker is not None:
        w = source.walker
        return (
            walker_shell(
                name_format=w.name_format,
                planes=w.planes,
                per_plane=w.per_plane,
                altitude_km=w.altitude_km,
                inclination_deg=w.inclination_deg,
                epoch=w.epoch,
                phasing=w.phasing,
                raan_offset_deg=w.raan_offset_deg,
                first_catalogue_number=w.first_catalogue_number,
                source=f"{config.path} {source.key}.walker",
            ),
            [],
        )
    found = cached(source) if cached is not None else None
    if found is None:
        what = (
            f"group {source.celestrak_group!r}"
            if source.celestrak_group
            else f"catalogue numbers {list(source.celestrak_catnr)}"
        )
        raise ConfigError(
            f"{config.path}: {source.key}: CelesTrak {what} has not been fetched yet",
            hint="run `groundctl tle fetch` once with network access; later runs use the "
            "archived set",
        )
    tles, fetched_at = found
    age_h = (datetime.now(UTC) - fetched_at).total_seconds() / 3600.0
    notes.append(f"{source.key}: CelesTrak set fetched {age_h:.1f} h ago ({len(tles)} TLEs)")
    return list(tles), []
