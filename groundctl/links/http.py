"""HTTP link: a node's or gateway's REST API, commands POSTed, telemetry streamed or polled.

Commands: one POST of the frame's bytes (`application/octet-stream`) to `{url}{send_path}`
per frame. Telemetry (option `telemetry`): `sse`, a Server-Sent Events stream from
`{url}{telemetry_path}` whose events carry one frame each (hex or base64), resumed with
`Last-Event-ID` after a drop; or `poll`, long-poll GETs of `{url}{telemetry_path}?after=ID`
answered with JSON `{"frames": [{"id": N, "hex": "..."}]}`. `{node}` in a path stands
for the node, so one link to a gateway can command several nodes.

The telemetry side reconnects after a drop with exponential backoff and jitter, like the
TCP client. Anything received that is not a well-formed frame (an event whose data is not
hex, a JSON record of the wrong shape) is still delivered, as the raw bytes received, and
counted as an error: the pipeline archives it as malformed.

A bearer token (`token_env` or `token_file`) is read at `open()` and kept out of every
message, repr and option listing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import random
import re
import ssl
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from groundctl import __version__
from groundctl.links.base import Link, LinkError, LinkOption, LinkState, cancel, queued
from groundctl.links.celestrak import retry_delay_s

USER_AGENT = f"groundctl/{__version__}"
_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = re.compile(rb"\s+")
# Bytes that cannot go in an HTTP header value: such an event id is ignored, like one
# holding NUL (which the SSE specification already says to ignore).
_BAD_HEADER_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_MESSAGE_LIMIT = 200  # characters of a server's answer quoted in a message


@dataclass(frozen=True)
class SseEvent:
    """One dispatched Server-Sent Event.

    `data` is the event's data (several `data:` lines joined with "\\n"), `raw` the bytes
    of its field lines as received (comments left out), `id` the last event id after it.
    """

    data: bytes
    raw: bytes
    id: bytes


class SseParser:
    """An incremental parser of a `text/event-stream` body, following the HTML living
    standard's event-stream interpretation.

    Lines end with CRLF, LF or CR (a CR at the end of a chunk waits for the next chunk);
    a leading UTF-8 BOM is skipped; lines starting with ':' are comments; `field: value`
    loses one space after the colon; a line without a colon is a field with an empty
    value; a blank line dispatches the event when it has data. `id` (unless it holds NUL
    or other bytes no HTTP header may carry) sets `last_event_id`, which outlives the
    event; `retry` (ASCII digits) sets `retry_ms`. The event type is not used: every event
    with data is one frame.
    """

    def __init__(self, last_event_id: bytes = b"") -> None:
        self._buffer = b""
        self._first_line = True
        self._data: list[bytes] = []
        self._raw = bytearray()
        self._id_buffer = last_event_id
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Take the next bytes of the stream; return the events they complete, in order."""
        self._buffer += chunk
        events: list[SseEvent] = []
        start = 0
        while (match := _LINE_END.search(self._buffer, start)) is not None:
            if match.group() == b"\r" and match.end() == len(self._buffer):
                break  # maybe the first half of CRLF: wait for the next byte
            line = self._buffer[start : match.start()]
            start = match.end()
            if self._first_line:
                self._first_line = False
                line = line.removeprefix(_BOM)
            event = self._line(line, match.group())
            if event is not None:
                events.append(event)
        self._buffer = self._buffer[start:]
        return events

    def pending(self) -> bytes:
        """The raw bytes of an event begun but not finished (field lines and a partial
        line; comments left out): b"" when there is none."""
        partial = b"" if self._buffer.startswith(b":") else self._buffer
        raw = bytes(self._raw) + partial
        return raw if raw.strip() else b""

    def _line(self, line: bytes, end: bytes) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None
        self._raw += line + end
        field, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"id":
            if not _BAD_HEADER_BYTE.search(value):
                self._id_buffer = value
        elif field == b"retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        self.last_event_id = self._id_buffer
        data, raw = self._data, bytes(self._raw)
        self._data, self._raw = [], bytearray()
        if not data:
            return None
        return SseEvent(b"\n".join(data), raw, self.last_event_id)


