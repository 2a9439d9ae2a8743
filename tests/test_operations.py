"""Shared operations between consoles (groundctl.operations): the documents, the config,
and two real sessions (simulator, archives) joined by an in-process channel: an alert
acknowledged at one console is acknowledged at the other, even one that raises it later;
a command's stages reach the other console; a cancel request is checked and carried out.
(Through a real broker: plugins/groundctl-mqtt/tests/test_mqtt_operations.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testsupport import aio, rows

from groundctl.bus import AlertMessage, CommandMessage
from groundctl.config import OperationsConfig, demo_config_path, load_config, parse_config
from groundctl.errors import ConfigError
from groundctl.operations import (
    RETAINED,
    OperationsError,
    SharedOperations,
    decode,
    encode,
    parse_ref,
)
from groundctl.session import Session

CONFIG = load_config(demo_config_path())
SIM = {
    "speed": 0.0,
    "start": "2026-11-24T03:00:00+00:00",
    "nodes": "ODC-07",
    "gate": False,
    "duration": 400.0,
    "faults": "ODC-07 BATTERY_UNDERVOLTAGE at 60 for 1000",
}


class Loopback:
    """An in-process channel: what one console sends, the others receive, in order."""

    def __init__(self, hub: list[Loopback]) -> None:
        self.hub = hub
        self.console = ""
        self.deliver: Callable[[str, str, bytes], None] | None = None
        self.retained: dict[tuple[str, str], bytes] = {}

    async def open(self, console: str, deliver: Callable[[str, str, bytes], None]) -> None:
        self.console, self.deliver = console, deliver
        self.hub.append(self)
        for other in self.hub:  # retained documents, as a broker gives them
            for (kind, sender), payload in other.retained.items():
                deliver(kind, sender, payload)

    def send(self, kind: str, payload: bytes, to: str = "") -> None:
        if kind in RETAINED:
            self.retained[(kind, self.console)] = payload
        loop = asyncio.get_running_loop()
        for other in self.hub:
            if other is not self and other.deliver is not None and (not to or other.console == to):
                loop.call_soon(other.deliver, kind, self.console, payload)

    async def close(self) -> None:
        self.hub.remove(self)


async def until(predicate: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    end = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return result


async def console(
    tmp_path: Path, name: str, hub: list[Loopback], operator: str, **sim: Any
) -> tuple[Session, SharedOperations]:
    session = Session(
        CONFIG, tmp_path / f"{name}.db", sim=True, sim_options={**SIM, **sim},
        operator=operator, role="operator",
    )  # fmt: skip
    await session.start()
    assert session.engine is not None and session.commander is not None
    shared = SharedOperations(session.engine, session.commander, name, Loopback(hub))
    await shared.start()
    session.operations = shared  # stopped with the session
    return session, shared


def battery_alert(session: Session) -> Any:
    assert session.engine is not None and session.engine.processor is not None
    now = session.engine.clock()
    for alert in session.engine.processor.alerts.visible(now):
        if alert.node == "ODC-07" and alert.severity != "stale":
            return alert
    return None


# --- the documents -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xff\xfe", "not UTF-8 at byte 0"),
        (b"{nope", "not JSON"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (b'{"v": 2, "kind": "alert", "console": "A"}', "field 'v': expected 1, found 2"),
        (b'{"v": 1, "kind": "gossip", "console": "A"}', "field 'kind': expected one of"),
        (b'{"v": 1, "kind": "state", "console": ""}', "field 'console'"),
        (b'{"v": 1, "kind": "state", "console": "A", "online": 1}', "'online': expected bool"),
        (
            b'{"v":1,"kind":"command","console":"A","id":"7","node":"N","text":"","stage":"x",'
            b'"time":0}',
            "command: field 'id': expected int, found '7'",
        ),
        (
            b'{"v":1,"kind":"command","console":"A","id":true,"node":"N","text":"","stage":"x",'
            b'"time":0}',
            "field 'id': expected int, found True",
        ),
    ],
)
def test_malformed_documents_are_named(payload: bytes, expected: str) -> None:
    with pytest.raises(OperationsError) as caught:
        decode(payload)
    assert expected in caught.value.message


def test_documents_round_trip() -> None:
    body = {"id": 7, "node": "ODC-07", "text": "ODC-07 NOOP", "stage": "sent", "time": 1.5}
    doc = decode(encode("command", "ops-1", body))
    assert doc == {"v": 1, "kind": "command", "console": "ops-1", **body}


def test_command_refs() -> None:
    assert parse_ref("12") == ("", 12)
    assert parse_ref("ops-2#12") == ("ops-2", 12)
    with pytest.raises(ValueError, match="not a command number"):
        parse_ref("ops-2#x")


def test_config_operations(tmp_path: Path) -> None:
    base = '[links.gs1]\nadapter = "udp"\nlisten = "127.0.0.1:9000"\n'
    path = tmp_path / "groundctl.toml"
    config = parse_config(base + '[operations]\nlink = "gs1"\nconsole = "ops-1"\n', path)
    assert config.operations == OperationsConfig("gs1", "ops-1")
    with pytest.raises(ConfigError) as caught:
        parse_config(base + '[operations]\nlink = "gs9"\n', path)
    assert "[operations] link" in str(caught.value) or "operations.link" in str(caught.value)
    assert "no link 'gs9' in [links]" in caught.value.message
    assert caught.value.hint == "configured links: gs1"
    with pytest.raises(ConfigError, match="without '#'"):
        parse_config(base + '[operations]\nlink = "gs1"\nconsole = "a#b"\n', path)
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(base + '[operations]\nlink = "gs1"\nbroker = "x"\n', path)


@aio
async def test_a_link_that_cannot_share_is_refused(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, operations=OperationsConfig("sim", "ops-1"))
    session = Session(config, tmp_path / "a.db", sim=True, sim_options=SIM)
    with pytest.raises(ConfigError) as caught:
        await session.start()
    assert "a SimLink cannot share operations" in caught.value.message
    assert caught.value.hint == "name an mqtt link (groundctl-mqtt)"


# --- two consoles --------------------------------------------------------------------------------
@aio
async def test_acknowledgement_reaches_a_console_that_raises_the_alert_later(
    tmp_path: Path,
) -> None:
    hub: list[Loopback] = []
    a, _ = await console(tmp_path, "A", hub, "alice")
    try:
        alert = await until(lambda: battery_alert(a), "the battery alert at A")
        assert a.commander is not None
        await a.commander.acknowledge(alert.id, "known: battery test")
        b, shared_b = await console(tmp_path, "B", hub, "bob")  # raises it only now
        try:
            assert b.engine is not None and b.engine.processor is not None
            book = b.engine.processor.alerts

            def acked() -> Any:
                found = book.find(alert.node, alert.parameter)
                return found if found is not None and found.acked_s is not None else None

            at_b = await until(acked, "the acknowledgement at B")
            assert at_b.raised_s == pytest.approx(alert.raised_s, abs=1e-6)
            assert at_b.acked_by == "alice@A"
            assert at_b.ack_comment == "known: battery test"
            assert shared_b.applied >= 1 and shared_b.malformed == 0
        finally:
            await b.stop()
    finally:
        await a.stop()
    acks = "SELECT who, comment FROM alert_actions WHERE action = 'acknowledged'"
    assert rows(tmp_path / "B.db", acks) == [("alice@A", "known: battery test")]
    # and it did not come back to A as a second acknowledgement
    assert rows(tmp_path / "A.db", acks) == [("alice", "known: battery test")]


@aio
async def test_commands_shelving_and_cancel_requests(tmp_path: Path) -> None:
    hub: list[Loopback] = []
    a, _ = await console(tmp_path, "A", hub, "alice")
    b, shared_b = await console(tmp_path, "B", hub, "bob")
    assert a.engine is not None and b.engine is not None
    assert a.commander is not None and b.commander is not None
    seen_b = b.engine.bus.subscribe(CommandMessage, AlertMessage)
    try:
        alert = await until(lambda: battery_alert(a), "the battery alert at A")
        await until(lambda: battery_alert(b), "the battery alert at B")
        until_s = a.engine.clock() + 3600
        await a.commander.shelve(alert.id, until_s)
        # a command time-tagged an hour ahead: it waits in A's queue
        outcome = await a.commander.issue("ODC-07 NOOP", at=a.engine.clock() + 3600)
        queued = await until(shared_b.queued, "A's queued command at B")
        assert [(c.console, c.command_id, c.text) for c in queued] == [
            ("A", outcome.command_id, "ODC-07 NOOP")
        ]
        shared_b.request_cancel("A", outcome.command_id, "not needed")
        await asyncio.wait_for(outcome.done.wait(), 10)
        assert outcome.stage == "cancelled"
        await until(lambda: not shared_b.queued(), "the queue at B empty again")
        messages = seen_b.drain()
        remote = [
            (m.command_id, m.stage) for m in messages
            if isinstance(m, CommandMessage) and m.origin == "A"
        ]  # fmt: skip
        assert (outcome.command_id, "queued") in remote
        assert (outcome.command_id, "cancelled") in remote
        shelved = [
            m.change for m in messages
            if isinstance(m, AlertMessage) and m.change.action == "shelved"
        ]  # fmt: skip
        assert shelved and shelved[0].alert.shelved_until_s == pytest.approx(until_s)
        assert shelved[0].alert.parameter == alert.parameter
        # a viewer at B may not ask
        b.commander.actor = dataclasses.replace(b.commander.actor, role="viewer")
        with pytest.raises(OperationsError, match="viewer"):
            shared_b.request_cancel("A", outcome.command_id)
    finally:
        await b.stop()
        await a.stop()
    audit = rows(tmp_path / "A.db", "SELECT operator, role FROM audit WHERE action = 'cancelled'")
    assert audit == [("bob@B", "operator")]
    notes = rows(tmp_path / "B.db", "SELECT text FROM events WHERE kind = 'remote-command'")
    assert any(f"A#{outcome.command_id} ODC-07 NOOP: cancelled" in n[0] for n in notes)


@aio
async def test_a_malformed_document_is_archived_not_dropped(tmp_path: Path) -> None:
    hub: list[Loopback] = []
    a, shared_a = await console(tmp_path, "A", hub, "alice")
    try:
        shared_a.deliver("alert", "B", b'{"v":1,"kind":"alert","console":"B"}')
        shared_a.deliver("command", "C", encode("state", "C", {"online": True}))
        assert shared_a.malformed == 2
    finally:
        await a.stop()
    texts = [
        r[0]
        for r in rows(
            tmp_path / "A.db", "SELECT text FROM events WHERE kind = 'operations-malformed'"
        )
    ]
    assert len(texts) == 2
    assert "from console B (alert): alert: field 'action': expected str, found None" in texts[0]
    assert "a 'state' document from 'C' arrived as 'command'" in texts[1]


@aio
async def test_a_late_queue_document_does_not_revive_a_finished_command(tmp_path: Path) -> None:
    hub: list[Loopback] = []
    a, shared = await console(tmp_path, "A", hub, "alice")
    try:
        command = {"id": 7, "node": "ODC-07", "text": "ODC-07 NOOP", "time": 1.0}
        shared.deliver("command", "B", encode("command", "B", {**command, "stage": "queued"}))
        assert [c.command_id for c in shared.queued()] == [7]
        shared.deliver("command", "B", encode("command", "B", {**command, "stage": "completed"}))
        # B's queue as it was before the command went out, arriving after its stages
        shared.deliver("queue", "B", encode("queue", "B", {"commands": [command], "time": 0.5}))
        assert shared.queued() == []
        assert shared.remote["B"][7].stage == "completed"
        # one B had queued while we were away, then one that left its queue meanwhile
        later = {"id": 9, "node": "ODC-07", "text": "ODC-07 NOOP", "time": 3.0}
        shared.deliver("queue", "B", encode("queue", "B", {"commands": [later], "time": 3.0}))
        assert [c.command_id for c in shared.queued()] == [9]
        shared.deliver("queue", "B", encode("queue", "B", {"commands": [], "time": 4.0}))
        assert shared.queued() == [] and shared.remote["B"][9].stage == "gone"
        # a queue entry with a wrongly typed field: archived, not raised
        bad = {"commands": [{**command, "id": 8, "time": "soon"}], "time": 2.0}
        shared.deliver("queue", "B", encode("queue", "B", bad))
        assert shared.malformed == 1
    finally:
        await a.stop()
    texts = [r[0] for r in rows(tmp_path / "A.db",
                                "SELECT text FROM events WHERE kind = 'operations-malformed'")]  # fmt: skip
    assert texts and "queue: command field 'time': expected int or float, found 'soon'" in texts[0]
    notes = [r[0] for r in rows(tmp_path / "A.db",
                                "SELECT text FROM events WHERE kind = 'remote-command'")]  # fmt: skip
    assert "B#9 ODC-07 NOOP: queued (in its console's queue)" in notes
    assert "B#9 ODC-07 NOOP: gone (no longer in its console's queue)" in notes
