"""The replay link on real recordings: the cFS lab session, a CCSDS packet file, an archive."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from groundctl.archive.store import open_archive
from groundctl.ingest import ingest
from groundctl.links.base import LinkError, LinkState
from groundctl.links.replay import ReplayLink
from groundctl.mdb.loader import load_mission

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SESSION = FIXTURES / "cfs" / "cfs-lab-session.jsonl"
CYGNSS = FIXTURES / "ccsds" / "CYGNSS_F7_L0_2022_086_10_15_V01_F__first101pkts.tlm"
CFS_LAB = REPO / "data" / "missions" / "cfs-lab.toml"

RECORDS = [json.loads(line) for line in SESSION.read_text().splitlines() if line.strip()]
DOWN = [(r["t"], bytes.fromhex(r["hex"])) for r in RECORDS if r["dir"] == "down"]
UPLINK = sum(r["dir"] == "up" for r in RECORDS)
SPAN_S = DOWN[-1][0] - DOWN[0][0]


def replay(options, node="cfs"):
    return ReplayLink("replay", node, options)


def first_at(time_s: float) -> int:
    """Index of the first downlink record received at or after time_s."""
    return next(i for i, (t, _) in enumerate(DOWN) if t >= time_s)


def ccsds_packets(data: bytes) -> list[bytes]:
    """Space packets cut by their length field (bytes 4-5: length - 7)."""
    packets, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">H", data, offset + 4)
        packets.append(data[offset : offset + length + 7])
        offset += length + 7
    return packets


def utc(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Consumer:
    """Iterates a link's frames in a task; `arrival(n)` waits until n frames came."""

    def __init__(self, link: ReplayLink) -> None:
        self.link = link
        self.frames = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        async for frame in self.link.frames():
            self.frames.append(frame)
            self.changed.set()

    async def arrival(self, count: int) -> None:
        async def wait():
            while len(self.frames) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), 5)

    async def idle_ticks(self) -> None:
        """Let the event loop run many times without any real waiting."""
        for _ in range(200):
            await asyncio.sleep(0)

    @property
    def raws(self) -> list[bytes]:
        return [frame.raw for frame in self.frames]


# --- a cFS session ----------------------------------------------------------------------


def test_session_replays_every_downlink_datagram_with_its_recorded_time():
    async def main():
        link = replay({"file": str(SESSION), "speed": 0})
        states = []
        link.on_state_change(lambda _, old, new: states.append(new.value))
        await link.open()
        frames = [frame async for frame in link.frames()]
        return link, frames, states

    link, frames, states = asyncio.run(main())
    assert [(f.time_s, f.raw) for f in frames] == DOWN
    assert {(f.link, f.node, f.direction) for f in frames} == {("replay", "cfs", "down")}
    assert link.skipped_uplink == UPLINK == 8
    assert link.counters.frames_in == len(DOWN) == 560
    assert link.counters.bytes_in == sum(len(raw) for _, raw in DOWN)
    assert link.counters.errors == 0
    assert link.position_s == link.counters.last_receive_s == link.clock() == DOWN[-1][0]
    # The end of the recording: the iterator ended and the state says so.
    assert link.finished and link.state is LinkState.DOWN
    assert states == ["up", "down"]


def test_speed_1000_takes_the_recorded_span_over_1000_and_speed_0_is_faster():
    async def timed(speed):
        link = replay({"file": str(SESSION), "speed": speed})
        await link.open()
        loop = asyncio.get_running_loop()
        start = loop.time()
        raws = [frame.raw async for frame in link.frames()]
        return loop.time() - start, raws

    async def main():
        return await timed(1000), await timed(0)

    (paced_s, paced), (fast_s, fast) = asyncio.run(main())
    assert paced == fast == [raw for _, raw in DOWN]
    assert paced_s >= SPAN_S / 1000  # never early
    assert paced_s < SPAN_S / 1000 + 2.0
    assert fast_s < paced_s


