"""`groundctl db`: import a real cFS session, then count, query, export and prune it.

The archive is a real SQLite file in tmp_path; the plain `sqlite3` module and an
independent decoding of the recording are the oracles.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundctl.archive.schema import MIGRATIONS
from groundctl.archive.store import open_archive
from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.cli.db import SAMPLE_FIELDS
from groundctl.mdb.codec import split_packets

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SESSION = FIXTURES / "cfs" / "cfs-lab-session.jsonl"
CYGNSS = FIXTURES / "ccsds" / "CYGNSS_F7_L0_2022_086_10_15_V01_F__first101pkts.tlm"
CFS_LAB = REPO / "data" / "missions" / "cfs-lab.toml"
CFE_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "a.db"


@pytest.fixture
def run(tmp_path, db_path, monkeypatch):
    """Run the CLI in an empty folder (so the demo config is used) with its own archive."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GROUNDCTL_CONFIG", raising=False)
    monkeypatch.delenv("GROUNDCTL_ARCHIVE", raising=False)

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--archive", str(db_path), *args], obj={})

    return invoke


@pytest.fixture
def session(run):
    """The archive with the cFS lab session imported as node `cfs`."""
    result = run("db", "import", str(SESSION), "--mission", str(CFS_LAB), "--node", "cfs")
    assert result.exit_code == 0, result.output
    return result


def recording() -> list[dict]:
    return [json.loads(line) for line in SESSION.read_text().splitlines() if line.strip()]


def es_hk_command_counts() -> list[tuple[datetime, int]]:
    """ES_HK.CMD_COUNT decoded straight from the JSON lines: message id 0x0800, packet
    time = cFE epoch + seconds (u32 BE at 6) + subseconds (u16 BE at 10) / 65536, the
    counter is byte 16."""
    counts = []
    for record in recording():
        raw = bytes.fromhex(record["hex"])
        if record["dir"] != "down" or raw[:2] != b"\x08\x00":
            continue
        seconds, subseconds = struct.unpack_from(">IH", raw, 6)
        t = CFE_EPOCH + timedelta(seconds=seconds + subseconds / 65536)
        counts.append((t, raw[16]))
    return counts


def parse_z(text: str) -> datetime:
    assert text.endswith("Z") and len(text) == len("2026-05-14T03:04:05.123Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def oracle(db_path: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, args).fetchall()


def no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit | type(None)), result.exception


# --- import -----------------------------------------------------------------------------


def test_import_prints_the_ingest_report(session):
    assert "frames" in session.stdout and "560" in session.stdout
    assert "node cfs" in session.stdout and "mission cfs-lab" in session.stdout


