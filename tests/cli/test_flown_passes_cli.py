"""`groundctl passes --flown`: the passes as flown, from a real archive.

The archive is written by the simulator in a subprocess (two nodes, an hour, with faults
that raise alerts, corrupt packets and cut the run short in a pass). The oracles are the
`flown_passes` table read with plain `sqlite3`, and the figures recomputed from the
frames, samples, events and alerts that carry each pass's id.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.cli.passes import FLOWN_FIELDS

START = "2026-11-29T00:00:00Z"
NODES = ("ODC-07", "ODC-01")
FAULTS = (
    "ODC-07 BATTERY_UNDERVOLTAGE at 420 for 900",
    "ODC-01 PACKET_CORRUPTION at 600 for 120",
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """An archive written by `groundctl sim` (a subprocess, in an empty folder)."""
    folder = tmp_path_factory.mktemp("flown")
    path = folder / "flown.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUNDCTL_")}
    args = ["--speed", "0", "--duration", "3600", "--start", START, "--nodes", ",".join(NODES)]
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


def query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def table_rows(path: Path) -> list[dict[str, Any]]:
    """Every flown_passes row as a dict, by AOS."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM flown_passes ORDER BY aos, id")]
    finally:
        conn.close()


def run(path: Path, *args: str, columns: int = 200):
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(
        cli, ["--archive", str(path), "passes", "--flown", *args], obj={}
    )


