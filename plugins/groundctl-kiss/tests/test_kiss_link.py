"""The KISS link against real TNC stand-ins on 127.0.0.1: the real capture, round trips
through AX.25 UI and KISS, a TNC killed and restarted, bad input, options, discovery."""

from __future__ import annotations

import asyncio
import importlib.metadata
import signal
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from groundctl_kiss import KissLink

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401
from groundctl.links.base import LinkError, LinkState
from groundctl.links.registry import discover

CALLS = {"mycall": "GND1", "destination": "ODC07-1"}
# ODC07-1 <- GND1 as the link must write it, worked by hand: O 0x4F -> 0x9E, D -> 0x88,
# C -> 0x86, 0 -> 0x60, 7 -> 0x6E, space -> 0x40, SSID byte C=1 RR=11 SSID 1 X=0 -> 0xE2;
# G -> 0x8E, N -> 0x9C, D -> 0x88, 1 -> 0x62, SSID byte C=0 RR=11 SSID 0 X=1 -> 0x61;
# then UI (0x03) and PID 0xF0.
UPLINK_HEADER = bytes.fromhex("9e8886606e40e2 8e9c8862404061 03f0")
DOWNLINK_HEADER = bytes.fromhex("8e9c88624040e0 9e8886606e4063 03f0")  # GND1 <- ODC07-1


def kiss(frame: bytes) -> bytes:
    """A KISS frame with the escaping written out, for streams the tests make up."""
    return b"\xc0" + frame.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


async def take(link: KissLink, count: int) -> list[bytes]:
    frames: list[bytes] = []
    async for frame in link.frames():
        frames.append(frame.raw)
        if len(frames) == count:
            break
    return frames


async def open_and_wait_up(link: KissLink) -> asyncio.Event:
    """Open the link and wait until it is up; the event returned is set when it drops."""
    up, down = asyncio.Event(), asyncio.Event()

    def watch(_: object, old: LinkState, new: LinkState) -> None:
        if new is LinkState.UP:
            up.set()
        elif new is LinkState.DOWN:
            down.set()

    link.on_state_change(watch)
    await link.open()
    await asyncio.wait_for(up.wait(), 5)
    return down


def link_to(port: int, **options: Any) -> KissLink:
    return KissLink("tnc", "odc07", {"address": f"127.0.0.1:{port}", **options})


def awkward_chunks(stream: bytes) -> list[bytes]:
    """The stream cut at sizes that land inside escape sequences and next to FENDs."""
    sizes = [1, 7, 2, 80, 3, 163, 5, 13, 82, 1, 1, 40]
    chunks, start, n = [], 0, 0
    while start < len(stream):
        chunks.append(stream[start : start + sizes[n % len(sizes)]])
        start += len(chunks[-1])
        n += 1
    return chunks


@pytest.mark.parametrize("ax25", [False, True])
def test_the_real_capture_arrives_whole_from_a_tnc_writing_awkward_chunks(
    capture: bytes, capture_payloads: list[bytes], ax25: bool
) -> None:
    chunks = awkward_chunks(capture)
    assert any(chunk.endswith(b"\xdb") for chunk in chunks[:-1])  # FESC | TFEND
    assert any(chunk.endswith(b"\xc0") for chunk in chunks[:-1])
    assert any(chunk.startswith(b"\xc0") for chunk in chunks[1:])

    async def main() -> tuple[list[bytes], KissLink]:
        async def tnc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
            await reader.read()  # stay until the link leaves

        server = await asyncio.start_server(tnc, "127.0.0.1", 0)
        link = link_to(server.sockets[0].getsockname()[1], ax25=ax25, **CALLS)
        await open_and_wait_up(link)
        got = await asyncio.wait_for(take(link, 83), 5)
        await link.close()
        server.close()
        return got, link

    got, link = asyncio.run(main())
    assert got == capture_payloads
    assert link.counters.frames_in == 83
    assert link.counters.bytes_in == sum(map(len, capture_payloads))
    if ax25:  # unshifted ASCII callsigns: not AX.25, delivered whole and counted
        assert link.counters.errors == 83
        assert link.problems == {"not AX.25 UI": 83}
        assert link.last_problem.startswith("not AX.25 UI: address 1: callsign byte 0")
    else:
        assert link.counters.errors == 0 and not link.problems


