"""Keep the archive's CelesTrak TLE sets fresh: fetch, check, store, or fall back.

`update_tles` is what `groundctl tle fetch` runs. For each GP query it either reuses the
archived set (younger than 2 hours: CelesTrak asks its users not to download the same data
more often than that, and blocks clients that do), or downloads it (`links.celestrak`),
parses it (`orbits.tle`, a bad record is reported and skipped) and archives it
(`archive`). When the download fails, the last good archived set stays in use and the
outcome says how old it is. The archive key of a set is `source_url(base_url, query)`, so
the fleet loader finds the newest set of a query without the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from groundctl.archive import Archive, StoredTLESet
from groundctl.errors import ArchiveError, FetchError
from groundctl.links.celestrak import GPQuery, fetch_gp, gp_url
from groundctl.orbits.tle import TLEProblem, parse_tle_text

if TYPE_CHECKING:
    import httpx

# CelesTrak updates GP data a few times a day and asks (in its GP documentation) for at
# most one download of the same data every 2 hours; it blocks clients that ask more often.
MIN_INTERVAL_S = 2 * 3600.0

Status = Literal["fetched", "cached", "stale-fallback", "failed"]


@dataclass(frozen=True)
class UpdateOutcome:
    """What happened to one query.

    `status`:
    - "fetched": downloaded and archived (`problems` lists the records skipped);
    - "cached": the archived set is younger than the minimum interval, not downloaded;
    - "stale-fallback": the download failed (`message` says why) and the last good
      archived set stays in use; `age_s` is its age in seconds;
    - "failed": the download failed and nothing is archived for this query.
    `set_id`/`fetched_at`/`count` describe the set now in use (None/None/0 when failed);
    `fetched_at` is UTC.
    """

    query: GPQuery
    status: Status
    url: str
    count: int = 0
    problems: tuple[TLEProblem, ...] = ()
    message: str = ""
    set_id: int | None = None
    fetched_at: datetime | None = None
    age_s: float | None = None


def source_url(base_url: str, query: GPQuery) -> str:
    """The canonical URL of `query` on the GP server at `base_url`, used as the archive's
    `source` key of its TLE sets, e.g.
    `https://celestrak.org/NORAD/elements/gp.php?GROUP=starlink&FORMAT=tle`.

    A trailing "/" on `base_url` is ignored. Raises FetchError for a malformed base URL.
    """
    return gp_url(base_url, query)


async def update_tles(
    archive: Archive,
    queries: Sequence[GPQuery],
    *,
    base_url: str,
    timeout_s: float,
    retries: int,
    transport: httpx.AsyncBaseTransport | None = None,
    now: datetime | None = None,
    min_interval_s: float = MIN_INTERVAL_S,
    force: bool = False,
    backoff_s: float = 0.5,
) -> list[UpdateOutcome]:
    """Bring the archived TLE set of each query up to date; one outcome per query, in order.

    A set downloaded less than `min_interval_s` seconds before `now` (default: the
    clock, UTC) is reused unless `force`. Otherwise the query is fetched with
    `fetch_gp` (`timeout_s` seconds per network step, `retries` retries, `backoff_s`
    base backoff), parsed with `parse_tle_text` and archived under `source_url`; an
    unchanged download refreshes the existing set's fetch time (see
    `Archive.store_tle_set`). An answer without a single valid TLE counts as a failed
    download, so it never replaces a good set.

    Never raises for one query's trouble (network, server, archive): that query's
    outcome is "stale-fallback" or "failed" and the other queries still run.
    """
    outcomes = []
    for query in queries:
        try:
            outcome = await _update_one(
                archive,
                query,
                base_url=base_url,
                timeout_s=timeout_s,
                retries=retries,
                backoff_s=backoff_s,
                transport=transport,
                now=now,
                min_interval_s=min_interval_s,
                force=force,
            )
        except (FetchError, ArchiveError) as error:
            outcome = UpdateOutcome(query, "failed", _url_or(base_url, query), message=str(error))
        outcomes.append(outcome)
    return outcomes


async def _update_one(
    archive: Archive,
    query: GPQuery,
    *,
    base_url: str,
    timeout_s: float,
    retries: int,
    backoff_s: float,
    transport: httpx.AsyncBaseTransport | None,
    now: datetime | None,
    min_interval_s: float,
    force: bool,
) -> UpdateOutcome:
    url = source_url(base_url, query)
    clock = now or datetime.now(UTC)
    previous = archive.latest_tle_set(url, with_tles=False)
    if previous is not None and not force:
        age_s = (clock - previous.fetched_at).total_seconds()
        if age_s < min_interval_s:
            return _using(
                query,
                "cached",
                url,
                previous,
                clock,
                f"archived set {previous.id} is {_age(age_s)} old; CelesTrak asks for at most "
                f"one download every {_age(min_interval_s)} (--force fetches anyway)",
            )
    try:
        result = await fetch_gp(
            query,
            base_url=base_url,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            transport=transport,
        )
        tles, problems = parse_tle_text(result.text, source=url)
        if not tles:
            detail = f": {problems[0]}" if problems else ""
            raise FetchError(
                f"the answer to {url} holds no valid TLE ({len(problems)} problems){detail}",
                hint="the server may have sent an error page; try again later",
            )
    except FetchError as error:
        if previous is None:
            return UpdateOutcome(query, "failed", url, message=str(error))
        return _using(
            query,
            "stale-fallback",
            url,
            previous,
            clock,
            f"{error.message}; using archived set {previous.id} from "
            f"{previous.fetched_at:%Y-%m-%d %H:%M}Z "
            f"({_age((clock - previous.fetched_at).total_seconds())} old)",
        )
    fetched_at = now if now is not None else result.fetched_at
    set_id = archive.store_tle_set(url, str(query), "tle", result.text, tles, fetched_at)
    message = ""
    if previous is not None and previous.id == set_id:
        message = f"unchanged since archived set {set_id}"
    if result.attempts > 1:
        message = "; ".join(filter(None, [message, f"took {result.attempts} attempts"]))
    return UpdateOutcome(
        query,
        "fetched",
        url,
        count=len(tles),
        problems=tuple(problems),
        message=message,
        set_id=set_id,
        fetched_at=fetched_at,
        age_s=0.0,
    )


def _using(
    query: GPQuery, status: Status, url: str, stored: StoredTLESet, now: datetime, message: str
) -> UpdateOutcome:
    return UpdateOutcome(
        query,
        status,
        url,
        count=stored.count,
        message=message,
        set_id=stored.id,
        fetched_at=stored.fetched_at,
        age_s=(now - stored.fetched_at).total_seconds(),
    )


def _url_or(base_url: str, query: GPQuery) -> str:
    try:
        return source_url(base_url, query)
    except FetchError:
        return base_url


def _age(seconds: float) -> str:
    """A duration for people: "45 s", "12 min", "3.5 h", "2.1 days"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
