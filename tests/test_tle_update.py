"""update_tles: fetch, parse and archive CelesTrak sets; cache for 2 h; fall back when offline.

A real archive file in tmp_path; HTTP through httpx.MockTransport.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from groundctl.archive import Archive, open_archive
from groundctl.links.celestrak import GPQuery
from groundctl.tle_update import UpdateOutcome, source_url, update_tles

FIXTURE = Path(__file__).parent / "fixtures" / "starlink-2026-05-13.tle"
BASE = "https://gp.example.test"
T0 = datetime(2026, 5, 14, 6, 0, tzinfo=UTC)
STARLINK = GPQuery(group="starlink")


def fixture_lines(count: int) -> list[str]:
    with FIXTURE.open(encoding="utf-8") as f:
        return [next(f) for _ in range(count)]


class GPServer:
    """A MockTransport GP server: text per query parameter, or an exception for everything."""

    def __init__(self, bodies: dict[str, str] | None = None) -> None:
        self.bodies = bodies or {}
        self.failure: Exception | None = None
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failure is not None:
            raise self.failure
        key = request.url.params.get("GROUP") or request.url.params["CATNR"]
        if key not in self.bodies:
            return httpx.Response(200, text="No GP data found")
        return httpx.Response(200, text=self.bodies[key])


def run(
    archive: Archive, server: GPServer, queries: list[GPQuery], now: datetime, **options: object
) -> list[UpdateOutcome]:
    return asyncio.run(
        update_tles(
            archive,
            queries,
            base_url=BASE,
            timeout_s=1,
            retries=1,
            transport=server.transport,
            now=now,
            backoff_s=0,
            **options,
        )
    )


@pytest.fixture
def archive(tmp_path):
    with open_archive(tmp_path / "ops.db") as opened:
        yield opened


def test_source_url_is_the_canonical_gp_url():
    assert source_url(BASE + "/", STARLINK) == (
        "https://gp.example.test/NORAD/elements/gp.php?GROUP=starlink&FORMAT=tle"
    )
    assert source_url(BASE, GPQuery(catnr=25544)).endswith("gp.php?CATNR=25544&FORMAT=tle")


def test_fetched_set_is_archived_under_its_url(archive):
    text = "".join(fixture_lines(30))
    server = GPServer({"starlink": text})
    [outcome] = run(archive, server, [STARLINK], T0)
    assert outcome.status == "fetched"
    assert outcome.count == 10 and outcome.problems == ()
    assert outcome.url == source_url(BASE, STARLINK)
    assert outcome.fetched_at == T0
    stored = archive.latest_tle_set(outcome.url)
    assert stored is not None and stored.id == outcome.set_id
    assert stored.raw == text and stored.query == "group:starlink" and stored.fmt == "tle"
    assert [t.name for t in stored.tles][:2] == ["STARLINK-1008", "STARLINK-1012"]
    assert all(t.source == outcome.url for t in stored.tles)


def test_a_bad_tle_line_is_reported_and_the_good_ones_stored(archive):
    lines = fixture_lines(9)
    # Break the checksum of the second satellite's line 1 (line 5 of the text).
    last = lines[4].rstrip("\n")
    lines[4] = last[:-1] + str((int(last[-1]) + 1) % 10) + "\n"
    server = GPServer({"starlink": "".join(lines)})
    [outcome] = run(archive, server, [STARLINK], T0)
    assert outcome.status == "fetched"
    assert outcome.count == 2
    [problem] = outcome.problems
    assert problem.line == 5 and "checksum" in problem.field
    assert problem.source == outcome.url
    stored = archive.latest_tle_set(outcome.url)
    assert stored is not None
    assert [t.norad_id for t in stored.tles] == [44714, 44723]
    assert stored.count == 2


def test_a_set_younger_than_two_hours_is_reused_unless_forced(archive):
    server = GPServer({"starlink": "".join(fixture_lines(6))})
    [first] = run(archive, server, [STARLINK], T0)
    [cached] = run(archive, server, [STARLINK], T0 + timedelta(hours=1, minutes=59))
    assert len(server.requests) == 1
    assert cached.status == "cached"
    assert (cached.set_id, cached.count, cached.fetched_at) == (first.set_id, 2, T0)
    assert "--force" in cached.message
    [forced] = run(archive, server, [STARLINK], T0 + timedelta(hours=1), force=True)
    assert forced.status == "fetched" and len(server.requests) == 2
    # Same content: no new set, but the set counts as downloaded at the forced time...
    assert forced.set_id == first.set_id and "unchanged" in forced.message
    assert archive.stats()["tle_sets"] == 1
    # ...so two hours after the first fetch it is still cached.
    [still] = run(archive, server, [STARLINK], T0 + timedelta(hours=2, minutes=30))
    assert still.status == "cached" and len(server.requests) == 2
    [later] = run(archive, server, [STARLINK], T0 + timedelta(hours=3, minutes=1))
    assert later.status == "fetched" and len(server.requests) == 3


def test_a_changed_set_after_two_hours_is_stored_as_a_new_set(archive):
    server = GPServer({"starlink": "".join(fixture_lines(6))})
    [first] = run(archive, server, [STARLINK], T0)
    server.bodies["starlink"] = "".join(fixture_lines(9))
    [second] = run(archive, server, [STARLINK], T0 + timedelta(hours=2))
    assert second.status == "fetched" and second.set_id != first.set_id
    assert second.count == 3
    stored = archive.latest_tle_set(second.url)
    assert stored is not None and stored.id == second.set_id and len(stored.tles) == 3


def test_offline_falls_back_to_the_last_good_set(archive):
    server = GPServer({"starlink": "".join(fixture_lines(6))})
    [first] = run(archive, server, [STARLINK], T0)
    server.failure = httpx.ConnectError("[Errno 101] Network is unreachable")
    [outcome] = run(archive, server, [STARLINK], T0 + timedelta(hours=5))
    assert outcome.status == "stale-fallback"
    assert outcome.set_id == first.set_id
    assert outcome.count == 2
    assert outcome.fetched_at == T0
    assert outcome.age_s == 5 * 3600
    assert "gp.example.test" in outcome.message and "Network is unreachable" in outcome.message
    assert f"archived set {first.set_id}" in outcome.message and "5.0 h old" in outcome.message
    assert archive.stats()["tle_sets"] == 1


def test_offline_without_any_archived_set_fails(archive):
    server = GPServer()
    server.failure = httpx.ConnectError("[Errno 111] Connection refused")
    [outcome] = run(archive, server, [STARLINK], T0)
    assert outcome.status == "failed"
    assert outcome.set_id is None and outcome.count == 0
    assert "gp.example.test" in outcome.message and "Connection refused" in outcome.message
    assert len(server.requests) == 2  # retries=1


def test_one_bad_query_does_not_stop_the_others(archive):
    server = GPServer({"starlink": "".join(fixture_lines(3)), "25544": "".join(fixture_lines(6))})
    queries = [GPQuery(group="nosuchgroup"), STARLINK, GPQuery(catnr=25544)]
    outcomes = run(archive, server, queries, T0)
    assert [o.query for o in outcomes] == queries
    assert [o.status for o in outcomes] == ["failed", "fetched", "fetched"]
    assert "unknown group" in outcomes[0].message
    assert [o.count for o in outcomes] == [0, 1, 2]
    assert archive.stats()["tle_sets"] == 2


def test_an_answer_without_any_valid_tle_does_not_replace_the_good_set(archive):
    server = GPServer({"starlink": "".join(fixture_lines(6))})
    [first] = run(archive, server, [STARLINK], T0)
    server.bodies["starlink"] = "<html><body>Service temporarily unavailable</body></html>\n"
    [outcome] = run(archive, server, [STARLINK], T0 + timedelta(hours=3))
    assert outcome.status == "stale-fallback"
    assert outcome.set_id == first.set_id
    assert "no valid TLE" in outcome.message
    assert archive.stats()["tle_sets"] == 1


def test_the_fleet_key_finds_the_set_without_the_network(archive):
    server = GPServer({"44714": "".join(fixture_lines(3))})
    run(archive, server, [GPQuery(catnr=44714)], T0)
    stored = archive.latest_tle_set(source_url(BASE + "/", GPQuery.parse("44714")))
    assert stored is not None and [t.norad_id for t in stored.tles] == [44714]
