"""The CLI's commanding: `cmd` queues for the next contact, `queue` lists, edits and
cancels, `commands` shows the history, roles refuse; alert acknowledgements are audited.

Runs the real CLI in-process against the simulator and a real archive file.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from click.testing import CliRunner
from commanding_support import ROOT, first_contact, rows, write_config

from groundctl.archive.audit import verify_chain
from groundctl.archive.store import open_archive
from groundctl.bus import AlertMessage
from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.commander import Commander
from groundctl.engine import Engine
from groundctl.errors import CommandError
from groundctl.mdb.loader import load_mission
from groundctl.telemetry.model import Frame


def invoke(tmp_path, *args):
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "groundctl.toml"), *args], obj={})
    return result.exit_code, result.output


def test_cmd_out_of_contact_is_queued_then_edited_and_cancelled(tmp_path):
    write_config(tmp_path, '[operators]\nnobody = "viewer"\n')
    contact = first_contact("ODC-01")
    start = datetime(2026, 11, 29, tzinfo=UTC).isoformat()
    code, output = invoke(
        tmp_path, "cmd", "--sim", "--start", start, "ODC-01", "SET_THROTTLE", "level=LOW"
    )
    assert code == 0, output
    assert f"next AOS {contact.aos:%Y-%m-%d %H:%M:%S}Z" in output
    assert "stays queued" in output

    code, output = invoke(tmp_path, "queue", "list", "--json")
    [queued] = [json.loads(line) for line in output.splitlines()]
    assert queued["text"] == "ODC-01 SET_THROTTLE level=LOW" and queued["status"] == "queued"
    assert queued["release_at"] == f"{contact.aos:%Y-%m-%d %H:%M:%S}Z"

    code, output = invoke(
        tmp_path,
        "queue",
        "edit",
        str(queued["id"]),
        "--command",
        "ODC-01 SET_THROTTLE level=MEDIUM",
    )
    assert code == 0, output
    code, output = invoke(tmp_path, "queue", "edit", str(queued["id"]), "--command", "ODC-01 NOOP")
    assert code == 2 and "may change its arguments, not its node or command" in output
    code, output = invoke(tmp_path, "queue", "edit", str(queued["id"]), "--at", "2026-11-30T06:00Z")
    assert code == 0, output
    [edited] = [
        json.loads(line) for line in invoke(tmp_path, "queue", "list", "--json")[1].splitlines()
    ]
    assert edited["text"] == "ODC-01 SET_THROTTLE level=MEDIUM"
    assert (edited["release"], edited["release_at"]) == ("time", "2026-11-30 06:00:00Z")

    code, output = invoke(
        tmp_path, "queue", "cancel", str(queued["id"]), "--reason", "plan changed"
    )
    assert code == 0 and "cancelled" in output
    code, output = invoke(tmp_path, "queue", "cancel", str(queued["id"]))
    assert code == 2 and "no longer queued" in output
    assert invoke(tmp_path, "queue", "list")[1].strip() == "no queued commands"

    code, output = invoke(tmp_path, "commands", "--json")
    [history] = [json.loads(line) for line in output.splitlines()]
    assert history["status"] == "cancelled"
    assert [s["stage"] for s in history["stages"]][:1] == ["queued"]
    assert [s["stage"] for s in history["stages"]][-3:] == ["edited", "edited", "cancelled"]
    db = tmp_path / "groundctl.db"
    assert rows(db, "SELECT count(*) FROM frames WHERE direction = 'up'") == [(0,)]
    with open_archive(db) as archive:
        assert verify_chain(archive.conn).ok


def test_cmd_refusals_exit_2_and_send_nothing(tmp_path):
    write_config(tmp_path)
    code, output = invoke(tmp_path, "cmd", "--sim", "ODC-01", "REBOOT")
    assert code == 2 and "may not send hazardous commands" in output  # the default role
    code, output = invoke(tmp_path, "cmd", "--sim", "ODC-01", "SUBMIT_JOB", "job_id=1")
    assert code == 2 and "missing argument gpu_seconds" in output
    code, output = invoke(tmp_path, "cmd", "--sim", "ODC-01")
    assert code == 2 and "no command given" in output
    assert rows(tmp_path / "groundctl.db", "SELECT count(*) FROM commands") == [(0,)]


def test_key_new_writes_a_private_key_once(tmp_path):
    write_config(tmp_path)
    key = tmp_path / "odc.key"
    code, _ = invoke(tmp_path, "key", "new", str(key))
    assert code == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(key.read_text().strip())) == 32
    code, output = invoke(tmp_path, "key", "new", str(key))
    assert code == 2 and "never overwritten" in output


def test_alert_acknowledgement_and_shelving_are_audited(tmp_path):
    mission = load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")
    frames = [
        Frame(bytes.fromhex(r["hex"]), r["t"], "udp", "cfs")
        for r in map(json.loads, (ROOT / "tests/fixtures/cfs/cfs-lab-session.jsonl").open())
        if r["dir"] == "down"
    ]
    config = write_config(tmp_path, '[operators]\nvic = "viewer"\n')
    path = tmp_path / "groundctl.db"

    async def main():
        async with Engine(path, default=mission) as engine:
            alerts = engine.bus.subscribe(AlertMessage)
            for frame in frames:
                await engine.receive(frame)
            raised = [m.change.alert for m in alerts.drain() if m.change.action == "raised"]
            viewer = Commander(engine, config=config, operator="vic")
            await viewer.start()
            try:
                try:
                    await viewer.acknowledge(raised[0].id, "looking")
                except CommandError as error:
                    refused = error.message
            finally:
                await viewer.stop()
            commander = Commander(engine, config=config, operator="olga")
            await commander.start()
            try:
                await commander.acknowledge(raised[0].id, "known: test command")
                await commander.shelve(raised[1].id, frames[-1].time_s + 600)
            finally:
                await commander.stop()
            return raised, refused

    raised, refused = asyncio.run(main())
    assert "vic is a viewer" in refused
    audit = rows(path, "SELECT operator, role, action, node, detail FROM audit ORDER BY id")
    assert [(o, r, a, n) for o, r, a, n, _ in audit] == [
        ("olga", "operator", "acknowledged", "cfs"),
        ("olga", "operator", "shelved", "cfs"),
    ]
    assert json.loads(audit[0][4]) == {
        "alert": raised[0].id,
        "comment": "known: test command",
        "parameter": "ES_HK.ERR_COUNT",
    }
    assert rows(path, "SELECT acked_by FROM alerts WHERE id = ?", raised[0].id) == [("olga",)]
