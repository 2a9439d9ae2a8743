"""TCP link: a byte stream to a node or gateway, as client or server, framed per link.

Framing (option `framing`): `ccsds` (space packets cut by their length field), `length`
(4-byte big-endian length prefix), `slip` (SLIP/KISS escaping) or `cobs`. As a client the
link reconnects after a drop with exponential backoff and jitter; as a server it serves
the latest peer to connect. A piece the framing cannot make sense of is still delivered
(and counted as an error), so the pipeline archives it as malformed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from groundctl.links.base import Link, LinkError, LinkOption, LinkState, cancel, queued
from groundctl.links.framing import (
    CcsdsDecoder,
    CobsDecoder,
    LengthPrefixDecoder,
    SlipDecoder,
    cobs_encode,
    length_prefix_encode,
    slip_encode,
)
from groundctl.links.udp import parse_address

_FRAMINGS: dict[str, tuple[Callable[[], Any], Callable[[bytes], bytes]]] = {
    "ccsds": (CcsdsDecoder, lambda frame: frame),
    "length": (LengthPrefixDecoder, length_prefix_encode),
    "slip": (SlipDecoder, slip_encode),
    "cobs": (CobsDecoder, cobs_encode),
}


class TcpLink(Link):
    """A framed TCP stream; `mode` client (connects to `address`) or server (listens)."""

    DESCRIPTION = "TCP stream, client or server; framing ccsds, length, slip or cobs"
    OPTIONS = (
        LinkOption("address", str, None, "HOST:PORT to connect to (client) or listen on"),
        LinkOption("mode", str, "client", "client or server"),
        LinkOption("framing", str, "ccsds", "ccsds, length, slip or cobs"),
        LinkOption("reconnect_min_s", float, 0.5, "first wait before reconnecting"),
        LinkOption("reconnect_max_s", float, 30.0, "longest wait between reconnections"),
    )

    def __init__(self, name: str, node: str, options: dict[str, Any]) -> None:
        super().__init__(name, node, options)
        self.address = parse_address(name, "address", self.options["address"])
        if self.options["mode"] not in ("client", "server"):
            raise LinkError(f"link {name}: mode must be client or server")
        if self.options["framing"] not in _FRAMINGS:
            raise LinkError(
                f"link {name}: framing {self.options['framing']!r} is not one of "
                + ", ".join(_FRAMINGS)
            )
        self._new_decoder, self._encode = _FRAMINGS[self.options["framing"]]
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None
        self.bound_port: int | None = None
        self.connections = 0  # how many times a peer was connected

    async def open(self) -> None:
        if self.options["mode"] == "server":
            try:
                self._server = await asyncio.start_server(self._serve, *self.address)
            except OSError as error:
                self._set_state(LinkState.DOWN)
                raise LinkError(
                    f"link {self.name}: cannot listen on {self.address[0]}:{self.address[1]}: "
                    f"{error.strerror or error}"
                ) from None
            self.bound_port = self._server.sockets[0].getsockname()[1]
            self._set_state(LinkState.CONNECTING)
        else:
            self._set_state(LinkState.CONNECTING)
            self._task = asyncio.create_task(self._client_forever(), name=f"link-{self.name}")

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._drop_writer()
        self._queue.put_nowait(None)
        self._set_state(LinkState.CLOSED)

    async def send(self, data: bytes, node: str | None = None) -> None:
        writer = self._writer
        if writer is None or self.state is not LinkState.UP:
            raise LinkError(f"link {self.name} is {self.state.value}: nothing was sent")
        writer.write(self._encode(data))
        try:
            await writer.drain()
        except OSError as error:
            self.counters.errors += 1
            raise LinkError(f"link {self.name}: send failed: {error}") from None
        self._count_sent(data)

    def _receive(self) -> AsyncIterator[bytes]:
        return queued(self._queue)

    # --- connections --------------------------------------------------------------------
    async def _client_forever(self) -> None:
        delay = self.options["reconnect_min_s"]
        while True:
            try:
                reader, writer = await asyncio.open_connection(*self.address)
            except OSError:
                self.counters.errors += 1
                self._set_state(LinkState.DOWN if self.connections else LinkState.CONNECTING)
                # Exponential backoff with jitter, so that many links do not retry in step.
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, self.options["reconnect_max_s"])
                continue
            delay = self.options["reconnect_min_s"]
            await self._pump(reader, writer)
            self._set_state(LinkState.DOWN)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._drop_writer()  # the newest peer wins
        await self._pump(reader, writer)
        if self._writer is None:
            self._set_state(LinkState.DOWN)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read frames from one connection until it ends."""
        self._writer = writer
        self.connections += 1
        self._set_state(LinkState.UP)
        decoder = self._new_decoder()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for frame, problem in decoder.feed(data):
                    self._deliver(frame, problem)
        except (OSError, asyncio.IncompleteReadError):
            self.counters.errors += 1
        finally:
            rest = getattr(decoder, "pending", lambda: b"")()
            if rest:  # a frame cut off by the disconnection: keep its bytes
                self._deliver(rest, "cut off by the disconnection")
            if self._writer is writer:
                self._writer = None
            writer.close()

    def _deliver(self, data: bytes, problem: str = "") -> None:
        if problem:
            self.counters.errors += 1
        self._queue.put_nowait(data)

    async def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
