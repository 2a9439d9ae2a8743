"""`groundctl db export` of a flown pass or a range, as CCSDS, CSV and SQLite.

The source is a real archive written by the simulator in a subprocess (two nodes, an
hour, faults that raise alerts and corrupt packets), with commands added through the
archive's own command store. The oracles are outside the code under test: plain
`sqlite3` queries on the source, `spacepackets` to split the packet files, the `csv`
module to read the CSV back, and the other groundctl commands run on the export.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from spacepackets.ccsds.spacepacket import SpacePacketHeader

from groundctl.archive.commands import Actor, CommandStore
from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)

START = "2026-11-29T00:00:00Z"
FAULTS = (
    "ODC-07 BATTERY_UNDERVOLTAGE at 420 for 900",  # red alert and stale alerts, pass 1
    "ODC-01 PACKET_CORRUPTION at 600 for 120",  # malformed and unknown frames, pass 2
)
TABLES = (
    "flown_passes",
    "frames",
    "samples",
    "parameter_packets",
    "events",
    "alerts",
    "alert_actions",
    "commands",
    "command_stages",
)


def simulate(folder: Path) -> Path:
    """An archive written by `groundctl sim` (a subprocess, in an empty folder)."""
    path = folder / "source.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUNDCTL_")}
    args = ["--speed", "0", "--duration", "3600", "--start", START, "--nodes", "ODC-07,ODC-01"]
    for fault in FAULTS:
        args += ["--fault", fault]
    subprocess.run(
        [sys.executable, "-m", "groundctl", "--archive", str(path), "sim", *args],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path


def add_commands(path: Path) -> None:
    """Commands sent in passes 1 and 2 and one never sent, with their stages and audit
    rows, through the archive's command store; an uplink frame for the one in pass 2."""
    store = CommandStore(path)
    alice = Actor("alice", "operator")
    try:
        for pass_id, node, offset in (
            (1, "ODC-07", 30.0),
            (2, "ODC-01", 40.0),
            (None, "ODC-07", 0),
        ):
            aos = query(path, "SELECT aos FROM flown_passes WHERE id = ?", pass_id or 1)[0][0]
            record = store.create(
                time_s=aos - 600,
                actor=alice,
                node=node,
                mission="odc-node",
                command="NOOP",
                arguments={},
                text=f"{node} NOOP",
                hazardous=False,
                confirmed=False,
                source="cli",
                release="now",
                release_at=None,
            )
            if pass_id is None:
                continue
            store.stage(
                record.id,
                "sent",
                aos + offset,
                "8 bytes",
                actor=alice,
                link="sim",
                raw=b"\x19\x00\xc0\x00\x00\x01\x00\x00",
                pass_id=pass_id,
            )
            store.stage(record.id, "completed", aos + offset + 2, "ok", actor=alice)
    finally:
        store.close()
    conn = sqlite3.connect(path)
    with conn:
        aos = conn.execute("SELECT aos FROM flown_passes WHERE id = 2").fetchone()[0]
        conn.execute(
            "INSERT INTO frames (time, node, link, direction, length, raw, status, packet_time, "
            "pass_id) VALUES (?, 'ODC-01', 'sim', 'up', 8, ?, 'sent', ?, 2)",
            (aos + 40.0, b"\x19\x00\xc0\x00\x00\x01\x00\x00", aos + 40.0),
        )
    conn.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = simulate(tmp_path_factory.mktemp("export-source"))
    add_commands(path)
    return path


def query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def run(archive: Path, *args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["--archive", str(archive), *args], obj={})


def usage_error(result, *words: str) -> None:
    """One clear message, exit status 2, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def split(stream: bytes) -> list[bytes]:
    """Concatenated space packets split by their headers' length field (spacepackets)."""
    packets = []
    offset = 0
    while offset < len(stream):
        header = SpacePacketHeader.unpack(stream[offset:])
        packets.append(stream[offset : offset + header.packet_len])
        offset += header.packet_len
    assert offset == len(stream)
    return packets


