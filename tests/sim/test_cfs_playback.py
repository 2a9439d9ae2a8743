"""The recorded cFS stand-in on real UDP sockets, driven like flight software.

Commands are built independently of the playback (with the `cfs-lab` mission database's
encoder, or by hand from the cFS wire facts) and with other sequence counts than recorded;
the telemetry that comes back is decoded with the mission database's codec, and compared
with the recording read here straight from its JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import struct
import sys
from functools import reduce
from pathlib import Path

import pytest

from groundctl.links.udp import UdpLink
from groundctl.mdb.codec import Codec, encode_command
from groundctl.mdb.loader import load_mission
from groundctl.sim.cfs_playback import CfsPlayback, SessionError, load_session, matches

ROOT = Path(__file__).parents[2]
SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
CFS_LAB = ROOT / "data" / "missions" / "cfs-lab.toml"


def recorded_segments() -> list[tuple[bytes, list[bytes], list[float]]]:
    """(uplink, downlink datagrams, their recorded seconds after the uplink) per uplink."""
    segments: list[tuple[bytes, list[bytes], list[float]]] = []
    t_up = 0.0
    for line in SESSION.read_text().splitlines():
        row = json.loads(line)
        if row["dir"] == "up":
            t_up = row["t"]
            segments.append((bytes.fromhex(row["hex"]), [], []))
        else:
            segments[-1][1].append(bytes.fromhex(row["hex"]))
            segments[-1][2].append(row["t"] - t_up)
    return segments


SEGMENTS = recorded_segments()


def with_cfs_checksum(packet: bytes) -> bytes:
    """`packet` with byte 7 set so that 0xFF XOR every byte is 0 (the cFS rule)."""
    buf = bytearray(packet)
    buf[7] = 0
    buf[7] = reduce(lambda x, b: x ^ b, buf, 0xFF)
    return bytes(buf)


class Cfs:
    """The cfs-lab mission database as a ground system uses it."""

    def __init__(self) -> None:
        self.mission = load_mission(CFS_LAB)
        self.codec = Codec(self.mission)

    def command(self, name: str, sequence_count: int, **arguments) -> bytes:
        command = self.mission.commands[name]
        return encode_command(self.mission, command, arguments, sequence_count=sequence_count)

    def values(self, frames: list[bytes], parameter: str) -> list:
        packet, field = parameter.split(".")
        out = []
        for raw in frames:
            decoded = self.codec.decode(raw)
            assert not decoded.error, decoded.error
            if decoded.packet.name == packet:
                out.append(decoded.values[field])
        return out

    def events(self, frames: list[bytes]) -> list[tuple[str, int, str, str]]:
        return [
            (e["APP_NAME"], e["EVENT_ID"], e["EVENT_TYPE"], e["MESSAGE"])
            for e in (self.codec.decode(raw).values for raw in frames)
            if "EVENT_ID" in e
        ]


@pytest.fixture(scope="module")
def cfs() -> Cfs:
    return Cfs()


class Ground:
    """The ground side through groundctl's own `udp` links: one receives telemetry (TO_LAB's
    destination), the other sends commands to the playback's command port."""

    def __init__(self) -> None:
        self.telemetry = UdpLink(
            "cfs-tlm", "cfs", {"uplink": "127.0.0.1:9", "downlink": "127.0.0.1:0"}
        )
        self.commands: UdpLink | None = None
        self._frames = None

    async def __aenter__(self) -> Ground:
        await self.telemetry.open()
        self._frames = aiter(self.telemetry.frames())
        return self

    async def __aexit__(self, *exc) -> None:
        if self.commands is not None:
            await self.commands.close()
        await self.telemetry.close()

    @property
    def port(self) -> int:
        assert self.telemetry.bound_port is not None
        return self.telemetry.bound_port

    def playback(self, session: Path = SESSION, speed: float = 0.0) -> CfsPlayback:
        return CfsPlayback(session, command_port=0, telemetry_port=self.port, speed=speed)

    async def connect(self, address: tuple[str, int]) -> None:
        host, port = address
        self.commands = UdpLink(
            "cfs-cmd", "cfs", {"uplink": f"{host}:{port}", "downlink": "127.0.0.1:0"}
        )
        await self.commands.open()

    async def send(self, raw: bytes) -> None:
        assert self.commands is not None
        await self.commands.send(raw)

    async def take(self, count: int, timeout_s: float = 10.0) -> list[bytes]:
        """The next `count` telemetry datagrams; fails after `timeout_s` without them."""
        async with asyncio.timeout(timeout_s):
            return [(await anext(self._frames)).raw for _ in range(count)]


