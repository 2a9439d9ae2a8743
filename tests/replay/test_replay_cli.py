"""`groundctl replay`: recorded passes, ranges and recordings through the live pipeline.

Oracles: the live archive a simulated pass was recorded into (the replay must give the
same samples, alerts and events), the real cFS recording's README (its 10 events and
final counters), and the real KISS capture's fixture note.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from testsupport import aio, rows

from groundctl.config import demo_config_path, load_config
from groundctl.errors import CommandError
from groundctl.links.replay import ReplayLink
from groundctl.session import REPLAY_DISABLED, Session

ROOT = Path(__file__).parents[2]
CFS_SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
CFS_MISSION = ROOT / "data" / "missions" / "cfs-lab.toml"
KISS_CAPTURE = ROOT / "tests" / "fixtures" / "kiss" / "example.kss"
START = datetime(2026, 11, 29, tzinfo=UTC)
# ODC-07's first contact after START is at about 00:06:33 (Weilheim, to 00:14:25): the
# faults fall inside it.
FAULTS = (
    "ODC-07 PACKET_CORRUPTION at 420 for 60",
    "ODC-07 BATTERY_UNDERVOLTAGE at 430 for 300",
    "ODC-07 SEU_REBOOT at 600",
)


def groundctl(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "groundctl", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live simulated run of ODC-07 with faults injected during its first pass."""
    path = tmp_path_factory.mktemp("live") / "live.db"
    faults = [arg for fault in FAULTS for arg in ("--fault", fault)]
    done = groundctl(
        "--archive", path, "sim", "--speed", "0", "--duration", "1200",
        "--start", START.isoformat(), "--nodes", "ODC-07", *faults,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path


def samples(path: Path, pass_id: int | None = None) -> list[tuple]:
    where = "WHERE f.pass_id = ?" if pass_id is not None else ""
    return rows(
        path,
        "SELECT s.time, s.node, s.parameter, s.raw, s.value, s.state FROM samples s "
        f"JOIN frames f ON f.id = s.frame_id {where} ORDER BY f.time, f.id, s.parameter",
        *([pass_id] if pass_id is not None else []),
    )


def alerts(path: Path, pass_id: int | None = None) -> list[tuple]:
    where = "WHERE pass_id = ?" if pass_id is not None else ""
    return rows(
        path,
        f"SELECT node, parameter, severity, raised, cleared, value, count FROM alerts {where} "
        "ORDER BY raised, parameter",
        *([pass_id] if pass_id is not None else []),
    )


def node_events(path: Path, pass_id: int | None = None) -> list[tuple]:
    where = "AND pass_id = ?" if pass_id is not None else ""
    return rows(
        path,
        "SELECT time, node, source, kind, severity, event_id, text FROM events "
        f"WHERE source != 'ground' {where} ORDER BY time, id",
        *([pass_id] if pass_id is not None else []),
    )


def malformed(path: Path, pass_id: int | None = None) -> list[tuple]:
    where = "AND pass_id = ?" if pass_id is not None else ""
    return rows(
        path,
        f"SELECT time, raw, error FROM frames WHERE status = 'malformed' {where} ORDER BY id",
        *([pass_id] if pass_id is not None else []),
    )


def test_replaying_a_pass_gives_the_same_samples_alerts_and_events_as_live(live, tmp_path):
    [(pass_id, node, station)] = rows(
        live, "SELECT id, node, station FROM flown_passes WHERE id = 1"
    )
    out = tmp_path / "replayed.db"
    done = groundctl("--archive", live, "replay", str(pass_id), "--max", "--json", "--output", out)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    expected = samples(live, pass_id)
    # the faults are in this pass: a red battery, corrupted packets, a reboot's silence
    assert {a[1] for a in alerts(live, pass_id)} >= {"POWER_HK.BATT_VOLTAGE", "POWER_HK (stale)"}
    assert malformed(live, pass_id)
    assert samples(out) == expected
    assert alerts(out) == alerts(live, pass_id)
    assert node_events(out) == node_events(live, pass_id)
    assert malformed(out) == malformed(live, pass_id)
    assert report["frames"] == rows(live, "SELECT count(*) FROM frames WHERE pass_id = ?", 1)[0][0]
    assert report["samples"] == len(expected)
    assert report["alerts_raised"] == len(alerts(live, pass_id))
    assert sorted(a["parameter"] for a in report["alerts"]) == sorted(
        a[1] for a in alerts(live, pass_id)
    )
    # the replay flew the same pass: AOS, LOS and station from the recorded contacts
    figures = (
        "node, station, aos, los, planned_aos, planned_los, max_elevation_deg, frames_down, "
        "bytes_down, malformed, unknown, gaps, missing, samples, alerts_raised"
    )
    [replayed] = rows(out, f"SELECT {figures} FROM flown_passes")
    assert [replayed] == rows(live, f"SELECT {figures} FROM flown_passes WHERE id = 1")
    assert replayed[:2] == (node, station)


def test_replaying_a_time_range_of_one_node_gives_the_same_samples(live, tmp_path):
    [(aos, los)] = rows(live, "SELECT aos, los FROM flown_passes WHERE id = 1")
    out = tmp_path / "range.db"
    utc = lambda s: datetime.fromtimestamp(s, UTC).isoformat()  # noqa: E731
    done = groundctl(
        "--archive", live, "replay", "--from", utc(aos), "--to", utc(los + 1),
        "--node", "ODC-07", "--max", "--quiet", "--output", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert samples(out) == samples(live, 1)
    assert "replayed archive" in done.stdout


def test_the_real_cfs_session_replays_its_ten_events_and_counters(tmp_path):
    out = tmp_path / "cfs.db"
    done = groundctl(
        "replay", CFS_SESSION, "--mission", CFS_MISSION, "--node", "cfs", "--max",
        "--output", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [(e[2], e[5], e[4], e[6]) for e in node_events(out)]
    # the recording's README, "What happened"
    assert [(app, number, severity) for app, number, severity, _ in events] == [
        ("TO_LAB_APP", 3, "INFO"),
        ("CFE_ES", 92, "INFO"),
        ("CFE_ES", 3, "INFO"),
        ("CFE_ES", 22, "ERROR"),
        ("CFE_ES", 23, "ERROR"),
        ("TO_LAB_APP", 18, "INFO"),
        ("CI_LAB_APP", 8, "ERROR"),
        ("SAMPLE_APP", 3, "INFO"),
        ("CFE_ES", 92, "INFO"),
        ("CFE_ES", 3, "INFO"),
    ]
    assert events[3][3] == "Invalid ground command code: ID = 0x1806, CC = 85"
    assert events[6][3].startswith("CI: L369, cmd 186 c00 dropped, bad length=3")

    def last(parameter: str) -> object:
        return samples_of(out, parameter)[-1]

    # "At the end: ES command counter 2, ES error counter 2; TO_LAB command counter 2;
    # CI_LAB ingest packets 7, ingest errors 1"
    assert (last("ES_HK.CMD_COUNT"), last("ES_HK.ERR_COUNT")) == (2, 2)
    assert last("TO_LAB_HK.CMD_COUNT") == 2
    assert (last("CI_LAB_HK.INGEST_PACKETS"), last("CI_LAB_HK.INGEST_ERRORS")) == (7, 1)
    assert samples_of(out, "ES_HK.CMD_COUNT")[0] == 0
    # every downlink datagram, byte for byte; the 8 uplink commands passed over
    recorded = [json.loads(line) for line in CFS_SESSION.read_text().splitlines()]
    down = [bytes.fromhex(r["hex"]) for r in recorded if r["dir"] == "down"]
    assert [raw for (raw,) in rows(out, "SELECT raw FROM frames ORDER BY id")] == down
    assert "8 uplink passed over" in done.stdout


def samples_of(path: Path, parameter: str) -> list[object]:
    return [
        v
        for (v,) in rows(
            path,
            "SELECT s.value FROM samples s JOIN frames f ON f.id = s.frame_id "
            "WHERE s.parameter = ? ORDER BY f.id",
            parameter,
        )
    ]


def test_a_kiss_capture_replays_through_the_plugin_with_every_byte(tmp_path):
    out = tmp_path / "kiss.db"
    done = groundctl("replay", KISS_CAPTURE, "--max", "--json", "--output", out)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # the fixture note: 83 frames, 81 of 81 bytes and fragments of 9 and 6
    sizes = sorted(n for (n,) in rows(out, "SELECT length FROM frames"))
    assert report["frames"] == 83 and sizes == sorted([81] * 81 + [9, 6])
    assert report["bytes"] == 81 * 81 + 9 + 6


def test_bad_requests_get_one_clear_message(live, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases = [
        (("--archive", live, "replay", "999"), "no flown pass 999"),
        (("--archive", live, "replay"), "what to replay?"),
        (("--archive", live, "replay", "nosuch.tlm"), "neither a flown pass id nor a file"),
        (
            ("replay", CFS_SESSION, "--from", "2026-11-29T00:00Z", "--to", "2026-11-30"),
            "apply to archives",
        ),
        (("--archive", live, "replay", "1", "--speed", "5000"), "out of range"),
        (("--archive", live, "replay", "1", "--output", live), "the archive replayed from"),
        (("--archive", live, "replay", "1", "--seek", "soon"), "cannot seek to 'soon'"),
        (("--archive", live, "replay", "1", "--mission", CFS_MISSION), "recording files"),
        (("--archive", live, "replay", "1", "--output", CFS_SESSION), "exists"),
        (("--archive", live, "replay", "1", "--max", "--speed", "10"), "not both"),
        (("--archive", live, "replay", "--from", "2026-11-29T00:00Z"), "--from needs --to"),
        (("--archive", live, "replay", "--from", "soon", "--to", "2026-11-29T01:00Z"), "--from"),
        (("replay", ROOT / "README.md"), "is not a recording"),
        (("replay", empty), "is empty"),
        (
            (
                "--archive",
                live,
                "replay",
                "--from",
                "2026-11-29T00:00Z",
                "--to",
                "2026-11-29T01:00Z",
                "--node",
                "NOPE",
            ),
            "no frames of node NOPE",
        ),
        (("--archive", live, "replay", "1", "--console", "--json"), "--console"),
        (("--archive", live, "replay", "1", "--paused"), "needs a terminal"),
    ]
    for args, message in cases:
        done = groundctl(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert CFS_SESSION.stat().st_size > 0  # --output refused: the existing file is intact


def test_seek_starts_the_replay_at_the_first_frame_at_or_after_it(live, tmp_path):
    [(aos, _los)] = rows(live, "SELECT aos, los FROM flown_passes WHERE id = 1")
    seek_s = aos + 200.5
    out = tmp_path / "seek.db"
    seek = datetime.fromtimestamp(seek_s, UTC).isoformat()
    done = groundctl("--archive", live, "replay", "1", "--max", "--seek", seek, "--output", out)
    assert done.returncode == 0, done.stderr
    expected = rows(
        live,
        "SELECT time, raw FROM frames WHERE pass_id = 1 AND direction = 'down' AND time >= ? "
        "ORDER BY time, id",
        seek_s,
    )
    assert expected and rows(out, "SELECT time, raw FROM frames ORDER BY id") == expected


@aio
async def test_commanding_is_disabled_during_replay(tmp_path):
    link = ReplayLink("replay", "cfs", {"file": str(CFS_SESSION), "speed": 0})
    session = Session(load_config(demo_config_path()), tmp_path / "r.db", links=[link], replay=True)
    await session.start()
    try:
        assert session.commander is not None
        with pytest.raises(CommandError) as refused:
            await session.commander.issue("ODC-07 NOOP")
        assert refused.value.message == REPLAY_DISABLED
    finally:
        await session.stop()
    assert rows(tmp_path / "r.db", "SELECT count(*) FROM commands") == [(0,)]


class Terminal:
    """`groundctl replay` on a pseudo-terminal: keys in, what it prints out."""

    def __init__(self, *args: str | Path) -> None:
        self.fd, child = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "groundctl", *map(str, args)],
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "200", "TERM": "dumb"},
        )
        os.close(child)
        self.seen = ""

    def expect(self, text: str, timeout_s: float = 60.0) -> str:
        end = time.monotonic() + timeout_s
        while text not in self.seen:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not printed; got:\n{self.seen}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    if text not in self.seen:
                        raise AssertionError(f"{text!r} not printed; got:\n{self.seen}") from None
        return self.seen

    def press(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def close(self) -> int:
        try:
            code = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            os.close(self.fd)
        return code


def test_keys_pause_step_speed_seek_and_stop_a_headless_replay(tmp_path):
    first_s = json.loads(CFS_SESSION.read_text().splitlines()[1])["t"]
    terminal = Terminal(
        "replay", CFS_SESSION, "--mission", CFS_MISSION, "--node", "cfs", "--paused", "--quiet"
    )
    ok = False
    try:
        terminal.expect("keys: space pause/resume")
        for n in (1, 2, 3):
            terminal.press(".")
            terminal.expect(f"step frame {n} at")
        terminal.press("+")
        terminal.expect("speed 2x")
        terminal.press("-")
        terminal.press("-")
        terminal.expect("speed 0.5x")
        terminal.press("g+30\r")
        seen = terminal.expect("seek 20")
        target = seen.split("seek ")[-1].split()[0]
        seek_s = datetime.fromisoformat(target.replace("Z", "+00:00")).timestamp()
        assert seek_s >= first_s + 30 - 1
        terminal.press(".")
        terminal.expect("step frame 4 at")
        terminal.press("q")
        terminal.expect("took")
        ok = True
    finally:
        if not ok:
            terminal.process.kill()
        code = terminal.close()
    assert code == 0
    assert "(stopped before the end)" in terminal.seen
    assert "frames     4 (" in terminal.seen
    # the frame after the seek is the first one at or after the sought time
    downs = [json.loads(line) for line in CFS_SESSION.read_text().splitlines()]
    after = [r["t"] for r in downs if r["dir"] == "down" and r["t"] >= seek_s]
    stepped = terminal.seen.split("step frame 4 at ")[1].split()[0]
    stepped_s = datetime.fromisoformat(stepped.replace("Z", "+00:00")).timestamp()
    assert abs(stepped_s - after[0]) < 0.001