def test_the_source_has_what_the_export_must_carry(source):
    """The fixture itself: passes with alerts, undecodable frames, commands and audit."""
    assert query(source, "SELECT count(*) FROM flown_passes")[0][0] >= 3
    assert query(source, "SELECT count(*) FROM alerts WHERE pass_id = 1")[0][0] > 0
    assert query(source, "SELECT count(*) FROM alert_actions")[0][0] > 0
    bad = query(source, "SELECT count(*) FROM frames WHERE pass_id = 2 AND status = 'malformed'")
    assert bad[0][0] > 0
    assert query(source, "SELECT count(*) FROM commands WHERE pass_id IS NOT NULL")[0][0] == 2
    assert query(source, "SELECT count(*) FROM audit")[0][0] > 0


# --- sqlite -----------------------------------------------------------------------------

# Each table's rows of pass :p in the source, found independently of groundctl's code.
PASS_ROWS = {
    "flown_passes": "SELECT * FROM flown_passes WHERE id = :p",
    "frames": "SELECT * FROM frames WHERE pass_id = :p ORDER BY id",
    "samples": "SELECT s.* FROM samples AS s JOIN frames AS f ON f.id = s.frame_id "
    "WHERE f.pass_id = :p ORDER BY s.frame_id, s.parameter",
    "parameter_packets": "SELECT * FROM parameter_packets WHERE node = "
    "(SELECT node FROM flown_passes WHERE id = :p) ORDER BY node, parameter, packet",
    "events": "SELECT * FROM events WHERE pass_id = :p ORDER BY id",
    "alerts": "SELECT * FROM alerts WHERE pass_id = :p ORDER BY id",
    "alert_actions": "SELECT * FROM alert_actions WHERE alert_id IN "
    "(SELECT id FROM alerts WHERE pass_id = :p) ORDER BY id",
    "commands": "SELECT * FROM commands WHERE pass_id = :p ORDER BY id",
    "command_stages": "SELECT * FROM command_stages WHERE command_id IN "
    "(SELECT id FROM commands WHERE pass_id = :p) ORDER BY id",
}
EMPTY = {(2, "alerts"), (2, "alert_actions")}
ALL_ROWS = {
    "flown_passes": "SELECT * FROM flown_passes",
    "frames": "SELECT * FROM frames ORDER BY id",
    "samples": "SELECT * FROM samples ORDER BY frame_id, parameter",
    "parameter_packets": "SELECT * FROM parameter_packets ORDER BY node, parameter, packet",
    "events": "SELECT * FROM events ORDER BY id",
    "alerts": "SELECT * FROM alerts ORDER BY id",
    "alert_actions": "SELECT * FROM alert_actions ORDER BY id",
    "commands": "SELECT * FROM commands ORDER BY id",
    "command_stages": "SELECT * FROM command_stages ORDER BY id",
}


@pytest.mark.parametrize("pass_id", [1, 2])
def test_sqlite_export_of_a_pass_holds_exactly_its_rows(source, tmp_path, pass_id):
    out = tmp_path / f"pass-{pass_id}.db"
    result = run(source, "db", "export", "--pass", str(pass_id), str(out))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / f"pass-{pass_id}.db.part").exists()
    conn = sqlite3.connect(source)
    conn.execute("ATTACH DATABASE ? AS export", (str(out),))
    for table in TABLES:
        expected = conn.execute(PASS_ROWS[table], {"p": pass_id}).fetchall()
        got = conn.execute(ALL_ROWS[table].replace(" FROM ", " FROM export.", 1)).fetchall()
        assert got == expected, table
        # Pass 2 (ODC-01) raised no alert; everything else has rows to compare.
        assert expected or (pass_id, table) in EMPTY, f"{table} is empty"
    directions = conn.execute("SELECT DISTINCT direction FROM export.frames").fetchall()
    assert sorted(directions) == ([("down",), ("up",)] if pass_id == 2 else [("down",)])
    for table in ("audit", "tle_sets", "passes", "procedure_runs", "command_counters"):
        assert conn.execute(f"SELECT count(*) FROM export.{table}").fetchone()[0] == 0, table
    journal = sqlite3.connect(out).execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert journal == "delete"  # one self-contained file
    frames = query(out, "SELECT count(*) FROM frames")[0][0]
    assert f"1 flown pass, {frames} frames, " in result.stdout
    assert "audit trail is not exported" in result.stderr


