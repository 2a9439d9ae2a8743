"""Two station agents and two consoles (headless engines) through a real mosquitto:
frames from both stations archived once at each console; a command from console A
verified there and every stage of it seen by console B within a second; an alert
acknowledged and shelved at A, acknowledged and shelved at B within a second; a cancel
request from B carried out by A; a viewer's shared operations refused by the ACL."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from groundctl_mqtt import MqttLink
from groundctl_mqtt.agent import Agent
from groundctl_mqtt.broker import Broker
from mqtt_testbroker import PASSWORDS, Mosquitto

from groundctl.bus import AlertMessage, CommandMessage
from groundctl.config import OperationsConfig, demo_config_path, load_config
from groundctl.links.base import LinkState
from groundctl.session import Session
from groundctl.telemetry.alerts import Alert

CONFIG = load_config(demo_config_path())
STATIONS = {"GS-1": "ODC-07", "GS-2": "ODC-08"}
FAULT = "ODC-07 BATTERY_UNDERVOLTAGE at 1 for 100000"
DOWN = "SELECT time, node, raw FROM frames WHERE direction = 'down'"
WITHIN_S = 1.0  # the issue's bound for a change at one console to show at the others


async def until(predicate: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    end = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return result


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class Console:
    """A headless console: a Session on two mqtt links, sharing operations as `name`,
    with every alert and command message it publishes logged with its arrival time."""

    def __init__(
        self, tmp_path: Path, mosquitto: Mosquitto, name: str, operator: str, user: str
    ) -> None:
        secret = tmp_path / f"{name}.password"
        secret.write_text(PASSWORDS[user] + "\n")
        self.links = [
            MqttLink(
                f"gs{i}",
                "fleet",
                {
                    "broker": mosquitto.address,
                    "station": station,
                    "username": user,
                    "password_file": str(secret),
                    "client_id": f"test-{name}-gs{i}",
                    "reconnect_min_s": 0.05,
                    "reconnect_max_s": 0.3,
                },
            )
            for i, station in enumerate(STATIONS, start=1)
        ]
        config = dataclasses.replace(CONFIG, operations=OperationsConfig("gs1", name))
        self.archive = tmp_path / f"{name}.db"
        self.session = Session(
            config, self.archive, links=self.links, operator=operator, role="operator"
        )
        self.log: list[tuple[float, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.session.start()
        assert self.session.engine is not None
        subscription = self.session.engine.bus.subscribe(AlertMessage, CommandMessage)

        async def record() -> None:
            async for message in subscription:
                self.log.append((time.monotonic(), message))

        self._task = asyncio.create_task(record())
        await until(lambda: all(k.state is LinkState.UP for k in self.links), "links up")

    async def stop(self) -> None:
        await self.session.stop()
        if self._task is not None:
            self._task.cancel()

    def battery_alert(self) -> Alert | None:
        engine = self.session.engine
        assert engine is not None and engine.processor is not None
        for alert in engine.processor.alerts.visible(engine.clock()):
            if alert.node == "ODC-07" and alert.severity != "stale":
                return alert
        return None

    def seen(self, kind: type, test: Callable[[Any], bool]) -> list[tuple[float, Any]]:
        return [(t, m) for t, m in self.log if isinstance(m, kind) and test(m)]


def station_agent(tmp_path: Path, mosquitto: Mosquitto, station: str) -> Agent:
    sim = {
        "speed": 1.0,  # real time: the consoles verify commands on the wall clock
        "start": datetime.now(UTC).isoformat(),
        "nodes": STATIONS[station],
        "gate": False,
        "faults": FAULT if STATIONS[station] == "ODC-07" else "",
    }
    return Agent(
        CONFIG,
        tmp_path / f"{station}.db",
        station,
        Broker("127.0.0.1", mosquitto.port, "agent", PASSWORDS["agent"]),
        sim=True,
        sim_options=sim,
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        poll_s=0.05,
    )


def test_two_agents_two_consoles(tmp_path: Path, mosquitto: Mosquitto) -> None:
    asyncio.run(two_agents_two_consoles(tmp_path, mosquitto))


async def two_agents_two_consoles(tmp_path: Path, mosquitto: Mosquitto) -> None:
    a = Console(tmp_path, mosquitto, "ops-a", "alice", "console")
    b = Console(tmp_path, mosquitto, "ops-b", "bob", "console")
    await a.start()
    await b.start()
    agents = [station_agent(tmp_path, mosquitto, s) for s in STATIONS]
    for agent in agents:
        await agent.start()
    try:
        for c in (a, b):
            for link, node in zip(c.links, STATIONS.values(), strict=True):
                await until(lambda k=link, n=node: k.in_contact(n), f"{node} reachable")
        assert a.session.commander is not None and b.session.operations is not None

        # a command from A, verified at A; every stage seen at B, in order, within 1 s
        outcome = await a.session.commander.issue("ODC-07 NOOP")
        await asyncio.wait_for(outcome.done.wait(), 30)
        assert outcome.stage == "completed", outcome.detail

        def stages(c: Console, origin: str) -> list[tuple[float, str]]:
            found = c.seen(
                CommandMessage, lambda m: m.origin == origin and m.command_id == outcome.command_id
            )
            return [(t, m.stage) for t, m in found]

        await until(lambda: "completed" in [s for _, s in stages(b, "ops-a")], "B: completed")
        at_a, at_b = stages(a, ""), stages(b, "ops-a")
        assert [s for _, s in at_b] == [s for _, s in at_a]
        assert at_a[0][1] == "queued" and at_a[-1][1] == "completed"
        delays = [tb - ta for (ta, _), (tb, _) in zip(at_a, at_b, strict=True)]
        assert max(delays) < WITHIN_S, delays

        # an alert raised at both, acknowledged at A: acknowledged at B within 1 s
        alert_a = await until(a.battery_alert, "the battery alert at A")
        alert_b = await until(b.battery_alert, "the battery alert at B")
        assert (alert_b.parameter, alert_b.raised_s) == (alert_a.parameter, alert_a.raised_s)
        await a.session.commander.acknowledge(alert_a.id, "battery test")
        shelf = a.session.engine.clock() + 600  # type: ignore[union-attr]
        await a.session.commander.shelve(alert_a.id, shelf)
        for action in ("acknowledged", "shelved"):
            mine = a.seen(AlertMessage, lambda m, x=action: m.change.action == x)
            theirs = await until(
                lambda x=action: b.seen(
                    AlertMessage, lambda m: m.change.action == x and m.origin == "ops-a"
                ),
                f"B: {action}",
            )
            assert theirs[0][0] - mine[0][0] < WITHIN_S
            change = theirs[0][1].change
            assert (change.alert.id, change.alert.parameter) == (alert_b.id, alert_b.parameter)
        engine_b = b.session.engine
        assert engine_b is not None and engine_b.processor is not None
        shelved = engine_b.processor.alerts.get(alert_b.id)
        assert shelved.acked_by == "alice@ops-a" and shelved.shelved_until_s == shelf
        visible = engine_b.processor.alerts.visible(engine_b.clock())
        assert alert_b.id not in [v.id for v in visible]  # shelved at B too

        # a time-tagged command waits in A's queue; B sees it and asks A to cancel it
        later = await a.session.commander.issue("ODC-08 NOOP", at=time.time() + 3600)
        await until(b.session.operations.queued, "A's queued command at B")
        b.session.operations.request_cancel("ops-a", later.command_id, "not needed")
        await asyncio.wait_for(later.done.wait(), 10)
        assert later.stage == "cancelled"
        await until(lambda: not b.session.operations.queued(), "B's view of A's queue empty")

        for agent in agents:
            await asyncio.wait_for(agent.drain(), 30)
        archived = sorted(
            r for s in STATIONS for r in rows(tmp_path / f"{s}.db", DOWN)
        )  # fmt: skip
        for c in (a, b):
            await until(
                lambda c=c: sum(k.counters.frames_in for k in c.links) >= len(archived),
                "every frame at each console",
            )
    finally:
        for agent in agents:
            await agent.stop()
        await b.stop()
        await a.stop()
    assert {r[1] for r in archived} == set(STATIONS.values())
    for c in (a, b):
        received = sorted(rows(c.archive, DOWN))
        assert received == archived  # both stations' frames, each exactly once
    audit = rows(a.archive, "SELECT operator FROM audit WHERE action = 'cancelled'")
    assert audit == [("bob@ops-b",)]
    notes = rows(b.archive, "SELECT text FROM events WHERE kind = 'remote-command'")
    assert any(f"ops-a#{outcome.command_id} ODC-07 NOOP: completed" in n[0] for n in notes)
    assert b.session.operations is None  # stopped with its session


def test_viewer_cannot_share_operations(tmp_path: Path, mosquitto: Mosquitto) -> None:
    asyncio.run(viewer_cannot_share_operations(tmp_path, mosquitto))


async def viewer_cannot_share_operations(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The broker's ACL drops a viewer's shared operations: an acknowledgement sent from
    a viewer-login console never reaches an operator's console."""
    from groundctl.operations import encode

    operator = Console(tmp_path, mosquitto, "ops-a", "alice", "console")
    viewer = Console(tmp_path, mosquitto, "ops-v", "vic", "viewer")
    await operator.start()
    await viewer.start()
    try:
        ours, theirs = operator.session.operations, viewer.session.operations
        assert ours is not None and theirs is not None
        assert await until(lambda: theirs.online.get("ops-a"), "the viewer reads ops-a's state")
        applied = ours.applied
        sent: Any = theirs.channel
        before = sent.sent
        body = {"action": "acknowledged", "node": "ODC-07", "parameter": "BATT_V",
                "raised": 0.0, "by": "vic", "time": 0.0}  # fmt: skip
        theirs.channel.send("alert", encode("alert", "ops-v", body))  # a tampered console
        await until(lambda: sent.sent > before, "the broker's PUBACK to the viewer")
        # the operator's own next document comes back to it after the viewer's would have
        mine: Any = ours.channel
        received = mine.received
        ours.channel.send("state", encode("state", "ops-a", {"online": True}))
        await until(lambda: mine.received > received, "the operator's own echo")
        assert ours.applied == applied and not ours._pending
        assert "ops-v" not in ours.online  # not even its online state got through
    finally:
        await viewer.stop()
        await operator.stop()


