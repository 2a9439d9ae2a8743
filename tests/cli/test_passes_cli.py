"""`groundctl passes` and the CLI around it, driven as a user would."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.cli.passes import JSON_FIELDS

FIXTURES = Path(__file__).parents[1] / "fixtures"
START = "2026-05-14T00:00Z"


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Run the CLI in an empty folder (so the demo config is used) with its own archive."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GROUNDCTL_CONFIG", raising=False)
    monkeypatch.delenv("GROUNDCTL_ARCHIVE", raising=False)

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--archive", str(tmp_path / "a.db"), *args], obj={})

    return invoke


def parse_time(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text[:-1] + "+00:00")


def test_json_lists_every_documented_field(run):
    result = run("passes", "--start", START, "--hours", "6", "--json")
    assert result.exit_code == 0, result.output
    passes = json.loads(result.stdout)
    assert len(passes) > 20
    for p in passes:
        assert set(JSON_FIELDS) <= set(p)
        aos, tca, los = (parse_time(p[k]) for k in ("aos", "tca", "los"))
        assert aos <= tca <= los
        assert abs((los - aos).total_seconds() - p["duration_s"]) < 0.002
        assert "." in p["aos"]  # sub-second precision
        assert isinstance(p["sunlit"], bool) and isinstance(p["scheduled"], bool)
    # Sorted by AOS, and the window is respected.
    aos_list = [parse_time(p["aos"]) for p in passes]
    assert aos_list == sorted(aos_list)
    start = parse_time("2026-05-14T00:00:00Z")
    assert all(parse_time(p["los"]) > start for p in passes)
    assert all(a < start + timedelta(hours=6) for a in aos_list)


def test_csv_has_the_same_passes_as_json(run):
    as_json = json.loads(run("passes", "--start", START, "--hours", "3", "--json").stdout)
    result = run("passes", "--start", START, "--hours", "3", "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(JSON_FIELDS)
    assert [(r["node"], r["station"], r["aos"]) for r in rows] == [
        (p["node"], p["station"], p["aos"]) for p in as_json
    ]


def test_node_station_and_min_elevation_filters(run):
    result = run(
        "passes",
        "--start",
        START,
        "--node",
        "ODC-07",
        "--station",
        "Weilheim",
        "--min-elevation",
        "30",
        "--json",
    )
    passes = json.loads(result.stdout)
    assert passes, result.output
    assert {p["node"] for p in passes} == {"ODC-07"}
    assert {p["station"] for p in passes} == {"Weilheim"}
    assert min(p["max_elevation_deg"] for p in passes) >= 30


def test_adhoc_tle_file_and_station_need_no_config(run):
    # The folder has no groundctl.toml: --tle and full --station specs are enough.
    result = run(
        "passes",
        "--tle",
        str(FIXTURES / "starlink-2026-05-13.tle"),
        "--station",
        "Darmstadt,49.87,8.65,144",
        "--start",
        START,
        "--hours",
        "0.5",
        "--min-elevation",
        "25",
        "--json",
        "--no-store",
    )
    assert result.exit_code == 0, result.output
    passes = json.loads(result.stdout)
    assert len(passes) > 50
    assert {p["station"] for p in passes} == {"Darmstadt"}
    assert all(p["node"].startswith("STARLINK-") for p in passes)


def test_table_shows_countdown_and_plan(run):
    result = run("passes", "--start", START, "--hours", "2", "--limit", "5")
    assert result.exit_code == 0
    assert "passes, 24 nodes, 5 stations" in result.stdout
    assert "in " in result.stdout  # countdown column
    assert "more; --limit 0 shows all" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--station", "Nowhere"], "no station named 'Nowhere'"),
        (["--station", "X,north,8"], "must be numbers"),
        (["--station", "X,95,8"], "latitude must be in [-90, 90]"),
        (["--start", "yesterday"], "is not an ISO 8601 time"),
        (["--node", "ODC-99"], "no node named ODC-99"),
        (["--json", "--csv"], "choose one of --json and --csv"),
        (["--tle", "missing.tle"], "missing.tle"),
        (["--station", "A,48,11", "--station", "a,-30,-70"], "--station 'a' is given twice"),
        (["--start", "2099-01-01"], "is outside 1957-10-04 to 2053-10-01"),
        (["--node", "ODC-01", "--node", "NOPE"], "no node named NOPE"),
    ],
)
def test_bad_arguments_give_one_clear_message(run, args, message):
    result = run("passes", "--start", START, "--no-store", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_bad_config_names_file_and_line(run, tmp_path):
    bad = tmp_path / "ops.toml"
    bad.write_text('[[stations]]\nname = "A"\nlat_deg = 400\nlon_deg = 0\n')
    result = run("--config", str(bad), "passes", "--no-store")
    assert result.exit_code == 2
    assert f"{bad}:3: stations[0].lat_deg: 400 is out of range" in result.stderr


def test_bad_tle_lines_are_reported_and_the_rest_predicted(run, tmp_path):
    lines = (FIXTURES / "starlink-2026-05-13.tle").read_text().splitlines()[:30]
    lines[4] = lines[4][:-1] + str((int(lines[4][-1]) + 1) % 10)  # break one checksum
    path = tmp_path / "some.tle"
    path.write_text("\n".join(lines) + "\n")
    result = run(
        "passes",
        "--tle",
        str(path),
        "--start",
        START,
        "--hours",
        "2",
        "--station",
        "Darmstadt,49.87,8.65",
        "--json",
        "--no-store",
    )
    assert result.exit_code == 0
    assert f"{path}:5: line 1 checksum" in result.stderr
    names = {p["node"] for p in json.loads(result.stdout)}
    assert lines[3].strip() not in names and len(names) >= 5


def test_passes_and_plan_are_archived(run, tmp_path):
    result = run("passes", "--start", START, "--hours", "4", "--json")
    printed = json.loads(result.stdout)
    with sqlite3.connect(tmp_path / "a.db") as db:
        rows = db.execute(
            "select node, station, aos, scheduled, reason from passes order by aos, station, node"
        ).fetchall()
        tle_count = db.execute("select count(*) from tles").fetchone()[0]
    assert len(rows) == len(printed)
    assert {r[0] for r in rows} == {p["node"] for p in printed}
    assert sum(1 for r in rows if r[3] == 0) == sum(1 for p in printed if not p["scheduled"])
    assert tle_count == 24


def test_help_lists_commands_and_examples(run):
    top = run("--help")
    for name in ("passes", "tle", "db"):
        assert name in top.stdout
    for args in (
        ["passes"],
        ["tle"],
        ["tle", "check"],
        ["tle", "fetch"],
        ["tle", "list"],
        ["db"],
        ["db", "stats"],
        ["db", "import"],
        ["db", "query"],
        ["db", "export"],
        ["db", "vacuum"],
    ):
        assert "Example" in run(*args, "--help").stdout, args


def test_installed_entry_point_runs_without_warnings(tmp_path):
    """The real console script, in a subprocess: no library warnings, no traceback."""
    exe = Path(sys.executable).with_name("groundctl")
    result = subprocess.run(
        [str(exe), "--archive", str(tmp_path / "b.db"), "passes", "--hours", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "passes, 24 nodes" in result.stdout


def test_tle_check_reports_file_and_line(run, tmp_path):
    good = (FIXTURES / "starlink-2026-05-13.tle").read_text().splitlines()[:6]
    path = tmp_path / "f.tle"
    path.write_text("\n".join([*good, "1 44714C 19074B"]) + "\n")
    result = run("tle", "check", str(path))
    assert result.exit_code == 1
    assert f"{path}:7: " in result.stdout
    assert "2 TLEs, 1 problem," in result.stderr
    clean = tmp_path / "g.tle"
    clean.write_text("\n".join(good) + "\n")
    assert run("tle", "check", "--max-age-days", "100000", str(clean)).exit_code == 0


def test_progress_bar_appears_only_on_a_terminal_and_only_after_a_moment():
    from rich.console import Console

    from groundctl.cli.passes import _LazyProgress

    def drive(console, delay):
        bar = _LazyProgress(console, "predicting passes", delay_s=delay)
        for done in range(1, 4):
            bar(done, 3)
        bar.close()
        return console.file.getvalue()

    assert "predicting passes" in drive(Console(file=io.StringIO(), force_terminal=True), 0)
    assert drive(Console(file=io.StringIO(), force_terminal=True), 60) == ""
    assert drive(Console(file=io.StringIO(), force_terminal=False), 0) == ""


def test_messages_keep_their_square_brackets(run, tmp_path):
    cfg = tmp_path / "ops.toml"
    cfg.write_text('[[stations]]\nname = "A"\nlat_deg = 1\nlon_deg = 2\n')
    result = run("--config", str(cfg), "passes", "--no-store")
    assert result.exit_code == 2
    assert "no [[fleet]] sources" in result.stderr


def test_skipped_lines_are_labelled_without_markup_leaking(run, tmp_path):
    lines = (FIXTURES / "starlink-2026-05-13.tle").read_text().splitlines()[:9]
    lines[1] = lines[1][:-1] + str((int(lines[1][-1]) + 1) % 10)
    path = tmp_path / "bad.tle"
    path.write_text("\n".join(lines) + "\n")
    result = run(
        "passes",
        "--tle",
        str(path),
        "--station",
        "X,1,2",
        "--start",
        START,
        "--hours",
        "1",
        "--json",
        "--no-store",
    )
    assert "skipped: " in result.stderr and "[yellow]" not in result.stderr


def test_tle_fetch_refuses_bad_queries_cleanly(run):
    for args in (["--catnr", "0"], ["--catnr", "-5"], ["--group", ""], ["--group", "a b"]):
        result = run("tle", "fetch", *args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output + result.stderr


def test_demo_orbits_do_not_depend_on_the_window_start(run):
    evening = json.loads(
        run(
            "passes",
            "--start",
            "2026-05-14T22:00Z",
            "--hours",
            "4",
            "--node",
            "ODC-01",
            "--json",
            "--no-store",
        ).stdout
    )
    midnight = json.loads(
        run(
            "passes",
            "--start",
            "2026-05-15T00:00Z",
            "--hours",
            "2",
            "--node",
            "ODC-01",
            "--json",
            "--no-store",
        ).stdout
    )
    later = {(p["station"], p["aos"]) for p in evening if p["aos"] >= "2026-05-15T00:00"}
    assert later and later <= {(p["station"], p["aos"]) for p in midnight}


def test_celestrak_sets_are_found_by_query_and_not_archived_again(run, tmp_path):
    from groundctl.archive import open_archive
    from groundctl.orbits.tle import parse_tle_text

    text = "\n".join((FIXTURES / "starlink-2026-05-13.tle").read_text().splitlines()[:30])
    url = "http://mirror.test/NORAD/elements/gp.php?GROUP=starlink&FORMAT=tle"
    tles, _ = parse_tle_text(text, url)
    with open_archive(tmp_path / "a.db") as db:
        db.store_tle_set(
            url, "group:starlink", "tle", text, tles, datetime(2026, 5, 13, 12, tzinfo=UTC)
        )
    cfg = tmp_path / "ops.toml"
    cfg.write_text(
        '[[fleet]]\ncelestrak_group = "starlink"\n\n'
        '[[stations]]\nname = "A"\nlat_deg = 48\nlon_deg = 11\n'
    )
    result = run("--config", str(cfg), "passes", "--start", START, "--hours", "2", "--json")
    assert result.exit_code == 0, result.stderr
    assert {p["node"] for p in json.loads(result.stdout)} <= {t.name for t in tles}
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert db.execute("SELECT count(*) FROM tle_sets").fetchone()[0] == 1
