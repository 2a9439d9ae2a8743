"""The HTTP link against a real HTTP/1.1 server on 127.0.0.1: commands, SSE, long-poll, TLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.metadata
import json
import re
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401
from groundctl.links.base import LinkError, LinkState
from groundctl.links.http import HttpLink, SseParser

SESSION = Path(__file__).parents[1] / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
RECORDS = [json.loads(line) for line in SESSION.read_text().splitlines()]
PACKETS = [bytes.fromhex(r["hex"]) for r in RECORDS if r["dir"] == "down"][:200]
COMMANDS = [bytes.fromhex(r["hex"]) for r in RECORDS if r["dir"] == "up"]
TOKEN = "tok-7Q9xZ-must-never-leak-4F2e"
TOKEN_ENV = "GROUNDCTL_TEST_HTTP_TOKEN"
FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "backoff_s": 0.01}


# --- a small real HTTP/1.1 server ------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes


class Reply:
    """Writes one answer: complete (`send`) or a chunked stream (`start`, `chunk`, `end`)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def send(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()

    async def start(self, content_type: str = "text/event-stream") -> None:
        self.writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def end(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()


# A handler answers one request; it returns True to keep the connection for the next one.
Handler = Callable[["Peer", Request, Reply], Awaitable[bool]]


@dataclass
class Peer:
    """A real HTTP/1.1 server on 127.0.0.1 (HTTPS with `tls`), answering with `handler`."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    state: dict = field(default_factory=dict)  # whatever a handler wants to remember
    _writers: set = field(default_factory=set)

    async def __aenter__(self) -> Peer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/api/node"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.done.set()
        self.server.close()
        for writer in list(self._writers):
            writer.close()

    def of(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while (header := await reader.readline()).strip():
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                url = urlsplit(target)
                request = Request(method, url.path, dict(parse_qsl(url.query)), headers, body)
                self.requests.append(request)
                if not await self.handler(self, request, Reply(writer)):
                    break
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away
        finally:
            self._writers.discard(writer)
            writer.close()


async def quiet_stream(peer: Peer, reply: Reply) -> bool:
    """A telemetry stream that sends nothing until the test ends."""
    await reply.start()
    await peer.done.wait()
    return False


async def accept_commands(peer: Peer, request: Request, reply: Reply) -> bool:
    if request.method == "POST":
        await reply.send(204)
        return True
    return await quiet_stream(peer, reply)


def sse(ident: int, packet: bytes) -> bytes:
    return f"id: {ident}\ndata: {packet.hex()}\n\n".encode()


async def until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    """Wait until `condition()` holds (checked every few ms); TimeoutError after timeout_s."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def take(link: HttpLink, count: int) -> list[bytes]:
    frames = []
    async for frame in link.frames():
        frames.append(frame.raw)
        if len(frames) == count:
            break
    return frames


def watch_states(link: HttpLink) -> list[str]:
    states: list[str] = []
    link.on_state_change(lambda _, old, new: states.append(new.value))
    return states


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


# --- commands --------------------------------------------------------------------------


def test_commands_are_posted_byte_for_byte_with_the_bearer_token(token):
    frames = [*COMMANDS, bytes(range(256)), b"\x00\r\n\r\n\x00"]

    async def main():
        async with Peer(accept_commands) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, "token_env": TOKEN_ENV, **FAST})
            await link.open()
            for frame in frames:
                await link.send(frame)
            await link.close()
            return peer.of("POST", "/api/node/commands"), link

    posts, link = asyncio.run(main())
    assert [p.body for p in posts] == frames
    assert {p.headers["authorization"] for p in posts} == {f"Bearer {TOKEN}"}
    assert {p.headers["content-type"] for p in posts} == {"application/octet-stream"}
    assert len({p.headers["idempotency-key"] for p in posts}) == len(frames)
    assert link.counters.frames_out == len(frames)
    assert link.counters.bytes_out == sum(map(len, frames))
    assert link.counters.errors == 0


