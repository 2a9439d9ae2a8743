"""The TCP link against real peers on 127.0.0.1: every framing, reconnection, server mode."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from groundctl.links.base import LinkError, LinkState
from groundctl.links.framing import (
    cobs_encode,
    length_prefix_encode,
    slip_encode,
)
from groundctl.links.tcp import TcpLink

SESSION = Path(__file__).parents[1] / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
PACKETS = [
    bytes.fromhex(r["hex"])
    for r in map(json.loads, SESSION.read_text().splitlines())
    if r["dir"] == "down"
][:120]


async def take(link, count):
    frames = []
    async for frame in link.frames():
        frames.append(frame.raw)
        if len(frames) == count:
            return frames
    return frames


@pytest.mark.parametrize("framing", ["ccsds", "length", "slip", "cobs"])
def test_client_round_trips_through_an_echo_peer(framing):
    async def main():
        async def echo(reader, writer):
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = TcpLink("t", "cfs", {"address": f"127.0.0.1:{port}", "framing": framing})
        up = asyncio.Event()
        link.on_state_change(lambda _, old, new: new is LinkState.UP and up.set())
        await link.open()
        await asyncio.wait_for(up.wait(), 10)
        for packet in PACKETS:
            await link.send(packet)
        got = await asyncio.wait_for(take(link, len(PACKETS)), 10)
        await link.close()
        server.close()
        return got, link

    got, link = asyncio.run(main())
    assert got == PACKETS
    assert link.counters.frames_out == link.counters.frames_in == len(PACKETS)
    assert link.counters.errors == 0


def test_client_reconnects_and_loses_nothing_sent_after_reconnection():
    async def main():
        sent_after = PACKETS[60:]

        served = []

        async def first(reader, writer):
            if not served:  # a reconnection before the peer is gone gets nothing
                served.append(True)
                for packet in PACKETS[:60]:
                    writer.write(packet)
                await writer.drain()
            writer.close()  # the peer goes away mid-pass

        server = await asyncio.start_server(first, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = TcpLink(
            "t",
            "cfs",
            {"address": f"127.0.0.1:{port}", "reconnect_min_s": 0.05, "reconnect_max_s": 0.2},
        )
        states = []
        down = asyncio.Event()

        def watch(_, old, new):
            states.append(new.value)
            if new is LinkState.DOWN:
                down.set()

        link.on_state_change(watch)
        await link.open()
        before = await asyncio.wait_for(take(link, 60), 10)
        await asyncio.wait_for(down.wait(), 10)
        server.close()
        await server.wait_closed()

        async def second(reader, writer):  # the peer comes back on the same port
            for packet in sent_after:
                writer.write(packet)
            await writer.drain()
            await reader.read()  # stay until the link closes

        restarted = await asyncio.start_server(second, "127.0.0.1", port)
        after = await asyncio.wait_for(take(link, len(sent_after)), 20)
        await link.close()
        restarted.close()
        return before, after, states, link

    before, after, states, link = asyncio.run(main())
    assert before == PACKETS[:60]
    assert after == PACKETS[60:]
    assert link.connections >= 2
    assert states[:3] == ["connecting", "up", "down"] and "up" in states[3:]


def test_server_mode_serves_the_connecting_peer():
    async def main():
        link = TcpLink("s", "cfs", {"address": "127.0.0.1:0", "mode": "server", "framing": "slip"})
        await link.open()
        reader, writer = await asyncio.open_connection("127.0.0.1", link.bound_port)
        writer.write(b"".join(slip_encode(p) for p in PACKETS[:10]))
        await writer.drain()
        got = await asyncio.wait_for(take(link, 10), 10)
        await link.send(b"\xc0command\xdb")
        echoed = await asyncio.wait_for(
            reader.readexactly(len(slip_encode(b"\xc0command\xdb"))), 10
        )
        writer.close()
        await link.close()
        return got, echoed

    got, echoed = asyncio.run(main())
    assert got == PACKETS[:10]
    assert echoed == slip_encode(b"\xc0command\xdb")


def test_bad_options_and_sending_while_down():
    with pytest.raises(LinkError, match="framing 'hdlc' is not one of"):
        TcpLink("t", "n", {"address": "127.0.0.1:1", "framing": "hdlc"})
    with pytest.raises(LinkError, match="mode must be client or server"):
        TcpLink("t", "n", {"address": "127.0.0.1:1", "mode": "peer"})

    async def main():
        link = TcpLink("t", "n", {"address": "127.0.0.1:9"})
        with pytest.raises(LinkError, match="nothing was sent"):
            await link.send(b"x")

    asyncio.run(main())


def test_encoders_used_by_the_tests_match_the_link():
    assert cobs_encode(b"a\x00b")[-1] == 0
    assert length_prefix_encode(b"ab")[:4] == b"\x00\x00\x00\x02"


@pytest.mark.parametrize(
    ("framing", "stream", "expected"),
    [
        # a SLIP escape followed by a byte that is not TFEND/TFESC: kept as received
        ("slip", b"\xc0ab\xdb\x01cd\xc0" + slip_encode(b"ok"), [b"ab\xdb\x01cd", b"ok"]),
        # a length prefix beyond any frame: the rest of the stream, raw
        (
            "length",
            length_prefix_encode(b"ok") + b"\xff\xff\xff\xffjunk",
            [b"ok", b"\xff\xff\xff\xffjunk"],
        ),
        # a COBS block cut short
        ("cobs", cobs_encode(b"ok") + b"\x05ab\x00", [b"ok", b"\x05ab"]),
    ],
)
def test_malformed_streams_are_delivered_as_received_and_counted(framing, stream, expected):
    async def main():
        async def peer(reader, writer):
            writer.write(stream)
            await writer.drain()
            await reader.read()

        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = TcpLink("t", "n", {"address": f"127.0.0.1:{port}", "framing": framing})
        await link.open()
        got = await asyncio.wait_for(take(link, len(expected)), 10)
        await link.close()
        server.close()
        return got, link.counters.errors

    got, errors = asyncio.run(main())
    assert got == expected
    assert errors == 1
