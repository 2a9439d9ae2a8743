"""The commander against the simulator: verification outcomes, the queue, roles, keys.

Everything is real but the orbit: the archive file, the engine, the commander, the sim
link and its nodes, which check commands the way flight software does. Outcomes are
checked against what the node itself reports (its COMMS_HK counters and events, decoded
from the archive by the mission database) and against the archive's own tables.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from commanding_support import (
    KEY_HEX,
    ROOT,
    START,
    aio,
    first_contact,
    rows,
    session_for,
    sim_link,
    until,
    write_config,
)

from groundctl.archive import open_archive
from groundctl.archive.audit import verify_chain
from groundctl.bus import CommandMessage
from groundctl.commanding.auth import sign
from groundctl.errors import CommandError
from groundctl.mdb.codec import Codec
from groundctl.mdb.loader import load_mission

ODC = load_mission(ROOT / "data" / "missions" / "odc-node.toml")
pytestmark = pytest.mark.slow


def comms(path: Path, node: str) -> list[dict]:
    """Every COMMS_HK the node sent, decoded from the archived frames with the MDB."""
    codec = Codec(ODC)
    out = []
    for (raw,) in rows(
        path,
        "SELECT raw FROM frames WHERE node = ? AND packet = 'COMMS_HK' AND direction = 'down' "
        "ORDER BY id",
        node,
    ):
        out.append(codec.decode(raw).values)
    return out


def node_events(path: Path, node: str) -> list[tuple[str, int, str, str]]:
    return rows(
        path,
        "SELECT source, event_id, severity, text FROM events WHERE node = ? AND "
        "kind = 'node-event' ORDER BY id",
        node,
    )


async def run_commands(tmp_path, *texts, extra="", operator="alice", gate=False, after_s=0.0, **kw):
    """Issue each command in turn on an ungated simulator; return outcomes, db path."""
    config = write_config(tmp_path, extra)
    path = tmp_path / "groundctl.db"
    link = sim_link(config, start=START, speed=50, nodes="ODC-01", gate=gate, **kw)
    session = await session_for(config, path, link, operator=operator)
    outcomes = []
    try:
        assert session.commander is not None
        await until(lambda: "COMMS_HK.CMD_COUNT" in session.commander.latest_raw.get("ODC-01", {}))
        clock = session.engine.clock
        await until(lambda: clock() >= START.timestamp() + after_s)
        for text in texts:
            confirm = text.startswith("!")
            outcome = await session.commander.issue(text.lstrip("!"), confirm=confirm)
            await asyncio.wait_for(outcome.done.wait(), 60)
            outcomes.append(outcome)
    finally:
        await session.stop()
    return outcomes, path


@aio
async def test_noop_is_accepted_by_the_counter_and_completed_by_its_event(tmp_path):
    [outcome], path = await run_commands(tmp_path, "ODC-01 NOOP")
    assert outcome.stage == "completed"
    stages = [s.stage for s in outcome.stages]
    assert stages[:1] == ["queued"] and stages[-3:] == ["sent", "accepted", "completed"]
    assert "COMMS_HK.CMD_COUNT" in outcome.stages[-2].detail
    assert "NOOP received" in outcome.detail
    # the node itself counted it: CMD_COUNT went from 0 to 1, LAST_FC says NOOP
    counts = [c["CMD_COUNT"] for c in comms(path, "ODC-01")]
    assert counts[0] == 0 and counts[-1] == 1
    # archived: the command, its stages in order with times, the uplink frame
    [(status, raw)] = rows(path, "SELECT status, raw FROM commands")
    assert status == "completed"
    archived = [s for (s,) in rows(path, "SELECT stage FROM command_stages ORDER BY id")]
    assert archived == stages
    times = [t for (t,) in rows(path, "SELECT time FROM command_stages ORDER BY id")]
    assert times[1:] == sorted(times[1:])
    [(up,)] = rows(path, "SELECT raw FROM frames WHERE direction = 'up'")
    assert up == raw == ODC_NOOP()


def ODC_NOOP() -> bytes:
    from groundctl.mdb.codec import encode_command

    return encode_command(ODC, ODC.commands["NOOP"], {})


@aio
async def test_a_command_the_node_rejects_is_failed_with_its_error_event(tmp_path):
    [outcome], path = await run_commands(tmp_path, "ODC-01 CANCEL_JOB job_id=999")
    assert outcome.stage == "failed"
    assert "COMMS_HK.ERR_COUNT 0 -> 1" in outcome.detail
    assert "no job 999" in outcome.detail  # the node's ERROR event text
    assert ("CMD", 7, "ERROR", "CANCEL_JOB rejected: no job 999") in node_events(path, "ODC-01")
    assert comms(path, "ODC-01")[-1]["ERR_COUNT"] == 1


@aio
async def test_a_command_nobody_answers_times_out(tmp_path):
    # 20 s in, the node's radio drops (LINK_DROP): it hears nothing and says nothing
    [noop], path = await run_commands(
        tmp_path, "ODC-01 NOOP", faults="ODC-01 LINK_DROP at 20 for 600", after_s=21
    )
    assert noop.stage == "timeout"
    assert "no acceptance within 10 s" in noop.detail
    [(status,)] = rows(path, "SELECT status FROM commands")
    assert status == "timeout"
    assert ("CMD", 1, "INFO", "NOOP received, ODC-01 ok") not in node_events(path, "ODC-01")


@aio
async def test_completion_by_telemetry_condition(tmp_path):
    [safe], path = await run_commands(tmp_path, "!ODC-01 SAFE_MODE", extra=FD)
    assert safe.stage == "completed"
    assert "POWER_MODE == 'SAFE'" in safe.detail
    [(confirmed, hazardous)] = rows(path, "SELECT confirmed, hazardous FROM commands")
    assert confirmed == 1 and hazardous == 1
    actions = [a for (a,) in rows(path, "SELECT action FROM audit ORDER BY id")]
    assert actions[:2] == ["command", "confirm"]


FD = '[operators]\nalice = "flight-director"\nbob = "operator"\ncarol = "viewer"\n'


@aio
async def test_roles_and_confirmation_refuse_before_anything_is_queued(tmp_path):
    config = write_config(tmp_path, FD)
    path = tmp_path / "groundctl.db"
    for operator, text, confirm, expected in [
        ("carol", "ODC-01 NOOP", False, "is a viewer"),
        ("bob", "ODC-01 REBOOT", True, "may not send hazardous"),
        ("alice", "ODC-01 REBOOT", False, "needs confirming"),
        ("alice", "ODC-01 REBOOT", "REBOT", "needs confirming"),
        ("alice", "ODC-01 SET_POWER_MODE mode=TURBO", False, "not one of"),
    ]:
        link = sim_link(config, start=START, speed=50, nodes="ODC-01", gate=False)
        session = await session_for(config, path, link, operator=operator)
        try:
            assert session.commander is not None
            with pytest.raises(CommandError, match=expected):
                await session.commander.issue(text, confirm=confirm)
        finally:
            await session.stop()
    assert rows(path, "SELECT count(*) FROM commands") == [(0,)]
    assert rows(path, "SELECT count(*) FROM frames WHERE direction = 'up'") == [(0,)]
    denied = rows(path, "SELECT operator, role, detail FROM audit WHERE action = 'denied'")
    assert [(o, r) for o, r, _ in denied] == [
        ("carol", "viewer"),
        ("bob", "operator"),
        ("alice", "flight-director"),
        ("alice", "flight-director"),
        ("alice", "flight-director"),
    ]
    # an operator sends what is not hazardous; a flight director confirms a hazardous one
    outcomes, path = await run_commands(tmp_path, "ODC-01 NOOP", extra=FD, operator="bob")
    assert outcomes[0].stage == "completed"


@aio
async def test_queued_for_the_next_contact_released_at_aos(tmp_path):
    contact = first_contact("ODC-01")
    config = write_config(tmp_path)
    path = tmp_path / "groundctl.db"
    start = contact.aos - timedelta(seconds=60)
    link = sim_link(config, start=start, speed=20, nodes="ODC-01")
    session = await session_for(config, path, link)
    try:
        assert session.commander is not None and session.engine is not None
        messages = session.engine.bus.subscribe(CommandMessage)
        outcome = await session.commander.issue("ODC-01 NOOP")
        await asyncio.wait_for(outcome.done.wait(), 60)
        assert outcome.stage == "completed"
        seen = messages.drain()
    finally:
        await session.stop()
    waiting = [m for m in seen if m.stage == "queued" and m.release_at]
    assert waiting, "the queue shows when the node is next in contact"
    assert abs(waiting[0].release_at - contact.aos.timestamp()) < 2
    assert "next AOS" in waiting[0].detail
    sent = next(m for m in seen if m.stage == "sent")
    assert contact.aos.timestamp() <= sent.time_s <= contact.los.timestamp()
    [(aos_time,)] = rows(path, "SELECT time FROM events WHERE kind = 'aos' AND node = 'ODC-01'")
    assert sent.time_s >= aos_time


@aio
async def test_the_queue_survives_a_restart(tmp_path):
    contact = first_contact("ODC-01")
    config = write_config(tmp_path)
    path = tmp_path / "groundctl.db"
    # first run: out of contact, the command is queued, and the run stops
    link = sim_link(config, start=contact.aos - timedelta(minutes=20), speed=1, nodes="ODC-01")
    session = await session_for(config, path, link)
    try:
        assert session.commander is not None
        outcome = await session.commander.issue("ODC-01 SUBMIT_JOB job_id=7 gpu_seconds=1h")
        await until(lambda: outcome.stages[-1].detail.startswith("waiting"))
        edited = await session.commander.edit(
            outcome.command_id, text="ODC-01 SUBMIT_JOB job_id=7 gpu_seconds=2h"
        )
        assert edited.arguments["gpu_seconds"] == 7200
    finally:
        await session.stop()
    assert rows(path, "SELECT status FROM commands") == [("queued",)]
    # second run, a new process's worth of objects: released at AOS and verified
    link = sim_link(config, start=contact.aos - timedelta(seconds=30), speed=20, nodes="ODC-01")
    session = await session_for(config, path, link)
    try:
        await until(lambda: rows(path, "SELECT status FROM commands")[0][0] == "completed", 60)
    finally:
        await session.stop()
    events = node_events(path, "ODC-01")
    assert ("COMPUTE", 20, "INFO", "job 7 queued (7200 GPU-s)") in events
    stages = [s for (s,) in rows(path, "SELECT stage FROM command_stages ORDER BY id")]
    assert stages[:2] == ["queued", "edited"] and stages[-3:] == ["sent", "accepted", "completed"]


@aio
async def test_cancelled_commands_are_never_sent(tmp_path):
    contact = first_contact("ODC-01")
    config = write_config(tmp_path)
    path = tmp_path / "groundctl.db"
    link = sim_link(config, start=contact.aos - timedelta(seconds=40), speed=20, nodes="ODC-01")
    session = await session_for(config, path, link)
    try:
        assert session.commander is not None
        first = await session.commander.issue("ODC-01 SET_THROTTLE level=HIGH")
        second = await session.commander.issue("ODC-01 NOOP")
        await session.commander.cancel(first.command_id, "changed plan")
        await asyncio.wait_for(second.done.wait(), 60)
        with pytest.raises(ValueError, match="no longer queued"):
            await session.commander.cancel(second.command_id)
    finally:
        await session.stop()
    assert first.stage == "cancelled" and second.stage == "completed"
    assert rows(path, "SELECT count(*) FROM frames WHERE direction = 'up'") == [(1,)]
    assert not [e for e in node_events(path, "ODC-01") if e[0] == "THERMAL"]


KEYED = '[nodes.ODC-02]\nkey_env = "GROUNDCTL_TEST_KEY_ODC_02"\n'


@aio
async def test_signed_commands_verify_and_replays_are_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDCTL_TEST_KEY_ODC_02", KEY_HEX)
    started = time.time()
    config = write_config(tmp_path, KEYED)
    path = tmp_path / "groundctl.db"
    link = sim_link(config, start=START, speed=50, nodes="ODC-02", gate=False)
    session = await session_for(config, path, link)
    try:
        commander = session.commander
        assert commander is not None
        await until(lambda: "COMMS_HK.CMD_COUNT" in commander.latest_raw.get("ODC-02", {}))
        for text in ("ODC-02 NOOP", "ODC-02 SET_POWER_MODE mode=ECO"):
            outcome = await commander.issue(text)
            await asyncio.wait_for(outcome.done.wait(), 60)
            assert outcome.stage == "completed", outcome.detail
        # a replay of the archived (signed) NOOP, and a forgery with another key
        [(replayed,)] = rows(path, "SELECT raw FROM commands WHERE command = 'NOOP'")
        await link.send(replayed, "ODC-02")
        forged = sign(ODC_NOOP(), bytes(32), 10**6)
        await link.send(forged, "ODC-02")
        await until(lambda: commander.latest_raw["ODC-02"].get("COMMS_HK.AUTH_FAILURES") == 2)
        # and the commander's own failure rule sees a rejected signed command
        monkeypatch.setenv("GROUNDCTL_TEST_KEY_ODC_02", "00" * 32)
        outcome = await commander.issue("ODC-02 NOOP")
        await asyncio.wait_for(outcome.done.wait(), 60)
    finally:
        await session.stop()
    assert outcome.stage == "failed" and "AUTH_FAILURES 2 -> 3" in outcome.detail
    assert "bad MAC" in outcome.detail
    texts = [t for (_, i, _, t) in node_events(path, "ODC-02") if i in (8, 9)]
    assert any("not above" in t for t in texts) and any("bad MAC" in t for t in texts)
    assert comms(path, "ODC-02")[-1]["CMD_COUNT"] == 2  # forgeries executed nothing
    counters = [c for (c,) in rows(path, "SELECT counter FROM commands ORDER BY id")]
    assert len(counters) == 3 and counters == sorted(set(counters))  # strictly increasing
    assert counters[0] >= int(started * 1000)  # never below the wall clock in ms
    assert rows(path, "SELECT counter FROM command_counters") == [(counters[-1],)]
    # the key is nowhere in the archive
    data = b"".join(p.read_bytes() for p in tmp_path.glob("groundctl.db*"))
    assert bytes.fromhex(KEY_HEX) not in data and KEY_HEX.encode() not in data


@aio
async def test_every_step_is_in_an_intact_audit_chain(tmp_path):
    await run_commands(tmp_path, "ODC-01 NOOP", "!ODC-01 SAFE_MODE", extra=FD)
    path = tmp_path / "groundctl.db"
    with open_archive(path) as archive:
        report = verify_chain(archive.conn)
    assert report.ok and report.rows >= 10
    actions = [a for (a,) in rows(path, "SELECT action FROM audit ORDER BY id")]
    for action in ("command", "confirm", "released", "sent", "accepted", "completed"):
        assert action in actions


@aio
async def test_a_node_no_link_reaches_is_refused(tmp_path):
    config = write_config(tmp_path)
    path = tmp_path / "groundctl.db"
    link = sim_link(config, start=START, speed=50, nodes="ODC-01", gate=False)
    session = await session_for(config, path, link)
    try:
        assert session.commander is not None
        with pytest.raises(CommandError, match="no link reaches ODC-99"):
            await session.commander.issue("ODC-99 NOOP")
    finally:
        await session.stop()
    assert rows(path, "SELECT count(*) FROM commands") == [(0,)]