def test_one_link_to_a_gateway_commands_several_nodes_through_node_in_the_path():
    async def main():
        async with Peer(accept_commands) as peer:
            gateway = HttpLink(
                "gw",
                "odc-07",
                {
                    "url": peer.url,
                    "send_path": "/nodes/{node}/commands",
                    "telemetry_path": "/nodes/{node}/telemetry",
                    **FAST,
                },
            )
            await gateway.open()
            await gateway.send(b"to the link's node")
            await gateway.send(b"to another", node="odc 08")
            await until(lambda: gateway.state is LinkState.UP)
            await gateway.close()
            single = HttpLink("one", "odc-07", {"url": peer.url, **FAST})
            await single.open()
            with pytest.raises(LinkError) as error:
                await single.send(b"x", node="odc-08")
            await single.send(b"y", node="odc-07")
            await single.close()
            return [(r.method, r.path, r.body) for r in peer.requests], error.value

    requests, error = asyncio.run(main())
    assert ("POST", "/api/node/nodes/odc-07/commands", b"to the link's node") in requests
    assert ("POST", "/api/node/nodes/odc%2008/commands", b"to another") in requests
    assert ("GET", "/api/node/nodes/odc-07/telemetry", b"") in requests
    assert ("POST", "/api/node/commands", b"y") in requests
    assert error.message == "link one commands node odc-07 only, not odc-08: nothing was sent"
    assert "{node}" in error.hint


def test_5xx_is_retried_with_the_same_idempotency_key_then_succeeds():
    async def flaky(peer, request, reply):
        if request.method != "POST":
            return await quiet_stream(peer, reply)
        if request.body == b"always-busy" or len(peer.of("POST", request.path)) <= 2:
            await reply.send(503, b"busy, try later\n")
        else:
            await reply.send(202)
        return True

    async def main():
        async with Peer(flaky) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, "retries": 3, **FAST})
            await link.open()
            await link.send(COMMANDS[0])
            posts = peer.of("POST", "/api/node/commands")
            errors_after_success = link.counters.errors
            stubborn = HttpLink("gw2", "cfs", {"url": peer.url, "retries": 1, **FAST})
            await stubborn.open()
            with pytest.raises(LinkError) as refused:
                await stubborn.send(b"always-busy")
            await stubborn.close()
            await link.close()
            return posts, errors_after_success, link, refused.value

    posts, errors, link, refused = asyncio.run(main())
    assert [p.body for p in posts] == [COMMANDS[0]] * 3
    assert len({p.headers["idempotency-key"] for p in posts}) == 1
    assert link.counters.frames_out == 1 and errors == 2
    assert "(2 attempts)" in refused.message
    assert "HTTP 503 Service Unavailable: busy, try later" in refused.message


def test_unreachable_server_is_retried_then_refused():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()  # nothing listens on `port` any more
        link = HttpLink("gw", "cfs", {"url": f"http://127.0.0.1:{port}", "retries": 2, **FAST})
        await link.open()
        with pytest.raises(LinkError) as error:
            await link.send(b"x")
        await link.close()
        return error.value, link

    error, link = asyncio.run(main())
    assert "(3 attempts)" in error.message and "ConnectError" in error.message
    assert link.counters.frames_out == 0


def test_a_server_that_never_answers_times_out_after_timeout_s():
    async def silent(peer, request, reply):
        if request.method != "POST":
            return await quiet_stream(peer, reply)
        await peer.done.wait()  # takes the command, never answers
        return False

    async def main():
        async with Peer(silent) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, "timeout_s": 0.2, "retries": 1, **FAST})
            await link.open()
            with pytest.raises(LinkError) as error:
                await link.send(b"cmd")
            await link.close()
            return error.value, peer.of("POST", "/api/node/commands")

    error, posts = asyncio.run(main())
    assert error.message.endswith("(2 attempts): ReadTimeout: no progress within 0.2 s")
    assert [p.body for p in posts] == [b"cmd", b"cmd"]
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]


