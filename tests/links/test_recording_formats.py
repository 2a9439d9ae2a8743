"""Recording formats from plugins: the `groundctl.recordings` registry and how
`read_recording` chooses a format, with formats registered in the test (no package
installed), a fake distribution whose entry point fails, and the built-in formats."""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.ingest import RecordingError, read_recording
from groundctl.mdb.codec import split_packets
from groundctl.recordings import (
    BUILTIN_FORMATS,
    SNIFF_BYTES,
    RecordingFormatWarning,
    by_sniff,
    describe_formats,
    discover,
    recording_formats,
    register_recording_format,
    unregister_recording_format,
)
from groundctl.telemetry.model import Frame

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SESSION = FIXTURES / "cfs" / "cfs-lab-session.jsonl"
APID1232 = FIXTURES / "ccsds" / "apid01232.tlm"  # 16 packets of 24, 36 or 84 bytes
CFS_LAB = REPO / "data" / "missions" / "cfs-lab.toml"
MAGIC = b"REC!"


class LineFormat:
    """A test format: MAGIC, then records separated by newlines; a record starting with
    '?' is unreadable. Every byte but the magic and the separators comes out."""

    NAME = "lines"
    DESCRIPTION = "newline-separated records after a REC! magic"
    SUFFIXES = (".rec", ".rec.txt")

    def __init__(self) -> None:
        self.heads: list[bytes] = []  # what sniff was shown
        self.fail_after: int | None = None  # raise a plugin bug after this many records

    def sniff(self, head: bytes) -> bool:
        self.heads.append(head)
        return head.startswith(MAGIC)

    def read(self, path: Path, node: str, link: str, time_s: float) -> Iterator[tuple[Frame, str]]:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise RecordingError(f"cannot read {path}: {error.strerror}") from None
        offset = len(MAGIC)
        for number, record in enumerate(data[len(MAGIC) :].split(b"\n")):
            if number == self.fail_after:
                raise KeyError("boom")
            problem = f"{path} byte {offset}: starts with '?'" if record[:1] == b"?" else ""
            yield Frame(record, time_s, link, node, "down"), problem
            offset += len(record) + 1


@pytest.fixture
def lines():
    fmt = register_recording_format(LineFormat)
    yield fmt
    unregister_recording_format("lines")


