"""The station agent: a groundctl Session at a station, forwarding through a broker.

The agent runs a `Session` locally (the config's links, or the simulator), so everything
its nodes send is archived at the station first. A forwarder then publishes the archived
frames (direction down) in archive order, QoS 1, waiting for the broker's PUBACKs before
it moves its cursor (the last frame id forwarded, kept in ``ARCHIVE.mqtt.json``). A
broker outage or an agent restart therefore loses nothing: forwarding resumes after the
last acknowledged frame. Only a batch cut short by a failure is published again, and the
consoles drop those duplicates by their ``seq``.

Commands arrive on ``{prefix}/station/{station}/up``; each goes through the local link
that serves its node and is archived as sent. The agent's retained ``.../state`` says
online with its links and nodes; a last will (retained) says offline when it vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from groundctl.config import Config
from groundctl.links.base import Link, LinkError, LinkState
from groundctl.session import Session
from groundctl.telemetry.model import Frame
from groundctl_mqtt.broker import Broker, keep_connected
from groundctl_mqtt.link import PUBLISH_TIMEOUT_S, payload_bytes, sink_queue
from groundctl_mqtt.wire import (
    DEFAULT_PREFIX,
    WireError,
    WireFrame,
    decode_frame,
    encode_frame,
    encode_state,
    topic,
)

log = logging.getLogger("groundctl.mqtt.agent")

BATCH_FRAMES = 200  # frames published before the cursor is saved
POLL_S = 0.2  # how often the archive is read for new frames when there were none


def cursor_path(archive_path: Path) -> Path:
    """Where the forwarder keeps its cursor: next to the archive."""
    return archive_path.with_name(archive_path.name + ".mqtt.json")


@dataclass
class AgentCounters:
    forwarded: int = 0  # frames published and acknowledged
    republished: int = 0  # frames published again after a failure cut a batch short
    commands_received: int = 0
    commands_sent: int = 0
    commands_failed: int = 0
    duplicates: int = 0  # uplinks redelivered by the broker, dropped
    connections: int = 0
    errors: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    last_problem: str = ""


class Agent:
    """One station's agent. `await start()`, then `await stop()` (or `run_agent`)."""

    def __init__(
        self,
        config: Config,
        archive_path: str | Path,
        station: str,
        broker: Broker,
        *,
        prefix: str = DEFAULT_PREFIX,
        client_id: str = "",
        sim: bool | None = None,
        sim_options: Mapping[str, Any] | None = None,
        links: list[Link] | None = None,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        poll_s: float = POLL_S,
    ) -> None:
        self.station = station
        self.broker = broker
        self.prefix = prefix
        self.down_topic = topic(prefix, station, "down")
        self.up_topic = topic(prefix, station, "up")
        self.state_topic = topic(prefix, station, "state")
        self.client_id = client_id or f"groundctl-agent-{station}"
        self.archive_path = Path(archive_path)
        self.session = Session(
            config,
            self.archive_path,
            sim=sim,
            sim_options=sim_options,
            links=links,
            source="agent",
        )
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.poll_s = poll_s
        self.counters = AgentCounters()
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._uplinker: asyncio.Task[None] | None = None
        self._uplinks: asyncio.Queue[WireFrame] = asyncio.Queue()
        self._last_up: dict[str, int] = {}  # sender -> highest seq taken
        self._token = ""
        self._cursor = 0
        self._published = 0  # the highest frame id ever published (acknowledged or not)
        self._wake = asyncio.Event()
        self._stopping = False
        self._between_batches = asyncio.Event()  # set while no batch is being published
        self._between_batches.set()

    # --- life --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.session.start()
        self._token, self._cursor = await asyncio.to_thread(self._load_cursor)
        for link in self.session.links:
            link.on_state_change(self._link_changed)
        assert self.session.engine is not None
        self.session.engine.on_processed(lambda _: self._wake.set())
        self._uplinker = asyncio.create_task(self._uplink_forever(), name="agent-uplink")
        self._task = asyncio.create_task(self._broker_forever(), name="agent-broker")

    async def stop(self) -> None:
        """Let a batch being published finish (up to 5 s: its cursor is saved, so nothing
        is published twice), say offline (retained), disconnect, stop the session."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._between_batches.wait(), 5)
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(
                    self.state_topic, self._state("offline"), qos=1, retain=True, timeout=5
                )
        for task in (self._task, self._uplinker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._uplinker = None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)
        self._client = None
        await self.session.stop()

    async def drain(self) -> int:
        """Stop receiving (close the local links), commit the archive and wait until every
        archived frame is forwarded and acknowledged; return the last frame id forwarded.
        Waits through broker outages: bound it with `asyncio.wait_for`."""
        engine = self.session.engine
        assert engine is not None and engine.writer is not None, "call start() first"
        for name in list(engine.links):
            await engine.detach(name)
        await engine.writer.aflush()
        newest = await asyncio.to_thread(self._newest_down_id)
        while self._cursor < newest:
            self._wake.set()
            await asyncio.sleep(self.poll_s)
        return self._cursor

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- the cursor --------------------------------------------------------------------
    def _load_cursor(self) -> tuple[str, int]:
        path = cursor_path(self.archive_path)
        token, cursor = "", 0
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            saved = json.loads(path.read_text())
            token = str(saved["token"])
            cursor = int(saved["forwarded"].get(self.station, 0))
        newest = self._newest_id()
        if not token or cursor > newest:  # no cursor, or one left by another archive
            token, cursor = uuid.uuid4().hex, 0
            self._save_cursor_sync(token, cursor)
        return token, cursor

    def _save_cursor_sync(self, token: str, cursor: int) -> None:
        path = cursor_path(self.archive_path)
        forwarded: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
            saved = json.loads(path.read_text())
            if saved["token"] == token:
                forwarded = dict(saved["forwarded"])
        forwarded[self.station] = cursor
        temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"token": token, "forwarded": forwarded}) + "\n")
        os.replace(temporary, path)

    def _connect_archive(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.archive_path}?mode=ro", uri=True, timeout=30)

    def _newest_id(self) -> int:
        connection = self._connect_archive()
        try:
            row = connection.execute("SELECT coalesce(max(id), 0) FROM frames").fetchone()
            return int(row[0])
        finally:
            connection.close()

    def _newest_down_id(self) -> int:
        connection = self._connect_archive()
        try:
            row = connection.execute(
                "SELECT coalesce(max(id), 0) FROM frames WHERE direction = 'down'"
            ).fetchone()
            return int(row[0])
        finally:
            connection.close()

    def _read(self, after: int, count: int) -> list[tuple[int, float, str, str, bytes]]:
        connection = self._connect_archive()
        try:
            rows = connection.execute(
                "SELECT id, time, node, link, raw FROM frames "
                "WHERE id > ? AND direction = 'down' ORDER BY id LIMIT ?",
                (after, count),
            ).fetchall()
        finally:
            connection.close()
        return [(int(i), float(t), str(n), str(k), bytes(r)) for i, t, n, k, r in rows]

    # --- the broker --------------------------------------------------------------------
    def _state(self, agent: str) -> bytes:
        state: dict[str, Any] = {"agent": agent, "station": self.station, "time": time.time()}
        if agent == "online":
            nodes: set[str] = set()
            for link in self.session.links:
                fleet = getattr(link, "fleet", None)
                if fleet is not None and hasattr(fleet, "nodes"):
                    nodes.update(fleet.nodes)
                else:
                    nodes.add(link.node)
            state["links"] = {link.name: link.state.value for link in self.session.links}
            state["nodes"] = sorted(nodes)
        return encode_state(state)

    def _link_changed(self, link: Link, old: LinkState, new: LinkState) -> None:
        client = self._client
        if client is not None:
            task = asyncio.ensure_future(self._publish_state(client))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        await client.publish(self.state_topic, self._state("online"), qos=1, retain=True)

    def _problem(self, kind: str, text: str) -> None:
        self.counters.errors += 1
        self.counters.problems[kind] += 1
        self.counters.last_problem = text
        log.warning("agent %s: %s", self.station, text)

    async def _broker_forever(self) -> None:
        will = aiomqtt.Will(self.state_topic, self._state("offline"), qos=1, retain=True)

        def new_client() -> aiomqtt.Client:
            return self.broker.client(
                self.client_id,
                clean_session=True,
                will=will,
                sink=sink_queue(self._on_up),
                max_inflight=BATCH_FRAMES,  # a whole batch in flight, not 20 at a time
            )

        async def session(client: aiomqtt.Client) -> None:
            await client.subscribe(self.up_topic, qos=1)
            await self._publish_state(client)
            self._client = client
            self.counters.connections += 1
            self.connected.set()
            await self._connected(client)

        def dropped() -> None:
            self._client = None
            self.connected.clear()

        await keep_connected(
            None, new_client, session, self._problem, address=self.broker.address,
            min_s=self.reconnect_min_s, max_s=self.reconnect_max_s, dropped=dropped,
        )  # fmt: skip

    async def _connected(self, client: aiomqtt.Client) -> None:
        """Forward until the connection fails (raising what it failed with)."""

        async def disconnected() -> None:
            async for _ in client.messages:  # the sink takes them: this only waits
                pass

        tasks = [
            asyncio.create_task(self._forward(client), name="agent-forward"),
            asyncio.create_task(disconnected(), name="agent-watch"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    async def _forward(self, client: aiomqtt.Client) -> None:
        """Publish the archive's frames after the cursor, a batch at a time; the cursor
        moves (and is saved) once every frame of the batch is acknowledged."""
        while True:
            if self._stopping:
                await asyncio.Future()  # until cancelled
            rows = await asyncio.to_thread(self._read, self._cursor, BATCH_FRAMES)
            if not rows:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                continue
            self._between_batches.clear()
            try:
                await self._publish_batch(client, rows)
            finally:
                self._between_batches.set()

    async def _publish_batch(
        self, client: aiomqtt.Client, rows: list[tuple[int, float, str, str, bytes]]
    ) -> None:
        """Publish one batch, wait for every PUBACK, then move and save the cursor."""
        payloads = [
            encode_frame(WireFrame(raw, t, node, link, "down", frame_id, self.station, self._token))
            for frame_id, t, node, link, raw in rows
        ]
        self.counters.republished += sum(1 for row in rows if row[0] <= self._published)
        self._published = max(self._published, rows[-1][0])
        publishing = [
            asyncio.create_task(
                client.publish(self.down_topic, p, qos=1, timeout=PUBLISH_TIMEOUT_S)
            )
            for p in payloads
        ]
        try:
            await asyncio.gather(*publishing)
        except BaseException:
            for task in publishing:
                task.cancel()
            await asyncio.gather(*publishing, return_exceptions=True)
            raise
        last = rows[-1][0]
        self.counters.forwarded += len(rows)
        self._cursor = last
        await asyncio.to_thread(self._save_cursor_sync, self._token, last)

    # --- commands ----------------------------------------------------------------------
    def _on_up(self, message: aiomqtt.Message) -> None:
        try:
            wire = decode_frame(payload_bytes(message))
        except WireError as error:
            self._problem("uplink", f"{self.up_topic}: not sent: {error}")
            return
        if wire.direction != "up":
            self._problem("uplink", f"{self.up_topic}: not sent: a {wire.direction} frame")
            return
        if wire.source and wire.seq <= self._last_up.get(wire.source, -1):
            self.counters.duplicates += 1
            return
        if wire.source:
            self._last_up[wire.source] = wire.seq
        self.counters.commands_received += 1
        self._uplinks.put_nowait(wire)

    def link_for(self, node: str) -> Link | None:
        commander = self.session.commander
        link = commander.link_for(node) if commander is not None else None
        if link is not None:
            return link
        return next((link for link in self.session.links if link.serves(node)), None)

    async def _uplink_forever(self) -> None:
        while True:
            wire = await self._uplinks.get()
            link = self.link_for(wire.node)
            if link is None:
                self.counters.commands_failed += 1
                self._problem("uplink", f"no link of station {self.station} reaches {wire.node}")
                continue
            try:
                await link.send(wire.raw, wire.node)
            except LinkError as error:
                self.counters.commands_failed += 1
                self._problem("uplink", f"{wire.node}: not sent: {error.message}")
                continue
            self.counters.commands_sent += 1
            engine = self.session.engine
            if engine is not None:
                await engine.sent(Frame(wire.raw, link.clock(), link.name, wire.node, "up"))


async def run_agent(
    config: Config,
    archive_path: str | Path,
    station: str,
    broker: Broker,
    *,
    stop: asyncio.Event,
    prefix: str = DEFAULT_PREFIX,
    client_id: str = "",
    sim: bool | None = None,
    sim_options: Mapping[str, Any] | None = None,
) -> Agent:
    """Run a station agent until `stop` is set; return it (its counters) once stopped."""
    agent = Agent(
        config,
        archive_path,
        station,
        broker,
        prefix=prefix,
        client_id=client_id,
        sim=sim,
        sim_options=sim_options,
    )
    async with agent:
        await stop.wait()
    return agent