def test_sqlite_export_is_an_archive_every_command_opens(source, tmp_path):
    out = tmp_path / "pass-2.sqlite"
    assert run(source, "db", "export", "--pass", "2", str(out)).exit_code == 0
    # The same flown pass, listed from the export as from the source.
    mine = json.loads(run(out, "passes", "--flown", "--json").stdout)
    theirs = json.loads(run(source, "passes", "--flown", "--json").stdout)
    assert mine == [p for p in theirs if p["id"] == 2]
    # The export verifies: no audit rows, so no chain to break.
    assert query(source, "SELECT count(*) FROM audit")[0][0] > 0
    verify = run(out, "db", "verify", "--json")
    assert verify.exit_code == 0, verify.output
    report = json.loads(verify.stdout)
    assert report["ok"] and report["audit"]["rows"] == 0
    assert run(source, "db", "verify").exit_code == 0
    # Exporting the pass again from the export gives the same packets as from the source.
    again, first = tmp_path / "again.tlm", tmp_path / "first.tlm"
    assert run(out, "db", "export", "--pass", "2", str(again)).exit_code == 0
    assert run(source, "db", "export", "--pass", "2", str(first)).exit_code == 0
    assert again.read_bytes() == first.read_bytes() != b""
    # Samples are found through parameter_packets as in any archive.
    query_result = run(out, "db", "query", "POWER_HK.BATT_VOLTAGE", "--json")
    assert query_result.exit_code == 0, query_result.output
    expected = query(
        source,
        "SELECT count(*) FROM samples AS s JOIN frames AS f ON f.id = s.frame_id "
        "WHERE f.pass_id = 2 AND s.parameter = 'POWER_HK.BATT_VOLTAGE'",
    )[0][0]
    assert len(json.loads(query_result.stdout)) == expected > 0


def test_sqlite_export_of_a_range_takes_frames_by_receive_time_and_overlapping_passes(
    source, tmp_path
):
    (aos, los) = query(source, "SELECT aos, los FROM flown_passes WHERE id = 1")[0]
    start, end = aos + 120.0, los + 600.0  # from the middle of pass 1, past its end
    out = tmp_path / "range.db"
    result = run(
        source, "db", "export", "--from", iso(start), "--to", iso(end), "--node", "ODC-07", str(out)
    )
    assert result.exit_code == 0, result.output
    frames = query(
        source,
        "SELECT * FROM frames WHERE time >= ? AND time < ? AND node = 'ODC-07' ORDER BY id",
        start,
        end,
    )
    assert frames and query(out, "SELECT * FROM frames ORDER BY id") == frames
    ids = {f[0] for f in frames}
    samples = [s for s in query(source, ALL_ROWS["samples"]) if s[0] in ids]
    assert query(out, ALL_ROWS["samples"]) == samples
    # Passes of ODC-07 that overlap the range, whole.
    passes = [
        p
        for p in query(source, "SELECT * FROM flown_passes ORDER BY id")
        if p[1] == "ODC-07" and (p[5] is None or p[5] >= start) and p[4] < end
    ]
    assert [p[0] for p in passes] == [1]
    assert query(out, "SELECT * FROM flown_passes ORDER BY id") == passes
    # Node events come with the frames that carried them, ground events by their time.
    events = [
        e
        for e in query(source, "SELECT * FROM events ORDER BY id")
        if e[2] == "ODC-07" and (e[8] in ids if e[8] is not None else start <= e[1] < end)
    ]
    assert events and query(out, "SELECT * FROM events ORDER BY id") == events
    alerts = [
        a
        for a in query(source, "SELECT * FROM alerts ORDER BY id")
        if a[1] == "ODC-07" and start <= a[4] < end
    ]
    assert query(out, "SELECT * FROM alerts ORDER BY id") == alerts
    # The command sent at AOS + 30 s is before the range: not exported.
    assert query(out, "SELECT count(*) FROM commands")[0][0] == 0


