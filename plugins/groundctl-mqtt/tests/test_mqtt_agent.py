"""A station agent and a console through a real mosquitto: every frame the agent archived
reaches the console's archive exactly once, through a broker restart; commands reach the
simulated node; bad passwords and read-only users are refused."""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from groundctl_mqtt import MqttLink
from groundctl_mqtt.agent import Agent, cursor_path
from groundctl_mqtt.broker import Broker
from groundctl_mqtt.wire import WireFrame, decode_state, encode_frame
from mqtt_testbroker import PASSWORDS, Mosquitto

from groundctl.commanding.syntax import CommandLine, validate
from groundctl.config import demo_config_path, load_config
from groundctl.links.base import LinkError, LinkState
from groundctl.links.registry import discover
from groundctl.session import Session

CONFIG = load_config(demo_config_path())
NODES = "ODC-07,ODC-08"
SIM = {"speed": 300.0, "start": "2026-11-24T03:00:00+00:00", "nodes": NODES, "gate": False}
STATION = "GS-1"
DOWN = "SELECT time, node, raw FROM frames WHERE direction = 'down' ORDER BY id"


def aio(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return run


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def until(predicate: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    end = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return result


def agent_broker(mosquitto: Mosquitto) -> Broker:
    return Broker("127.0.0.1", mosquitto.port, "agent", PASSWORDS["agent"])


def console_link(
    tmp_path: Path, mosquitto: Mosquitto, user: str = "console", password: str = "", **extra: Any
) -> MqttLink:
    secret = tmp_path / f"{user}.password"
    secret.write_text((password or PASSWORDS[user]) + "\n")
    options = {
        "broker": mosquitto.address,
        "station": STATION,
        "username": user,
        "password_file": str(secret),
        "client_id": f"test-{user}",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
        **extra,
    }
    return MqttLink("gs1", "fleet", options)


def new_agent(tmp_path: Path, mosquitto: Mosquitto, **sim: Any) -> Agent:
    return Agent(
        CONFIG,
        tmp_path / "agent.db",
        STATION,
        agent_broker(mosquitto),
        sim=True,
        sim_options={**SIM, **sim},
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        poll_s=0.05,
    )


def watch(link: MqttLink) -> tuple[asyncio.Event, asyncio.Event]:
    up, down = asyncio.Event(), asyncio.Event()

    def changed(_: object, old: LinkState, new: LinkState) -> None:
        if new is LinkState.UP:
            up.set()
        elif new is LinkState.DOWN:
            down.set()

    link.on_state_change(changed)
    return up, down


@aio
async def test_every_frame_exactly_once(tmp_path: Path, mosquitto: Mosquitto) -> None:
    link = console_link(tmp_path, mosquitto)
    up, _ = watch(link)
    console = Session(CONFIG, tmp_path / "console.db", links=[link])
    await console.start()
    await asyncio.wait_for(up.wait(), 5)
    agent = new_agent(tmp_path, mosquitto)
    await agent.start()
    try:
        await until(lambda: agent.counters.forwarded >= 100, "100 frames forwarded")
        await until(lambda: link.agent.get("agent") == "online", "the agent's state")
        assert set(NODES.split(",")) <= set(link.agent["nodes"])
        assert link.serves("ODC-07") and link.in_contact("ODC-07")
        last = await asyncio.wait_for(agent.drain(), 20)
        archived = rows(tmp_path / "agent.db", DOWN)
        assert len(archived) >= 100
        await until(lambda: link.counters.frames_in >= len(archived), "every frame")
    finally:
        await agent.stop()
        await console.stop()
    assert rows(tmp_path / "console.db", DOWN) == archived
    assert link.duplicates == 0 and link.counters.errors == 0
    assert cursor_path(tmp_path / "agent.db").is_file()
    assert str(last) in cursor_path(tmp_path / "agent.db").read_text()
    # the agent said offline (retained) as it stopped; frames decode as on the station
    statuses = rows(tmp_path / "console.db", "SELECT DISTINCT status FROM frames")
    assert ("ok",) in statuses


@aio
async def test_broker_restart_loses_nothing_duplicates_nothing(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    link = console_link(tmp_path, mosquitto)
    up, down = watch(link)
    console = Session(CONFIG, tmp_path / "console.db", links=[link])
    await console.start()
    await asyncio.wait_for(up.wait(), 5)
    agent = new_agent(tmp_path, mosquitto)
    await agent.start()
    try:
        await until(lambda: link.counters.frames_in >= 50, "frames before the outage")
        await asyncio.to_thread(mosquitto.stop)  # mid-stream
        await asyncio.wait_for(down.wait(), 10)
        await until(lambda: not agent.connected.is_set(), "the agent to notice")
        up.clear()
        during = link.counters.frames_in
        await asyncio.sleep(0.5)  # the station keeps receiving and archiving meanwhile
        await asyncio.to_thread(mosquitto.start)
        await asyncio.wait_for(up.wait(), 10)
        await asyncio.wait_for(agent.connected.wait(), 10)
        await until(lambda: link.counters.frames_in > during + 50, "frames after the outage")
        await asyncio.wait_for(agent.drain(), 20)
        archived = rows(tmp_path / "agent.db", DOWN)
        await until(lambda: link.counters.frames_in >= len(archived), "every frame")
    finally:
        await agent.stop()
        await console.stop()
    received = rows(tmp_path / "console.db", DOWN)
    assert len(received) == len(set(received)) == len(archived)
    assert received == archived
    assert link.connections >= 2 and agent.counters.connections >= 2


@aio
async def test_agent_restart_resumes_after_its_cursor(tmp_path: Path, mosquitto: Mosquitto) -> None:
    link = console_link(tmp_path, mosquitto)
    up, _ = watch(link)
    console = Session(CONFIG, tmp_path / "console.db", links=[link])
    await console.start()
    await asyncio.wait_for(up.wait(), 5)
    try:
        first = new_agent(tmp_path, mosquitto)
        await first.start()
        await until(lambda: first.counters.forwarded >= 50, "frames from the first run")
        await first.stop()  # not drained: what it archived last is not forwarded yet
        await until(lambda: link.agent.get("agent") == "offline", "the agent's offline state")
        assert not link.in_contact("ODC-07")
        with pytest.raises(LinkError, match="agent is offline"):
            await link.send(b"\x18\x00", "ODC-07")
        second = new_agent(tmp_path, mosquitto, start="2026-11-24T04:00:00+00:00")
        await second.start()
        try:
            await asyncio.wait_for(second.drain(), 20)
        finally:
            await second.stop()
        archived = rows(tmp_path / "agent.db", DOWN)
        await until(lambda: link.counters.frames_in >= len(archived), "every frame")
    finally:
        await console.stop()
    assert rows(tmp_path / "console.db", DOWN) == archived
    assert second.counters.forwarded < len(archived)  # it resumed: it did not start over
    assert link.duplicates == 0


@aio
async def test_command_reaches_the_node(tmp_path: Path, mosquitto: Mosquitto) -> None:
    link = console_link(tmp_path, mosquitto)
    up, _ = watch(link)
    console = Session(CONFIG, tmp_path / "console.db", links=[link])
    await console.start()
    await asyncio.wait_for(up.wait(), 5)
    agent = new_agent(tmp_path, mosquitto, speed=20.0)
    await agent.start()
    try:
        await until(lambda: link.in_contact("ODC-07"), "the agent online")
        sim = agent.session.links[0]
        node = sim.fleet.nodes["ODC-07"]  # type: ignore[attr-defined]
        before = node.state.cmd_count
        packet = validate(
            CommandLine("ODC-07", "NOOP", {}), console.commander.mission_of("ODC-07")
        ).packet
        await link.send(packet, "ODC-07")
        await until(lambda: node.state.cmd_count == before + 1, "the NOOP counted by the node")
        assert agent.counters.commands_sent == 1
        await until(
            lambda: rows(
                tmp_path / "console.db",
                "SELECT text FROM events WHERE text LIKE 'NOOP received, ODC-07 ok%'",
            ),
            "the node's NOOP event, downlinked to the console",
        )
        await asyncio.wait_for(agent.drain(), 20)
    finally:
        await agent.stop()
        await console.stop()
    sent = rows(tmp_path / "agent.db", "SELECT node, raw FROM frames WHERE direction = 'up'")
    assert sent == [("ODC-07", packet)]
    assert link.counters.frames_out == 1


@aio
async def test_wrong_password_is_refused(tmp_path: Path, mosquitto: Mosquitto) -> None:
    link = console_link(tmp_path, mosquitto, password="wrong")
    with pytest.raises(LinkError) as caught:
        await link.open()
    assert "refused the connection" in caught.value.message
    assert "wrong user name or password" in caught.value.message
    assert "username" in caught.value.hint
    assert link.state is LinkState.CLOSED
    await link.close()


@aio
async def test_viewer_cannot_command(tmp_path: Path, mosquitto: Mosquitto) -> None:
    agent = new_agent(tmp_path, mosquitto, speed=20.0)
    await agent.start()
    viewer = console_link(tmp_path, mosquitto, user="viewer")
    console = console_link(tmp_path, mosquitto, client_id="test-console-2")
    try:
        for link in (viewer, console):
            up, _ = watch(link)
            await link.open()
            await asyncio.wait_for(up.wait(), 5)
        await until(lambda: viewer.in_contact("ODC-07"), "the viewer sees the agent's state")
        mission = load_mission_default()
        noop = validate(CommandLine("ODC-07", "NOOP", {}), mission).packet
        # mosquitto acknowledges a QoS 1 publish it is not allowed to pass on, and drops it
        await viewer.send(noop, "ODC-07")
        await console.send(noop, "ODC-07")  # after the viewer's, from an allowed user
        await until(lambda: agent.counters.commands_received >= 1, "the console's command")
        await until(lambda: agent.counters.commands_sent >= 1, "the console's command sent")
        assert agent.counters.commands_received == 1
        # the viewer still reads frames
        frame = await asyncio.wait_for(anext(aiter(viewer.frames())), 10)
        assert frame.node in NODES.split(",")
    finally:
        await viewer.close()
        await console.close()
        await agent.stop()


def load_mission_default() -> Any:
    from groundctl.mdb.loader import load_mission
    from groundctl.paths import data_dir

    return load_mission(data_dir() / "missions" / "odc-node.toml")


@aio
async def test_malformed_payload_is_delivered(tmp_path: Path, mosquitto: Mosquitto) -> None:
    link = console_link(tmp_path, mosquitto)
    up, _ = watch(link)
    await link.open()
    await asyncio.wait_for(up.wait(), 5)
    good = encode_frame(
        WireFrame(b"\x01\x02", 1795000000.5, "ODC-07", "sim", "down", 7, STATION, "t")
    )
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, username="agent",
                              password=PASSWORDS["agent"]) as publisher:  # fmt: skip
        topic = f"groundctl/station/{STATION}/down"
        for payload in (good, b"not a frame", good):  # the second good one: a redelivery
            await publisher.publish(topic, payload, qos=1)
        await publisher.publish(f"groundctl/station/{STATION}/state", b'{"agent":"online"}',
                                qos=1, retain=True)  # fmt: skip
    frames = []
    async for frame in link.frames():
        frames.append(frame)
        if len(frames) == 2:
            break
    await link.close()
    assert (frames[0].raw, frames[0].time_s, frames[0].node) == (
        b"\x01\x02",
        1795000000.5,
        "ODC-07",
    )
    assert frames[1].raw == b"not a frame" and frames[1].node == "fleet"
    assert link.counters.errors == 1 and link.problems["payload"] == 1
    assert "expected the magic b'GCF1'" in link.last_problem
    assert link.duplicates == 1
    assert decode_state(b'{"agent":"online"}') == link.agent


def test_discovered() -> None:
    adapters, broken = discover()
    assert adapters["mqtt"] is MqttLink
    assert not [b for b in broken if b.name == "mqtt"]
    eps = importlib.metadata.entry_points(group="groundctl.commands")
    assert "agent" in [ep.name for ep in eps]


def test_agent_command_help() -> None:
    from click.testing import CliRunner
    from groundctl_mqtt.cli import agent

    result = CliRunner().invoke(agent, ["--help"])
    assert result.exit_code == 0
    assert "--station" in result.output and "--broker" in result.output