def test_import_json_report_counts_the_session(run, db_path):
    result = run("db", "import", str(SESSION), "--mission", str(CFS_LAB), "--node", "cfs", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 560
    assert report["uplink"] == 8
    assert report["events"] == 10
    assert report["malformed"] == 0 and report["unknown"] == 0
    assert report["samples"] == oracle(db_path, "SELECT count(*) FROM samples")[0][0]
    assert report["node"] == "cfs" and report["mission"] == "cfs-lab"


def test_import_of_packets_the_mission_lacks_keeps_every_byte(run, db_path):
    result = run("db", "import", str(CYGNSS), "--mission", str(CFS_LAB), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 101 and report["unknown"] == 101
    assert report["node"] == "cfs-lab"  # --node defaults to the mission's name
    rows = oracle(db_path, "SELECT status, direction, raw FROM frames ORDER BY id")
    assert len(rows) == 101
    assert {(status, direction) for status, direction, _ in rows} == {("unknown", "down")}
    assert b"".join(raw for _, _, raw in rows) == CYGNSS.read_bytes()


def test_a_bad_record_is_archived_as_malformed_and_the_rest_imported(run, tmp_path, db_path):
    lines = SESSION.read_text().splitlines()[:3]
    lines.insert(2, '{"t": 1795490652.9, "dir": "down"}')
    lines.append('{"t": 1795490653.1, "dir": "down", "hex": "0880c0')  # cut off
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = run("db", "import", str(bad), "--mission", str(CFS_LAB))
    assert result.exit_code == 0, result.output
    assert f"{bad}:3: not a recorded datagram" in result.stderr
    assert f"{bad}:5: not a recorded datagram" in result.stderr
    no_traceback(result)
    rows = oracle(db_path, "SELECT status, raw FROM frames ORDER BY id")
    assert [r[0] for r in rows] == ["sent", "ok", "malformed", "ok", "malformed"]
    assert rows[2][1] == lines[2].encode() and rows[4][1] == lines[4].encode()


def test_missing_recording_is_a_clear_error(run):
    result = run("db", "import", "nowhere.jsonl", "--mission", str(CFS_LAB))
    assert result.exit_code == 2
    assert "cannot read nowhere.jsonl" in result.stderr
    no_traceback(result)


def test_mission_by_name_or_the_configs_only_one(run, tmp_path, db_path):
    config = tmp_path / "groundctl.toml"
    config.write_text(f'[missions.lab]\npath = "{CFS_LAB}"\n')
    result = run("db", "import", str(SESSION), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["node"] == "cfs-lab"
    result = run("db", "import", str(SESSION), "--mission", "lab", "--node", "b", "--json")
    assert result.exit_code == 0, result.output
    assert oracle(db_path, "SELECT node, count(*) FROM frames GROUP BY node") == [
        ("b", 568),
        ("cfs-lab", 568),
    ]
    result = run("db", "import", str(SESSION), "--mission", "nope")
    assert result.exit_code == 2
    assert "--mission nope" in result.stderr and "lab" in result.stderr


def test_no_mission_with_several_configured_lists_the_choices(run, tmp_path):
    (tmp_path / "groundctl.toml").write_text(
        f'[missions.lab]\npath = "{CFS_LAB}"\n[missions.other]\npath = "{CFS_LAB}"\n'
    )
    result = run("db", "import", str(SESSION))
    assert result.exit_code == 2
    assert "lab, other" in result.stderr
    no_traceback(result)


def test_no_mission_and_none_configured(run, tmp_path):
    config = tmp_path / "bare.toml"
    config.write_text('[[stations]]\nname = "A"\nlat_deg = 1\nlon_deg = 2\n')
    result = run("--config", str(config), "db", "import", str(SESSION))
    assert result.exit_code == 2
    assert "defines no missions" in result.stderr and "--mission" in result.stderr


def test_the_demo_config_names_its_missions(run):
    result = run("db", "import", str(SESSION))  # the demo has two: a name is needed
    assert result.exit_code == 2
    assert "cfs-lab" in result.stderr and "odc-node" in result.stderr
    assert run("db", "import", str(SESSION), "--mission", "cfs-lab").exit_code == 0


# --- stats ------------------------------------------------------------------------------


def test_stats_counts_match_sqlite(session, run, db_path):
    result = run("db", "stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["schema_version"] == MIGRATIONS[-1].version
    assert stats["size_bytes"] + stats["wal_bytes"] > 0
    tables = stats["tables"]
    for table in ("frames", "samples", "events", "alerts", "alert_actions"):
        assert tables[table] == oracle(db_path, f"SELECT count(*) FROM {table}")[0][0]
    assert tables["frames"] == 568 and tables["events"] == 10
    by_status = {(s["direction"], s["status"]): s["count"] for s in stats["frames_by_status"]}
    assert by_status == {("down", "ok"): 560, ("up", "sent"): 8}
    assert stats["nodes"] == {
        "cfs": {"downlink": 560, "uplink": 8, "samples": tables["samples"], "events": 10}
    }
    for table in ("frames", "samples"):
        first, last = oracle(db_path, f"SELECT min(time), max(time) FROM {table}")[0]
        span = stats["spans"][table]
        assert abs(parse_z(span["first"]).timestamp() - first) < 0.001
        assert abs(parse_z(span["last"]).timestamp() - last) < 0.001
    # Frames carry the receive time (2026), samples the cFE packet time (1980).
    assert stats["spans"]["frames"]["first"].startswith("2026-")
    assert stats["spans"]["samples"]["first"].startswith("1980-")


def test_stats_table_names_file_schema_and_nodes(session, run, db_path):
    result = run("db", "stats")
    assert result.exit_code == 0, result.output
    for text in (
        str(db_path),
        f"version {MIGRATIONS[-1].version}",
        "568",
        "560",
        "sent",
        "cfs",
        "receive time",
    ):
        assert text in result.stdout


def test_reading_commands_do_not_create_an_archive(run, db_path):
    for args in (("stats",), ("query", "X"), ("vacuum",)):
        result = run("db", *args)
        assert result.exit_code == 2, args
        assert f"no archive at {db_path}" in result.stderr
    assert not db_path.exists()


# --- query ------------------------------------------------------------------------------


def test_query_gives_the_independently_decoded_counter(session, run):
    expected = es_hk_command_counts()
    assert len(expected) == 59
    result = run("db", "query", "ES_HK.CMD_COUNT", "--json")
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)
    assert len(samples) == 59
    for sample, (t, count) in zip(samples, expected, strict=True):
        assert list(sample) == list(SAMPLE_FIELDS)
        assert sample["node"] == "cfs" and sample["parameter"] == "ES_HK.CMD_COUNT"
        assert sample["raw"] == count and sample["value"] == count
        assert sample["state"] == ""
        assert abs((parse_z(sample["time"]) - t).total_seconds()) < 0.001


def test_latest_is_the_last_counter_value(session, run):
    result = run("db", "query", "ES_HK.CMD_COUNT", "--latest", "--json")
    assert result.exit_code == 0, result.output
    (latest,) = json.loads(result.stdout)
    t, count = es_hk_command_counts()[-1]
    assert latest["value"] == count == 2
    assert abs((parse_z(latest["time"]) - t).total_seconds()) < 0.001
    table = run("db", "query", "ES_HK.CMD_COUNT", "--latest")
    assert "latest per node" in table.stdout and " 2 " in table.stdout


def test_latest_per_node_and_node_filter(session, run):
    run("db", "import", str(SESSION), "--mission", str(CFS_LAB), "--node", "cfs-b")
    latest = json.loads(run("db", "query", "ES_HK.CMD_COUNT", "--latest", "--json").stdout)
    assert [(s["node"], s["value"]) for s in latest] == [("cfs", 2), ("cfs-b", 2)]
    both = json.loads(run("db", "query", "ES_HK.CMD_COUNT", "--json").stdout)
    assert len(both) == 2 * 59
    assert [s["time"] for s in both] == sorted(s["time"] for s in both)
    one = json.loads(run("db", "query", "ES_HK.CMD_COUNT", "--node", "cfs-b", "--json").stdout)
    assert len(one) == 59 and {s["node"] for s in one} == {"cfs-b"}
    result = run("db", "query", "ES_HK.CMD_COUNT", "--node", "cfs-c")
    assert result.exit_code == 2
    assert "cfs, cfs-b" in result.stderr


def test_csv_and_json_list_the_same_samples(session, run):
    as_json = json.loads(run("db", "query", "TBL_HK.CMD_COUNT", "--json").stdout)
    result = run("db", "query", "TBL_HK.CMD_COUNT", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(SAMPLE_FIELDS)
    assert len(rows) == len(as_json) == 119
    assert [(r["time"], r["node"], int(r["value"])) for r in rows] == [
        (s["time"], s["node"], s["value"]) for s in as_json
    ]


def test_time_range_is_from_included_to_excluded(session, run):
    samples = json.loads(run("db", "query", "ES_HK.CMD_COUNT", "--json").stdout)
    start, end = samples[10]["time"], samples[20]["time"]
    # Times are shown truncated to the millisecond: sample 10 is at or just after `start`
    # (included), sample 20 at or just after `end` (excluded).
    result = run("db", "query", "ES_HK.CMD_COUNT", "--from", start, "--to", end, "--json")
    assert result.exit_code == 0, result.output
    assert [s["time"] for s in json.loads(result.stdout)] == [s["time"] for s in samples[10:20]]
    limited = json.loads(
        run("db", "query", "ES_HK.CMD_COUNT", "--from", start, "--limit", "3", "--json").stdout
    )
    assert [s["time"] for s in limited] == [s["time"] for s in samples[10:13]]
    empty = run("db", "query", "ES_HK.CMD_COUNT", "--from", "2026-01-01", "--json")
    assert json.loads(empty.stdout) == []


def test_bad_times_are_usage_errors(session, run):
    result = run("db", "query", "ES_HK.CMD_COUNT", "--from", "yesterday")
    assert result.exit_code == 2
    assert "--from 'yesterday' is not an ISO 8601 time" in result.stderr
    result = run("db", "query", "ES_HK.CMD_COUNT", "--from", "2026-02-01", "--to", "2026-01-01")
    assert result.exit_code == 2
    assert "is not before --to" in result.stderr
    no_traceback(result)


def test_table_shows_the_first_samples_and_says_there_are_more(session, run):
    result = run("db", "query", "ES_HK.CMD_COUNT", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "ES_HK.CMD_COUNT" in result.stdout
    assert result.stdout.count("1980-01-12T") == 5
    assert "more samples after these 5" in result.stdout


def test_misspelt_parameter_suggests_the_right_one(session, run):
    result = run("db", "query", "ES_HK.CMD_CONT")
    assert result.exit_code == 2
    assert "no parameter ES_HK.CMD_CONT" in result.stderr
    assert "did you mean ES_HK.CMD_COUNT?" in result.stderr
    no_traceback(result)
    result = run("db", "query", "es_hk.cmd_count")
    assert "did you mean ES_HK.CMD_COUNT?" in result.stderr


def test_samples_are_read_through_parameter_packets_frames_and_the_sample_key(session, db_path):
    """parameter_packets -> frames(node, packet, packet_time) -> samples(frame_id,
    parameter): never a full scan of samples or frames, never a sort of samples."""
    with open_archive(db_path) as archive:
        statements: list[str] = []
        archive.conn.set_trace_callback(statements.append)
        assert archive.latest_samples("ES_HK.CMD_COUNT")[0].value == 2
        latest_sql = [s for s in statements if "ORDER BY f.packet_time DESC" in s]
        statements.clear()
        t0, t1 = 316533800.0, 316533830.0
        assert len(list(archive.query_samples("ES_HK.CMD_COUNT", start_s=t0, end_s=t1))) > 0
        range_sql = [s for s in statements if "ORDER BY f.packet_time ASC" in s]
        statements.clear()
        assert "ES_HK.CMD_COUNT" in archive.sample_parameters()
        assert archive.sample_nodes() == ["cfs"]
        span = archive.time_span("samples")
        listing_sql = list(statements)
        archive.conn.set_trace_callback(None)
        assert span == tuple(oracle(db_path, "SELECT min(time), max(time) FROM samples")[0])

        def plan(sql: str) -> str:
            return "\n".join(row[3] for row in archive.conn.execute("EXPLAIN QUERY PLAN " + sql))

        def no_full_scan(detail: str) -> None:
            for line in detail.splitlines():
                assert not line.startswith(("SCAN samples", "SCAN s", "SCAN frames", "SCAN f")), (
                    detail
                )

        by_key = "SEARCH s USING PRIMARY KEY (frame_id=? AND parameter=?)"
        assert latest_sql and range_sql and listing_sql
        for sql in latest_sql:
            detail = plan(sql)
            assert "frames_node_packet_time (node=? AND packet=?)" in detail, detail
            assert by_key in detail, detail
            assert "TEMP B-TREE" not in detail, detail
            no_full_scan(detail)
        for sql in range_sql:
            detail = plan(sql)
            assert (
                "frames_node_packet_time (node=? AND packet=? AND packet_time>? AND packet_time<?)"
                in detail
            ), detail
            assert by_key in detail, detail
            assert "TEMP B-TREE" not in detail, detail
            no_full_scan(detail)
        for sql in listing_sql:  # parameter_packets (small), then seeks
            detail = plan(sql)
            no_full_scan(detail)
            if "samples" in sql:
                assert "frames_node_packet_time (node=? AND packet=?)" in detail, detail
                assert "SEARCH s USING PRIMARY KEY (frame_id=?" in detail, detail


def test_prune_goes_through_the_indexes(session, db_path):
    from groundctl.archive.store import _PRUNE_WHERE

    with open_archive(db_path) as archive:
        for table, where in _PRUNE_WHERE.items():
            detail = "\n".join(
                row[3]
                for row in archive.conn.execute(
                    f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE {where}", (0.0,)
                )
            )
            if table == "samples":
                assert "SEARCH samples USING PRIMARY KEY (frame_id=?)" in detail, detail
                assert "frames_node_packet_time (node=? AND packet=? AND packet_time<?)" in detail
                assert "frames_time (time<?)" in detail, detail
            for line in detail.splitlines():
                assert not line.startswith(("SCAN samples", "SCAN frames", "SCAN f")), detail


# --- export -----------------------------------------------------------------------------


def test_export_splits_back_into_the_downlink_packets(session, run, tmp_path):
    out = tmp_path / "session.tlm"
    result = run("db", "export", "--from", "2000-01-01", "--to", "2100-01-01", str(out))
    assert result.exit_code == 0, result.output
    downlink = [
        bytes.fromhex(r["hex"])
        for r in sorted(recording(), key=lambda r: r["t"])
        if r["dir"] == "down"
    ]
    assert len(downlink) == 560
    chunks = split_packets(out.read_bytes())
    assert [c.error for c in chunks] == [""] * 560
    assert [c.data for c in chunks] == downlink
    assert f"560 frames, {sum(map(len, downlink))} bytes" in result.stdout
    assert not (tmp_path / "session.tlm.part").exists()


def test_export_goes_by_receive_time_and_node(session, run, tmp_path):
    frames = [r for r in recording() if r["dir"] == "down"]
    middle = datetime.fromtimestamp(frames[280]["t"], UTC).isoformat()
    out = tmp_path / "half.tlm"
    result = run("db", "export", "--from", "2000-01-01", "--to", middle, str(out))
    assert result.exit_code == 0, result.output
    expected = [bytes.fromhex(r["hex"]) for r in frames if r["t"] < frames[280]["t"]]
    assert [c.data for c in split_packets(out.read_bytes())] == expected
    result = run(
        "db", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--node", "x", str(out)
    )
    assert result.exit_code == 0
    assert out.read_bytes() == b""
    assert "no downlink frames" in result.stderr


def test_export_leaves_out_malformed_frames_unless_all(run, tmp_path, db_path):
    good = next(r for r in recording() if r["dir"] == "down")
    lines = [good, {"t": good["t"] + 1, "dir": "down", "hex": "0800c0"}]
    rec = tmp_path / "two.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert run("db", "import", str(rec), "--mission", str(CFS_LAB)).exit_code == 0
    assert run("db", "import", str(CYGNSS), "--mission", str(CFS_LAB)).exit_code == 0
    out = tmp_path / "out.tlm"
    result = run("db", "export", "--from", "2000-01-01", "--to", "2100-01-01", str(out))
    assert result.exit_code == 0, result.output
    assert "102 frames" in result.stdout  # the good one and 101 unknown CYGNSS packets
    assert "1 malformed" in result.stderr
    assert out.read_bytes() == bytes.fromhex(good["hex"]) + CYGNSS.read_bytes()
    result = run("db", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--all", str(out))
    assert "103 frames" in result.stdout
    assert bytes.fromhex("0800c0") in out.read_bytes()


# --- vacuum -----------------------------------------------------------------------------


def keep_days_until(t: datetime) -> str:
    """--keep-days that puts the cutoff at `t` (the command's own `now` is a moment later,
    which moves the cutoff by that moment)."""
    return repr((datetime.now(UTC) - t).total_seconds() / 86400)


def counts(db_path: Path) -> dict[str, int]:
    return {
        t: oracle(db_path, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("frames", "samples", "events", "alerts", "alert_actions")
    }


def test_vacuum_dry_run_changes_nothing(session, run, db_path):
    before = counts(db_path)
    result = run(
        "db",
        "vacuum",
        "--keep-days",
        keep_days_until(datetime(2000, 1, 1, tzinfo=UTC)),
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert f"would remove 0 frames, {before['samples']:,} samples, 10 events" in result.stdout
    assert "nothing changed" in result.stdout
    assert counts(db_path) == before


def test_vacuum_removes_samples_by_packet_time_and_frames_by_receive_time(session, run, db_path):
    with sqlite3.connect(db_path) as conn:  # an alert cleared and acknowledged long ago
        conn.execute(
            "INSERT INTO alerts (id, node, parameter, severity, raised, cleared, count, "
            "acked_by, acked) VALUES (99, 'cfs', 'X', 'red', 100.0, 200.0, 1, 'op', 300.0)"
        )
        conn.executemany(
            "INSERT INTO alert_actions (alert_id, time, action, severity) VALUES (99, ?, ?, 'red')",
            [(100.0, "raised"), (200.0, "cleared"), (300.0, "acknowledged")],
        )
    before = counts(db_path)
    # Cutoff 2000: the 1980 packet times go, the 2026 receive times stay.
    result = run("db", "vacuum", "--keep-days", keep_days_until(datetime(2000, 1, 1, tzinfo=UTC)))
    assert result.exit_code == 0, result.output
    assert f"removed 0 frames, {before['samples']:,} samples, 10 events, 3 alert actions" in (
        result.stdout
    )
    assert "->" in result.stdout  # size before -> after
    after = counts(db_path)
    assert after["frames"] == 568 and after["samples"] == 0 and after["events"] == 0
    # The session's own alerts are neither cleared nor acknowledged: their actions stay.
    assert after["alerts"] == before["alerts"]
    assert after["alert_actions"] == before["alert_actions"] - 3
    # Cutoff just after the last receive time: the frames go too.
    (last,) = oracle(db_path, "SELECT max(time) FROM frames")[0]
    cutoff = datetime.fromtimestamp(last + 1, UTC)
    result = run("db", "vacuum", "--keep-days", keep_days_until(cutoff))
    assert result.exit_code == 0, result.output
    assert "removed 568 frames" in result.stdout
    assert counts(db_path)["frames"] == 0


def test_vacuum_without_keep_days_only_compacts(session, run, db_path):
    before = counts(db_path)
    result = run("db", "vacuum")
    assert result.exit_code == 0, result.output
    assert "removed" not in result.stdout and "->" in result.stdout
    assert counts(db_path) == before


# --- help -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["stats", "import", "query", "export", "vacuum"])
def test_every_command_has_examples(run, command):
    result = run("db", command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and f"groundctl db {command}" in result.stdout


def test_import_time_is_the_receive_time_of_packet_files(run, db_path):
    before = time.time()
    assert run("db", "import", str(CYGNSS), "--mission", str(CFS_LAB)).exit_code == 0
    ((low, high),) = oracle(db_path, "SELECT min(time), max(time) FROM frames")
    assert before <= low == high <= time.time()