def test_4xx_is_refused_at_once_with_the_status_and_first_line():
    async def strict(peer, request, reply):
        if request.method != "POST":
            return await quiet_stream(peer, reply)
        await reply.send(422, b"\nframe too long: 4096 > 1024 bytes\nsee the API guide\n")
        return True

    async def main():
        async with Peer(strict) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, "retries": 5, **FAST})
            await link.open()
            with pytest.raises(LinkError) as error:
                await link.send(bytes(4096))
            await link.close()
            return error.value, len(peer.of("POST", "/api/node/commands")), link

    error, posts, link = asyncio.run(main())
    assert posts == 1
    assert error.message.endswith(
        "/api/node/commands refused the frame: "
        "HTTP 422 Unprocessable Entity: frame too long: 4096 > 1024 bytes"
    )
    assert "not retried" in error.hint
    assert link.counters.frames_out == 0 and link.counters.errors == 1


def test_sending_before_open_is_refused():
    async def main():
        link = HttpLink("gw", "cfs", {"url": "http://127.0.0.1:9"})
        with pytest.raises(LinkError, match="link gw is closed: nothing was sent"):
            await link.send(b"x")

    asyncio.run(main())


# --- Server-Sent Events ----------------------------------------------------------------


def test_sse_frames_arrive_in_order():
    async def stream(peer, request, reply):
        if request.method == "POST":
            await reply.send(204)
            return True
        await reply.start()
        for start in range(0, len(PACKETS), 37):  # several events per chunk
            batch = range(start, min(start + 37, len(PACKETS)))
            await reply.chunk(b"".join(sse(i + 1, PACKETS[i]) for i in batch))
        await peer.done.wait()
        return False

    async def main():
        async with Peer(stream) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, **FAST})
            states = watch_states(link)
            await link.open()
            got = await asyncio.wait_for(take(link, len(PACKETS)), 10)
            await link.close()
            return got, link, states, peer.of("GET", "/api/node/telemetry")

    got, link, states, gets = asyncio.run(main())
    assert got == PACKETS
    assert link.counters.frames_in == len(PACKETS) and link.counters.errors == 0
    assert link.last_event_id == str(len(PACKETS)).encode()
    assert states == ["connecting", "up", "closed"]
    assert gets[0].headers["accept"] == "text/event-stream"
    assert "last-event-id" not in gets[0].headers


def test_sse_stream_follows_the_event_stream_rules():
    long, short = PACKETS[2], PACKETS[0]
    cut = len(long.hex()) // 2
    body = (
        b"\xef\xbb\xbf: a comment after the byte order mark\r\n"
        b"retry: 120\r\n\r\n"
        # one frame written over two data lines (joined with a newline, which hex ignores)
        + f"id: 1\r\ndata: {long.hex()[:cut]}\r\ndata: {long.hex()[cut:]}\r\n\r\n".encode()
        + b": keep-alive\n\n"
        + f"event: telemetry\nid: 2\ndata:{short.hex()}\n\n".encode()  # no space after ':'
        + f"id: 3\rdata: {PACKETS[1].hex()}\r\r".encode()  # CR line ends
        + b"id: 4\n\n"  # an id without data: no frame, but the id counts
        + f"data: {PACKETS[3].hex()}\nunknown-field: x\nid\n\n".encode()  # `id` alone: empty
    )

    async def stream(peer, request, reply):
        await reply.start()
        for i in range(0, len(body), 97):  # chunks that split lines and CRLF pairs
            await reply.chunk(body[i : i + 97])
        await peer.done.wait()
        return False

    async def main():
        async with Peer(stream) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, **FAST})
            await link.open()
            got = await asyncio.wait_for(take(link, 4), 10)
            await link.close()
            return got, link

    got, link = asyncio.run(main())
    assert got == [long, short, PACKETS[1], PACKETS[3]]
    assert link.counters.errors == 0
    assert link.reconnect_base_s == pytest.approx(0.12)  # `retry: 120` within 0.05..0.2 s
    assert link.last_event_id == b""