def install_fake_plugin(tmp_path, monkeypatch, target, module_source=None):
    """A real distribution on sys.path with a `groundctl.recordings` entry point."""
    dist = tmp_path / "groundctl_badformat-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: groundctl-badformat\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[groundctl.recordings]\nbadformat = {target}\n")
    if module_source is not None:
        (tmp_path / "badformat_plugin.py").write_text(module_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.delitem(sys.modules, "badformat_plugin", raising=False)


# --- the registry ---------------------------------------------------------------------


def test_a_registered_format_is_listed_after_the_built_in_ones(lines):
    listed = recording_formats()
    assert listed[: len(BUILTIN_FORMATS)] == list(BUILTIN_FORMATS)
    assert [info.name for info in listed[:2]] == ["jsonl", "ccsds"]
    assert ("lines", LineFormat.DESCRIPTION, (".rec", ".rec.txt")) in listed
    assert "lines (.rec, .rec.txt)" in describe_formats()
    assert describe_formats().startswith("jsonl (.jsonl, .json), ccsds, ")
    formats, _ = discover()
    assert formats["lines"] is lines


def test_unregistering_forgets_the_format(tmp_path):
    register_recording_format(LineFormat)
    unregister_recording_format("lines")
    assert "lines" not in discover()[0]
    assert "lines" not in [info.name for info in recording_formats()]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"NAME": ""}, "NAME must be a non-empty string"),
        ({"NAME": "ccsds"}, "NAME 'ccsds' is a built-in format's"),
        ({"SUFFIXES": ".rec"}, "SUFFIXES must be a tuple of file name endings"),
        ({"SUFFIXES": ("rec",)}, "SUFFIXES must be a tuple of file name endings"),
        ({"SUFFIXES": (".rec", ".JSON")}, "suffix '.json' belongs to the built-in JSON-lines"),
        ({"DESCRIPTION": None}, "DESCRIPTION must be a string"),
        ({"read": None}, "read(path, node, link, time_s) is missing"),
        ({"sniff": "yes"}, "sniff must be a method"),
    ],
)
def test_what_is_not_a_recording_format_is_refused(change, message):
    broken = type("Broken", (LineFormat,), change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register_recording_format(broken)
    assert "lines" not in discover()[0]


def test_a_format_without_sniff_is_read_by_suffix_only(tmp_path):
    class NoSniff:
        NAME = "nosniff"
        DESCRIPTION = "by suffix only"
        SUFFIXES = (".ns",)

        def read(self, path, node, link, time_s):
            yield Frame(path.read_bytes(), time_s, link, node, "down"), ""

    register_recording_format(NoSniff())
    try:
        assert by_sniff(b"anything", discover()[0]) is None
        (tmp_path / "a.ns").write_bytes(b"\x00\x01")
        assert [f.raw for f, _ in read_recording(tmp_path / "a.ns", "n", "l", 1.0)] == [b"\x00\x01"]
    finally:
        unregister_recording_format("nosniff")


# --- choosing the format --------------------------------------------------------------


def test_a_file_with_the_formats_suffix_is_read_by_it(lines, tmp_path):
    path = tmp_path / "pass.REC"  # suffixes match in any case
    path.write_bytes(MAGIC + b"alpha\n?bad\n\xc0\xdb")
    records = list(read_recording(path, "ODC-07", "sband", 1234.5))
    assert [(f.raw, f.time_s, f.link, f.node, f.direction) for f, _ in records] == [
        (b"alpha", 1234.5, "sband", "ODC-07", "down"),
        (b"?bad", 1234.5, "sband", "ODC-07", "down"),
        (b"\xc0\xdb", 1234.5, "sband", "ODC-07", "down"),
    ]
    assert [problem for _, problem in records] == ["", f"{path} byte 10: starts with '?'", ""]
    assert lines.heads == []  # chosen by name: no sniffing needed


def test_a_multi_part_suffix_matches(lines, tmp_path):
    path = tmp_path / "pass.rec.txt"
    path.write_bytes(b"no magic here")  # the suffix decides, whatever the content
    assert [f.raw for f, _ in read_recording(path, "n", "l", 0.0)] == [b"agic here"]


def test_a_file_with_another_suffix_is_sniffed_from_its_first_64_bytes(lines, tmp_path):
    body = MAGIC + b"x" * 100 + b"\n" + b"y" * 10
    path = tmp_path / "capture.bin"
    path.write_bytes(body)
    assert [f.raw for f, _ in read_recording(path, "n", "l", 0.0)] == [b"x" * 100, b"y" * 10]
    assert lines.heads == [body[:SNIFF_BYTES]]
    assert SNIFF_BYTES == 64


def test_a_file_no_plugin_claims_is_a_ccsds_packet_file(lines, tmp_path):
    path = tmp_path / "pass.bin"
    path.write_bytes(APID1232.read_bytes())
    frames = [f.raw for f, _ in read_recording(path, "n", "l", 0.0)]
    assert len(frames) == 16 and {len(f) for f in frames} == {24, 36, 84}
    assert b"".join(frames) == APID1232.read_bytes()
    assert lines.heads == [APID1232.read_bytes()[:SNIFF_BYTES]]


def test_json_lines_are_read_by_the_built_in_format_whatever_a_plugin_sniffs(tmp_path):
    class Greedy(LineFormat):
        NAME = "greedy"

        def sniff(self, head: bytes) -> bool:
            self.heads.append(head)
            return True

    greedy = register_recording_format(Greedy)
    try:
        expected = [
            json.loads(line)["hex"] for line in SESSION.read_text().splitlines() if line.strip()
        ]
        untyped = tmp_path / "session.log"  # no .jsonl suffix: a first byte "{"
        untyped.write_bytes(SESSION.read_bytes())
        for path in (SESSION, untyped):
            records = list(read_recording(path, "cfs", "udp", 0.0))
            assert [f.raw.hex() for f, _ in records] == expected
            assert all(problem == "" for _, problem in records)
        assert greedy.heads == []  # never asked
        other = tmp_path / "other.bin"
        other.write_bytes(b"\x00\x01\x02\x03\x04\x05")  # any other file: the sniff decides
        assert [f.raw for f, _ in read_recording(other, "n", "l", 0.0)] == [b"\x04\x05"]
    finally:
        unregister_recording_format("greedy")


def test_a_sniff_that_raises_counts_as_no(tmp_path):
    class Raising(LineFormat):
        NAME = "raising"

        def sniff(self, head: bytes) -> bool:
            raise IndexError("plugin bug")

    register_recording_format(Raising)
    try:
        path = tmp_path / "pass.bin"
        path.write_bytes(APID1232.read_bytes())
        assert len(list(read_recording(path, "n", "l", 0.0))) == 16
    finally:
        unregister_recording_format("raising")


def test_a_plugin_bug_becomes_a_recording_error_naming_the_format(lines, tmp_path):
    lines.fail_after = 1
    path = tmp_path / "pass.rec"
    path.write_bytes(MAGIC + b"a\nb\nc")
    records = read_recording(path, "n", "l", 0.0)
    assert next(records)[0].raw == b"a"  # what was read before the bug still comes out
    with pytest.raises(RecordingError) as caught:
        next(records)
    message = caught.value.message
    assert message.startswith(f"cannot read {path}: the 'lines' recording format (")
    assert "LineFormat) failed: KeyError: 'boom'" in message
    assert "bug in the plugin" in caught.value.hint


def test_a_missing_file_is_a_recording_error_whichever_format_reads_it(lines, tmp_path):
    for name in ("gone.rec", "gone.bin", "gone.jsonl"):
        with pytest.raises(RecordingError, match=f"cannot read {tmp_path / name}: No such file"):
            list(read_recording(tmp_path / name, "n", "l", 0.0))


# --- plugins that fail ----------------------------------------------------------------


def test_a_plugin_that_fails_to_import_is_warned_about_once_and_the_rest_work(
    tmp_path, monkeypatch, lines
):
    install_fake_plugin(
        tmp_path, monkeypatch, "badformat_plugin:Format", "raise ImportError('needs libfoo 2')\n"
    )
    formats, broken = discover()
    assert "lines" in formats
    assert [(b.name, b.target, b.error) for b in broken] == [
        ("badformat", "badformat_plugin:Format", "ImportError: needs libfoo 2")
    ]
    with pytest.warns(RecordingFormatWarning) as caught:
        packets = list(read_recording(APID1232, "n", "l", 0.0))
        session = list(read_recording(SESSION, "n", "l", 0.0))
    assert len(packets) == 16 and len(session) == 568
    messages = {str(w.message) for w in caught}
    assert messages == {
        "recording format plugin 'badformat' (badformat_plugin:Format) is not used: "
        "ImportError: needs libfoo 2; the built-in formats and the other plugins still work"
    }
    assert all(w.category is RecordingFormatWarning for w in caught)


def test_a_broken_plugin_is_reported_once_however_many_files_are_read(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "badformat_plugin:Format", "1 / 0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own setting outside the tests
        for _ in range(3):
            assert len(list(read_recording(APID1232, "n", "l", 0.0))) == 16
    assert [(w.category, w.filename) for w in caught] == [
        (RecordingFormatWarning, "groundctl.recordings")
    ]
    assert "'badformat' (badformat_plugin:Format) is not used: ZeroDivisionError" in str(
        caught[0].message
    )


def test_a_broken_plugin_does_not_stop_a_working_one(tmp_path, monkeypatch, lines):
    install_fake_plugin(tmp_path, monkeypatch, "badformat_plugin:Format", "import nowhere_xyz\n")
    path = tmp_path / "pass.rec"
    path.write_bytes(MAGIC + b"a\nb")
    with pytest.warns(RecordingFormatWarning, match="'badformat'.*ModuleNotFoundError"):
        assert [f.raw for f, _ in read_recording(path, "n", "l", 0.0)] == [b"a", b"b"]


def test_an_entry_point_that_is_not_a_format_is_reported(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "json:dumps")
    _, broken = discover()
    assert [b.error for b in broken] == ["not a recording format: NAME must be a non-empty string"]
    with pytest.warns(RecordingFormatWarning, match=r"'badformat' \(json:dumps\) is not used"):
        names = [info.name for info in recording_formats()]
    assert names[:2] == ["jsonl", "ccsds"]


def test_a_working_setup_warns_about_nothing(lines):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordingFormatWarning)
        assert len(list(read_recording(APID1232, "n", "l", 0.0))) == 16


# --- end to end: groundctl db import --------------------------------------------------


def test_db_import_archives_a_plugin_formats_frames(lines, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GROUNDCTL_CONFIG", raising=False)
    first, second = (chunk.data for chunk in split_packets(APID1232.read_bytes())[:2])
    assert b"\n" not in first + second
    path = tmp_path / "pass.rec"
    path.write_bytes(MAGIC + first + b"\n?junk\n" + second)
    db = tmp_path / "a.db"
    result = CliRunner().invoke(
        cli,
        ["--archive", str(db), "db", "import", str(path), "--mission", str(CFS_LAB), "--json"],
        obj={},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 2 and report["malformed"] == 1
    offset = len(MAGIC) + len(first) + 1
    assert report["problems"] == [f"{path} byte {offset}: starts with '?'"]
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT status, raw FROM frames ORDER BY id").fetchall()
    assert rows == [("unknown", first), ("malformed", b"?junk"), ("unknown", second)]
