"""Shared operations over the broker: the channel `groundctl.operations` uses to tell the
other consoles what this one did (alert acknowledgements and shelving, command stages,
its queue) and to hear what they did.

Topics, under the link's prefix (``{console}`` is each console's [operations] name):

- ``{prefix}/ops/{console}/alert`` and ``.../command``: QoS 1, not retained, in order;
- ``{prefix}/ops/{console}/queue``: QoS 1, retained: the console's whole queue;
- ``{prefix}/ops/{console}/alerts``: QoS 1, retained: its recent alert actions;
- ``{prefix}/ops/{console}/state``: QoS 1, retained: online/offline (offline is also the
  last will; online is published again on every reconnection);
- ``{prefix}/ops/{console}/request/{sender}``: QoS 1: a request for `console`.

The channel's client connects with a persistent session (client id: the link's, plus
``-ops``), so documents published while a console was away are delivered when it is back.
What this console publishes while the broker is away waits, in order, in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable

import aiomqtt

from groundctl.links.base import LinkError, cancel
from groundctl.operations import RETAINED
from groundctl_mqtt.broker import Broker, first_connection, keep_connected
from groundctl_mqtt.link import PUBLISH_TIMEOUT_S, payload_bytes, sink_queue
from groundctl_mqtt.wire import OPS_KINDS, ops_topic, parse_ops_topic

CLOSE_FLUSH_S = 3.0  # how long close() waits for queued documents to reach the broker


class MqttOperationsChannel:
    """`groundctl.operations.OperationsChannel` over an MQTT broker."""

    def __init__(
        self,
        name: str,
        broker: Broker,
        prefix: str,
        client_id: str,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
    ) -> None:
        self.name = name  # the link it shares the broker with, for messages
        self.broker = broker
        self.prefix = prefix
        self.client_id = client_id
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.console = ""
        self.connections = 0
        self.sent = 0
        self.received = 0
        self.ignored = 0  # messages on topics that are not shared-operations ones
        self.last_problem = ""
        self._deliver: Callable[[str, str, bytes], None] | None = None
        self._outbox: deque[tuple[str, bytes, bool]] = deque()
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._online: bytes | None = None  # the "online" state, republished on reconnect

    async def open(self, console: str, deliver: Callable[[str, str, bytes], None]) -> None:
        """Start; LinkError when the broker refuses the login. A broker that is not there
        yet is retried in the background (documents wait in order)."""
        try:
            ops_topic(self.prefix, console, "state")
        except ValueError as error:
            raise LinkError(f"[operations] console: {error}") from None
        self.console = console
        self._deliver = deliver
        who = f"shared operations (link {self.name})"
        connected, failure = await first_connection(self._new_client(), who, self.broker.address)
        if failure is not None:
            self.last_problem = f"cannot connect to {self.broker.address}: {failure}"
        self._task = asyncio.create_task(self._forever(connected), name="operations-mqtt")
        if connected is not None:  # subscribed before anything is published
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), 5)

    def send(self, kind: str, payload: bytes, to: str = "") -> None:
        if kind == "state":
            self._online = payload if b'"online":true' in payload else None
        if kind == "request":
            topic = ops_topic(self.prefix, to, "request", self.console)
        else:
            topic = ops_topic(self.prefix, self.console, kind)
        retained = kind in RETAINED
        if retained:  # current state: only the newest one waiting matters
            self._outbox = deque(item for item in self._outbox if item[0] != topic)
        self._outbox.append((topic, payload, retained))
        self._wake.set()

    async def close(self) -> None:
        """Send what is waiting (at most CLOSE_FLUSH_S), then disconnect."""
        end = asyncio.get_running_loop().time() + CLOSE_FLUSH_S
        while self._outbox and self._client is not None:
            if asyncio.get_running_loop().time() > end:
                break
            await asyncio.sleep(0.01)  # the sender is publishing them
        await cancel(self._task)
        self._task = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)

    # --- the connection ----------------------------------------------------------------------
    def _new_client(self) -> aiomqtt.Client:
        offline = json.dumps(
            {"v": 1, "kind": "state", "console": self.console, "online": False},
            separators=(",", ":"),
        ).encode()
        will = aiomqtt.Will(ops_topic(self.prefix, self.console, "state"), offline, 1, True)
        return self.broker.client(
            self.client_id, clean_session=False, will=will, sink=sink_queue(self._on_message)
        )

    def _on_message(self, message: aiomqtt.Message) -> None:
        try:
            kind, console = parse_ops_topic(self.prefix, str(message.topic))
        except ValueError:
            self.ignored += 1
            return
        self.received += 1
        if self._deliver is not None:
            self._deliver(kind, console, payload_bytes(message))

    async def _forever(self, connected: aiomqtt.Client | None) -> None:
        def problem(_kind: str, text: str) -> None:
            self.last_problem = text

        def dropped() -> None:
            self._client = None
            self._connected.clear()

        await keep_connected(
            connected, self._new_client, self._session, problem,
            address=self.broker.address, min_s=self.reconnect_min_s,
            max_s=self.reconnect_max_s, dropped=dropped,
        )  # fmt: skip

    async def _session(self, client: aiomqtt.Client) -> None:
        for kind in OPS_KINDS:
            await client.subscribe(f"{self.prefix}/ops/+/{kind}", qos=1)
        await client.subscribe(ops_topic(self.prefix, self.console, "request"), qos=1)
        if self.connections and self._online is not None:
            # back after a drop: the broker published our last will (offline) meanwhile
            state = ops_topic(self.prefix, self.console, "state")
            self._outbox = deque(item for item in self._outbox if item[0] != state)
            self._outbox.appendleft((state, self._online, True))
        self._client = client
        self.connections += 1
        self._connected.set()
        sender = asyncio.create_task(self._send_forever(client), name="operations-send")
        try:
            async for _ in client.messages:  # the sink handles each; this waits for a drop
                pass
        finally:
            await cancel(sender)

    async def _send_forever(self, client: aiomqtt.Client) -> None:
        """Publish the outbox in order; a document leaves it once the broker has it."""
        while True:
            while not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            item = self._outbox[0]
            topic, payload, retain = item
            try:
                await client.publish(
                    topic, payload, qos=1, retain=retain, timeout=PUBLISH_TIMEOUT_S
                )
            except (TimeoutError, aiomqtt.MqttError) as error:
                self.last_problem = f"publish to {topic}: {error}"
                return  # the connection is going; the next one sends it
            # (the outbox may have changed meanwhile: a newer retained document replaces
            # the one waiting, or this one)
            with contextlib.suppress(ValueError):
                self._outbox.remove(item)
            self.sent += 1
