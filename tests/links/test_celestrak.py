"""The CelesTrak GP client against httpx.MockTransport and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from groundctl import __version__
from groundctl.errors import FetchError
from groundctl.links import celestrak
from groundctl.links.celestrak import GPQuery, fetch_gp, gp_url, retry_delay_s
from groundctl.orbits.tle import parse_tle_text

FIXTURE = Path(__file__).parent.parent / "fixtures" / "starlink-2026-05-13.tle"
BASE = "https://gp.example.test"


def fixture_text(lines: int = 30) -> str:
    with FIXTURE.open(encoding="utf-8") as f:
        return "".join(next(f) for _ in range(lines))


class Server:
    """A MockTransport whose handler answers from a list of responses and counts requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def fetch(query: GPQuery, server: Server, **options: object) -> celestrak.FetchResult:
    kwargs: dict = {"base_url": BASE, "retries": 3, "backoff_s": 0, "transport": server.transport}
    kwargs.update(options)
    return asyncio.run(fetch_gp(query, **kwargs))


# --- queries ---------------------------------------------------------------------------


def test_group_and_catnr_queries_make_gp_params_and_urls():
    group, catnr = GPQuery(group="starlink"), GPQuery(catnr=25544)
    assert group.params() == {"GROUP": "starlink", "FORMAT": "tle"}
    assert catnr.params() == {"CATNR": "25544", "FORMAT": "tle"}
    assert (str(group), str(catnr)) == ("group:starlink", "catnr:25544")
    assert gp_url(BASE + "/", group) == BASE + "/NORAD/elements/gp.php?GROUP=starlink&FORMAT=tle"
    assert gp_url(BASE, catnr) == BASE + "/NORAD/elements/gp.php?CATNR=25544&FORMAT=tle"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("group:starlink", GPQuery(group="starlink")),
        (" GROUP: gps-ops ", GPQuery(group="gps-ops")),
        ("catnr:25544", GPQuery(catnr=25544)),
        ("25544", GPQuery(catnr=25544)),
    ],
)
def test_parse_accepts_the_three_forms(text, expected):
    assert GPQuery.parse(text) == expected
    assert GPQuery.parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "expected group:NAME"),
        ("starlink", "expected group:NAME"),
        ("-5", "expected group:NAME"),
        ("group:", "bad group name ''"),
        ("group:star link", "bad group name 'star link'"),
        ("catnr:ISS", "bad catalogue number 'ISS'"),
        ("catnr:0", "bad catalogue number '0'"),
        ("norad:25544", "unknown kind 'norad'"),
    ],
)
def test_parse_rejects_anything_else_with_a_clear_message(text, says):
    with pytest.raises(ValueError, match="GP query") as caught:
        GPQuery.parse(text)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    "kwargs", [{}, {"group": "x", "catnr": 1}, {"group": " "}, {"catnr": 0}, {"catnr": True}]
)
def test_a_query_needs_exactly_one_valid_selector(kwargs):
    with pytest.raises(ValueError, match="GPQuery"):
        GPQuery(**kwargs)


# --- fetching over MockTransport -------------------------------------------------------


def test_fetch_sends_the_gp_request_and_returns_the_text():
    server = Server(httpx.Response(200, text=fixture_text(6)))
    result = fetch(GPQuery(group="starlink"), server)
    [request] = server.requests
    assert request.method == "GET"
    assert request.url.host == "gp.example.test"
    assert request.url.path == "/NORAD/elements/gp.php"
    assert dict(request.url.params) == {"GROUP": "starlink", "FORMAT": "tle"}
    assert request.headers["User-Agent"] == f"groundctl/{__version__}"
    assert result.url == gp_url(BASE, GPQuery(group="starlink"))
    assert result.text == fixture_text(6)
    assert result.fetched_at.tzinfo is not None
    assert result.attempts == 1


def test_fetch_by_catalogue_number_asks_for_catnr():
    server = Server(httpx.Response(200, text=fixture_text(3)))
    fetch(GPQuery(catnr=44714), server)
    assert dict(server.requests[0].url.params) == {"CATNR": "44714", "FORMAT": "tle"}


def test_503_is_retried_then_the_answer_is_used():
    server = Server(httpx.Response(503, text="busy"), httpx.Response(200, text=fixture_text(3)))
    result = fetch(GPQuery(group="starlink"), server)
    assert len(server.requests) == 2
    assert result.attempts == 2
    assert result.text == fixture_text(3)


def test_5xx_retries_run_out_with_the_status_in_the_error():
    server = Server(httpx.Response(502, text="Bad gateway\nmore detail"))
    with pytest.raises(FetchError) as caught:
        fetch(GPQuery(group="starlink"), server, retries=2)
    assert len(server.requests) == 3
    message = caught.value.message
    assert "HTTP 502" in message and "Bad gateway" in message and "more detail" not in message
    assert "3 attempts" in message


def test_404_is_not_retried_and_names_code_and_body():
    server = Server(httpx.Response(404, text="<title>Not here</title>\n<p>nope</p>"))
    with pytest.raises(FetchError) as caught:
        fetch(GPQuery(group="starlink"), server)
    assert len(server.requests) == 1
    assert "HTTP 404" in caught.value.message
    assert "<title>Not here</title>" in caught.value.message
    assert "--base-url" in caught.value.hint