def test_sse_parser_gives_the_same_events_whatever_the_chunks():
    stream = (
        b"id: 7\r\ndata: 0a0b\r\n\r\n:c\rdata: 0c\r\rdata: 0d\ndata: 0e\n\nretry: 99999999\n"
        b"id: x\x00y\ndata: 0f\r\n\r\nid: 9\ndata: 10"
    )
    whole = SseParser()
    events = whole.feed(stream)
    assert [(e.data, e.id) for e in events] == [
        (b"0a0b", b"7"),
        (b"0c", b"7"),
        (b"0d\n0e", b"7"),
        (b"0f", b"7"),  # an id holding NUL is ignored
    ]
    assert events[0].raw == b"id: 7\r\ndata: 0a0b\r\n"
    assert whole.retry_ms == 99999999
    assert whole.pending() == b"id: 9\ndata: 10"
    bytewise = SseParser()
    one_by_one = [e for i in range(len(stream)) for e in bytewise.feed(stream[i : i + 1])]
    assert one_by_one == events
    assert bytewise.pending() == whole.pending()


def test_sse_reconnects_with_last_event_id_and_loses_nothing():
    half = f"id: 61\ndata: {PACKETS[60].hex()[:10]}".encode()

    async def stream(peer, request, reply):
        await reply.start()
        if not peer.state.get("dropped"):
            peer.state["dropped"] = True
            await reply.chunk(b"".join(sse(i + 1, PACKETS[i]) for i in range(60)))
            await reply.chunk(half)
            return False  # the connection drops in the middle of event 61
        after = int(request.headers["last-event-id"])
        await reply.chunk(
            b"retry: 1000000\n\n"
            + b"".join(sse(i + 1, PACKETS[i]) for i in range(after, len(PACKETS)))
        )
        await peer.done.wait()
        return False

    async def main():
        async with Peer(stream) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, **FAST})
            states = watch_states(link)
            await link.open()
            got = await asyncio.wait_for(take(link, len(PACKETS) + 1), 10)
            await link.close()
            return got, link, states, peer.of("GET", "/api/node/telemetry")

    got, link, states, gets = asyncio.run(main())
    assert got[:60] == PACKETS[:60]
    assert got[60] == half  # the cut-off event's bytes, for the archive (as malformed)
    assert got[61:] == PACKETS[60:]
    assert "last-event-id" not in gets[0].headers
    assert gets[1].headers["last-event-id"] == "60"
    assert states == ["connecting", "up", "down", "up", "closed"]
    assert link.counters.errors == 2  # the cut-off event, and the broken stream
    assert "RemoteProtocolError" in link.last_error
    assert link.connections == 2
    assert link.reconnect_base_s == 0.2  # a huge `retry:` is held to reconnect_max_s


