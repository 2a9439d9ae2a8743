"""KISS capture files as a recording format: the real capture read through groundctl's
read_recording, made-up frames of every kind compared with what the live link delivers
for the same bytes, bad input, discovery and `groundctl db import` end to end."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from groundctl_kiss import KissLink, KissRecording
from groundctl_kiss.ax25 import Address, build_ui_frame
from groundctl_kiss.kiss import PROBLEMS

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.ingest import RecordingError, read_recording
from groundctl.recordings import discover, recording_formats
from groundctl.telemetry.model import Frame

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURE = FIXTURES / "kiss" / "example.kss"
GROUNDCTL = Path(__file__).parents[3]
CFS_LAB = GROUNDCTL / "data" / "missions" / "cfs-lab.toml"
FEND = b"\xc0"


def oracle(stream: bytes) -> list[tuple[int, bytes]]:
    """(offset of the frame's first byte, its payload after the command byte) for each
    KISS frame, written from the KISS description alone and differently from the code
    under test: split on FEND, drop empty pieces, undo FESC TFEND -> FEND and FESC TFESC
    -> FESC in one pass, drop the command byte."""
    frames, offset = [], 0
    for piece in stream.split(FEND):
        if piece:
            unescaped = re.sub(
                rb"\xdb([\xdc\xdd])",
                lambda m: b"\xc0" if m.group(1) == b"\xdc" else b"\xdb",
                piece,
            )
            frames.append((offset, unescaped[1:]))
        offset += len(piece) + 1
    return frames


def kiss(frame: bytes) -> bytes:
    """A KISS frame with the escaping written out (FESC first, then FEND)."""
    return FEND + frame.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + FEND


def records(path: Path, time_s: float = 1_790_000_000.0) -> list[tuple[Frame, str]]:
    return list(read_recording(path, "se01", "kiss-file", time_s))


# --- the real capture -----------------------------------------------------------------


def test_the_capture_is_what_its_readme_says() -> None:
    raw = CAPTURE.read_bytes()
    escapes = re.findall(rb"\xdb[\xdc\xdd]", raw)
    assert len(escapes) == 126 == raw.count(b"\xdb")  # every FESC starts an escape
    frames = oracle(raw)
    assert len(frames) == 83
    assert sorted(Counter(len(payload) for _, payload in frames).items()) == [
        (6, 1),
        (9, 1),
        (81, 81),
    ]
    assert {raw[offset] for offset, _ in frames} == {0x00}  # data frames, TNC port 0


def test_read_recording_gives_every_frame_of_the_capture_unescaped() -> None:
    expected = oracle(CAPTURE.read_bytes())
    got = records(CAPTURE, 1_790_000_123.5)
    assert [frame.raw for frame, _ in got] == [payload for _, payload in expected]
    assert sorted(Counter(len(frame.raw) for frame, _ in got).values()) == [1, 1, 81]
    assert {len(frame.raw) for frame, _ in got} == {81, 9, 6}
    assert b"".join(frame.raw for frame, _ in got).count(b"\xc0") > 0  # literal FENDs came out
    # No receive times in a KISS file: every frame gets the time it is read with.
    assert {(f.time_s, f.node, f.link, f.direction) for f, _ in got} == {
        (1_790_000_123.5, "se01", "kiss-file", "down")
    }
    # Unshifted ASCII callsigns: not AX.25, so each payload comes out whole with the
    # problem the live link counts, naming the file and where the frame starts.
    for (_, problem), (offset, _) in zip(got, expected, strict=True):
        assert problem.startswith(f"{CAPTURE} byte {offset}: not AX.25 UI: ")


def test_the_format_is_found_by_suffix_and_by_content(tmp_path: Path) -> None:
    payloads = [payload for _, payload in oracle(CAPTURE.read_bytes())]
    for name in ("pass.kiss", "PASS.KSS", "capture.bin", "noext"):
        copy = tmp_path / name
        copy.write_bytes(CAPTURE.read_bytes())
        assert [frame.raw for frame, _ in records(copy)] == payloads, name
    assert KissRecording().sniff(CAPTURE.read_bytes()[:64])
    assert not KissRecording().sniff(b"\x08\x00\xc0\x00")  # a space packet
    assert not KissRecording().sniff(b"")


# --- the same as the live link --------------------------------------------------------


def mixed_stream(packet: bytes) -> bytes:
    """One KISS frame of every kind the live link tells apart, then a cut-off one."""
    ui = build_ui_frame(Address.parse("GND1"), Address.parse("ODC07-1"), packet)
    return b"".join(
        [
            b"junk",  # before the first FEND: a frame like any other (command 'j')
            kiss(b"\x00" + ui),  # good: the information field
            kiss(b"\x00" + ui[:9]),  # a cut address field: not AX.25 UI
            kiss(b"\x00" + ui[:15] + b"\xcc" + ui[16:]),  # PID 0xCC
            kiss(b"\x00" + ui[:16]),  # no information field
            kiss(b"\x20" + ui),  # TNC port 2
            kiss(b"\x01\x30"),  # TXDELAY command, not data
            kiss(b"\x00"),  # a command byte alone
            kiss(b"\x00" + ui[:14])[:-1] + b"\xdb\x41" + kiss(packet)[1:],  # FESC then 0x41
            FEND + FEND,  # empty pieces: nothing
            FEND + b"\x00" + ui[:5],  # the stream ends inside a frame
        ]
    )


def test_a_file_gives_what_the_live_link_delivers_for_the_same_bytes(tmp_path: Path) -> None:
    packet = bytes.fromhex("0800c0000005") + b"\xc0\xdb\x01\x02"  # FEND, FESC inside
    stream = mixed_stream(packet)
    path = tmp_path / "mixed.kss"
    path.write_bytes(stream)
    got = records(path)

    async def live() -> tuple[list[bytes], KissLink]:
        served: list[bool] = []

        async def tnc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not served:  # the reconnection after the hang-up gets nothing
                served.append(True)
                writer.write(stream)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(tnc, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = KissLink(
            "tnc", "odc07", {"address": f"127.0.0.1:{port}", "mycall": "GND1", "destination": "X"}
        )
        await link.open()
        frames: list[bytes] = []
        async for frame in link.frames():
            frames.append(frame.raw)
            if len(frames) == len(got):
                break
        await link.close()
        server.close()
        return frames, link

    delivered, link = asyncio.run(asyncio.wait_for(live(), 10))
    assert [frame.raw for frame, _ in got] == delivered
    kinds = Counter(problem.split(": ")[1] for _, problem in got if problem)
    assert kinds == link.problems
    assert sum(kinds.values()) == link.counters.errors == 9
    assert set(kinds) == set(PROBLEMS)  # every kind the link tells apart was exercised
    ui = build_ui_frame(Address.parse("GND1"), Address.parse("ODC07-1"), packet)
    assert delivered[1] == packet and got[1][1] == ""  # the AX.25 UI frame's info field
    assert delivered[0] == b"junk" and delivered[-1] == b"\x00" + ui[:5]


def test_problems_name_the_file_and_the_byte_offset_and_keep_every_byte(tmp_path: Path) -> None:
    good = oracle(CAPTURE.read_bytes())[0][1]
    bad = b"\x00ON01SE\xdb\x41rest"
    stream = kiss(b"\x00" + good) + FEND + bad + FEND + kiss(b"\x00" + good) + FEND + b"\x00tail"
    path = tmp_path / "damaged.kss"
    path.write_bytes(stream)
    got = records(path)
    assert [frame.raw for frame, _ in got] == [good, bad, good, b"\x00tail"]
    bad_at = stream.index(bad)
    fesc_at = stream.index(b"\xdb\x41")
    tail_at = stream.rindex(b"\x00tail")
    problems = [problem for _, problem in got]
    assert problems[1] == (
        f"{path} byte {bad_at}: bad escape: FESC (0xdb) at byte {fesc_at} is followed by 0x41, "
        "expected TFEND (0xdc) or TFESC (0xdd); the frame is kept as received, still escaped"
    )
    assert problems[3] == (
        f"{path} byte {tail_at}: cut off: the file ends inside a KISS frame "
        "(5 bytes after the last FEND, no closing FEND)"
    )
    assert problems[0].startswith(f"{path} byte 1: not AX.25 UI")


def test_a_fesc_just_before_the_closing_fend_is_a_bad_escape(tmp_path: Path) -> None:
    path = tmp_path / "fesc.kss"
    path.write_bytes(b"\xc0\x00abc\xdb\xc0")
    [(frame, problem)] = records(path)
    assert frame.raw == b"\x00abc\xdb"
    assert problem.startswith(f"{path} byte 1: bad escape: FESC (0xdb) at byte 5 is followed ")
    assert "by the closing FEND" in problem


def test_an_empty_file_has_no_frames_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.kss").write_bytes(b"")
    assert records(tmp_path / "empty.kss") == []
    with pytest.raises(RecordingError, match=r"cannot read .*gone\.kss: No such file"):
        records(tmp_path / "gone.kss")


# --- discovery and import ---------------------------------------------------------------


def test_the_installed_plugin_registers_the_recording_format() -> None:
    # Needs `pip install -e plugins/groundctl-kiss` (make test does it).
    points = importlib.metadata.distribution("groundctl-kiss").entry_points
    assert ("groundctl.recordings", "kiss", "groundctl_kiss:KissRecording") in [
        (p.group, p.name, p.value) for p in points
    ]
    formats, broken = discover()
    assert isinstance(formats["kiss"], KissRecording)
    assert "kiss" not in {b.name for b in broken}
    assert ("kiss", KissRecording.DESCRIPTION, (".kss", ".kiss")) in recording_formats()


def test_db_import_archives_every_frame_of_the_capture(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GROUNDCTL_CONFIG", raising=False)
    monkeypatch.delenv("GROUNDCTL_ARCHIVE", raising=False)
    db = tmp_path / "kiss.db"
    args = ["--archive", str(db), "db", "import", str(CAPTURE), "--mission", str(CFS_LAB)]
    result = CliRunner().invoke(cli, [*args, "--node", "se01", "--link", "uhf", "--json"], obj={})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["malformed"] == 83 and report["frames"] == 0
    assert len(report["problems"]) == 83
    assert all(": not AX.25 UI: " in problem for problem in report["problems"])
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT raw, status, node, link, direction FROM frames ORDER BY id"
        ).fetchall()
    assert [raw for raw, *_ in rows] == [payload for _, payload in oracle(CAPTURE.read_bytes())]
    assert {tuple(rest) for _, *rest in rows} == {("malformed", "se01", "uhf", "down")}