def test_403_hints_at_the_two_hour_rule():
    server = Server(httpx.Response(403, text="Forbidden"))
    with pytest.raises(FetchError, match="HTTP 403") as caught:
        fetch(GPQuery(group="starlink"), server)
    assert len(server.requests) == 1
    assert "2 hours" in caught.value.hint


def test_no_gp_data_found_means_unknown_group_or_catalogue_number():
    server = Server(httpx.Response(200, text="No GP data found\n"))
    with pytest.raises(FetchError) as caught:
        fetch(GPQuery(group="starlinx"), server)
    assert "unknown group" in caught.value.message
    assert "'starlinx'" in caught.value.message
    with pytest.raises(FetchError, match="unknown catalogue number"):
        fetch(GPQuery(catnr=99999999), server)
    assert len(server.requests) == 2  # not retried


def test_an_empty_body_is_a_fetch_error():
    server = Server(httpx.Response(200, text="\n  \n"))
    with pytest.raises(FetchError, match="empty body"):
        fetch(GPQuery(group="starlink"), server)


def test_connect_error_is_retried_then_names_the_host():
    server = Server(httpx.ConnectError("[Errno -3] Temporary failure in name resolution"))
    with pytest.raises(FetchError) as caught:
        fetch(GPQuery(group="starlink"), server, retries=1)
    assert len(server.requests) == 2
    message = caught.value.message
    assert "gp.example.test" in message
    assert "Temporary failure in name resolution" in message
    assert "--base-url" in caught.value.hint and "offline" in caught.value.hint


def test_timeouts_are_retried_and_reported():
    server = Server(httpx.ReadTimeout("timed out"), httpx.Response(200, text=fixture_text(3)))
    assert fetch(GPQuery(catnr=44714), server).attempts == 2
    server = Server(httpx.ConnectTimeout("timed out"))
    with pytest.raises(FetchError, match=r"no answer within 2\.5 s"):
        fetch(GPQuery(catnr=44714), server, timeout_s=2.5, retries=0)
    assert len(server.requests) == 1


def test_redirects_are_followed():
    target = "https://mirror.example.test/NORAD/elements/gp.php?GROUP=starlink&FORMAT=tle"
    server = Server(
        httpx.Response(301, headers={"Location": target}), httpx.Response(200, text="x\n")
    )
    assert fetch(GPQuery(group="starlink"), server).text == "x\n"
    assert str(server.requests[1].url) == target


def test_a_base_url_without_http_fails_without_retrying():
    server = Server(httpx.Response(200, text="x"))
    for base_url in ("ftp://gp.example.test", "gp.example.test", "http://"):
        with pytest.raises(FetchError, match="bad GP server URL") as caught:
            fetch(GPQuery(group="starlink"), server, base_url=base_url)
        assert "--base-url" in caught.value.hint
    assert server.requests == []


def test_backoff_grows_exponentially_with_jitter(monkeypatch):
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(celestrak, "_sleep", record)
    server = Server(httpx.Response(500, text="oops"))
    with pytest.raises(FetchError):
        fetch(GPQuery(group="starlink"), server, retries=3, backoff_s=1.0)
    assert len(delays) == 3  # none after the last attempt
    for n, delay in enumerate(delays):
        assert 0.5 * 2**n <= delay <= 1.5 * 2**n
    assert all(retry_delay_s(10.0, 12) <= 45.0 for _ in range(50))  # capped at 30 s +- jitter
    assert len({retry_delay_s(1.0, 1) for _ in range(20)}) > 1  # jittered


# --- a real socket ---------------------------------------------------------------------


@contextmanager
def http_server(respond: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            respond(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_fetch_from_a_real_http_server_on_localhost(no_proxy):
    body = fixture_text(30).encode()
    seen: list[tuple[str, str]] = []

    def respond(handler: BaseHTTPRequestHandler) -> None:
        seen.append((handler.path, handler.headers["User-Agent"]))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with http_server(respond) as base_url:
        result = asyncio.run(fetch_gp(GPQuery(group="starlink"), base_url=base_url, backoff_s=0))
    [(path, agent)] = seen
    split = urlsplit(path)
    assert split.path == "/NORAD/elements/gp.php"
    assert parse_qs(split.query) == {"GROUP": ["starlink"], "FORMAT": ["tle"]}
    assert agent == f"groundctl/{__version__}"
    tles, problems = parse_tle_text(result.text, source=result.url)
    assert len(tles) == 10 and problems == []
    assert tles[0].name == "STARLINK-1008" and tles[0].norad_id == 44714


def test_a_closed_port_on_localhost_is_unreachable(no_proxy):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: connection refused, retried, then reported.
    with pytest.raises(FetchError) as caught:
        asyncio.run(
            fetch_gp(
                GPQuery(catnr=25544), base_url=f"http://127.0.0.1:{port}", retries=1, backoff_s=0
            )
        )
    assert "cannot reach 127.0.0.1 (2 attempts)" in caught.value.message
    assert "ConnectError" in caught.value.message
    assert "Connection refused" in caught.value.message  # the OS reason under httpx's words
