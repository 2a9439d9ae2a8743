"""CelesTrak's GP (general perturbations) API: ask for a group or a catalogue number, get TLEs.

`fetch_gp` does one HTTP GET of `{base_url}/NORAD/elements/gp.php?GROUP=...&FORMAT=tle`
(or `CATNR=...`), retrying connection errors, timeouts and 5xx answers with exponential
backoff plus jitter, and turns every failure into a `FetchError` that says what happened
and what to do. It returns the text as served; parsing and archiving are the caller's
(`groundctl.tle_update`). The transport is a parameter so tests use `httpx.MockTransport`.

Nothing here touches SQLite.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from groundctl import __version__
from groundctl.errors import FetchError

GP_PATH = "/NORAD/elements/gp.php"
USER_AGENT = f"groundctl/{__version__}"
MAX_BACKOFF_S = 30.0
_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_QUERY_FORMS = "group:NAME (e.g. group:starlink), catnr:NUMBER (e.g. catnr:25544) or a number"
# Only the event loop's sleep, so tests can record the backoff without waiting.
_sleep = asyncio.sleep


@dataclass(frozen=True)
class GPQuery:
    """One GP query: a CelesTrak group name or a NORAD catalogue number (exactly one).

    Raises ValueError when neither or both are given, the group is blank or the
    catalogue number is not a positive whole number.
    """

    group: str | None = None
    catnr: int | None = None

    def __post_init__(self) -> None:
        if (self.group is None) == (self.catnr is None):
            raise ValueError(f"GPQuery needs exactly one of group or catnr: {self!r}")
        if self.group is not None and not self.group.strip():
            raise ValueError("GPQuery group must not be blank")
        if self.catnr is not None and (
            not isinstance(self.catnr, int) or isinstance(self.catnr, bool) or self.catnr <= 0
        ):
            raise ValueError(f"GPQuery catnr must be a positive whole number, not {self.catnr!r}")

    def params(self) -> dict[str, str]:
        """The query parameters of the GP API, asking for the TLE (3LE) format."""
        if self.group is not None:
            return {"GROUP": self.group.strip(), "FORMAT": "tle"}
        return {"CATNR": str(self.catnr), "FORMAT": "tle"}

    def __str__(self) -> str:
        return f"group:{self.group}" if self.group is not None else f"catnr:{self.catnr}"

    def describe(self) -> str:
        """Words for messages: "group 'starlink'" or "catalogue number 25544"."""
        if self.group is not None:
            return f"group {self.group!r}"
        return f"catalogue number {self.catnr}"

    @classmethod
    def parse(cls, text: str) -> GPQuery:
        """Read "group:starlink", "catnr:25544" or "25544" (prefixes case-insensitive).

        Raises ValueError saying what was found and which forms are accepted.
        """
        value = text.strip()
        kind, sep, rest = value.partition(":")
        kind, rest = kind.strip().lower(), rest.strip()
        if not sep:
            if value.isdigit() and value.isascii() and int(value) > 0:
                return cls(catnr=int(value))
            raise ValueError(f"bad GP query {text!r}: expected {_QUERY_FORMS}")
        if kind == "group":
            if not _GROUP_RE.fullmatch(rest):
                raise ValueError(
                    f"bad group name {rest!r} in GP query {text!r}: expected letters, digits "
                    "and - _ . + (e.g. group:starlink, group:gps-ops)"
                )
            return cls(group=rest)
        if kind == "catnr":
            if not (rest.isdigit() and rest.isascii() and int(rest) > 0):
                raise ValueError(
                    f"bad catalogue number {rest!r} in GP query {text!r}: expected a positive "
                    "whole number (e.g. catnr:25544)"
                )
            return cls(catnr=int(rest))
        raise ValueError(f"bad GP query {text!r}: unknown kind {kind!r}; expected {_QUERY_FORMS}")


@dataclass(frozen=True)
class FetchResult:
    """What the server sent: the full request URL, the body text, and when (UTC).

    `attempts` counts the requests made (1 when the first one succeeded).
    """

    url: str
    text: str
    fetched_at: datetime
    attempts: int = 1


def gp_url(base_url: str, query: GPQuery) -> str:
    """The full GP request URL for `query`, e.g.
    `https://celestrak.org/NORAD/elements/gp.php?GROUP=starlink&FORMAT=tle`.

    A trailing "/" on `base_url` is ignored. Raises FetchError for a malformed base URL.
    """
    try:
        return str(httpx.URL(base_url.rstrip("/") + GP_PATH, params=query.params()))
    except httpx.InvalidURL as error:
        raise FetchError(
            f"bad GP server URL {base_url!r}: {error}",
            hint="give --base-url (or the config's tle.base_url) as http(s)://host[:port], "
            "e.g. https://celestrak.org",
        ) from None


def retry_delay_s(backoff_s: float, attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    `backoff_s * 2**(attempt - 1)`, capped at 30 s, times a random factor in [0.5, 1.5]
    so that many clients failing together do not retry in lockstep.
    """
    delay_s = min(MAX_BACKOFF_S, backoff_s * 2.0 ** (attempt - 1))
    return delay_s * random.uniform(0.5, 1.5)