def test_a_silent_stream_is_reopened_after_idle_timeout_s():
    async def stream(peer, request, reply):
        await reply.start()
        if len(peer.requests) == 1:
            await reply.chunk(sse(1, PACKETS[0]))  # then nothing, not even a comment
        else:
            await reply.chunk(sse(2, PACKETS[1]))
        await peer.done.wait()
        return False

    async def main():
        async with Peer(stream) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, "idle_timeout_s": 0.3, **FAST})
            states = watch_states(link)
            await link.open()
            got = await asyncio.wait_for(take(link, 2), 10)
            await link.close()
            return got, link, states, peer.requests

    got, link, states, requests = asyncio.run(main())
    assert got == PACKETS[:2]
    assert requests[1].headers["last-event-id"] == "1"
    assert link.last_error == "no data within 0.3 s"
    assert states == ["connecting", "up", "down", "up", "closed"]


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_malformed_sse_data_is_delivered_raw_and_counted(encoding):
    def text(packet):
        return packet.hex() if encoding == "hex" else base64.b64encode(packet).decode()

    b64 = base64.b64encode(PACKETS[3]).decode()
    body = (
        (
            f"id: 1\ndata: {text(PACKETS[0])}\n\n"
            "id: 2\ndata: this is not a frame\n\n"
            f"id: 3\ndata: {text(PACKETS[1])}\n\n"
            "id: 4\ndata:\n\n"  # empty data
            f"id: 5\ndata: {text(PACKETS[2])}\n\n"
            f"id: 6\ndata: {b64[:20]}\ndata: {b64[20:]}\n\n"  # base64 over two lines
        ).encode()
    )

    async def stream(peer, request, reply):
        await reply.start()
        await reply.chunk(body)
        await peer.done.wait()
        return False

    async def main():
        async with Peer(stream) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, "encoding": encoding, **FAST})
            await link.open()
            got = await asyncio.wait_for(take(link, 6), 10)
            await link.close()
            return got, link

    got, link = asyncio.run(main())
    last = (
        PACKETS[3]
        if encoding == "base64"
        else f"id: 6\ndata: {b64[:20]}\ndata: {b64[20:]}\n".encode()
    )
    assert got == [
        PACKETS[0],
        b"id: 2\ndata: this is not a frame\n",
        PACKETS[1],
        b"id: 4\ndata:\n",
        PACKETS[2],
        last,
    ]
    assert link.counters.frames_in == 6
    assert link.counters.errors == (3 if encoding == "hex" else 2)
    assert link.state is LinkState.CLOSED


# --- long-poll -------------------------------------------------------------------------


def test_long_poll_delivers_frames_in_order_and_malformed_records_raw():
    # A record's id is its position in the list, which is how the server pages.
    records: list = [{"hex": p.hex()} for p in PACKETS[:80]]
    records.insert(40, {"hex": "zz not hex"})
    records.insert(50, ["not", "a", "record"])
    for position, record in enumerate(records, start=1):
        if isinstance(record, dict):
            record["id"] = position
    junk = b"<html>502 from a proxy, but with status 200</html>"

    async def poll(peer, request, reply):
        after = int(request.query.get("after", 0))
        if after == 30 and not peer.state.get("junk"):
            peer.state["junk"] = True
            await reply.send(200, junk, "text/html")
            return True
        newer = records[after:30] if after == 0 else records[after:]
        if not newer:  # hold the request, as a long-poll server does
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(peer.done.wait(), 0.5)
        answer = json.dumps({"frames": newer, "server": "test"}, separators=(",", ":"))
        await reply.send(200, answer.encode(), "application/json")
        return True

    async def main():
        async with Peer(poll) as peer:
            link = HttpLink("gw", "cfs", {"url": peer.url, "telemetry": "poll", **FAST})
            states = watch_states(link)
            await link.open()
            got = await asyncio.wait_for(take(link, len(records) + 1), 10)
            await link.close()
            return got, link, states, peer.of("GET", "/api/node/telemetry")

    got, link, states, gets = asyncio.run(main())
    expected = [bytes.fromhex(r["hex"]) for r in records[:30]] + [junk]
    for record in records[30:]:
        good = isinstance(record, dict) and record["hex"] != "zz not hex"
        expected.append(
            bytes.fromhex(record["hex"])
            if good
            else json.dumps(record, separators=(",", ":")).encode()
        )
    assert got == expected
    assert link.counters.errors == 3  # the junk answer and two bad records
    assert [g.query.get("after") for g in gets[:3]] == [None, "30", "30"]
    assert gets[3].query["after"] == str(len(records))
    assert gets[0].headers["accept"] == "application/json"
    assert states[:4] == ["connecting", "up", "degraded", "up"]