def test_an_unreadable_line_is_delivered_with_its_bytes_and_counted(tmp_path):
    lines = SESSION.read_bytes().splitlines()
    cut = next(i for i, r in enumerate(RECORDS) if i > 30 and r["dir"] == "down")
    lines[0] = b"this is not a recorded datagram"  # was the first uplink record
    lines[cut] = lines[cut][: len(lines[cut]) // 2]  # a line cut in half
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    # Oracle: an unreadable record takes the time of the record before it (of the next
    # one when it is the first).
    expected = [(RECORDS[1]["t"], lines[0])]
    for i, record in enumerate(RECORDS[1:], 1):
        if i == cut:
            expected.append((RECORDS[i - 1]["t"], lines[cut]))
        elif record["dir"] == "down":
            expected.append((record["t"], bytes.fromhex(record["hex"])))

    async def main():
        link = replay({"file": str(path), "speed": 0})
        await link.open()
        return link, [frame async for frame in link.frames()]

    link, frames = asyncio.run(main())
    assert [(f.time_s, f.raw) for f in frames] == expected
    assert link.counters.errors == 2
    assert link.counters.frames_in == len(DOWN) + 1
    assert f"damaged.jsonl:{cut + 1}:" in link.last_problem
    assert link.skipped_uplink == UPLINK - 1


def test_a_ccsds_packet_file_replays_its_101_packets_at_once():
    async def main():
        link = replay({"file": str(CYGNSS)}, node="cygnss")  # speed 1: no gaps, no waits
        before = time.time()
        await link.open()
        frames = await asyncio.wait_for(_all(link), 5)
        return link, frames, before

    async def _all(link):
        return [frame async for frame in link.frames()]

    link, frames, before = asyncio.run(main())
    packets = ccsds_packets(CYGNSS.read_bytes())
    assert len(packets) == 101
    assert [f.raw for f in frames] == packets
    # A packet file records no receive times: every packet has the time the replay opened.
    assert len({f.time_s for f in frames}) == 1 and before <= frames[0].time_s <= time.time()
    assert link.counters.errors == 0 and link.skipped_uplink == 0
    assert {f.node for f in frames} == {"cygnss"}


# --- controls ---------------------------------------------------------------------------


def test_pause_holds_frames_step_releases_one_and_resume_goes_on():
    async def main():
        link = replay({"file": str(SESSION), "speed": 0})
        await link.open()
        link.pause()
        assert link.paused
        assert link.clock() == RECORDS[0]["t"]  # recorded now: the recording's start
        consumer = Consumer(link)
        await consumer.idle_ticks()
        assert consumer.frames == []
        link.step()
        await consumer.arrival(1)
        await consumer.idle_ticks()
        assert len(consumer.frames) == 1 and link.paused
        assert link.position_s == link.clock() == DOWN[0][0]
        link.step()
        link.step()
        await consumer.arrival(3)
        await consumer.idle_ticks()
        assert len(consumer.frames) == 3
        link.resume()
        assert not link.paused
        await asyncio.wait_for(consumer.task, 5)
        return consumer

    consumer = asyncio.run(main())
    assert consumer.raws == [raw for _, raw in DOWN]


def test_step_while_running_pauses_after_one_frame():
    async def main():
        link = replay({"file": str(SESSION), "speed": 0.1})  # the first burst, then 5 s
        await link.open()
        consumer = Consumer(link)
        await consumer.arrival(1)
        link.step()
        assert link.paused
        count = len(consumer.frames)
        await consumer.arrival(count + 1)
        await consumer.idle_ticks()
        assert len(consumer.frames) == count + 1
        await link.close()
        await asyncio.wait_for(consumer.task, 5)
        return consumer

    consumer = asyncio.run(main())
    assert consumer.raws == [raw for _, raw in DOWN[: len(consumer.frames)]]


def test_seek_goes_to_the_first_frame_at_or_after_a_time():
    gap = next(i for i in range(300, len(DOWN)) if DOWN[i][0] - DOWN[i - 1][0] > 0.1)

    async def main():
        link = replay({"file": str(SESSION), "speed": 0})
        states = []
        link.on_state_change(lambda _, old, new: states.append(new.value))
        await link.open()
        link.pause()
        consumer = Consumer(link)
        seen = []
        for target in (DOWN[300][0], DOWN[gap - 1][0] + 0.01, DOWN[10][0], DOWN[0][0] - 60):
            link.seek(target)
            link.step()
            await consumer.arrival(len(seen) + 1)
            seen.append((target, consumer.frames[-1], link.position_s))
        assert link.paused  # seeking does not resume
        link.seek(DOWN[-1][0] + 1)  # past the end: the replay ends
        link.resume()
        await asyncio.wait_for(consumer.task, 5)
        ended = (link.state, link.finished)
        link.seek(DOWN[500][0])  # and can start again
        again = Consumer(link)
        await asyncio.wait_for(again.task, 5)
        await link.close()
        return seen, ended, again, states

    seen, ended, again, states = asyncio.run(main())
    for target, frame, position in seen:
        t, raw = DOWN[first_at(target)]
        assert (frame.time_s, frame.raw, position) == (t, raw, t)
    assert [first_at(target) for target, _, _ in seen] == [300, gap, 10, 0]
    assert ended == (LinkState.DOWN, True)
    assert again.raws == [raw for _, raw in DOWN[first_at(DOWN[500][0]) :]]
    assert states == ["up", "down", "up", "down", "closed"]


def test_set_speed_takes_effect_during_a_wait():
    burst = first_at(DOWN[0][0] + 0.25)  # the first frames, before a 0.5 s recorded gap

    async def main():
        link = replay({"file": str(SESSION), "speed": 0.1})  # the gap would take 5 s
        await link.open()
        consumer = Consumer(link)
        await consumer.arrival(burst)
        await consumer.idle_ticks()
        held = len(consumer.frames)
        # Recorded now is in the gap, between the frame delivered and the one held.
        assert DOWN[burst - 1][0] <= link.clock() <= DOWN[burst][0]
        with pytest.raises(LinkError) as refused:
            link.set_speed(5000)
        assert link.speed == 0.1
        link.set_speed(0)
        await asyncio.wait_for(consumer.task, 5)
        return held, refused.value, consumer

    held, refused, consumer = asyncio.run(main())
    assert held == burst
    assert "option 'speed' must be 0 (as fast as possible) or from 0.1 to 1000" in str(refused)
    assert consumer.raws == [raw for _, raw in DOWN]


def test_loop_starts_again_at_the_end():
    async def main():
        link = replay({"file": str(SESSION), "speed": 0, "loop": True})
        await link.open()
        got = []
        async for frame in link.frames():
            got.append(frame)
            if len(got) == 2 * len(DOWN) + 5:
                break
        state = link.state
        await link.close()
        return link, got, state

    link, got, state = asyncio.run(main())
    expected = DOWN * 2 + DOWN[:5]
    assert [(f.time_s, f.raw) for f in got] == expected
    assert link.laps == 2 and not link.finished
    assert state is LinkState.UP and link.state is LinkState.CLOSED


def test_close_ends_a_waiting_replay():
    async def main():
        link = replay({"file": str(SESSION)})
        await link.open()
        link.pause()
        consumer = Consumer(link)
        await consumer.idle_ticks()
        await link.close()
        await asyncio.wait_for(consumer.task, 5)
        with pytest.raises(LinkError) as closed:
            async for _ in link.frames():
                pass
        return link, consumer, closed.value

    link, consumer, closed = asyncio.run(main())
    assert consumer.frames == [] and link.state is LinkState.CLOSED
    assert str(closed) == "link replay is closed: open it first"


def test_send_is_refused():
    async def main():
        link = replay({"file": str(SESSION)})
        await link.open()
        with pytest.raises(LinkError) as refused:
            await link.send(bytes.fromhex(RECORDS[0]["hex"]))
        with pytest.raises(LinkError):
            await link.send(bytes.fromhex(RECORDS[0]["hex"]), node="cfs")
        await link.close()
        return link, refused.value

    link, refused = asyncio.run(main())
    assert str(refused) == "link replay is a replay: commanding is disabled"
    assert link.counters.frames_out == 0


# --- an archive -------------------------------------------------------------------------

WINDOW = (iso(DOWN[100][0]), iso(DOWN[100][0] + 30))
PACKET_FILE_TIME_S = DOWN[250][0]  # the packet file's frames tie with a session frame


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory) -> Path:
    """A real archive: the session as node cfs, the packet file as node cygnss."""
    path = tmp_path_factory.mktemp("replay") / "archive.db"
    mission = load_mission(CFS_LAB)
    ingest(SESSION, path, mission, node="cfs", import_time_s=time.time())
    ingest(CYGNSS, path, mission, node="cygnss", import_time_s=PACKET_FILE_TIME_S)
    return path