def test_commands_get_the_telemetry_recorded_after_them(cfs):
    enable = cfs.command("TO_LAB_ENABLE_OUTPUT", 100, dest_ip="127.0.0.1")
    noop = cfs.command("ES_NOOP", 42)
    # CFE_ES with function code 0x55, built by hand: header, fc, checksum
    bad_code = with_cfs_checksum(struct.pack(">HHHBB", 0x1806, 0xC000 | 7, 1, 0x55, 0))
    assert enable != SEGMENTS[0][0] and noop != SEGMENTS[1][0] and bad_code != SEGMENTS[2][0]

    async def main():
        async with Ground() as ground, ground.playback() as playback:
            await ground.connect(playback.command_address)
            got = []
            for raw in (enable, noop, bad_code):
                await ground.send(raw)
                got.append(await ground.take(len(SEGMENTS[len(got)][1])))
            return playback, got

    playback, (after_enable, after_noop, after_bad) = asyncio.run(main())
    assert [after_enable, after_noop, after_bad] == [s[1] for s in SEGMENTS[:3]]
    assert playback.received == [enable, noop, bad_code]
    assert playback.unmatched == [] and playback.errors == []
    assert playback.sent_count == sum(len(s[1]) for s in SEGMENTS[:3]) == 105 + 58 + 57
    assert playback.position == 3

    assert set(cfs.values(after_enable, "ES_HK.CMD_COUNT")) == {0}
    assert cfs.events(after_enable) == [
        ("TO_LAB_APP", 3, "INFO", "TO telemetry output enabled for IP 127.0.0.1")
    ]
    assert set(cfs.values(after_noop, "ES_HK.CMD_COUNT")) == {1}
    events = cfs.events(after_noop)
    assert [e[:3] for e in events] == [("CFE_ES", 92, "INFO"), ("CFE_ES", 3, "INFO")]
    assert events[1][3].startswith("No-op command:\n cFS Versions: cfe v7.0.0-rc4+dev370")
    assert set(cfs.values(after_bad, "ES_HK.ERR_COUNT")) == {1}
    assert set(cfs.values(after_bad, "ES_HK.CMD_COUNT")) == {1}
    assert cfs.events(after_bad) == [
        ("CFE_ES", 22, "ERROR", "Invalid ground command code: ID = 0x1806, CC = 85")
    ]


def test_a_datagram_not_recorded_is_logged_and_gets_no_answer(cfs):
    evs_noop = cfs.command("EVS_NOOP", 0)  # never sent in the recorded session
    stale = bytearray(cfs.command("ES_NOOP", 9))  # new sequence count, checksum broken
    stale[7] ^= 0x80
    assert stale[7] != SEGMENTS[1][0][7]
    runt = bytes.fromhex("18")
    enable = cfs.command("TO_LAB_ENABLE_OUTPUT", 0)

    async def main():
        async with Ground() as ground, ground.playback() as playback:
            await ground.connect(playback.command_address)
            for raw in (evs_noop, bytes(stale), runt, enable):
                await ground.send(raw)
            # Handled in order: anything the first three had caused would arrive first.
            first = await ground.take(1)
            unmatched_then = list(playback.unmatched)
            rest = await ground.take(len(SEGMENTS[0][1]) - 1)
            return playback, first, unmatched_then, rest

    playback, first, unmatched_then, rest = asyncio.run(main())
    assert first == SEGMENTS[0][1][:1]
    assert unmatched_then == [evs_noop, bytes(stale), runt]
    assert first + rest == SEGMENTS[0][1]
    assert playback.sent_count == len(SEGMENTS[0][1])
    assert playback.received == [evs_noop, bytes(stale), runt, enable]