# --- the token -------------------------------------------------------------------------


def test_missing_or_empty_token_is_refused_at_open_naming_the_source(monkeypatch, tmp_path):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    missing_file = tmp_path / "no-such.token"

    async def main():
        errors = []
        for options in ({"token_env": TOKEN_ENV}, {"token_file": str(missing_file)}):
            link = HttpLink("gw", "cfs", {"url": "http://127.0.0.1:9", **options})
            with pytest.raises(LinkError) as error:
                await link.open()
            errors.append(error.value)
            assert link.state is LinkState.CLOSED
        monkeypatch.setenv(TOKEN_ENV, "  \n")
        link = HttpLink("gw", "cfs", {"url": "http://127.0.0.1:9", "token_env": TOKEN_ENV})
        with pytest.raises(LinkError) as error:
            await link.open()
        errors.append(error.value)
        return errors

    unset, no_file, empty = asyncio.run(main())
    assert unset.message == f"link gw: environment variable {TOKEN_ENV} (token_env) is not set"
    assert (
        no_file.message
        == f"link gw: cannot read token_file {missing_file}: No such file or directory"
    )
    assert empty.message == f"link gw: environment variable {TOKEN_ENV} is empty: no token"


def test_the_token_never_appears_in_errors_reprs_or_the_links_listing(token, tmp_path, monkeypatch):
    async def leaky(peer, request, reply):
        # A careless server that echoes the token back in its error answers.
        status = 401 if request.method == "POST" else 403
        await reply.send(status, f"bad credentials: {request.headers['authorization']}".encode())
        return True

    token_file = tmp_path / "node.token"
    token_file.write_text(f"\n{TOKEN}\n")

    async def main():
        async with Peer(leaky) as peer:
            seen = []
            for source in ({"token_env": TOKEN_ENV}, {"token_file": str(token_file)}):
                link = HttpLink("gw", "cfs", {"url": peer.url, **source, **FAST})
                await link.open()
                with pytest.raises(LinkError) as error:
                    await link.send(b"cmd")
                await until(lambda link=link: "HTTP 403" in link.last_error)
                seen += [str(error.value), error.value.hint, repr(link), link.last_error]
                seen += [str(link.options), str(vars(link.counters))]
                await link.close()
            return seen, peer.requests

    seen, requests = asyncio.run(main())
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {TOKEN}"}
    assert "HTTP 401 Unauthorized: bad credentials: Bearer [token]" in seen[0]
    assert "HTTP 403 Forbidden: bad credentials: Bearer [token]" in seen[3]
    assert f"token from ${TOKEN_ENV}" in seen[2]
    for text in seen:
        assert TOKEN not in text

    register_http_adapter(tmp_path, monkeypatch)
    listing = CliRunner().invoke(cli, ["links"], obj={})
    assert "token_env" in listing.stdout and "client_cert" in listing.stdout
    assert TOKEN not in listing.stdout + listing.stderr


def register_http_adapter(tmp_path, monkeypatch):
    """Make sure `groundctl links` lists the adapter, registered or not in this checkout."""
    dist = tmp_path / "groundctl_http_check-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: groundctl-http-check\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[groundctl.links]\nhttp = groundctl.links.http:HttpLink\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_bad_options_are_refused_with_what_to_do():
    cases = {
        "ftp://gw.example": "url must be http(s)://HOST[:PORT][/PATH]",
        "https://ops:secret@gw.example": "the url must not hold credentials",
        "https://gw.example/api?node=1": "must not have a query or fragment",
    }
    for url, message in cases.items():
        with pytest.raises(LinkError, match=re.escape(message)) as error:
            HttpLink("gw", "n", {"url": url})
        assert "secret" not in str(error.value)
    base = {"url": "https://gw.example"}
    for options, message in [
        ({"telemetry": "websocket"}, "telemetry must be sse or poll"),
        ({"encoding": "ascii"}, "encoding must be hex or base64"),
        ({"send_path": "commands"}, "option 'send_path' must start with '/'"),
        ({"token_env": "A", "token_file": "b"}, "give token_env or token_file, not both"),
        ({"client_key": "k.pem"}, "client_key needs client_cert"),
        ({"ca_file": "ca.pem", "verify": False}, "ca_file has no effect with verify = false"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "reconnect_min_s <= reconnect_max_s"),
        ({"retries": -1}, "retries must be 0 or more"),
    ]:
        with pytest.raises(LinkError, match=message):
            HttpLink("gw", "n", {**base, **options})
    with pytest.raises(LinkError, match="ca_file need an https:// url"):
        HttpLink("gw", "n", {"url": "http://gw.example", "ca_file": "ca.pem"})


