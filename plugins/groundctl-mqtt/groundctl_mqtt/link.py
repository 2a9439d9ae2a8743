"""The MQTT link: a console's view of one station agent through a broker.

Downlink: frames the agent forwards on ``{prefix}/station/{station}/down`` (QoS 1,
persistent session under a stable client id, so frames published while the console was
away are delivered when it is back). Each keeps the node and receive time of its header; a
redelivery (QoS 1 is at least once) is dropped by its ``seq``, the agent archive's frame id.
A payload that is not a frame is still delivered, as received, and counted as an error.
Uplink: each packet is published on ``.../up`` with QoS 1 and `send` returns once the
broker has acknowledged it. The agent's retained ``.../state`` says whether it is online
and which nodes it reaches. After a drop the link reconnects with backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiomqtt

from groundctl.links.base import Link, LinkError, LinkOption, LinkState, cancel
from groundctl.telemetry.model import Frame
from groundctl_mqtt.broker import (
    Broker,
    broker_from_options,
    default_client_id,
    first_connection,
    keep_connected,
)
from groundctl_mqtt.wire import (
    DEFAULT_PREFIX,
    WireError,
    WireFrame,
    decode_frame,
    decode_state,
    encode_frame,
    topic,
)

PUBLISH_TIMEOUT_S = 10.0


def sink_queue(handle: Callable[[aiomqtt.Message], None]) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class for aiomqtt whose `put_nowait` hands each message to `handle` at
    once, in paho's callback (before the PUBACK goes out): nothing received is left in
    a client's queue when its connection drops."""

    class Sink(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            handle(item)

    return Sink


def payload_bytes(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return b"" if payload is None else str(payload).encode()


class MqttLink(Link):
    """A station agent's frames through an MQTT broker; commands back the same way."""

    DESCRIPTION = (
        "a station agent's frames through an MQTT broker (groundctl-mqtt): QoS 1, "
        "persistent session, duplicates dropped"
    )
    OPTIONS = (
        LinkOption("broker", str, "127.0.0.1:1883", "HOST[:PORT] of the MQTT broker"),
        LinkOption("station", str, None, "the station (agent) whose frames to receive"),
        LinkOption("prefix", str, DEFAULT_PREFIX, "topic prefix"),
        LinkOption("client_id", str, "", "MQTT client id; empty: groundctl-LINK-HOSTNAME"),
        LinkOption("username", str, "", "broker user name"),
        LinkOption("password_env", str, "", "environment variable holding the password"),
        LinkOption("password_file", str, "", "file holding the password"),
        LinkOption("tls", bool, False, "connect with TLS (default port 8883)"),
        LinkOption("ca_file", str, "", "CA certificates to verify the broker (PEM)"),
        LinkOption("cert_file", str, "", "client certificate for mutual TLS (PEM)"),
        LinkOption("key_file", str, "", "the client certificate's key (PEM)"),
        LinkOption("keepalive_s", int, 30, "MQTT keepalive, seconds"),
        LinkOption("reconnect_min_s", float, 0.5, "first wait before reconnecting"),
        LinkOption("reconnect_max_s", float, 30.0, "longest wait between reconnections"),
    )

    def __init__(self, name: str, node: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, node, options)
        o = self.options
        self.broker: Broker = broker_from_options(
            name,
            o["broker"],
            username=o["username"],
            password_env=o["password_env"],
            password_file=o["password_file"],
            tls=o["tls"],
            ca_file=o["ca_file"],
            cert_file=o["cert_file"],
            key_file=o["key_file"],
            keepalive_s=o["keepalive_s"],
        )
        self.station: str = o["station"]
        self.prefix: str = o["prefix"]
        try:
            self.down_topic = topic(self.prefix, self.station, "down")
            self.up_topic = topic(self.prefix, self.station, "up")
            self.state_topic = topic(self.prefix, self.station, "state")
        except ValueError as error:
            raise LinkError(f"link {name}: {error}") from None
        self.client_id: str = o["client_id"] or default_client_id(name)
        low, high = o["reconnect_min_s"], o["reconnect_max_s"]
        if not 0 < low <= high:
            raise LinkError(
                f"link {name}: options 'reconnect_min_s' and 'reconnect_max_s' must satisfy "
                f"0 < reconnect_min_s <= reconnect_max_s, found {low:g} and {high:g}"
            )
        self.problems: Counter[str] = Counter()  # received payloads with a problem, by kind
        self.last_problem = ""
        self.duplicates = 0  # redeliveries dropped
        self.connections = 0
        self.agent: dict[str, Any] = {}  # the agent's last retained state
        self._last_seq: dict[tuple[str, str], int] = {}  # (station, src) -> highest seq
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._sender = f"{self.client_id}-{os.getpid()}-{int(time.time() * 1000)}"
        self._sent_seq = 0

    # --- the contract ----------------------------------------------------------------
    async def open(self) -> None:
        """Connect to the broker: UP once subscribed. A broker that refuses the login is a
        LinkError; one that is not there yet leaves the link CONNECTING, retrying."""
        self._set_state(LinkState.CONNECTING)
        try:
            connected, error = await first_connection(
                self._new_client(), f"link {self.name}", self.broker.address
            )
        except LinkError:
            self.counters.errors += 1
            self._set_state(LinkState.CLOSED)
            raise
        if error is not None:
            self._problem("connect", f"cannot connect to {self.broker.address}: {error}")
        self._task = asyncio.create_task(self._client_forever(connected), name=f"link-{self.name}")

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)
        self._queue.put_nowait(None)
        self._set_state(LinkState.CLOSED)

    def serves(self, node: str) -> bool:
        """The link's node, and every node the agent says it reaches."""
        return node == self.node or node in self.agent.get("nodes", ())

    def in_contact(self, node: str) -> bool:
        """Up, and the agent online (its retained state says so)."""
        return super().in_contact(node) and self.agent.get("agent") == "online"

    async def send(self, data: bytes, node: str | None = None) -> None:
        """Publish one packet for `node` to the agent (QoS 1), returning once the broker
        has it. LinkError when not connected, the agent is offline or the broker does not
        acknowledge it in time."""
        target = node or self.node
        client = self._client
        if client is None or self.state is not LinkState.UP:
            raise LinkError(f"link {self.name} is {self.state.value}: nothing was sent")
        if not data:
            raise LinkError(f"link {self.name}: an empty packet is not sent")
        if self.agent.get("agent") == "offline":
            raise LinkError(
                f"link {self.name}: station {self.station}'s agent is offline: nothing was sent"
            )
        self._sent_seq += 1
        payload = encode_frame(
            WireFrame(data, time.time(), target, self.name, "up", self._sent_seq, self.station,
                      self._sender)
        )  # fmt: skip
        try:
            await client.publish(self.up_topic, payload, qos=1, timeout=PUBLISH_TIMEOUT_S)
        except (TimeoutError, aiomqtt.MqttError) as error:
            self.counters.errors += 1
            raise LinkError(f"link {self.name}: send failed: {error}") from None
        self._count_sent(data)

    def _receive(self) -> AsyncIterator[bytes]:
        async def raw() -> AsyncIterator[bytes]:
            async for frame in self.frames():
                yield frame.raw

        return raw()

    async def frames(self) -> AsyncIterator[Frame]:
        """Frames with the node and receive time the agent archived, counted."""
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            self.counters.frames_in += 1
            self.counters.bytes_in += len(frame.raw)
            self.counters.last_receive_s = time.time()
            yield frame

    def operations_channel(self, console: str) -> Any:
        """The channel for shared operations ([operations] link = this link): the same
        broker and login, its own client (id: this link's plus ``-ops``)."""
        from groundctl_mqtt.operations import MqttOperationsChannel

        return MqttOperationsChannel(
            self.name,
            self.broker,
            self.prefix,
            f"{self.client_id}-ops",
            self.options["reconnect_min_s"],
            self.options["reconnect_max_s"],
        )

    # --- receiving ---------------------------------------------------------------------
    def _on_message(self, message: aiomqtt.Message) -> None:
        payload = payload_bytes(message)
        if message.topic.matches(self.state_topic):
            try:
                self.agent = decode_state(payload)
            except WireError as error:
                self._problem("state", f"{self.state_topic}: {error}")
            return
        try:
            wire = decode_frame(payload)
        except WireError as error:
            # delivered as received: the pipeline archives it as malformed
            self._problem("payload", f"{self.down_topic}: {error}")
            self._queue.put_nowait(Frame(payload, time.time(), self.name, self.node, "down"))
            return
        key = (wire.station, wire.source)
        if wire.seq <= self._last_seq.get(key, -1):
            self.duplicates += 1
            return
        self._last_seq[key] = wire.seq
        self._queue.put_nowait(Frame(wire.raw, wire.time_s, self.name, wire.node, "down"))

    def _problem(self, kind: str, text: str) -> None:
        self.counters.errors += 1
        self.problems[kind] += 1
        self.last_problem = text

    # --- the connection ------------------------------------------------------------------
    def _new_client(self) -> aiomqtt.Client:
        return self.broker.client(
            self.client_id, clean_session=False, sink=sink_queue(self._on_message)
        )

    async def _client_forever(self, connected: aiomqtt.Client | None) -> None:
        def failed() -> None:
            self._set_state(LinkState.DOWN if self.connections else LinkState.CONNECTING)

        def dropped() -> None:
            self._client = None
            self._set_state(LinkState.DOWN)

        await keep_connected(
            connected, self._new_client, self._session, self._problem,
            address=self.broker.address, min_s=self.options["reconnect_min_s"],
            max_s=self.options["reconnect_max_s"], failed=failed, dropped=dropped,
        )  # fmt: skip

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.down_topic, qos=1)
        await client.subscribe(self.state_topic, qos=1)
        self._client = client
        self.connections += 1
        self._set_state(LinkState.UP)
        # the sink handles every message; this only waits for the disconnection
        async for _ in client.messages:
            pass