async def fetch_gp(
    query: GPQuery,
    *,
    base_url: str,
    timeout_s: float = 10,
    retries: int = 3,
    backoff_s: float = 0.5,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FetchResult:
    """GET the TLEs of `query` from the GP API at `base_url`.

    `timeout_s` (seconds) bounds each network step (connect, each read, ...) of one
    attempt. Connection errors, timeouts and HTTP 5xx are retried up to `retries` times
    (so at most `retries + 1` requests) after `retry_delay_s(backoff_s, n)` seconds;
    HTTP 4xx is not retried. Redirects are followed. `transport` replaces the network
    (tests pass `httpx.MockTransport`).

    Raises FetchError: the server is unreachable or silent (names the host and the
    underlying error), it answered an HTTP error (code and first line of the body), it
    has no data for the query ("No GP data found": unknown group or catalogue number),
    it rejected the query, or the body is empty.
    """
    url = gp_url(base_url, query)
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(
            f"bad GP server URL {base_url!r}: expected http(s)://host[:port]",
            hint="give --base-url (or the config's tle.base_url) like https://celestrak.org",
        )
    host = parsed.host
    attempts = max(0, retries) + 1
    failure = ""
    server_error: httpx.Response | None = None
    async with httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    ) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = await client.get(url)
            except httpx.TimeoutException as error:
                failure, server_error = (
                    f"no answer within {timeout_s:g} s ({_describe(error)})",
                    None,
                )
            except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as error:
                failure, server_error = _describe(error), None
            except httpx.HTTPError as error:
                # Unsupported scheme, too many redirects, a bad request built locally:
                # retrying would not help.
                raise FetchError(
                    f"cannot fetch {url}: {_describe(error)}",
                    hint="check --base-url (or the config's tle.base_url): http(s)://host[:port]",
                ) from None
            else:
                if response.status_code < 500:
                    return _result(query, url, host, response, attempt)
                server_error = response
            if attempt < attempts:
                await _sleep(retry_delay_s(backoff_s, attempt))
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if server_error is not None:
        raise FetchError(
            f"{host} answered HTTP {server_error.status_code} {server_error.reason_phrase} "
            f"for {url} ({tries}): {_first_line(server_error.text)}",
            hint="the server has trouble; try again later (the last archived set stays in use)",
        )
    raise FetchError(
        f"cannot reach {host} ({tries}): {failure}",
        hint="check the network connection, or point --base-url (or the config's "
        "tle.base_url) at a reachable mirror; while offline the last archived set stays in use",
    )


def _result(
    query: GPQuery, url: str, host: str, response: httpx.Response, attempt: int
) -> FetchResult:
    """Check a non-5xx answer and turn it into a FetchResult (FetchError otherwise)."""
    text = response.text
    if not response.is_success:
        code = response.status_code
        if code == 404:
            hint = f"check --base-url: the GP API should answer at {url.split('?')[0]}"
        elif code in (403, 429):
            hint = (
                "CelesTrak refuses clients that download the same data more often than "
                "every 2 hours; wait before fetching again (and avoid --force in loops)"
            )
        else:
            hint = "check the query and --base-url (or the config's tle.base_url)"
        raise FetchError(
            f"{host} answered HTTP {code} {response.reason_phrase} for {url}: {_first_line(text)}",
            hint=hint,
        )
    first = _first_line(text, empty="")
    if not first:
        raise FetchError(
            f"{host} answered {url} with an empty body: no TLEs for {query.describe()}",
            hint="try again later; if it persists, check the query",
        )
    if first.lower().startswith("no gp data found"):
        raise FetchError(
            f"{host} has no GP data for {query.describe()}: unknown "
            f"{'group' if query.group is not None else 'catalogue number'} ({url})",
            hint="check the name against https://celestrak.org/NORAD/elements/ (groups are "
            "e.g. starlink, stations, gps-ops); a catalogue number may belong to a decayed "
            "object",
        )
    if first.lower().startswith("invalid query"):
        raise FetchError(
            f"{host} rejected the query {query} ({url}): {first}",
            hint="give group:NAME or catnr:NUMBER",
        )
    return FetchResult(url=url, text=text, fetched_at=datetime.now(UTC), attempts=attempt)


def _describe(error: BaseException) -> str:
    """The error's type and text, plus the OS reason buried in its chain, e.g.
    "ConnectError: All connection attempts failed (Connection refused)"."""
    text = str(error).strip()
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    reason = _os_reason(error)
    if reason and reason.lower() not in described.lower():
        described += f" ({reason})"
    return described


def _os_reason(error: BaseException) -> str:
    """The strerror of the deepest OSError in the cause/context chain ("" if none)."""
    reason = ""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            reason = os.strerror(current.errno) if current.errno > 0 else current.strerror or ""
        current = current.__cause__ or current.__context__
    return reason


def _first_line(text: str, *, empty: str = "(empty body)", limit: int = 200) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return empty
