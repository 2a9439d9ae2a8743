"""A stand-in for NASA cFS made from a recorded session: commands in, recorded telemetry out.

There is no cFS in groundctl's test environment, but there is a real recorded session of
it (tests/fixtures/cfs/cfs-lab-session.jsonl: JSON lines with `t`, `dir` "up"/"down",
`hex`, and a `note` on uplinks). `CfsPlayback` serves that recording on real UDP sockets
the way the cFS lab setup does: command datagrams arrive on the command port (CI_LAB's
1234) and telemetry datagrams go to the ground's telemetry address (where TO_LAB sends,
1235), so groundctl's `udp` link and its command verification can be pointed at it.

The session is cut into segments: each recorded uplink with the downlink recorded after
it, up to the next uplink. A received datagram that matches a recorded uplink (same bytes,
give or take the CCSDS sequence count and, when the received command's own cFS checksum is
valid, the checksum byte) plays that uplink's segment. It only knows the answers that were
recorded: anything else is logged and answered with nothing, where real cFS would answer.

This is the simulator package's second, recorded-data stand-in; it uses neither the
mission database nor the commanding code, so that tests can check those against it.
Run it for a person with `python -m groundctl.sim.cfs_playback --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from groundctl.errors import GroundctlError

#: Bytes 2-3 of the CCSDS primary header: sequence flags (2 bits), then the 14-bit count.
_SEQUENCE_MASK = {2: 0x3F, 3: 0xFF}
_CHECKSUM_BYTE = 7
_COMMAND_TYPE_BIT = 0x10  # in byte 0: packet type 1 = command


class SessionError(GroundctlError):
    """A recorded session that cannot be played: unreadable, malformed, no uplink."""

    title = "session error"


@dataclass(frozen=True)
class Recorded:
    """One recorded datagram: its bytes and when it was recorded (Unix seconds)."""

    t: float
    data: bytes


@dataclass(frozen=True)
class Segment:
    """A recorded uplink and the downlink recorded after it, up to the next uplink."""

    uplink: Recorded
    note: str
    downlink: tuple[Recorded, ...]


def cfs_checksum_valid(packet: bytes) -> bool:
    """True when 0xFF XOR every byte of `packet` (its checksum byte included) is 0."""
    x = 0xFF
    for b in packet:
        x ^= b
    return x == 0


def matches(recorded: bytes, received: bytes) -> bool:
    """Whether `received` is the command `recorded` sent again.

    The bytes must be the same except the CCSDS sequence count (the low 14 bits of header
    bytes 2-3), and, for a command of 8 bytes or more, the checksum byte 7, which may
    differ only when `received` carries a valid cFS checksum of its own.
    """
    if len(recorded) != len(received):
        return False
    is_command = len(recorded) >= 8 and bool(recorded[0] & _COMMAND_TYPE_BIT)
    checksum_ok: bool | None = None
    for index, (a, b) in enumerate(zip(recorded, received, strict=True)):
        difference = a ^ b
        if not difference or not difference & ~_SEQUENCE_MASK.get(index, 0):
            continue
        if index == _CHECKSUM_BYTE and is_command:
            if checksum_ok is None:
                checksum_ok = cfs_checksum_valid(received)
            if checksum_ok:
                continue
        return False
    return True


def load_session(path: str | Path) -> tuple[list[Segment], int]:
    """The segments of a recorded session, and how many downlink datagrams were recorded
    before its first uplink (those are never played: TO_LAB forwards nothing until it is
    enabled). Raises SessionError naming the file and line of a problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SessionError(
            f"{path}: cannot read the session: {error.strerror or error}",
            hint="give the path of a recorded JSON-lines session",
        ) from None
    segments: list[Segment] = []
    current: tuple[Recorded, str, list[Recorded]] | None = None
    before_first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        direction, recorded, note = _parse_row(path, number, line)
        if direction == "up":
            if current is not None:
                segments.append(Segment(current[0], current[1], tuple(current[2])))
            current = (recorded, note, [])
        elif current is None:
            before_first += 1
        else:
            current[2].append(recorded)
    if current is None:
        raise SessionError(
            f"{path}: no uplink in the session, so nothing could ever be played",
            hint='a session needs at least one line with "dir": "up"',
        )
    segments.append(Segment(current[0], current[1], tuple(current[2])))
    return segments, before_first


