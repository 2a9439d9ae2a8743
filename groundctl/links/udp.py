"""UDP link: datagrams to an uplink address, from a bound downlink address.

This is the NASA cFS lab setup: commands go to CI_LAB on UDP 1234, telemetry comes from
TO_LAB to UDP 1235 on the ground. One datagram is one frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from groundctl.links.base import Link, LinkError, LinkOption, LinkState, queued


def parse_address(link: str, option: str, text: str) -> tuple[str, int]:
    """'host:port' -> (host, port). Raises LinkError naming the link and the option."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise LinkError(
            f"link {link}: option {option!r} must be HOST:PORT, found {text!r}",
            hint='e.g. uplink = "127.0.0.1:1234"',
        )
    return host.strip("[]"), int(port)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[bytes | None], link: UdpLink) -> None:
        self.queue = queue
        self.link = link

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable after sending to a node that is not listening
        self.link.counters.errors += 1
        if self.link.state is LinkState.UP:
            self.link._set_state(LinkState.DEGRADED)

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(None)


class UdpLink(Link):
    """Datagrams: `uplink` is where commands go, `downlink` the local address telemetry
    arrives on (port 0 picks a free one; `bound_port` says which)."""

    DESCRIPTION = "UDP datagrams, one frame each (the cFS lab setup: uplink 1234, downlink 1235)"
    OPTIONS = (
        LinkOption("uplink", str, None, "HOST:PORT commands are sent to"),
        LinkOption("downlink", str, "0.0.0.0:1235", "HOST:PORT to receive telemetry on"),
    )

    def __init__(self, name: str, node: str, options: dict[str, Any]) -> None:
        super().__init__(name, node, options)
        self.uplink = parse_address(name, "uplink", self.options["uplink"])
        self.downlink = parse_address(name, "downlink", self.options["downlink"])
        self._transport: asyncio.DatagramTransport | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.bound_port: int | None = None

    async def open(self) -> None:
        self._set_state(LinkState.CONNECTING)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self._queue, self), local_addr=self.downlink
            )
        except OSError as error:
            self._set_state(LinkState.DOWN)
            raise LinkError(
                f"link {self.name}: cannot receive on {self.downlink[0]}:{self.downlink[1]}: "
                f"{error.strerror or error}",
                hint="another program may hold the port; choose another downlink address",
            ) from None
        self._transport = transport
        self.bound_port = transport.get_extra_info("sockname")[1]
        self._set_state(LinkState.UP)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._set_state(LinkState.CLOSED)

    async def send(self, data: bytes, node: str | None = None) -> None:
        if self._transport is None or self.state not in (LinkState.UP, LinkState.DEGRADED):
            raise LinkError(f"link {self.name} is {self.state.value}: nothing was sent")
        self._transport.sendto(data, self.uplink)
        self._count_sent(data)

    def _receive(self) -> AsyncIterator[bytes]:
        return queued(self._queue)
