"""Commanding cFS over its lab UDP apps, against the recorded real flight software.

The recorded session (tests/fixtures/cfs) is played back over real UDP sockets by
`groundctl.sim.cfs_playback`: each command groundctl sends gets the telemetry the real
cFS sent after the same command. groundctl's config has a plain `udp` link and the
`cfs-lab` mission database, as a lab would; the outcomes checked here are what the
recording shows (README of the fixture): ES NOOP counted and answered by its INFO event,
function code 0x55 counted as an error with cFE's "Invalid ground command code" event.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from click.testing import CliRunner
from commanding_support import ROOT, aio, rows

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.config import load_config
from groundctl.session import Session
from groundctl.sim.cfs_playback import CfsPlayback

SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
MISSION = ROOT / "data" / "missions" / "cfs-lab.toml"
# A command the flight software does not have: the database and the software disagree
# (a newer database, an older build), so the software rejects what the ground validated.
BAD_CC = """
[[commands]]
name = "ES_BAD_CC"
id = 0x1806
function_code = 0x55
description = "a function code CFE_ES does not have"
verify = { accepted = "ES_HK.CMD_COUNT += 1", failed = "ES_HK.ERR_COUNT += 1", timeout_s = 10 }
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lab_config(tmp_path: Path, command_port: int, telemetry_port: int) -> Path:
    mission = tmp_path / "cfs-lab.toml"
    mission.write_text(MISSION.read_text() + BAD_CC)
    path = tmp_path / "lab.toml"
    path.write_text(
        f"""
[archive]
path = "groundctl.db"

[missions.cfs-lab]
path = "{mission}"

[nodes.cfs]
mission = "cfs-lab"

[links.cfs]
adapter = "udp"
uplink = "127.0.0.1:{command_port}"
downlink = "127.0.0.1:{telemetry_port}"
"""
    )
    return path


@aio
async def test_es_noop_is_verified_and_an_invalid_function_code_fails(tmp_path):
    telemetry_port = free_udp_port()
    playback = CfsPlayback(SESSION, command_port=0, telemetry_port=telemetry_port, speed=20)
    await playback.start()
    config = load_config(lab_config(tmp_path, playback.command_address[1], telemetry_port))
    path = tmp_path / "groundctl.db"
    session = Session(config, path, operator="alice")
    await session.start()
    try:
        commander = session.commander
        assert commander is not None
        outcomes = []
        for text in ("cfs TO_LAB_ENABLE_OUTPUT dest_ip=127.0.0.1", "cfs ES_NOOP", "cfs ES_BAD_CC"):
            outcome = await commander.issue(text)
            await asyncio.wait_for(outcome.done.wait(), 30)
            outcomes.append(outcome)
    finally:
        await session.stop()
        await playback.close()
    enable, noop, bad = outcomes
    # no telemetry flows before TO_LAB is enabled: its event completes it
    assert enable.stage == "completed"
    assert "TO telemetry output enabled for IP 127.0.0.1" in enable.detail
    # ES NOOP: the ES command counter 0 -> 1 and the CFE_ES 3 INFO event
    assert noop.stage == "completed"
    accepted = next(s for s in noop.stages if s.stage == "accepted")
    assert accepted.detail == "ES_HK.CMD_COUNT 0 -> 1"
    assert noop.detail.startswith("event CFE_ES 3: No-op command")
    # function code 0x55: the ES error counter 0 -> 1 and the ERROR event's text
    assert bad.stage == "failed"
    assert "ES_HK.ERR_COUNT 0 -> 1" in bad.detail
    assert "Invalid ground command code: ID = 0x1806, CC = 85" in bad.detail
    # what went up is what the playback received, byte for byte, and the archive has it
    sent = [raw for (raw,) in rows(path, "SELECT raw FROM frames WHERE direction = 'up'")]
    assert sent == playback.received
    assert playback.unmatched == []
    assert [s for (s,) in rows(path, "SELECT status FROM commands ORDER BY id")] == [
        "completed",
        "completed",
        "failed",
    ]


def test_the_cfs_lab_check_procedure_passes_and_fails_as_the_flight_software_answers(tmp_path):
    async def main(apps: str) -> tuple[int, str, list[bytes]]:
        telemetry_port = free_udp_port()
        playback = CfsPlayback(SESSION, command_port=0, telemetry_port=telemetry_port, speed=20)
        await playback.start()
        try:
            config = lab_config(tmp_path, playback.command_address[1], telemetry_port)
            result = await asyncio.to_thread(
                CliRunner().invoke,
                cli,
                [
                    "--config",
                    str(config),
                    "--archive",
                    str(tmp_path / f"{apps}.db"),
                    "run",
                    str(ROOT / "data" / "procedures" / "cfs_lab_check.py"),
                    "-a",
                    f"apps={apps}",
                ],
                obj={},
            )
        finally:
            await playback.close()
        return result.exit_code, result.output, playback.unmatched

    # the recording answers ES, TO_LAB and SAMPLE_APP NOOPs, in that order
    code, output, unmatched = asyncio.run(main("ES,TO_LAB,SAMPLE_APP"))
    assert code == 0, output
    assert "passed: all steps passed" in output
    assert "cmd cfs SAMPLE_APP_NOOP: completed" in output
    assert unmatched == []
    [(status, dry)] = rows(
        tmp_path / "ES,TO_LAB,SAMPLE_APP.db", "SELECT status, dry_run FROM procedure_runs"
    )
    assert (status, dry) == ("passed", 0)
    # EVS NOOP was never recorded: unanswered, it times out and the run fails there
    code, output, unmatched = asyncio.run(main("EVS"))
    assert code == 1
    assert "failed: cfs EVS_NOOP: timeout (no acceptance within 10 s)" in output
    assert len(unmatched) == 1
