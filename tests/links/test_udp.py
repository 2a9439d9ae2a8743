"""The UDP link on real sockets: the cFS lab setup, with the recorded datagrams."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from groundctl.links.base import LinkError, LinkState
from groundctl.links.udp import UdpLink

SESSION = Path(__file__).parents[1] / "fixtures" / "cfs" / "cfs-lab-session.jsonl"


def recorded(direction: str) -> list[bytes]:
    rows = [json.loads(x) for x in SESSION.read_text().splitlines()]
    return [bytes.fromhex(r["hex"]) for r in rows if r["dir"] == direction]


def test_datagrams_both_ways_byte_for_byte():
    downlink = recorded("down")[:200]
    uplink = recorded("up")

    async def main():
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # plays the flight software
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        link = UdpLink(
            "lab",
            "cfs",
            {"uplink": f"127.0.0.1:{peer.getsockname()[1]}", "downlink": "127.0.0.1:0"},
        )
        states = []
        link.on_state_change(lambda _, old, new: states.append((old.value, new.value)))
        await link.open()
        loop = asyncio.get_running_loop()
        for data in downlink:
            await loop.sock_sendto(peer, data, ("127.0.0.1", link.bound_port))
        received = []
        async for frame in link.frames():
            received.append(frame)
            if len(received) == len(downlink):
                break
        for data in uplink:
            await link.send(data)
        got = [await loop.sock_recv(peer, 2048) for _ in uplink]
        await link.close()
        peer.close()
        return link, states, received, got

    link, states, received, got = asyncio.run(main())
    assert [f.raw for f in received] == downlink
    assert {(f.link, f.node, f.direction) for f in received} == {("lab", "cfs", "down")}
    assert got == uplink
    c = link.counters
    assert (c.frames_in, c.bytes_in) == (200, sum(map(len, downlink)))
    assert (c.frames_out, c.bytes_out) == (len(uplink), sum(map(len, uplink)))
    assert states == [("closed", "connecting"), ("connecting", "up"), ("up", "closed")]


def test_bad_options_and_busy_port_give_clear_errors():
    with pytest.raises(LinkError, match="option 'uplink' is required"):
        UdpLink("lab", "cfs", {})
    with pytest.raises(LinkError, match="must be HOST:PORT, found '1234'"):
        UdpLink("lab", "cfs", {"uplink": "1234"})
    with pytest.raises(LinkError, match="unknown option 'uplnk'"):
        UdpLink("lab", "cfs", {"uplnk": "127.0.0.1:1"})
    with pytest.raises(LinkError, match="option 'uplink' must be a str, found 1234"):
        UdpLink("lab", "cfs", {"uplink": 1234})

    async def busy():
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        link = UdpLink("lab", "cfs", {"uplink": "127.0.0.1:9", "downlink": f"127.0.0.1:{port}"})
        try:
            with pytest.raises(LinkError, match=f"cannot receive on 127.0.0.1:{port}"):
                await link.open()
            assert link.state is LinkState.DOWN
            with pytest.raises(LinkError, match="nothing was sent"):
                await link.send(b"x")
        finally:
            holder.close()

    asyncio.run(busy())


def test_malformed_datagrams_reach_the_archive_as_received(tmp_path):
    """Garbage on the telemetry port is delivered byte for byte and archived as malformed
    with its reason, between good packets that still decode."""
    from groundctl.archive import open_archive
    from groundctl.engine import Engine
    from groundctl.mdb.loader import load_mission

    good = recorded("down")[:3]
    garbage = [b"\x00", b"\xff" * 7, good[0][:10], b"not a space packet at all"]
    sent = [good[0], *garbage, good[1], good[2]]
    mission = load_mission(Path(__file__).parents[2] / "data" / "missions" / "cfs-lab.toml")

    async def main():
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        link = UdpLink(
            "lab",
            "cfs",
            {"uplink": f"127.0.0.1:{peer.getsockname()[1]}", "downlink": "127.0.0.1:0"},
        )
        engine = Engine(tmp_path / "a.db", default=mission)
        await engine.start()
        await link.open()
        pump = engine.attach(link)
        loop = asyncio.get_running_loop()
        for data in sent:
            await loop.sock_sendto(peer, data, ("127.0.0.1", link.bound_port))
        while link.counters.frames_in < len(sent):
            await asyncio.sleep(0.01)
        await engine.stop()
        peer.close()
        return pump.result()

    assert asyncio.run(main()) == len(sent)
    with open_archive(tmp_path / "a.db") as archive:
        rows = archive.conn.execute(
            "SELECT raw, status, error FROM frames WHERE direction = 'down' ORDER BY id"
        ).fetchall()
        states = archive.conn.execute(
            "SELECT text FROM events WHERE kind = 'link-state' ORDER BY id"
        ).fetchall()
    assert [bytes(r[0]) for r in rows] == sent
    assert [r[1] for r in rows] == [
        "ok",
        "malformed",
        "malformed",
        "malformed",
        "malformed",
        "ok",
        "ok",
    ]
    assert all(r[2] for r in rows[1:5])
    assert [s[0] for s in states] == ["link lab: up -> closed"]
