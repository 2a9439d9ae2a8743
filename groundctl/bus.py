"""The in-process bus: typed messages from the engine to whoever listens.

Publishing never waits and never fails because of a subscriber. Each subscriber picks a
delivery mode:

- `all`: every message, in order, in a bounded queue; when the subscriber falls behind
  by `maxsize` messages the oldest are dropped and counted in `dropped` (a log pane);
- `latest`: messages are coalesced by a key (for samples: node and parameter), so a slow
  consumer such as a UI redrawing ten times a second gets the newest value of everything
  that changed, never a backlog.

Messages are plain frozen dataclasses defined here and in groundctl.telemetry.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal

from groundctl.telemetry.alerts import AlertChange
from groundctl.telemetry.model import Event, Sample


@dataclass(frozen=True)
class SampleMessage:
    sample: Sample


@dataclass(frozen=True)
class EventMessage:
    event: Event


@dataclass(frozen=True)
class AlertMessage:
    """An alert changed; `origin` names the console whose operator acknowledged or
    shelved it ('' for this one; groundctl.operations)."""

    change: AlertChange
    origin: str = ""


@dataclass(frozen=True)
class FrameMessage:
    """A frame went through the pipeline (status ok, malformed, unknown...)."""

    node: str
    link: str
    packet: str | None
    status: str
    length: int
    time_s: float


@dataclass(frozen=True)
class LinkStateMessage:
    """A link changed state (closed, connecting, up, degraded, down)."""

    link: str
    node: str
    old: str
    new: str
    time_s: float


@dataclass(frozen=True)
class CommandMessage:
    """A command reached a stage (queued, released, sent, accepted, completed, failed,
    timeout, cancelled, edited); `time_s` on the engine's clock. `origin` names the
    console that sent it ('' for this one; groundctl.operations)."""

    command_id: int
    node: str
    text: str
    stage: str
    time_s: float
    detail: str = ""
    release_at: float | None = None
    origin: str = ""


@dataclass(frozen=True)
class StationMessage:
    """A station's antenna and radio at one tracking update (`time_s`, engine clock).

    `phase`: idle, prepositioning, tracking, parking. The node's true direction
    (`node_az`/`node_el`), the position commanded this update (`target_*`, None when
    none was sent), the position read back (`actual_*`), the pointing error between the
    two directions that matter (read back vs the node), and the radio's frequencies
    (`*_hz`, the ones set; `tuned`: True when they were set this update).
    """

    station: str
    node: str
    phase: str
    time_s: float
    node_az: float | None = None
    node_el: float | None = None
    target_az: float | None = None
    target_el: float | None = None
    actual_az: float | None = None
    actual_el: float | None = None
    error_deg: float | None = None
    downlink_hz: int | None = None
    uplink_hz: int | None = None
    tuned: bool = False
    detail: str = ""


def sample_key(message: Any) -> Hashable:
    """Coalescing key for `latest` subscribers: one value per node and parameter."""
    if isinstance(message, SampleMessage):
        return ("sample", message.sample.node, message.sample.parameter)
    return ("message", id(message))  # everything else is kept


class Subscription:
    """One subscriber's view of the bus. Iterate with `async for`, or `await get()`."""

    def __init__(
        self,
        types: tuple[type, ...],
        mode: Literal["all", "latest"],
        maxsize: int,
        key: Callable[[Any], Hashable],
    ) -> None:
        self.types = types
        self.mode = mode
        self.maxsize = maxsize
        self.key = key
        self.dropped = 0
        self.coalesced = 0
        self._queue: deque[Any] = deque()
        self._latest: OrderedDict[Hashable, Any] = OrderedDict()
        self._ready = asyncio.Event()
        self.closed = False

    def wants(self, message: Any) -> bool:
        return not self.types or isinstance(message, self.types)

    def offer(self, message: Any) -> None:
        if self.mode == "latest":
            k = self.key(message)
            if k in self._latest:
                self.coalesced += 1
                del self._latest[k]
            self._latest[k] = message
        else:
            if len(self._queue) >= self.maxsize:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(message)
        self._ready.set()

    def pending(self) -> int:
        return len(self._latest) if self.mode == "latest" else len(self._queue)

    def drain(self) -> list[Any]:
        """Everything waiting now, oldest first, without waiting."""
        if self.mode == "latest":
            items = list(self._latest.values())
            self._latest.clear()
        else:
            items = list(self._queue)
            self._queue.clear()
        self._ready.clear()
        return items

    async def get(self) -> Any:
        """The next message (waits for one)."""
        while not self.pending():
            self._ready.clear()
            await self._ready.wait()
        if self.mode == "latest":
            _, message = self._latest.popitem(last=False)
        else:
            message = self._queue.popleft()
        if not self.pending():
            self._ready.clear()
        return message

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Yield everything waiting each time something arrives (for coalesced redraws)."""
        while not self.closed:
            await self._ready.wait()
            items = self.drain()
            if items:
                yield items

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while not self.closed:
            yield await self.get()


class Bus:
    """Publish/subscribe within one process and one event loop."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self.published = 0

    def subscribe(
        self,
        *types: type,
        mode: Literal["all", "latest"] = "all",
        maxsize: int = 10_000,
        key: Callable[[Any], Hashable] = sample_key,
    ) -> Subscription:
        """A new subscription to messages of `types` (all messages when none given)."""
        subscription = Subscription(types, mode, maxsize, key)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        subscription._ready.set()
        self._subscriptions = [s for s in self._subscriptions if s is not subscription]

    def publish(self, message: Any) -> None:
        """Deliver to every interested subscriber; never waits."""
        self.published += 1
        for subscription in self._subscriptions:
            if subscription.wants(message):
                subscription.offer(message)