class _BadAnswer(Exception):
    """A telemetry answer the link cannot use (an HTTP error, a wrong content type)."""


class _Malformed(_BadAnswer):
    """A telemetry answer that breaks the protocol; its bytes were delivered and counted."""


class HttpLink(Link):
    """A node's or gateway's REST API over HTTP(S): commands POSTed, telemetry by SSE or
    long-poll. `connections` counts successful telemetry connections (or polls);
    `last_error` says what went wrong last (it never contains the token)."""

    DESCRIPTION = "HTTP(S) REST API: commands POSTed, telemetry by Server-Sent Events or long-poll"
    OPTIONS = (
        LinkOption("url", str, None, "base URL of the REST API, http(s)://HOST[:PORT][/PATH]"),
        LinkOption(
            "send_path",
            str,
            "/commands",
            "path (after url) commands are POSTed to; {node}: the node",
        ),
        LinkOption("telemetry", str, "sse", "sse (Server-Sent Events) or poll (long-poll GET)"),
        LinkOption(
            "telemetry_path",
            str,
            "/telemetry",
            "path (after url) telemetry comes from; {node}: the link's node",
        ),
        LinkOption("encoding", str, "hex", "how frames are written in events/records: hex, base64"),
        LinkOption("timeout_s", float, 10.0, "seconds per request step (connect, send, answer)"),
        LinkOption(
            "idle_timeout_s",
            float,
            60.0,
            "seconds of silence (no event, no ':' comment; no poll answer) before the "
            "telemetry connection is reopened; 0: wait forever",
        ),
        LinkOption("retries", int, 3, "retries of a command on connect errors, timeouts, 5xx"),
        LinkOption("backoff_s", float, 0.5, "first wait before retrying a command (doubles)"),
        LinkOption("reconnect_min_s", float, 0.5, "first wait before reconnecting telemetry"),
        LinkOption("reconnect_max_s", float, 30.0, "longest wait between reconnections"),
        LinkOption("verify", bool, True, "check the server's TLS certificate"),
        LinkOption("ca_file", str, "", "PEM file of the CA(s) to trust instead of the system's"),
        LinkOption("client_cert", str, "", "PEM client certificate for mutual TLS"),
        LinkOption("client_key", str, "", "PEM key of client_cert (if not in that file)"),
        LinkOption("token_env", str, "", "environment variable holding a bearer token"),
        LinkOption("token_file", str, "", "file holding a bearer token (whitespace stripped)"),
    )

    def __init__(self, name: str, node: str, options: dict[str, Any]) -> None:
        super().__init__(name, node, options)
        o = self.options
        self.url = _check_url(name, o["url"])
        for key in ("send_path", "telemetry_path"):
            if not o[key].startswith("/"):
                raise LinkError(
                    f"link {name}: option {key!r} must start with '/', found {o[key]!r}"
                )
        if o["telemetry"] not in ("sse", "poll"):
            raise LinkError(f"link {name}: telemetry must be sse or poll, found {o['telemetry']!r}")
        if o["encoding"] not in ("hex", "base64"):
            raise LinkError(f"link {name}: encoding must be hex or base64, found {o['encoding']!r}")
        if o["timeout_s"] <= 0 or o["idle_timeout_s"] < 0 or o["backoff_s"] < 0:
            raise LinkError(
                f"link {name}: timeout_s must be > 0, idle_timeout_s and backoff_s >= 0"
            )
        if o["retries"] < 0:
            raise LinkError(f"link {name}: retries must be 0 or more, found {o['retries']}")
        if not 0 < o["reconnect_min_s"] <= o["reconnect_max_s"]:
            raise LinkError(f"link {name}: expected 0 < reconnect_min_s <= reconnect_max_s")
        if o["token_env"] and o["token_file"]:
            raise LinkError(f"link {name}: give token_env or token_file, not both")
        if o["client_key"] and not o["client_cert"]:
            raise LinkError(f"link {name}: client_key needs client_cert")
        tls_files = [key for key in ("ca_file", "client_cert") if o[key]]
        if tls_files and not self.url.startswith("https://"):
            raise LinkError(
                f"link {name}: {' and '.join(tls_files)} need an https:// url, found {self.url}"
            )
        if o["ca_file"] and not o["verify"]:
            raise LinkError(
                f"link {name}: ca_file has no effect with verify = false",
                hint="drop one of them: verify = false trusts any certificate",
            )
        self.send_url = self._path_url(o["send_path"], node)
        self.telemetry_url = self._path_url(o["telemetry_path"], node)
        self.reconnect_base_s: float = o["reconnect_min_s"]
        self.connections = 0
        self.last_error = ""
        self.last_event_id = b""  # SSE: sent back as Last-Event-ID on reconnection
        self.last_poll_id: int | None = None  # poll: sent back as `after`
        self._token = ""
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def __repr__(self) -> str:
        o = self.options
        if o["token_env"]:
            auth = f"token from ${o['token_env']}"
        elif o["token_file"]:
            auth = f"token from {o['token_file']}"
        else:
            auth = "no token"
        return (
            f"HttpLink(name={self.name!r}, node={self.node!r}, url={self.url!r}, "
            f"telemetry={o['telemetry']!r}, {auth}, state={self.state.value})"
        )

    # --- the contract -------------------------------------------------------------------
    async def open(self) -> None:
        """Read the token and TLS files, then start receiving telemetry in the background;
        the state is CONNECTING until the first telemetry connection, then UP.

        Raises LinkError (the link stays closed) when the token's environment variable or
        file is missing, unreadable or empty, or a TLS file cannot be used; the message
        names the variable or file, never the token.
        """
        if self._client is not None:
            return
        token = self._read_token()
        tls = self._tls_context() if self.url.startswith("https://") else True
        headers = {"User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._token = token
        self._client = httpx.AsyncClient(
            headers=headers,
            verify=tls,
            timeout=httpx.Timeout(self.options["timeout_s"]),
            follow_redirects=False,  # a redirect must not carry the token elsewhere
            trust_env=False,
        )
        self._set_state(LinkState.CONNECTING)
        self._task = asyncio.create_task(self._telemetry_forever(), name=f"link-{self.name}")

    async def close(self) -> None:
        """Stop telemetry, drop the connections; the state becomes CLOSED."""
        await cancel(self._task)
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._queue.put_nowait(None)
        self._set_state(LinkState.CLOSED)

    async def send(self, data: bytes, node: str | None = None) -> None:
        """POST one frame to `{url}{send_path}`; any 2xx answer means it was taken.

        `node` (default: the link's) fills `{node}` in `send_path`, so one link to a
        gateway can command several nodes; without `{node}` only the link's node can be
        commanded. Commands do not wait for the telemetry side to be up.

        Every attempt of one frame carries the same `Idempotency-Key` header, so a server
        can recognise a retry of a frame it already took. Connection errors, timeouts and
        5xx answers are retried `retries` times after `backoff_s`, doubling, with jitter.

        Raises LinkError: the link is not open; `node` cannot be reached through this
        link's `send_path`; the server refused the frame (3xx or 4xx:
        the status and the first line of the answer, no retry); the server's TLS
        certificate was refused (no retry); or every attempt failed (the last reason).
        """
        client = self._client
        if client is None:
            raise LinkError(f"link {self.name} is {self.state.value}: nothing was sent")
        url = self.send_url
        if node is not None and node != self.node:
            if "{node}" not in self.options["send_path"]:
                raise LinkError(
                    f"link {self.name} commands node {self.node} only, not {node}: "
                    "nothing was sent",
                    hint="put {node} in send_path to reach several nodes through a gateway, "
                    'e.g. send_path = "/nodes/{node}/commands"',
                )
            url = self._path_url(self.options["send_path"], node)
        headers = {
            "Content-Type": "application/octet-stream",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        attempts = self.options["retries"] + 1
        failure = ""
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(url, content=data, headers=headers)
            except httpx.TimeoutException as error:
                failure = (
                    f"{type(error).__name__}: no progress within {self.options['timeout_s']:g} s"
                )
            except httpx.TransportError as error:
                if _tls_refused(error):
                    self._error(f"TLS: {self._describe(error)}")
                    raise LinkError(
                        f"link {self.name}: {self.url} failed the TLS check: "
                        f"{self._describe(error)}; nothing was sent",
                        hint="give ca_file (the PEM of the server's CA) or check the url's host",
                    ) from None
                failure = self._describe(error)
            except httpx.HTTPError as error:  # e.g. an answer that cannot be decoded
                self._error(self._describe(error))
                raise LinkError(
                    f"link {self.name}: {url}: {self._describe(error)}; the frame "
                    "may or may not have been taken"
                ) from None
            else:
                if response.is_success:
                    self._count_sent(data)
                    return
                answer = (
                    f"HTTP {response.status_code} {response.reason_phrase}: "
                    f"{self._first_line(response.text)}"
                )
                if response.status_code < 500:
                    self._error(answer)
                    raise LinkError(
                        f"link {self.name}: {url} refused the frame: {answer}",
                        hint="the server will not take this frame as sent; it was not retried",
                    )
                failure = answer
            self._error(failure)
            if attempt < attempts:
                await asyncio.sleep(retry_delay_s(self.options["backoff_s"], attempt))
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        raise LinkError(
            f"link {self.name}: frame not sent to {url} ({tries}): {failure}",
            hint="check that the server is up and reachable; raise retries or timeout_s",
        )

    def _receive(self) -> AsyncIterator[bytes]:
        return queued(self._queue)

    # --- telemetry ----------------------------------------------------------------------
    async def _telemetry_forever(self) -> None:
        connect = self._sse_once if self.options["telemetry"] == "sse" else self._poll_once
        failures = 0  # failed attempts in a row, for the backoff
        while True:
            connected_before = self.connections
            malformed = False
            try:
                await connect()
                problem = ""
            except _Malformed as error:  # its bytes were delivered and counted already
                problem, malformed = str(error), True
                self.last_error = self._redact(problem)
            except _BadAnswer as error:
                problem = str(error)
            except httpx.ReadTimeout:
                problem = f"no data within {self._idle_s():g} s"
            except httpx.TimeoutException as error:  # connecting, sending the request
                problem = (
                    f"{type(error).__name__}: no progress within {self.options['timeout_s']:g} s"
                )
            except httpx.RequestError as error:
                problem = self._describe(error)
            if problem and not malformed:
                self._error(problem)
            if not problem and self.options["telemetry"] == "poll":
                failures = 0
                continue  # the next long-poll at once
            if self.connections > connected_before:
                # A stream that ended (cleanly or not) after it was up: reconnect after
                # the base delay, which the server's `retry:` may have set.
                failures = 0
            else:
                failures += 1
            if malformed and self.state in (LinkState.UP, LinkState.DEGRADED):
                self._set_state(LinkState.DEGRADED)
            elif self.state is not LinkState.CONNECTING:
                self._set_state(LinkState.DOWN)
            # Exponential backoff with jitter, so that many links do not retry in step.
            delay = min(
                self.reconnect_base_s * 2 ** max(0, failures - 1), self.options["reconnect_max_s"]
            )
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))

    async def _sse_once(self) -> None:
        """One Server-Sent Events connection, until the server ends it."""
        assert self._client is not None
        headers = {b"Accept": b"text/event-stream", b"Cache-Control": b"no-cache"}
        if self.last_event_id:
            headers[b"Last-Event-ID"] = self.last_event_id
        parser = SseParser(self.last_event_id)
        async with self._client.stream(
            "GET", self.telemetry_url, headers=headers, timeout=self._stream_timeout()
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise _BadAnswer(
                    f"{self.telemetry_url} answered HTTP {response.status_code} "
                    f"{response.reason_phrase}: {self._first_line(response.text)}"
                )
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "text/event-stream":
                raise _BadAnswer(
                    f"{self.telemetry_url} answered {kind or 'no content type'}, "
                    "not text/event-stream"
                )
            self._connected()
            try:
                async for chunk in response.aiter_bytes():
                    for event in parser.feed(chunk):
                        self._deliver_event(event)
                    self.last_event_id = parser.last_event_id
                    if parser.retry_ms is not None:
                        self._honour_retry(parser.retry_ms)
            finally:
                rest = parser.pending()
                if rest:  # an event cut off by the disconnection: keep its bytes
                    self._deliver(rest, problem=True)

    async def _poll_once(self) -> None:
        """One long-poll GET; its frames are delivered."""
        assert self._client is not None
        params = {} if self.last_poll_id is None else {"after": str(self.last_poll_id)}
        started = asyncio.get_running_loop().time()
        response = await self._client.get(
            self.telemetry_url,
            params=params,
            headers={"Accept": "application/json"},
            timeout=self._stream_timeout(),
        )
        if response.status_code == 204:
            records: list[Any] = []
        elif not response.is_success:
            raise _BadAnswer(
                f"{self.telemetry_url} answered HTTP {response.status_code} "
                f"{response.reason_phrase}: {self._first_line(response.text)}"
            )
        else:
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("frames"), list):
                if response.content:
                    self._deliver(response.content, problem=True)
                raise _Malformed(
                    f'{self.telemetry_url} answered with something other than JSON {{"frames": '
                    "[...]}: delivered as a malformed frame"
                )
            records = body["frames"]
        self._connected()
        for record in records:
            self._deliver_record(record)
        if not records:
            # A server that answers at once instead of holding the request must not make
            # this loop spin: at most one empty poll per reconnect_min_s.
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, self.options["reconnect_min_s"] - elapsed))

    def _deliver_event(self, event: SseEvent) -> None:
        frame = self._decode(event.data)
        if frame is None:
            self._deliver(event.raw, problem=True)
        else:
            self._deliver(frame)

    def _deliver_record(self, record: Any) -> None:
        key = self.options["encoding"]
        frame = None
        if isinstance(record, dict):
            ident, text = record.get("id"), record.get(key)
            if isinstance(ident, int) and not isinstance(ident, bool):
                self.last_poll_id = ident
                if isinstance(text, str):
                    frame = self._decode(text.encode("utf-8", "surrogatepass"))
        if frame is None:
            raw = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
            self._deliver(raw.encode("utf-8", "surrogatepass"), problem=True)
        else:
            self._deliver(frame)

    def _decode(self, text: bytes) -> bytes | None:
        """A frame from its hex or base64 text; None when the text is not that (or empty)."""
        compact = _WHITESPACE.sub(b"", text)
        try:
            if self.options["encoding"] == "hex":
                frame = bytes.fromhex(compact.decode("ascii"))
            else:
                frame = base64.b64decode(compact, validate=True)
        except (ValueError, binascii.Error):
            return None
        return frame or None

    def _deliver(self, data: bytes, problem: bool = False) -> None:
        if problem:
            self.counters.errors += 1
        self._queue.put_nowait(data)

    def _connected(self) -> None:
        self.connections += 1
        self._set_state(LinkState.UP)

    def _honour_retry(self, retry_ms: int) -> None:
        """The server's `retry:` sets the reconnection delay, kept within the options."""
        self.reconnect_base_s = min(
            max(retry_ms / 1000, self.options["reconnect_min_s"]), self.options["reconnect_max_s"]
        )

    def _path_url(self, path: str, node: str) -> str:
        """`url` + `path`, with `{node}` in the path replaced by the node's name."""
        return self.url + path.replace("{node}", urllib.parse.quote(node, safe=""))

    def _idle_s(self) -> float:
        return float(self.options["idle_timeout_s"])

    def _stream_timeout(self) -> httpx.Timeout:
        idle = self._idle_s() or None
        return httpx.Timeout(self.options["timeout_s"], read=idle)

    # --- token, TLS, messages -----------------------------------------------------------
    def _read_token(self) -> str:
        """The bearer token ("" when none is configured). Raises LinkError naming the
        variable or file (never the content)."""
        variable, path = self.options["token_env"], self.options["token_file"]
        if variable:
            where = f"environment variable {variable}"
            if variable not in os.environ:
                raise LinkError(
                    f"link {self.name}: {where} (token_env) is not set",
                    hint=f"export {variable}=... before starting, or use token_file",
                )
            token = os.environ[variable].strip()
        elif path:
            where = f"token_file {path}"
            try:
                with open(path, encoding="utf-8") as file:
                    token = file.read().strip()
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or type(error).__name__
                raise LinkError(
                    f"link {self.name}: cannot read {where}: {reason}",
                    hint="the file must exist, be readable and hold the token as text",
                ) from None
        else:
            return ""
        if not token:
            raise LinkError(f"link {self.name}: {where} is empty: no token")
        if not all("\x21" <= c <= "\x7e" for c in token):
            raise LinkError(
                f"link {self.name}: the token in {where} holds characters an HTTP header "
                "cannot carry (spaces, control characters or non-ASCII)",
            )
        return token

    def _tls_context(self) -> ssl.SSLContext:
        """The TLS settings of the options. Raises LinkError naming the unusable file."""
        o = self.options
        if not o["verify"]:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif o["ca_file"]:
            try:
                context = ssl.create_default_context(cafile=o["ca_file"])
            except (OSError, ssl.SSLError) as error:
                raise LinkError(
                    f"link {self.name}: ca_file {o['ca_file']} cannot be used: {_reason(error)}",
                    hint="give a readable PEM file of the CA certificate(s)",
                ) from None
        else:
            context = httpx.create_ssl_context(trust_env=False)
        if o["client_cert"]:
            try:
                context.load_cert_chain(
                    o["client_cert"], o["client_key"] or None, password=_no_password
                )
            except (OSError, ssl.SSLError) as error:
                raise LinkError(
                    f"link {self.name}: client_cert {o['client_cert']}"
                    + (f" with client_key {o['client_key']}" if o["client_key"] else "")
                    + f" cannot be used: {_reason(error)}",
                    hint="give PEM files; the key must match the certificate and not be encrypted",
                ) from None
        return context

    def _error(self, problem: str) -> None:
        self.counters.errors += 1
        self.last_error = self._redact(problem)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text

    def _first_line(self, text: str) -> str:
        for line in text.splitlines():
            if line.strip():
                line = self._redact(line.strip())
                if len(line) > _MESSAGE_LIMIT:
                    line = line[: _MESSAGE_LIMIT - 3] + "..."
                return line
        return "(empty answer)"

    def _describe(self, error: BaseException) -> str:
        """The error's type and text, with the OS or TLS reason buried in its chain."""
        text = str(error).strip()
        described = f"{type(error).__name__}: {text}" if text else type(error).__name__
        cause: BaseException | None = error
        seen: set[int] = set()
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            if isinstance(cause, (OSError, ssl.SSLError)):
                reason = _reason(cause)
                if reason and reason.lower() not in described.lower():
                    described += f" ({reason})"
                break
            cause = cause.__cause__ or cause.__context__
        return self._redact(described)


def _check_url(link: str, url: str) -> str:
    """The base URL without a trailing '/'. Raises LinkError unless it is
    http(s)://HOST[:PORT][/PATH] with no credentials, query or fragment."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise LinkError(f"link {link}: bad url {url!r}: {error}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise LinkError(
            f"link {link}: url must be http(s)://HOST[:PORT][/PATH], found {url!r}",
            hint='e.g. url = "https://gateway.example:8443/api/nodes/odc-07"',
        )
    if parsed.userinfo:
        raise LinkError(
            f"link {link}: the url must not hold credentials",
            hint="put a bearer token in the variable named by token_env, or in token_file",
        )
    if parsed.query or parsed.fragment:
        raise LinkError(f"link {link}: the url must not have a query or fragment: {url!r}")
    return url.rstrip("/")


def _tls_refused(error: BaseException) -> bool:
    """Whether a TLS check failed somewhere in the error's chain (retrying cannot help)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return getattr(error, "verify_message", None) or error.reason or str(error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def _no_password() -> bytes:
    # Without this, OpenSSL would ask for an encrypted key's password on the terminal.
    return b""