def iso(time_s: float) -> str:
    """Unix seconds as ISO 8601 UTC with microseconds and a Z."""
    return datetime.fromtimestamp(time_s, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def test_sqlite_export_refuses_to_overwrite_without_force(source, tmp_path):
    out = tmp_path / "p.db"
    out.write_bytes(b"precious")
    result = run(source, "db", "export", "--pass", "1", str(out))
    usage_error(result, "already exists", "--force")
    assert out.read_bytes() == b"precious"
    result = run(source, "db", "export", "--pass", "1", "--force", str(out))
    assert result.exit_code == 0, result.output
    assert query(out, "SELECT id FROM flown_passes") == [(1,)]
    # An existing archive is not overwritten by a packet file either, without --force.
    result = run(source, "db", "export", "--pass", "1", "--format", "ccsds", str(out))
    usage_error(result, "already exists", "SQLite")
    # Nor is the source archive itself, even with --force.
    result = run(source, "db", "export", "--pass", "1", "--force", str(source))
    usage_error(result, "archive being exported")
    assert query(source, "SELECT count(*) FROM flown_passes")[0][0] >= 3


# --- ccsds ------------------------------------------------------------------------------


def test_ccsds_export_of_a_pass_splits_back_into_its_downlink_packets(source, tmp_path):
    out = tmp_path / "pass-2.tlm"
    result = run(source, "db", "export", "--pass", "2", str(out))
    assert result.exit_code == 0, result.output
    good = [
        raw
        for (raw,) in query(
            source,
            "SELECT raw FROM frames WHERE pass_id = 2 AND direction = 'down' "
            "AND status NOT IN ('malformed', 'no-mission') ORDER BY time, id",
        )
    ]
    assert split(out.read_bytes()) == good
    assert f"{len(good)} frames, {sum(map(len, good))} bytes" in result.stdout
    malformed = query(
        source, "SELECT count(*) FROM frames WHERE pass_id = 2 AND status = 'malformed'"
    )[0][0]
    assert f"{malformed} malformed" in result.stderr
    # With --all every downlink frame of the pass, byte for byte.
    result = run(source, "db", "export", "--pass", "2", "--all", str(out))
    assert result.exit_code == 0, result.output
    every = query(
        source,
        "SELECT raw FROM frames WHERE pass_id = 2 AND direction = 'down' ORDER BY time, id",
    )
    assert out.read_bytes() == b"".join(raw for (raw,) in every)


def test_ccsds_export_of_a_range_is_unchanged(source, tmp_path):
    (aos, los) = query(source, "SELECT aos, los FROM flown_passes WHERE id = 1")[0]
    out = tmp_path / "range.tlm"
    result = run(source, "db", "export", "--from", iso(aos), "--to", iso(los + 1), str(out))
    assert result.exit_code == 0, result.output
    frames = query(
        source,
        "SELECT raw FROM frames WHERE direction = 'down' AND time >= ? AND time < ? "
        "AND status NOT IN ('malformed', 'no-mission') ORDER BY time, id",
        aos,
        los + 1,
    )
    assert split(out.read_bytes()) == [raw for (raw,) in frames]


# --- csv --------------------------------------------------------------------------------


def expected_csv(source: Path, where: str, *args: Any) -> list[dict[str, str]]:
    """The samples of the frames `where` selects, as the CSV must hold them: time from
    SQLite's samples_utc view, values as the csv module writes them."""
    rows = query(
        source,
        "SELECT s.time_utc, s.node, s.parameter, s.raw, s.value, s.state, s.frame_id "
        f"FROM samples_utc AS s JOIN frames AS f ON f.id = s.frame_id WHERE {where} "
        "ORDER BY f.time, f.id, s.parameter",
        *args,
    )

    def text(value: Any) -> str:
        if value is None:
            return ""
        return value.hex() if isinstance(value, bytes) else str(value)

    keys = ("time", "node", "parameter", "raw", "value", "state", "frame_id")
    return [dict(zip(keys, map(text, row), strict=True)) for row in rows]


def test_csv_export_of_a_pass_is_its_samples_in_frame_order(source, tmp_path):
    out = tmp_path / "pass-1.csv"
    result = run(source, "db", "export", "--pass", "1", str(out))
    assert result.exit_code == 0, result.output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    expected = expected_csv(source, "f.pass_id = ?", 1)
    assert len(rows) == len(expected) > 1000
    assert rows == expected
    frames = len({r["frame_id"] for r in rows})
    assert f"{len(rows)} samples of {frames} frames" in result.stdout


def test_csv_export_of_a_range_goes_by_frame_receive_time(source, tmp_path):
    (aos,) = query(source, "SELECT aos FROM flown_passes WHERE id = 2")[0]
    start, end = aos + 60, aos + 180
    out = tmp_path / "range.csv"
    result = run(
        source, "db", "export", "--from", iso(start), "--to", iso(end), "--node", "ODC-01", str(out)
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    expected = expected_csv(source, "f.time >= ? AND f.time < ? AND f.node = 'ODC-01'", start, end)
    assert rows == expected and rows


# --- choosing the format and what to export ---------------------------------------------


def test_format_follows_the_suffix_unless_given(source, tmp_path):
    for name, start in (
        ("a.csv", b"time,node,parameter"),
        ("a.SQLITE3", b"SQLite format 3\x00"),
        ("a.db", b"SQLite format 3\x00"),
        ("a.bin", None),
    ):
        out = tmp_path / name
        assert run(source, "db", "export", "--pass", "3", str(out)).exit_code == 0
        data = out.read_bytes()
        if start is None:
            assert split(data)  # packets
        else:
            assert data.startswith(start), name
    out = tmp_path / "b.tlm"
    assert run(source, "db", "export", "--pass", "3", "--format", "csv", str(out)).exit_code == 0
    assert out.read_bytes().startswith(b"time,node,parameter,raw,value,state,frame_id\n")
    out = tmp_path / "c.csv"
    assert run(source, "db", "export", "--pass", "3", "--format", "SQLite", str(out)).exit_code == 0
    assert out.read_bytes().startswith(b"SQLite format 3\x00")
    assert not list(tmp_path.glob("*.part*"))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--pass", "999"], ["no flown pass 999", "passes --flown"]),
        (["--pass", "1", "--from", "2026-11-29"], ["--pass and --from", "give one"]),
        (["--pass", "1", "--from", "2026-11-29", "--to", "2026-11-30"], ["--from and --to"]),
        ([], ["--pass ID", "--from TIME"]),
        (["--from", "2026-11-29"], ["--from needs --to"]),
        (["--pass", "1", "--format", "xml"], ["--format", "xml"]),
        (["--pass", "1", "--format", "csv", "--all"], ["--all applies to the ccsds format"]),
        (["--pass", "1", "--node", "ODC-01"], ["pass 1 is node ODC-07's"]),
        (["--pass", "x"], ["--pass", "'x'"]),
        (["--from", "yesterday", "--to", "2026-11-30"], ["--from", "ISO 8601"]),
    ],
)
def test_bad_choices_are_one_clear_usage_error(source, tmp_path, args, words):
    out = tmp_path / "out.tlm"
    result = run(source, "db", "export", *args, str(out))
    usage_error(result, *words)
    assert not out.exists() and not list(tmp_path.glob("*.part*"))


def test_a_missing_archive_is_not_created(tmp_path):
    result = run(tmp_path / "none.db", "db", "export", "--pass", "1", str(tmp_path / "o.db"))
    usage_error(result, "no archive at")
    assert not (tmp_path / "none.db").exists()
