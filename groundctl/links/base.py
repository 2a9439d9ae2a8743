"""The Link contract: how the engine talks to nodes, whatever carries the bytes.

A link adapter is a class deriving from `Link`, registered under the entry-point group
`groundctl.links` (built-ins register the same way as third-party plugins). It declares
its options as data (`OPTIONS`), from which the config checks and `groundctl links`
are derived.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from groundctl.errors import GroundctlError
from groundctl.telemetry.model import Event, Frame

if TYPE_CHECKING:
    from groundctl.orbits.model import Pass


class LinkError(GroundctlError):
    """A link could not be opened, configured or used; the message says which and why."""

    title = "link error"


class LinkState(Enum):
    CLOSED = "closed"  # not opened, or closed on purpose
    CONNECTING = "connecting"
    UP = "up"
    DEGRADED = "degraded"  # up, but losing or refusing data
    DOWN = "down"  # was up, lost; the adapter may be reconnecting


@dataclass(frozen=True)
class LinkOption:
    """One option an adapter takes: name, type, default (None: required), help."""

    name: str
    type: type
    default: Any = None
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass
class LinkCounters:
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0
    last_receive_s: float | None = None


StateListener = Callable[["Link", LinkState, LinkState], None]
EventListener = Callable[["Link", Event], None]


@dataclass(frozen=True)
class LinkContext:
    """What a link may need to know of the ground segment besides its own options: the
    configuration (stations, fleet), given by whoever builds links from a config. Most
    adapters ignore it; the simulator and contact gating use it."""

    config: Any = None  # groundctl.config.Config (Any: links do not import the config)


class Link(ABC):
    """A connection to one node (or a gateway) that carries frames both ways.

    Subclasses set `OPTIONS` and implement `open`, `close`, `send` and `_receive`.
    """

    OPTIONS: ClassVar[tuple[LinkOption, ...]] = ()
    DESCRIPTION: ClassVar[str] = ""

    def __init__(self, name: str, node: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.node = node
        self.options = self.check_options(name, options)
        self.counters = LinkCounters()
        self._state = LinkState.CLOSED
        self._listeners: list[StateListener] = []
        self._event_listeners: list[EventListener] = []
        self.context = LinkContext()

    def bind(self, context: LinkContext) -> None:
        """Give the link the ground segment's context (before `open`)."""
        self.context = context

    def clock(self) -> float:
        """The link's notion of now, Unix seconds: the wall clock, or simulated or
        recorded time for the links that have their own."""
        return time.time()

    # --- reaching nodes (the commander asks these before sending) -----------------------
    def serves(self, node: str) -> bool:
        """True when this link reaches `node` (a gateway link reaches several)."""
        return node == self.node

    def in_contact(self, node: str) -> bool:
        """True when a command sent now can reach `node`: by default, when the link is up.
        Links that know a contact plan (the simulator) say whether a station sees it."""
        return self.state in (LinkState.UP, LinkState.DEGRADED)

    def next_contact(self, node: str) -> float | None:
        """When `node` is next reachable (Unix seconds on this link's clock), if known."""
        return None

    def uplink_clock(self, node: str) -> float:
        """When a command sent now reaches `node`, on this link's clock: `clock()` for
        most links; the simulator's nodes act at its own (possibly later) time."""
        return self.clock()

    def current_contact(self, node: str) -> Pass | None:
        """The contact-plan pass `node` is in now (station, AOS, LOS), when the link
        knows the contact plan; None otherwise."""
        return None

    def contact_at(self, node: str, time_s: float) -> Pass | None:
        """The contact-plan pass `node` was in at `time_s` (this link's clock), when the
        link knows the contact plan; None otherwise. Tells a flown pass its station."""
        return None

    @classmethod
    def check_options(cls, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in. Raises LinkError for an unknown key, a
        missing required one, or a value of the wrong type."""
        known = {o.name: o for o in cls.OPTIONS}
        for key in options:
            if key not in known:
                raise LinkError(
                    f"link {name}: unknown option {key!r}",
                    hint="options: " + ", ".join(sorted(known)) if known else "none",
                )
        result: dict[str, Any] = {}
        for option in cls.OPTIONS:
            if option.name not in options:
                if option.required:
                    raise LinkError(
                        f"link {name}: option {option.name!r} is required ({option.help})"
                    )
                result[option.name] = option.default
                continue
            value = options[option.name]
            if option.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, option.type) or isinstance(value, bool) != (
                option.type is bool
            ):
                raise LinkError(
                    f"link {name}: option {option.name!r} must be a {option.type.__name__}, "
                    f"found {value!r}"
                )
            result[option.name] = value
        return result

    # --- state --------------------------------------------------------------------------
    @property
    def state(self) -> LinkState:
        return self._state

    def on_state_change(self, listener: StateListener) -> None:
        """Call `listener(link, old, new)` on every state change."""
        self._listeners.append(listener)

    def on_event(self, listener: EventListener) -> None:
        """Call `listener(link, event)` for what the link itself notices (AOS, LOS...)."""
        self._event_listeners.append(listener)

    def _emit(self, event: Event) -> None:
        for listener in list(self._event_listeners):
            listener(self, event)

    def _set_state(self, new: LinkState) -> None:
        old = self._state
        if new is old:
            return
        self._state = new
        for listener in list(self._listeners):
            listener(self, old, new)

    # --- the contract -------------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Start the link; the state becomes UP (or CONNECTING). Raises LinkError."""

    @abstractmethod
    async def close(self) -> None:
        """Stop the link and release its resources; the state becomes CLOSED."""

    @abstractmethod
    async def send(self, data: bytes, node: str | None = None) -> None:
        """Send one frame (a packet) to `node` (default: the link's node; a link to a
        gateway serves several). Raises LinkError when it cannot be sent."""

    @abstractmethod
    def _receive(self) -> AsyncIterator[bytes]:
        """The received frames' bytes, as they arrive, until the link closes."""

    async def frames(self) -> AsyncIterator[Frame]:
        """Received frames as `Frame`s (receive time, link name, node), counted."""
        async for data in self._receive():
            now = time.time()
            self.counters.frames_in += 1
            self.counters.bytes_in += len(data)
            self.counters.last_receive_s = now
            yield Frame(data, now, self.name, self.node, "down")

    def _count_sent(self, data: bytes) -> None:
        self.counters.frames_out += 1
        self.counters.bytes_out += len(data)


async def queued(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
    """What adapters' `_receive` usually is: the queue's items until a None (closed)."""
    while True:
        data = await queue.get()
        if data is None:
            return
        yield data


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel an adapter's background task and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def parse_utc(link: str, option: str, text: str) -> float:
    """ISO 8601 text (UTC when it has no zone, e.g. 2026-11-24T03:00Z) -> Unix seconds.

    Raises LinkError naming the link, the option and the value.
    """
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise LinkError(
            f"link {link}: option {option!r} must be an ISO 8601 UTC time, found {text!r}",
            hint=f'e.g. {option} = "2026-11-24T03:00Z"',
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