# --- TLS -------------------------------------------------------------------------------


def make_certificate(folder: Path, name: str, subject: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            *(
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ),
            *("-nodes", "-days", "2", "-subj", f"/CN={subject}", "-keyout", str(key)),
            *("-out", str(cert), "-addext", f"subjectAltName={subject}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="needs the openssl command to make a self-signed certificate "
    "(the cryptography package is not installed)",
)
def test_tls_with_a_self_signed_certificate_and_a_client_certificate(token, tmp_path):
    server_cert, server_key = make_certificate(tmp_path, "server", "IP:127.0.0.1")
    client_cert, client_key = make_certificate(tmp_path, "client", "DNS:ground.example")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(server_cert, server_key)
    server_tls.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the link must show its own
    server_tls.load_verify_locations(client_cert)

    async def stream(peer, request, reply):
        if request.method == "POST":
            await reply.send(204)
            return True
        await reply.start()
        await reply.chunk(b"".join(sse(i + 1, p) for i, p in enumerate(PACKETS[:20])))
        await peer.done.wait()
        return False

    async def main():
        # A refused handshake is the point of part of this test, not a server failure.
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
        async with Peer(stream, tls=server_tls) as peer:
            mtls = {"client_cert": str(client_cert), "client_key": str(client_key)}
            link = HttpLink(
                "gw",
                "cfs",
                {"url": peer.url, "ca_file": str(server_cert), "token_env": TOKEN_ENV, **mtls},
            )
            await link.open()
            await link.send(COMMANDS[0])
            got = await asyncio.wait_for(take(link, 20), 10)
            await link.close()

            unverified = HttpLink("gw", "cfs", {"url": peer.url, "verify": False, **mtls})
            await unverified.open()
            await unverified.send(COMMANDS[1])
            await unverified.close()

            untrusting = HttpLink("gw", "cfs", {"url": peer.url, "retries": 3, **mtls, **FAST})
            await untrusting.open()
            with pytest.raises(LinkError) as refused:
                await untrusting.send(COMMANDS[2])
            # The telemetry side meets the same certificate (the second error). Waiting
            # for it also keeps close() from cancelling a handshake midway, which would
            # leave httpcore's socket to the garbage collector.
            await until(lambda: untrusting.counters.errors >= 2)
            assert "certificate verify failed" in untrusting.last_error
            assert untrusting.state is LinkState.CONNECTING
            await untrusting.close()

            missing = HttpLink("gw", "cfs", {"url": peer.url, "ca_file": str(tmp_path / "ca.pem")})
            with pytest.raises(LinkError) as no_ca:
                await missing.open()
            return got, peer.of("POST", "/api/node/commands"), refused.value, no_ca.value

    got, posts, refused, no_ca = asyncio.run(main())
    assert got == PACKETS[:20]
    assert [p.body for p in posts] == COMMANDS[:2]
    assert posts[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "failed the TLS check" in refused.message
    assert "certificate" in refused.message
    assert "ca_file" in refused.hint
    assert no_ca.message == (
        f"link gw: ca_file {tmp_path / 'ca.pem'} cannot be used: No such file or directory"
    )