def archived(path: Path, start_s: float, end_s: float, node: str | None = None):
    with open_archive(path) as archive:
        return [(f.time_s, f.raw) for f in archive.downlink_frames(start_s, end_s, node=node)]


def replay_all(options):
    async def main():
        link = replay(options, node="ground-test")
        await link.open()
        return link, [frame async for frame in link.frames()]

    return asyncio.run(main())


def test_archive_window_replays_the_frames_table(archive_path, monkeypatch):
    monkeypatch.setattr(ReplayLink, "CHUNK_FRAMES", 7)  # many chunks, ties across them
    start, end = WINDOW
    start_s, end_s = utc(start), utc(end)
    options = {"archive": str(archive_path), "start": start, "end": end, "speed": 0}

    link, cfs = replay_all({**options, "from_node": "cfs"})
    assert [(f.time_s, f.raw) for f in cfs] == archived(archive_path, start_s, end_s, "cfs")
    # ... which are the session's datagrams received in the window (start in, end out)
    assert [(f.time_s, f.raw) for f in cfs] == [(t, r) for t, r in DOWN if start_s <= t < end_s]
    # each frame comes from the node that sent it, whatever the link's own node
    assert {(f.link, f.node) for f in cfs} == {("replay", "cfs")}
    assert link.finished and link.counters.frames_in == len(cfs)

    _, both = replay_all(options)
    assert [(f.time_s, f.raw) for f in both] == archived(archive_path, start_s, end_s)
    assert len(both) == len(cfs) + 101
    assert {f.node for f in both} == {"cfs", "cygnss"}