def _parse_row(path: Path, number: int, line: str) -> tuple[str, Recorded, str]:
    where = f"{path}:{number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise SessionError(f"{where}: not JSON: {error.msg}") from None
    if not isinstance(row, dict):
        raise SessionError(f"{where}: expected a JSON object, found {type(row).__name__}")
    direction = row.get("dir")
    if direction not in ("up", "down"):
        raise SessionError(f'{where}: \'dir\' must be "up" or "down", found {direction!r}')
    t = row.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise SessionError(f"{where}: 't' must be a number of seconds, found {t!r}")
    hex_text = row.get("hex")
    try:
        data = bytes.fromhex(hex_text) if isinstance(hex_text, str) else None
    except ValueError:
        data = None
    if not data:
        raise SessionError(
            f"{where}: 'hex' must be the datagram's bytes in hex, found {hex_text!r}"
        )
    note = row.get("note", "")
    return direction, Recorded(float(t), data), note if isinstance(note, str) else str(note)


class _CommandProtocol(asyncio.DatagramProtocol):
    """Hands every datagram to the playback; never raises into the event loop."""

    def __init__(self, playback: CfsPlayback) -> None:
        self.playback = playback

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.playback._arrived(data)

    def error_received(self, exc: Exception) -> None:
        self.playback._note_error(f"command socket: {exc}")


class _TelemetryProtocol(asyncio.DatagramProtocol):
    def __init__(self, playback: CfsPlayback) -> None:
        self.playback = playback

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable: nobody listens for telemetry (TO_LAB does not care)
        self.playback._note_error(f"telemetry socket: {exc}")


