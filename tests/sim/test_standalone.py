"""`groundctl sim` as a program: one node on UDP like the cFS lab setup, driven through
groundctl's own `udp` link; and the in-process simulation into an archive.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.links.udp import UdpLink

START_S = datetime(2026, 11, 29, tzinfo=UTC).timestamp()


def groundctl_command() -> list[str]:
    """How to start groundctl as a separate program with this interpreter."""
    if importlib.util.find_spec("groundctl.__main__") is not None:
        return [sys.executable, "-m", "groundctl"]
    script = Path(sys.executable).with_name("groundctl")
    assert script.exists(), f"no {script}: install the package (pip install -e .)"
    return [str(script)]


async def until(condition, timeout_s, what):
    """Poll `condition()` every 20 ms until it is true; fail naming `what` after a timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def test_a_node_on_udp_answers_a_ground_system(odc, tmp_path):
    # the demo config, whatever the environment or the current folder hold
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUNDCTL_")}

    async def main():
        # the ground's telemetry port, as TO_LAB's destination
        ground = UdpLink("odc-07", "ODC-07", {"uplink": "127.0.0.1:9", "downlink": "127.0.0.1:0"})
        await ground.open()
        process = await asyncio.create_subprocess_exec(
            *groundctl_command(),
            "sim",
            "--udp",
            "--listen",
            "127.0.0.1:0",
            "--send-to",
            f"127.0.0.1:{ground.bound_port}",
            "--speed",
            "20",
            "--node",
            "ODC-07",
            "--start",
            "2026-11-29T00:00Z",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        frames = []
        pump = asyncio.create_task(collect(ground, frames))
        try:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            ready = re.fullmatch(
                r"simulating ODC-07: commands on UDP (\d+), telemetry to .*\n", line
            )
            assert ready, f"first line on stdout: {line!r}"
            port = int(ready[1])
            await until(lambda: count_of(frames) is not None, 30, "the node's COMMS_HK")
            assert count_of(frames) == 0
            uplink = UdpLink(
                "odc-07-cmd", "ODC-07", {"uplink": f"127.0.0.1:{port}", "downlink": "127.0.0.1:0"}
            )
            await uplink.open()
            await uplink.send(odc.command("NOOP"))
            await until(
                lambda: count_of(frames) == 1 and noop_event(frames), 30, "the NOOP verified"
            )
            await uplink.close()
            process.terminate()  # SIGTERM: the simulator stops cleanly
            rc = await asyncio.wait_for(process.wait(), 30)
            stderr = (await process.stderr.read()).decode()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            pump.cancel()
            await ground.close()
        return frames, rc, stderr

    def count_of(frames):
        received = odc.decode(frames)
        counts = [v for _, v in odc.series(received, "COMMS_HK.CMD_COUNT")]
        return counts[-1] if counts else None

    def noop_event(frames):
        events = odc.events(odc.decode(frames))
        return [(e["APP"], e["EVENT_ID"], e["TEXT"]) for e in events] == [
            ("CMD", 1, "NOOP received, ODC-07 ok")
        ]

    frames, rc, stderr = asyncio.run(main())
    assert rc == 0, stderr
    assert re.fullmatch(r"ODC-07: \d+ packets sent\n", stderr)
    received = odc.decode(frames)
    assert all(r.ok for r in received)  # every datagram is one packet of the database
    assert {r.node for r in received} == {"ODC-07"}
    times = [r.decoded.time_s for r in received if r.packet != "EVENT"]
    assert min(times) >= START_S + 1 and times == sorted(times)  # simulated time, in order


async def collect(link, frames):
    async for frame in link.frames():
        frames.append(frame)


def test_ctrl_c_stops_the_simulation_cleanly_with_everything_archived(tmp_path):
    """Ctrl-C in a terminal signals the whole process group, the archive writer included."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUNDCTL_")}
    archive = tmp_path / "ctrl-c.db"

    async def main():
        process = await asyncio.create_subprocess_exec(
            *groundctl_command(),
            "--archive",
            str(archive),
            "sim",
            "--speed",
            "10",
            "--nodes",
            "ODC-07,ODC-01",
            "--no-gate",
            "--start",
            "2026-11-29T00:00Z",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env=env,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
        try:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line.startswith("simulating 2 nodes"), line
            await until(lambda: archived(archive) > 0, 30, "frames in the archive")
            os.killpg(process.pid, signal.SIGINT)
            out, err = await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return process.returncode, out.decode(), err.decode()

    rc, out, err = asyncio.run(main())
    assert rc == 0, err
    assert "Traceback" not in err and err == ""
    frames = int(re.search(r"frames ([\d,]+) ", out.splitlines()[-1])[1].replace(",", ""))
    assert archived(archive) == frames  # every frame received was committed
    with sqlite3.connect(archive) as db:
        life = [r[0] for r in db.execute("SELECT text FROM events WHERE kind = 'link-state'")]
    assert life[-1] == "link sim: up -> closed"


def archived(path):
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT count(*) FROM frames").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Run the CLI in an empty folder (so the demo config is used) with its own archive."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GROUNDCTL_CONFIG", raising=False)
    monkeypatch.delenv("GROUNDCTL_ARCHIVE", raising=False)

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--archive", str(tmp_path / "sim.db"), *args], obj={})

    return invoke


def test_sim_at_full_speed_fills_the_archive(run, tmp_path):
    result = run("sim", "--speed", "0", "--duration", "600", "--start", "2026-11-29T00:00Z")
    assert result.exit_code == 0, result.output + result.stderr
    header, *status = result.stdout.splitlines()
    assert header == (
        f"simulating 24 nodes from 2026-11-29 00:00:00Z at maximum speed into {tmp_path / 'sim.db'}"
    )
    assert re.fullmatch(
        r"2026-11-29 00:10:00Z  600 s simulated in [\d.,]+ s \([\d.,]+x\)  frames [\d,]+ "
        r"\([\d,]+/s\)  active alerts 0",
        status[-1],
    )
    db = sqlite3.connect(tmp_path / "sim.db")
    count, first, last = db.execute("SELECT count(*), min(time), max(time) FROM frames").fetchone()
    assert count > 1000
    assert first > START_S and last <= START_S + 600
    assert db.execute("SELECT count(*) FROM frames WHERE status != 'ok'").fetchone() == (0,)
    kinds = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    assert kinds["aos"] >= 5 and kinds["los"] >= 3
    life = [
        row[0]
        for row in db.execute("SELECT text FROM events WHERE kind = 'link-state' ORDER BY id")
    ]
    assert life == [
        "link sim: closed -> connecting",
        "link sim: connecting -> up",
        "link sim: up -> down",
        "link sim: down -> closed",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--fault", "ODC-07 MELTDOWN at 5"],
            "usage error: --fault: fault 1: unknown fault 'MELTDOWN'",
        ),
        (
            ["--fault", "ODC-07 LINK_DROP at 5", "--fault", "ODC-07 LINK_DROP at 1.2.3"],
            "usage error: --fault: fault 2: 'at 1.2.3' is not a number of seconds",
        ),
        (
            ["--fault", "ODC-07 LINK_DROP after 5"],
            "usage error: --fault: fault 1 ('ODC-07 LINK_DROP after 5'): expected 'NODE FAULT at SECONDS [for SECONDS]'",
        ),
        (
            ["--fault", "ODC-99 LINK_DROP at 5"],
            "link error: link sim: faults name nodes that are not simulated: ODC-99",
        ),
        (["--speed", "-1"], "usage error: --speed must be 0 (as fast as possible) or more"),
    ],
)
def test_bad_sim_arguments_give_one_precise_line(run, args, message):
    result = run("sim", "--duration", "60", "--start", "2026-11-29T00:00Z", *args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == message
    assert all(line.startswith("  hint: ") for line in lines[1:])
    assert "Traceback" not in result.output + result.stderr