@pytest.mark.parametrize("kiss_port", [0, 12])  # 12: the command byte is 0xC0, escaped
def test_real_packets_round_trip_through_ax25_and_kiss_via_an_echo_tnc(
    packets: list[bytes], unescape: Callable[[bytes], list[bytes]], kiss_port: int
) -> None:
    heard = bytearray()

    async def main() -> tuple[list[bytes], KissLink]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(4096):
                heard.extend(data)
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        link = link_to(server.sockets[0].getsockname()[1], kiss_port=kiss_port, **CALLS)
        await open_and_wait_up(link)
        await link.send(packets[0], node="odc07")  # naming the link's own node is fine
        for packet in packets[1:]:
            await link.send(packet)
        got = await asyncio.wait_for(take(link, len(packets)), 5)
        await link.close()
        server.close()
        return got, link

    got, link = asyncio.run(main())
    assert got == packets
    assert link.counters.frames_out == link.counters.frames_in == len(packets)
    assert link.counters.errors == 0
    # What went on the wire, opened by hand: command byte, UI header, the packet.
    command = bytes([kiss_port << 4])
    assert unescape(bytes(heard)) == [command + UPLINK_HEADER + p for p in packets]
    assert all(p[2] == 0xC0 for p in packets)  # every packet needed escaping


def test_the_tnc_is_killed_and_restarted_and_nothing_sent_after_reconnection_is_lost(
    packets: list[bytes], fake_tnc_script: Path, tmp_path: Path
) -> None:
    frames = [kiss(b"\x00" + DOWNLINK_HEADER + p) for p in packets]
    cut = frames[12][:30]  # the TNC dies in the middle of this one
    (tmp_path / "first").write_bytes(b"".join(frames[:12]) + cut)
    (tmp_path / "second").write_bytes(b"".join(frames[12:]))

    async def start_tnc(port: int, stream: str) -> tuple[asyncio.subprocess.Process, int]:
        tnc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(fake_tnc_script),
            str(port),
            str(tmp_path / stream),
            stdout=asyncio.subprocess.PIPE,
        )
        assert tnc.stdout is not None
        line = await asyncio.wait_for(tnc.stdout.readline(), 5)
        return tnc, int(line)

    async def main() -> tuple[list[bytes], list[bytes], list[str], KissLink]:
        tnc, port = await start_tnc(0, "first")
        tncs = [tnc]
        link = link_to(port, reconnect_min_s=0.02, reconnect_max_s=0.1, **CALLS)
        states: list[str] = []
        link.on_state_change(lambda _, old, new: states.append(new.value))
        try:
            down = await open_and_wait_up(link)
            before = await asyncio.wait_for(take(link, 12), 5)
            tnc.send_signal(signal.SIGKILL)
            await tnc.wait()
            await asyncio.wait_for(down.wait(), 5)
            restarted, _ = await start_tnc(port, "second")  # the same port, a new process
            tncs.append(restarted)
            after = await asyncio.wait_for(take(link, 1 + len(frames) - 12), 5)
        finally:
            await link.close()
            for process in tncs:
                if process.returncode is None:
                    process.kill()
                await process.wait()
        return before, after, states, link

    before, after, states, link = asyncio.run(main())
    assert before == packets[:12]
    assert after[0] == cut[1:]  # the bytes of the frame cut by the kill, kept
    assert after[1:] == packets[12:]
    # 2, or 3 when the link got into the dying TNC's backlog before its listener closed
    assert link.connections >= 2
    assert link.problems == {"cut off": 1}
    assert states[:3] == ["connecting", "up", "down"] and states[-2:] == ["up", "closed"]


def test_a_tnc_that_hangs_up_at_once_is_retried_with_backoff_not_in_a_loop() -> None:
    async def main() -> tuple[float, KissLink]:
        accepted: list[float] = []
        fourth = asyncio.Event()

        async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(asyncio.get_running_loop().time())
            if len(accepted) == 4:
                fourth.set()
            writer.close()

        server = await asyncio.start_server(rude, "127.0.0.1", 0)
        link = link_to(
            server.sockets[0].getsockname()[1],
            reconnect_min_s=0.02,
            reconnect_max_s=0.04,
            **CALLS,
        )
        await link.open()
        await asyncio.wait_for(fourth.wait(), 5)
        await link.close()
        server.close()
        return accepted[3] - accepted[0], link

    elapsed, link = asyncio.run(main())
    # At least three waits of 0.5-1.5 x (0.02, 0.04, 0.04) s between the four attempts.
    assert elapsed >= 0.01 + 0.02 + 0.02
    assert link.counters.frames_in == 0 and link.counters.errors >= 3