def test_archive_without_a_window_replays_all_its_downlink(archive_path, monkeypatch):
    monkeypatch.setattr(ReplayLink, "CHUNK_FRAMES", 50)
    _, frames = replay_all({"archive": str(archive_path), "speed": 0})
    assert len(frames) == len(DOWN) + 101
    assert [(f.time_s, f.raw) for f in frames] == archived(archive_path, 0, 1e12)


def test_archive_seek_and_pacing(archive_path):
    async def main():
        link = replay({"archive": str(archive_path), "from_node": "cfs", "speed": 1000})
        await link.open()
        link.seek(DOWN[400][0])
        loop = asyncio.get_running_loop()
        start = loop.time()
        frames = [frame async for frame in link.frames()]
        return loop.time() - start, frames

    elapsed, frames = asyncio.run(main())
    assert [(f.time_s, f.raw) for f in frames] == DOWN[first_at(DOWN[400][0]) :]
    assert elapsed >= (DOWN[-1][0] - DOWN[400][0]) / 1000


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "link replay: give option 'file' (a recording) or 'archive' (an archive path)"),
        ({"file": "a.jsonl", "archive": "a.db"}, "options 'file' and 'archive' exclude each other"),
        ({"file": "a.jsonl", "rate": 2}, "link replay: unknown option 'rate'"),
        (
            {"file": "a.jsonl", "speed": 0.05},
            "option 'speed' must be 0 (as fast as possible) or from 0.1 to 1000, found 0.05",
        ),
        ({"file": "a.jsonl", "speed": 1001}, "from 0.1 to 1000, found 1001.0"),
        ({"file": "a.jsonl", "speed": -1}, "from 0.1 to 1000, found -1.0"),
        ({"file": "a.jsonl", "speed": "fast"}, "option 'speed' must be a float, found 'fast'"),
        ({"file": "a.jsonl", "loop": "yes"}, "option 'loop' must be a bool, found 'yes'"),
        (
            {"file": "a.jsonl", "start": "2026-11-24T03:00Z"},
            "link replay: option 'start' applies to archive replays only",
        ),
        (
            {"file": "a.jsonl", "from_node": "cfs"},
            "option 'from_node' applies to archive replays only",
        ),
        (
            {"archive": "a.db", "start": "yesterday"},
            "link replay: option 'start' must be an ISO 8601 UTC time, found 'yesterday'",
        ),
        (
            {"archive": "a.db", "end": "2026-13-01T00:00Z"},
            "option 'end' must be an ISO 8601 UTC time, found '2026-13-01T00:00Z'",
        ),
        (
            {"archive": "a.db", "start": "2026-11-24T04:00Z", "end": "2026-11-24T03:00Z"},
            "option 'end' (2026-11-24T03:00Z) must be after 'start' (2026-11-24T04:00Z)",
        ),
    ],
)
def test_bad_options_are_refused_with_clear_messages(options, message):
    with pytest.raises(LinkError) as refused:
        replay(options)
    assert message in str(refused.value)


def open_error(options) -> tuple[str, ReplayLink]:
    async def main():
        link = replay(options)
        with pytest.raises(LinkError) as refused:
            await link.open()
        return str(refused.value), link

    return asyncio.run(main())


def test_a_missing_file_fails_at_open(tmp_path):
    message, link = open_error({"file": str(tmp_path / "pass.jsonl")})
    assert message.startswith(
        f"link replay: option 'file': cannot read {tmp_path / 'pass.jsonl'}: No such file"
    )
    assert link.state is LinkState.DOWN


def test_a_missing_archive_fails_at_open_and_is_not_created(tmp_path):
    path = tmp_path / "none.db"
    message, _ = open_error({"archive": str(path)})
    assert message.startswith(f"link replay: option 'archive': no such archive {path}")
    assert not path.exists()


def test_a_file_that_is_not_an_archive_is_refused(tmp_path):
    message, _ = open_error({"archive": str(SESSION)})
    assert message.startswith(f"link replay: option 'archive': {SESSION} is not a SQLite database")


def test_an_archive_given_as_a_recording_says_which_option_to_use(archive_path):
    message, _ = open_error({"file": str(archive_path)})
    assert f"{archive_path} is a SQLite archive, not a recording" in message
    assert f'hint: replay it with archive = "{archive_path}"' in message