def test_nothing_recorded_before_the_first_uplink_is_sent_and_position_only_moves_on(tmp_path):
    def row(direction: str, t: float, data: str) -> str:
        return json.dumps({"t": t, "dir": direction, "hex": data})

    session = tmp_path / "session.jsonl"
    session.write_text(
        "\n".join(
            [
                row("down", 1.0, "0800c000000100aa"),  # before any uplink: TO_LAB not enabled
                row("down", 1.5, "0800c001000100bb"),
                row("up", 2.0, "1880c0000001069e"),
                row("down", 2.5, "0800c002000100cc"),
                row("down", 3.0, "0800c003000100dd"),
                row("up", 4.0, "1806c00100010021"),
                row("down", 4.5, "0800c004000100ee"),
                row("up", 5.0, "1882c005000100a1"),
                row("down", 5.5, "0800c005000100ff"),
                row("up", 6.0, "1884c006000100a2"),
                row("down", 6.5, "0800c0060001000f"),
                "",
            ]
        )
    )

    async def main():
        async with Ground() as ground, ground.playback(session) as playback:
            assert playback.skipped_before_first_uplink == 2
            await ground.connect(playback.command_address)
            await ground.send(bytes.fromhex("1880c0000001069e"))
            first = await ground.take(2)
            # The third uplink, skipping the second: its segment is never played.
            await ground.send(with_cfs_checksum(bytes.fromhex("1882c02a000100a1")))
            third = await ground.take(1)
            await ground.send(bytes.fromhex("1806c00100010021"))  # behind the position now
            await ground.send(bytes.fromhex("1880c0000001069e"))
            await ground.send(bytes.fromhex("1882c005000100a1"))  # played already
            # Handled in order: had any of those three been answered, it would come first.
            await ground.send(bytes.fromhex("1884c006000100a2"))
            last = await ground.take(1)
            return playback, first, third, last

    playback, first, third, last = asyncio.run(main())
    assert first == [bytes.fromhex("0800c002000100cc"), bytes.fromhex("0800c003000100dd")]
    assert third == [bytes.fromhex("0800c005000100ff")]
    assert last == [bytes.fromhex("0800c0060001000f")]
    assert playback.sent_count == 4
    assert playback.unmatched == [
        bytes.fromhex(h) for h in ("1806c00100010021", "1880c0000001069e", "1882c005000100a1")
    ]
    assert playback.position == 4


def test_datagrams_arriving_during_a_segment_wait_and_gaps_follow_the_speed(cfs):
    speed = 100.0
    enable = cfs.command("TO_LAB_ENABLE_OUTPUT", 3)
    noop = cfs.command("ES_NOOP", 4)
    expected = SEGMENTS[0][1] + SEGMENTS[1][1]
    span_s = (SEGMENTS[0][2][-1] + SEGMENTS[1][2][-1]) / speed

    async def main():
        loop = asyncio.get_running_loop()
        async with Ground() as ground, ground.playback(speed=speed) as playback:
            await ground.connect(playback.command_address)
            t0 = loop.time()
            await ground.send(enable)
            await ground.send(noop)  # arrives while the first segment is being played
            first = await ground.take(1)
            first_s = loop.time() - t0
            rest = await ground.take(len(expected) - 1)
            return playback, first + rest, first_s, loop.time() - t0

    playback, frames, first_s, elapsed_s = asyncio.run(main())
    assert frames == expected
    assert playback.received == [enable, noop] and playback.unmatched == []
    assert first_s >= SEGMENTS[0][2][0] / speed  # 0.92 s recorded after the uplink
    assert span_s <= elapsed_s < span_s + 5.0, (span_s, elapsed_s)


def test_close_cuts_a_segment_short_and_is_idempotent(cfs):
    async def main():
        async with Ground() as ground:
            playback = ground.playback(speed=10.0)  # 1.2 s for the 12 s recorded answer
            await playback.start()
            await ground.connect(playback.command_address)
            await ground.send(cfs.command("TO_LAB_ENABLE_OUTPUT", 1))
            await ground.take(1, timeout_s=5.0)  # recorded 0.92 s after the uplink
            await playback.close()
            await playback.close()
            await ground.send(cfs.command("ES_NOOP", 2))  # nobody listens any more
            with pytest.raises(RuntimeError, match="starts once"):
                await playback.start()
            return playback

    playback = asyncio.run(main())
    assert 1 <= playback.sent_count < len(SEGMENTS[0][1])
    assert len(playback.received) == 1