def test_command_hmac_holds_whatever_the_broker_lets_through(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: Any
) -> None:
    monkeypatch.setenv("GROUNDCTL_TEST_MQTT_KEY", "5a" * 32)
    asyncio.run(hmac_end_to_end(tmp_path, mosquitto))


async def hmac_end_to_end(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A node that requires signed commands, behind an agent: the console's signed NOOP
    is accepted; a forged one and a replay of the signed one, published on the up topic
    by a client the broker allows (its credentials stolen), reach the node and are
    rejected there."""
    import aiomqtt
    from groundctl_mqtt.wire import WireFrame, encode_frame

    from groundctl.commanding.auth import sign
    from groundctl.commanding.syntax import CommandLine, validate
    from groundctl.config import parse_config

    text = (
        demo_config_path()
        .read_text()
        .replace(
            "[nodes.ODC-07]\npriority = 5\n",
            '[nodes.ODC-07]\npriority = 5\nkey_env = "GROUNDCTL_TEST_MQTT_KEY"\n',
        )
    )
    assert "GROUNDCTL_TEST_MQTT_KEY" in text
    keyed = parse_config(text, demo_config_path())
    console = Console(tmp_path, mosquitto, "ops-a", "alice", "console")
    console.session.config = keyed  # it signs ODC-07's commands; no shared operations
    await console.start()
    agent = Agent(
        keyed, tmp_path / "GS-1.db", "GS-1",
        Broker("127.0.0.1", mosquitto.port, "agent", PASSWORDS["agent"]),
        sim=True, sim_options={"speed": 1.0, "start": datetime.now(UTC).isoformat(),
                               "nodes": "ODC-07", "gate": False},
        reconnect_min_s=0.05, reconnect_max_s=0.3, poll_s=0.05,
    )  # fmt: skip
    await agent.start()
    try:
        commander = console.session.commander
        assert commander is not None
        await until(lambda: console.links[0].in_contact("ODC-07"), "ODC-07 reachable")
        outcome = await commander.issue("ODC-07 NOOP")
        await asyncio.wait_for(outcome.done.wait(), 30)
        assert outcome.stage == "completed", outcome.detail
        sim: Any = agent.session.links[0]
        node = sim.fleet.nodes["ODC-07"]
        counted, failures = node.state.cmd_count, node.state.auth_failures
        [(signed,)] = rows(console.archive, "SELECT raw FROM commands WHERE command = 'NOOP'")
        noop = validate(CommandLine("ODC-07", "NOOP", {}), commander.mission_of("ODC-07")).packet
        forged = sign(noop, bytes(32), 10**6)
        async with aiomqtt.Client(
            "127.0.0.1", mosquitto.port, username="console", password=PASSWORDS["console"]
        ) as intruder:
            for seq, packet in enumerate((signed, forged), start=1):
                frame = WireFrame(packet, time.time(), "ODC-07", "x", "up", seq, "GS-1", "intruder")
                await intruder.publish("groundctl/station/GS-1/up", encode_frame(frame), qos=1)
        await until(lambda: node.state.auth_failures == failures + 2, "both rejected at the node")
        assert node.state.cmd_count == counted  # neither was executed
        assert agent.counters.commands_sent >= 3  # the agent passed all three on
    finally:
        await agent.stop()
        await console.stop()


def test_a_console_back_after_a_drop_is_online_again(tmp_path: Path, mosquitto: Mosquitto) -> None:
    asyncio.run(back_after_a_drop(tmp_path, mosquitto))


async def back_after_a_drop(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Console A's channel loses its connection (its socket shut down): the broker
    publishes A's last will (offline), B sees it; A reconnects and says it is online
    again, and B sees that too."""
    import socket

    a = Console(tmp_path, mosquitto, "ops-a", "alice", "console")
    b = Console(tmp_path, mosquitto, "ops-b", "bob", "console")
    await a.start()
    await b.start()
    try:
        ours, theirs = a.session.operations, b.session.operations
        assert ours is not None and theirs is not None
        await until(lambda: theirs.online.get("ops-a") is True, "B sees A online")
        channel: Any = ours.channel
        went: list[bool] = []
        original = theirs.deliver

        def deliver(kind: str, console: str, payload: bytes) -> None:
            original(kind, console, payload)
            if kind == "state" and console == "ops-a":
                went.append(bool(theirs.online.get("ops-a")))

        theirs.channel._deliver = deliver  # type: ignore[attr-defined]
        # the network drops A's connection: its TCP socket shut down under it (paho's
        # socket, reached through aiomqtt's client: no API offers a drop)
        sock = channel._client._client.socket()
        sock.shutdown(socket.SHUT_RDWR)
        await until(lambda: False in went, "A's last will at B")
        await until(lambda: went[-1] is True, "A online again at B")
        assert channel.connections >= 2
    finally:
        await b.stop()
        await a.stop()