class CfsPlayback:
    """NASA cFS with its lab apps, played back from a recorded session over UDP.

    Datagrams arriving on the command port are handled one at a time, in order; those
    arriving while a segment plays wait their turn. Each is compared with the recorded
    uplinks from the current position on: the first that `matches` it has its segment's
    downlink sent to `telemetry_host:telemetry_port`, in the recorded order and at the
    recorded times after the uplink divided by `speed` (0: no waiting at all), and the
    position moves past it. Segments skipped over are never played.

    What it cannot do: it knows only the recorded answers. A command that was not recorded
    at or after the current position (another function code, other arguments, a command
    sent a second time beyond what the recording holds) is kept in `unmatched` and gets no
    answer, where real cFS would count it, reject it with an event, or act on it. Between
    commands it is silent, where TO_LAB would keep sending housekeeping. It does not check
    the TO_LAB destination address in the enable command; telemetry always goes to
    `telemetry_host:telemetry_port`.
    """

    def __init__(
        self,
        session: str | Path,
        *,
        command_port: int = 1234,
        command_host: str = "127.0.0.1",
        telemetry_host: str = "127.0.0.1",
        telemetry_port: int = 1235,
        speed: float = 1.0,
    ) -> None:
        """Load `session` (SessionError when it cannot be played). `command_port` 0 picks a
        free port; `command_address` says which once started."""
        if speed < 0:
            raise ValueError(f"speed must be 0 (no waiting) or more, found {speed}")
        self.session = Path(session)
        self.segments, self.skipped_before_first_uplink = load_session(self.session)
        self.command_host = command_host
        self.command_port = command_port
        self.telemetry_address = (telemetry_host, telemetry_port)
        self.speed = speed
        self.received: list[bytes] = []
        self.unmatched: list[bytes] = []
        self.errors: list[str] = []
        self.sent_count = 0
        self.position = 0  # the index of the next segment that can still be played
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._commands: asyncio.DatagramTransport | None = None
        self._telemetry: asyncio.DatagramTransport | None = None
        self._worker: asyncio.Task[None] | None = None
        self._address: tuple[str, int] | None = None
        self._closed = False

    @property
    def command_address(self) -> tuple[str, int]:
        """(host, port) the command socket is bound to. RuntimeError before `start()`."""
        if self._address is None:
            raise RuntimeError("the playback is not started")
        return self._address

    async def start(self) -> None:
        """Bind the command port and open the telemetry socket. OSError when the port is
        taken or the telemetry address cannot be resolved."""
        if self._address is not None or self._closed:
            raise RuntimeError("a playback starts once")
        loop = asyncio.get_running_loop()
        commands, _ = await loop.create_datagram_endpoint(
            lambda: _CommandProtocol(self), local_addr=(self.command_host, self.command_port)
        )
        try:
            telemetry, _ = await loop.create_datagram_endpoint(
                lambda: _TelemetryProtocol(self), remote_addr=self.telemetry_address
            )
        except BaseException:
            commands.close()
            raise
        self._commands, self._telemetry = commands, telemetry
        sockname = commands.get_extra_info("sockname")
        self._address = (str(sockname[0]), int(sockname[1]))
        self._worker = asyncio.create_task(self._serve(), name="cfs-playback")

    async def close(self) -> None:
        """Stop: a segment being played is cut short, queued datagrams are dropped and
        both sockets are closed. Safe to call more than once."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for transport in (self._commands, self._telemetry):
            if transport is not None:
                transport.close()
        self._commands = self._telemetry = None

    async def __aenter__(self) -> CfsPlayback:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- internals ---------------------------------------------------------------------

    def _arrived(self, data: bytes) -> None:
        try:
            if self._closed:
                return
            self.received.append(bytes(data))
            self._queue.put_nowait(bytes(data))
        except Exception as error:  # never into the event loop
            self._note_error(f"datagram of {len(data)} bytes: {error!r}")

    def _note_error(self, text: str) -> None:
        with contextlib.suppress(Exception):
            self.errors.append(text)

    async def _serve(self) -> None:
        while True:
            data = await self._queue.get()
            try:
                await self._handle(data)
            except Exception as error:  # a bug here must not stop the stand-in
                self._note_error(f"handling {data.hex()}: {error!r}")

    async def _handle(self, data: bytes) -> None:
        for index in range(self.position, len(self.segments)):
            if matches(self.segments[index].uplink.data, data):
                self.position = index + 1
                await self._play(self.segments[index])
                return
        self.unmatched.append(data)

    async def _play(self, segment: Segment) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for recorded in segment.downlink:
            if self.speed:
                offset = max(0.0, recorded.t - segment.uplink.t) / self.speed
                delay = start + offset - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if self._telemetry is None:
                return
            self._telemetry.sendto(recorded.data)
            self.sent_count += 1
            # Let a receiver in the same event loop drain its socket between datagrams.
            await asyncio.sleep(0)


# --- the program ---------------------------------------------------------------------------


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, found {text!r}")
    return host.strip("[]"), int(port)


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 0 (no waiting) or more, found {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0 to 65535, found {text!r}")
    return int(text)


async def _run(arguments: argparse.Namespace) -> CfsPlayback:
    host, port = arguments.telemetry
    playback = CfsPlayback(
        arguments.session,
        command_port=arguments.command_port,
        command_host=arguments.command_host,
        telemetry_host=host,
        telemetry_port=port,
        speed=arguments.speed,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await playback.start()
    try:
        # One line on stdout, flushed: scripts and tests wait for it.
        print(
            f"playing {playback.session.name}: commands on UDP {playback.command_address[1]}, "
            f"telemetry to {host}:{port}",
            flush=True,
        )
        await stop.wait()
    finally:
        await playback.close()
    return playback


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m groundctl.sim.cfs_playback`: serve a recorded cFS session on UDP until
    Ctrl-C or SIGTERM; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m groundctl.sim.cfs_playback",
        description="Play a recorded NASA cFS session back on UDP, like the cFS lab setup: "
        "commands that match the recording's uplinks are answered with the telemetry "
        "recorded after them; anything else gets no answer.",
    )
    parser.add_argument("--session", required=True, type=Path, help="the JSON-lines session")
    parser.add_argument(
        "--command-port",
        type=_port,
        default=1234,
        help="UDP port commands arrive on (CI_LAB's; 0: any free one, printed). Default 1234.",
    )
    parser.add_argument(
        "--command-host", default="127.0.0.1", help="address to bind. Default 127.0.0.1."
    )
    parser.add_argument(
        "--telemetry",
        type=_address,
        default=("127.0.0.1", 1235),
        metavar="HOST:PORT",
        help="where telemetry datagrams go (TO_LAB's destination). Default 127.0.0.1:1235.",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="divide the recorded gaps by this; 0 sends without waiting. Default 1.",
    )
    arguments = parser.parse_args(argv)
    try:
        playback = asyncio.run(_run(arguments))
    except SessionError as error:
        print(f"{error.title}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"cannot serve on UDP: {error.strerror or error}", file=sys.stderr)
        return 1
    print(
        f"{playback.session.name}: {len(playback.received)} datagrams received "
        f"({len(playback.unmatched)} unmatched), {playback.sent_count} sent",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