def test_bad_input_is_delivered_as_received_and_counted(packets: list[bytes]) -> None:
    stream = b"".join(
        [
            kiss(b"\x00" + DOWNLINK_HEADER + packets[0]),
            b"\xc0\x00" + DOWNLINK_HEADER + b"\xdb\x41\xc0",  # FESC then 0x41
            kiss(b"\x00" + DOWNLINK_HEADER[:9]),  # truncated AX.25 address field
            kiss(b"\x20" + DOWNLINK_HEADER + packets[1]),  # TNC port 2, not ours
            kiss(b"\x00" + packets[2]),  # a bare packet where AX.25 was expected
            kiss(b"\x00" + DOWNLINK_HEADER + packets[3]),
            b"\xc0\x00" + DOWNLINK_HEADER[:5],  # and the TNC hangs up mid-frame
        ]
    )

    async def main() -> tuple[list[bytes], KissLink]:
        served: list[bool] = []

        async def tnc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not served:  # a reconnection after the hang-up gets nothing
                served.append(True)
                writer.write(stream)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(tnc, "127.0.0.1", 0)
        link = link_to(server.sockets[0].getsockname()[1], **CALLS)
        await open_and_wait_up(link)
        got = await asyncio.wait_for(take(link, 7), 5)
        await link.close()
        server.close()
        return got, link

    got, link = asyncio.run(main())
    assert got == [
        packets[0],
        b"\x00" + DOWNLINK_HEADER + b"\xdb\x41",
        DOWNLINK_HEADER[:9],
        b"\x20" + DOWNLINK_HEADER + packets[1],
        packets[2],
        packets[3],
        b"\x00" + DOWNLINK_HEADER[:5],
    ]
    assert link.counters.frames_in == 7 and link.counters.errors == 5
    assert link.problems == Counter(
        {"bad escape": 1, "not AX.25 UI": 2, "other port": 1, "cut off": 1}
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mycall": "GROUND1", **{"destination": "ODC07"}}, "link tnc: option 'mycall'"),
        ({"mycall": "GND1", "destination": "ODC07-16"}, "option 'destination': SSID 16"),
        ({"mycall": "GND1", "destination": "OD_07"}, "option 'destination': callsign"),
        ({"destination": "ODC07"}, "option 'mycall' is required when ax25 is true"),
        ({**CALLS, "via": "RELAY,WIDE2-99"}, "option 'via': SSID 99"),
        ({**CALLS, "via": ",".join(["WIDE"] * 9)}, "lists 9 digipeaters"),
        ({**CALLS, "kiss_port": 16}, "option 'kiss_port' must be 0 to 15"),
        ({**CALLS, "address": "tnc.local:80x"}, "option 'address' must be HOST:PORT"),
        ({**CALLS, "reconnect_min_s": 0}, "0 < reconnect_min_s <= reconnect_max_s"),
        ({**CALLS, "ax25": "yes"}, "option 'ax25' must be a bool"),
        ({**CALLS, "framing": "slip"}, "unknown option 'framing'"),
    ],
)
def test_bad_options_name_the_link_and_the_option(options: Mapping[str, Any], message: str) -> None:
    with pytest.raises(LinkError, match=message):
        KissLink("tnc", "odc07", options)


def test_defaults_and_what_needs_no_callsign() -> None:
    link = KissLink("tnc", "odc07", {**CALLS, "via": "relay, wide2-2"})
    assert link.address == ("127.0.0.1", 8001)
    assert [str(hop) for hop in link.via] == ["RELAY", "WIDE2-2"]
    assert KissLink("tnc", "n", {**CALLS, "address": "direwolf"}).address == ("direwolf", 8001)
    bare = KissLink("tnc", "odc07", {"ax25": False, "address": "10.0.0.2:8100"})
    assert (bare.mycall, bare.address) == (None, ("10.0.0.2", 8100))


def test_sending_while_not_up_or_to_another_node_is_refused() -> None:
    async def main() -> None:
        link = KissLink("tnc", "odc07", CALLS)
        with pytest.raises(LinkError, match="link tnc is closed: nothing was sent"):
            await link.send(b"\x18\x06")
        with pytest.raises(LinkError, match="reaches node odc07, not odc08: nothing was sent"):
            await link.send(b"\x18\x06", node="odc08")
        await link.close()  # never opened: closing is still fine
        assert link.state is LinkState.CLOSED

    asyncio.run(main())


def test_the_installed_plugin_is_discovered_and_listed() -> None:
    # Needs `pip install -e plugins/groundctl-kiss` (make test does it): found through its
    # distribution's entry point, exactly like a third-party adapter.
    points = importlib.metadata.distribution("groundctl-kiss").entry_points
    assert sorted((p.group, p.name, p.value) for p in points) == [
        ("groundctl.links", "kiss", "groundctl_kiss:KissLink"),
        ("groundctl.recordings", "kiss", "groundctl_kiss:KissRecording"),
    ]
    adapters, broken = discover()
    assert adapters["kiss"] is KissLink
    assert "kiss" not in {b.name for b in broken}
    result = CliRunner().invoke(cli, ["links"], obj={})
    assert "kiss" in result.stdout and "KISS TNC over TCP" in result.stdout
    assert all(option.name in result.stdout for option in KissLink.OPTIONS)
