"""The KISS link: a TCP client of a TNC's KISS port (Direwolf listens on 8001).

Downlink: KISS data frames on the configured TNC port carry AX.25 UI frames whose
information field is a space packet; the link delivers that field. Whatever it cannot
open that way (a bad escape, another TNC port, a frame that is not AX.25 UI with PID
0xF0) is still delivered as received and counted as an error, so the pipeline archives
it as malformed. Uplink: each packet goes out in a UI frame from `mycall` to
`destination` (through `via`), KISS-escaped on the TNC port. After a drop the link
reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

from groundctl.links.base import Link, LinkError, LinkOption, LinkState, cancel, queued
from groundctl.links.udp import parse_address
from groundctl_kiss.ax25 import MAX_DIGIPEATERS, Address, Ax25Error, build_ui_frame
from groundctl_kiss.kiss import MAX_PORT, KissDecoder, Received, kiss_encode

DEFAULT_TCP_PORT = 8001  # Direwolf's KISS TCP port


class KissLink(Link):
    """KISS over TCP to a TNC: AX.25 UI frames carrying space packets, both ways."""

    DESCRIPTION = "KISS TNC over TCP (e.g. Direwolf): AX.25 UI frames carrying space packets"
    OPTIONS = (
        LinkOption(
            "address", str, f"127.0.0.1:{DEFAULT_TCP_PORT}", "HOST[:PORT] of the TNC's KISS port"
        ),
        LinkOption("kiss_port", int, 0, "TNC port (radio channel) 0-15 to send and listen on"),
        LinkOption("ax25", bool, True, "AX.25 UI frames; false: KISS payloads as they are"),
        LinkOption("mycall", str, "", "CALL-SSID of the ground station (needed when ax25)"),
        LinkOption("destination", str, "", "CALL-SSID of the node (needed when ax25)"),
        LinkOption("via", str, "", "digipeaters for the uplink, e.g. 'RELAY-1,WIDE2-2'"),
        LinkOption("reconnect_min_s", float, 0.5, "first wait before reconnecting"),
        LinkOption("reconnect_max_s", float, 30.0, "longest wait between reconnections"),
    )

    def __init__(self, name: str, node: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, node, options)
        address = self.options["address"]
        if ":" not in address or address.endswith("]"):
            address = f"{address}:{DEFAULT_TCP_PORT}"
        self.address = parse_address(name, "address", address)
        self.kiss_port = self.options["kiss_port"]
        if not 0 <= self.kiss_port <= MAX_PORT:
            raise LinkError(
                f"link {name}: option 'kiss_port' must be 0 to {MAX_PORT}, found {self.kiss_port}"
            )
        low, high = self.options["reconnect_min_s"], self.options["reconnect_max_s"]
        if not 0 < low <= high:
            raise LinkError(
                f"link {name}: options 'reconnect_min_s' and 'reconnect_max_s' must satisfy "
                f"0 < reconnect_min_s <= reconnect_max_s, found {low:g} and {high:g}"
            )
        self.mycall: Address | None = None
        self.destination: Address | None = None
        self.via: tuple[Address, ...] = ()
        if self.options["ax25"]:
            self.mycall = _callsign(name, "mycall", self.options["mycall"])
            self.destination = _callsign(name, "destination", self.options["destination"])
            hops = [hop for hop in self.options["via"].split(",") if hop.strip()]
            if len(hops) > MAX_DIGIPEATERS:
                raise LinkError(
                    f"link {name}: option 'via' lists {len(hops)} digipeaters; "
                    f"AX.25 allows {MAX_DIGIPEATERS}"
                )
            self.via = tuple(_callsign(name, "via", hop) for hop in hops)
        self.problems: Counter[str] = Counter()  # received frames with a problem, by kind
        self.last_problem = ""
        self.connections = 0  # how many times the TNC was connected
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Start connecting to the TNC; the state is CONNECTING, then UP once connected."""
        self._set_state(LinkState.CONNECTING)
        self._task = asyncio.create_task(self._client_forever(), name=f"link-{self.name}")

    async def close(self) -> None:
        """Disconnect and stop reconnecting; the state becomes CLOSED."""
        await cancel(self._task)
        self._task = None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._queue.put_nowait(None)
        self._set_state(LinkState.CLOSED)

    async def send(self, data: bytes, node: str | None = None) -> None:
        """Send one packet in a UI frame to `destination` (or as the KISS payload when not
        ax25). Raises LinkError when the link is not up, `node` is not the link's node
        (its one destination callsign reaches that node only), the packet is empty or the
        TNC is gone."""
        if node is not None and node != self.node:
            raise LinkError(
                f"link {self.name} reaches node {self.node}, not {node}: nothing was sent"
            )
        writer = self._writer
        if writer is None or self.state is not LinkState.UP:
            raise LinkError(f"link {self.name} is {self.state.value}: nothing was sent")
        if not data:
            raise LinkError(f"link {self.name}: an empty packet is not sent")
        frame = data
        if self.mycall is not None and self.destination is not None:
            frame = build_ui_frame(self.destination, self.mycall, data, self.via)
        writer.write(kiss_encode(frame, self.kiss_port))
        try:
            await writer.drain()
        except OSError as error:
            self.counters.errors += 1
            raise LinkError(f"link {self.name}: send failed: {error}") from None
        self._count_sent(data)

    def _receive(self) -> AsyncIterator[bytes]:
        return queued(self._queue)

    # --- the connection -----------------------------------------------------------------
    async def _client_forever(self) -> None:
        delay = self.options["reconnect_min_s"]
        while True:
            try:
                reader, writer = await asyncio.open_connection(*self.address)
            except OSError:
                self.counters.errors += 1
                self._set_state(LinkState.DOWN if self.connections else LinkState.CONNECTING)
            else:
                received = await self._pump(reader, writer)
                self._set_state(LinkState.DOWN)
                if received:  # it worked: try again at once, then back off afresh
                    delay = self.options["reconnect_min_s"]
                    continue
                # Accepted and hung up with nothing said (a TNC that is going away, or
                # full): a failed attempt, so that it is not retried in a tight loop.
                self.counters.errors += 1
            # Exponential backoff with jitter, so that many links do not retry in step.
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, self.options["reconnect_max_s"])

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        """Read KISS frames from one connection until it ends; the bytes received."""
        self._writer = writer
        self.connections += 1
        self._set_state(LinkState.UP)
        # A new decoder per connection: a frame cut by a drop never merges with the next.
        decoder = KissDecoder(self.kiss_port, self.options["ax25"])
        received = 0
        try:
            while data := await reader.read(65536):
                received += len(data)
                for frame in decoder.feed(data):
                    self._deliver(frame)
        except OSError:
            self.counters.errors += 1
        finally:
            rest = decoder.pending()
            if rest:
                self._deliver(Received(rest, "cut off", "connection ended inside a frame"))
            if self._writer is writer:
                self._writer = None
            writer.close()
        return received

    def _deliver(self, received: Received) -> None:
        if received.problem:
            self.counters.errors += 1
            self.problems[received.problem] += 1
            self.last_problem = f"{received.problem}: {received.detail}"
        self._queue.put_nowait(received.data)


def _callsign(link: str, option: str, text: str) -> Address:
    """A CALL-SSID option -> Address; LinkError naming the link and option if invalid."""
    if not text.strip():
        raise LinkError(
            f"link {link}: option {option!r} is required when ax25 is true",
            hint=f'e.g. {option} = "N0CALL-1", or ax25 = false for bare KISS payloads',
        )
    try:
        return Address.parse(text)
    except Ax25Error as error:
        raise LinkError(
            f"link {link}: option {option!r}: {error}",
            hint="a callsign is 1-6 letters and digits, optionally -SSID with SSID 0-15",
        ) from None