def test_matching_ignores_only_the_sequence_count_and_a_valid_new_checksum():
    noop = bytes.fromhex("1806c00100010021")
    assert matches(noop, noop)
    resequenced = with_cfs_checksum(bytes.fromhex("1806c02a00010000"))
    assert matches(noop, resequenced)
    assert matches(noop, with_cfs_checksum(bytes.fromhex("1806ffff00010000")))
    assert not matches(noop, resequenced[:7] + bytes([resequenced[7] ^ 1]))  # bad checksum
    assert not matches(noop, with_cfs_checksum(bytes.fromhex("1806c00100010100")))  # fc 1
    assert not matches(noop, with_cfs_checksum(bytes.fromhex("1806000100010000")))  # flags
    assert not matches(noop, with_cfs_checksum(bytes.fromhex("1807c00100010000")))  # id
    assert not matches(noop, noop + b"\0")
    # a runt: the bits of the sequence count it has may differ, nothing else
    assert matches(bytes.fromhex("1806c0"), bytes.fromhex("1806c5"))
    assert not matches(bytes.fromhex("1806c0"), bytes.fromhex("180680"))
    # telemetry-type datagrams have no checksum byte to forgive
    assert not matches(bytes.fromhex("0800c00100010021"), bytes.fromhex("0800c00100010020"))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"t": 1, "dir": "up", "hex": "1806"}', "{nope"], r"session\.jsonl:2: not JSON"),
        (['{"t": 1, "dir": "sideways", "hex": "18"}'], r":1: 'dir' must be \"up\" or \"down\""),
        (['{"t": "x", "dir": "up", "hex": "18"}'], r":1: 't' must be a number"),
        (['{"t": 1, "dir": "up", "hex": "zz"}'], r":1: 'hex' must be the datagram's bytes"),
        (["[1, 2]"], r":1: expected a JSON object, found list"),
        (['{"t": 1, "dir": "down", "hex": "0800"}'], r"no uplink in the session"),
    ],
)
def test_a_session_that_cannot_be_played_is_refused_with_file_and_line(tmp_path, lines, message):
    session = tmp_path / "session.jsonl"
    session.write_text("\n".join(lines) + "\n")
    with pytest.raises(SessionError, match=message):
        CfsPlayback(session)
    with pytest.raises(SessionError, match="cannot read the session"):
        load_session(tmp_path / "missing.jsonl")


def test_the_real_session_splits_into_its_eight_uplinks():
    segments, before = load_session(SESSION)
    assert before == 0
    assert [s.uplink.data for s in segments] == [s[0] for s in SEGMENTS]
    assert [list(map(lambda r: r.data, s.downlink)) for s in segments] == [s[1] for s in SEGMENTS]
    assert [s.note for s in segments][:3] == [
        "TO_LAB enable output 127.0.0.1",
        "CFE_ES NOOP",
        "CFE_ES invalid function code 0x55",
    ]


def test_the_program_serves_the_session_until_sigterm(cfs):
    async def main():
        async with Ground() as ground:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "groundctl.sim.cfs_playback",
                "--session",
                str(SESSION),
                "--command-port",
                "0",
                "--telemetry",
                f"127.0.0.1:{ground.port}",
                "--speed",
                "0",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={k: v for k, v in os.environ.items() if not k.startswith("GROUNDCTL_")},
            )
            try:
                line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
                ready = re.fullmatch(
                    rf"playing cfs-lab-session\.jsonl: commands on UDP (\d+), "
                    rf"telemetry to 127\.0\.0\.1:{ground.port}\n",
                    line,
                )
                assert ready, f"first line on stdout: {line!r}"
                await ground.connect(("127.0.0.1", int(ready[1])))
                await ground.send(cfs.command("TO_LAB_ENABLE_OUTPUT", 5))
                frames = await ground.take(len(SEGMENTS[0][1]))
                process.send_signal(signal.SIGTERM)
                rc = await asyncio.wait_for(process.wait(), 30)
                stderr = (await process.stderr.read()).decode()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            return frames, rc, stderr

    frames, rc, stderr = asyncio.run(main())
    assert rc == 0, stderr
    assert frames == SEGMENTS[0][1]
    assert stderr == "cfs-lab-session.jsonl: 1 datagrams received (0 unmatched), 105 sent\n"