def listed(path: Path, *args: str) -> list[dict[str, Any]]:
    result = run(path, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def unix(text: str | None) -> float | None:
    if text is None:
        return None
    assert text.endswith("Z")
    return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()


def usage_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def test_json_lists_every_row_of_the_flown_passes_table(archive):
    rows = table_rows(archive)
    passes = listed(archive)
    assert len(rows) >= 4
    assert [p["id"] for p in passes] == [r["id"] for r in rows]
    for p, r in zip(passes, rows, strict=True):
        assert list(p) == list(FLOWN_FIELDS)
        for field in ("aos", "los", "planned_aos", "planned_los"):
            assert abs(unix(p[field]) - r[field]) < 0.001, field  # ISO 8601 with ms
        assert p["duration_s"] == pytest.approx(r["los"] - r["aos"], abs=0.001)
        for field in set(FLOWN_FIELDS) - {"aos", "los", "planned_aos", "planned_los", "duration_s"}:
            assert p[field] == r[field], field
    # The faults show: an alert in pass 1, undecodable frames in pass 2, and the run
    # stopped in the last pass.
    assert passes[0]["alerts_raised"] > 0
    assert passes[1]["malformed"] > 0 and passes[1]["gaps"] > 0
    assert passes[-1]["status"] == "interrupted"


def test_figures_match_the_frames_and_samples_that_carry_the_pass(archive):
    for p in listed(archive):
        ((down, down_bytes, malformed, unknown),) = query(
            archive,
            "SELECT count(*), coalesce(sum(length), 0), sum(status = 'malformed'), "
            "sum(status = 'unknown') FROM frames WHERE pass_id = ? AND direction = 'down'",
            p["id"],
        )
        ((up, up_bytes),) = query(
            archive,
            "SELECT count(*), coalesce(sum(length), 0) FROM frames "
            "WHERE pass_id = ? AND direction = 'up'",
            p["id"],
        )
        assert (p["frames_down"], p["bytes_down"]) == (down, down_bytes) != (0, 0)
        assert (p["frames_up"], p["bytes_up"]) == (up, up_bytes)
        assert (p["malformed"], p["unknown"]) == (malformed, unknown)
        samples = query(
            archive,
            "SELECT count(*) FROM samples AS s JOIN frames AS f ON f.id = s.frame_id "
            "WHERE f.pass_id = ?",
            p["id"],
        )[0][0]
        assert p["samples"] == samples
        assert (
            p["events"]
            == query(archive, "SELECT count(*) FROM events WHERE pass_id = ?", p["id"])[0][0]
        )
        assert (
            p["alerts_raised"]
            == query(archive, "SELECT count(*) FROM alerts WHERE pass_id = ?", p["id"])[0][0]
        )
        # The frames lie within the pass.
        ((first, last),) = query(
            archive, "SELECT min(time), max(time) FROM frames WHERE pass_id = ?", p["id"]
        )
        assert unix(p["aos"]) <= first <= last <= unix(p["los"])


def test_csv_has_the_same_passes_as_json(archive):
    result = run(archive, "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(FLOWN_FIELDS)
    passes = listed(archive)
    assert [(int(r["id"]), r["aos"], r["status"]) for r in rows] == [
        (p["id"], p["aos"], p["status"]) for p in passes
    ]


def test_table_shows_each_pass_with_its_figures(archive):
    result = run(archive)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for column in ("Id", "Node", "Station", "AOS (UTC)", "Dur", "Status", "Down", "Up"):
        assert column in out
    for column in ("Bytes", "Gaps/miss", "Alerts", "Cmds s/v/f", "Max el"):
        assert column in out
    lines = out.splitlines()
    for r in table_rows(archive):
        (line,) = [line for line in lines if line.split()[:2] == [str(r["id"]), r["node"]]]
        aos = datetime.fromtimestamp(r["aos"], UTC)
        assert r["station"] in line and f"{aos:%m-%d %H:%M:%S}" in line
        assert r["status"] in line and f"{r['frames_down']:,}" in line
        assert f"{r['gaps']}/{r['missing']}" in line
        assert f"{r['max_elevation_deg']:4.1f}°".strip() in line


def test_table_fits_80_columns(archive):
    result = run(archive, columns=80)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "interrupted" in result.stdout


def test_a_flying_pass_shows_as_such(archive, tmp_path):
    copy = tmp_path / "flying.db"
    shutil.copy(archive, copy)
    last = table_rows(archive)[-1]["id"]
    conn = sqlite3.connect(copy)
    with conn:
        conn.execute("UPDATE flown_passes SET status = 'flying', los = NULL WHERE id = ?", (last,))
    conn.close()
    record = listed(copy)[-1]
    assert record["id"] == last and record["status"] == "flying"
    assert record["los"] is None and record["duration_s"] is None
    result = run(copy)
    (line,) = [line for line in result.stdout.splitlines() if line.split()[:1] == [str(last)]]
    assert "flying" in line


def test_node_and_station_filters(archive):
    rows = table_rows(archive)
    assert [p["id"] for p in listed(archive, "--node", "ODC-07")] == [
        r["id"] for r in rows if r["node"] == "ODC-07"
    ]
    # Names are not case-sensitive; both options repeat.
    assert [p["id"] for p in listed(archive, "--node", "odc-01")] == [
        r["id"] for r in rows if r["node"] == "ODC-01"
    ]
    both = listed(archive, "--node", "ODC-07", "--node", "ODC-01")
    assert [p["id"] for p in both] == [r["id"] for r in rows]
    station = rows[0]["station"]
    assert [p["id"] for p in listed(archive, "--station", station)] == [
        r["id"] for r in rows if r["station"] == station
    ]
    pairs = listed(archive, "--station", station, "--node", rows[0]["node"])
    assert [p["id"] for p in pairs] == [
        r["id"] for r in rows if r["station"] == station and r["node"] == rows[0]["node"]
    ]


def test_start_and_hours_choose_the_passes_overlapping_the_window(archive):
    rows = table_rows(archive)
    start = rows[1]["aos"] + 60  # in the middle of the second pass
    text = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = listed(archive, "--start", text, "--hours", "0.25")
    expected = [r["id"] for r in rows if r["los"] >= start and r["aos"] < start + 900]
    assert [p["id"] for p in window] == expected and 1 <= len(expected) < len(rows)
    after = listed(archive, "--start", text)
    assert [p["id"] for p in after] == [r["id"] for r in rows if r["los"] >= start]
    # --hours alone: the last hours until now.
    before = time.time()
    recent = listed(archive, "--hours", "2")
    assert [p["id"] for p in recent] == [r["id"] for r in rows if r["los"] >= before - 7200]


def test_limit_keeps_the_newest_passes(archive):
    rows = table_rows(archive)
    newest = [r["id"] for r in rows[-2:]]
    assert [p["id"] for p in listed(archive, "--limit", "2")] == newest
    assert len(listed(archive)) == len(rows)  # JSON: every pass unless --limit is given
    result = run(archive, "--limit", "2")
    assert result.exit_code == 0, result.output
    ids = [line.split()[0] for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert ids == [str(i) for i in newest]
    assert "older passes before these 2; --limit 0 shows all" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--tle", "x.tle"], ["--tle applies to predicted passes, not to --flown"]),
        (["--min-elevation", "10"], ["--min-elevation", "not to --flown"]),
        (["--no-store"], ["--store/--no-store", "not to --flown"]),
        (["--store", "--tle", "x.tle"], ["--tle and --store/--no-store apply"]),
        (["--station", "Darmstadt,49.87,8.65"], ["station's name"]),
        (["--node", "ODC-99"], ["no flown pass of node ODC-99", "ODC-01, ODC-07"]),
        (["--station", "Nowhere"], ["no flown pass of station Nowhere"]),
        (["--start", "soon"], ["--start 'soon' is not an ISO 8601 time"]),
        (["--json", "--csv"], ["choose one of --json and --csv"]),
    ],
)
def test_bad_options_are_one_clear_usage_error(archive, args, words):
    usage_error(run(archive, *args), *words)


def test_no_archive_is_an_error_and_creates_none(tmp_path):
    result = run(tmp_path / "none.db")
    usage_error(result, "no archive at")
    assert not (tmp_path / "none.db").exists()


def test_help_documents_flown(archive):
    result = CliRunner().invoke(cli, ["passes", "--help"], obj={})
    assert "--flown" in result.stdout and "groundctl passes --flown" in result.stdout
