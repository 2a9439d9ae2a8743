"""Shared operations: what one console does, the others see.

Consoles that watch the same fleet (through station agents on a broker) each run their
own engine and archive. Operators' actions are not in the telemetry, so each console
tells the others, over a channel a link adapter provides (the `mqtt` link of
groundctl-mqtt), and applies what the others tell it:

- **alerts**: an acknowledgement or a shelving made here is applied to the same alert at
  the other consoles. "The same alert" is the one with the same node, parameter and
  raise time (each console raises it from the same frame, stamped with the frame's receive
  time). A console that has not raised it yet keeps the action until it does. Each
  console also publishes its recent actions as current state, so a console that starts
  later applies them too.
- **commands**: every stage of every command sent from here (queued, edited, cancelled,
  released, sent, accepted, completed, failed...) is shown at the others, and archived
  there as an event; each console also publishes its whole queue, so a console that
  starts later sees what is waiting.
- **requests**: an operator may cancel another console's queued command; the request goes
  to that console, which cancels it in the requester's name if the requester's role (in
  its own config) allows. The requester's name is what the requesting console says:
  who may publish requests at all is the broker's ACL (consoles, not viewers).

The channel carries small JSON documents (`encode`/`decode`, pure); `SharedOperations`
applies them to an engine and commander. Nothing received is lost: a document that cannot
be read is archived as an `operations-malformed` event saying what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from groundctl.archive.commands import Actor
from groundctl.bus import AlertMessage, CommandMessage, Subscription
from groundctl.errors import GroundctlError
from groundctl.telemetry.alerts import RANK, Alert
from groundctl.telemetry.model import Event

if TYPE_CHECKING:
    from groundctl.commander import Commander
    from groundctl.engine import Engine

log = logging.getLogger(__name__)

VERSION = 1
KINDS = ("alert", "alerts", "command", "queue", "state", "request")
RETAINED = ("alerts", "queue", "state")  # current state: a console that starts later gets it
MAX_ACTIONS = 500  # alert actions kept in a console's retained "alerts" document
# stages after which a command is no longer in its console's queue
LEFT_QUEUE = frozenset({
    "released", "sent", "accepted", "completed", "failed", "timeout", "cancelled", "interrupted",
    "gone",  # no longer in its console's published queue
})  # fmt: skip
MATCH_S = 0.5  # two consoles' raise times of the same alert differ by less than this
MAX_PENDING = 1000  # actions kept for alerts not raised here yet


class OperationsError(GroundctlError):
    """A shared-operations document that cannot be read, or a request that cannot be met."""


class OperationsChannel(Protocol):
    """How documents travel between consoles (an adapter provides one).

    `open(console, deliver)` starts delivering the other consoles' documents as
    `deliver(kind, from_console, payload)`; `send(kind, payload, to)` queues one document
    (never blocks; kept until the transport has it); `close()` sends what is queued (within
    a few seconds) and stops. Kinds: see KINDS; `to` names the console a request is for.
    """

    async def open(self, console: str, deliver: Callable[[str, str, bytes], None]) -> None: ...

    def send(self, kind: str, payload: bytes, to: str = "") -> None: ...

    async def close(self) -> None: ...


@dataclass
class RemoteCommand:
    """Another console's command, as last heard."""

    console: str
    command_id: int
    node: str
    text: str
    stage: str
    time_s: float
    detail: str = ""
    release_at: float | None = None

    @property
    def ref(self) -> str:
        return command_ref(self.console, self.command_id)


def command_ref(origin: str, command_id: int) -> str:
    """How a command is named across consoles: `12` here, `ops-2#12` at console ops-2."""
    return f"{origin}#{command_id}" if origin else str(command_id)


def parse_ref(text: str) -> tuple[str, int]:
    """`12` -> ("", 12); `ops-2#12` -> ("ops-2", 12). ValueError for anything else."""
    origin, _, number = text.strip().rpartition("#")
    if not number.isdigit():
        raise ValueError(f"{text!r} is not a command number (12, or CONSOLE#12)")
    return origin, int(number)


# --- the documents (pure) -------------------------------------------------------------------
def encode(kind: str, console: str, body: Mapping[str, Any]) -> bytes:
    """One document: compact JSON with the version, kind and sending console."""
    return json.dumps(
        {"v": VERSION, "kind": kind, "console": console, **body}, separators=(",", ":")
    ).encode()


_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "alert": {
        "action": (str,), "node": (str,), "parameter": (str,), "raised": (int, float),
        "by": (str,), "time": (int, float),
    },
    "command": {
        "id": (int,), "node": (str,), "text": (str,), "stage": (str,), "time": (int, float),
    },
    "alerts": {"actions": (list,)},
    "queue": {"commands": (list,), "time": (int, float)},
    "state": {"online": (bool,)},
    "request": {"action": (str,), "id": (int,), "by": (str,)},
}  # fmt: skip


def decode(payload: bytes) -> dict[str, Any]:
    """A document from its bytes; OperationsError naming what is wrong."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise OperationsError(f"not UTF-8 at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise OperationsError(f"not JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(doc, dict):
        raise OperationsError(f"expected a JSON object, found {type(doc).__name__}")
    if doc.get("v") != VERSION:
        raise OperationsError(f"field 'v': expected {VERSION}, found {doc.get('v')!r}")
    kind = doc.get("kind")
    if kind not in _FIELDS:
        raise OperationsError(f"field 'kind': expected one of {', '.join(KINDS)}, found {kind!r}")
    if not isinstance(doc.get("console"), str) or not doc["console"]:
        raise OperationsError("field 'console': expected the sending console's name")
    for name, types in _FIELDS[kind].items():
        value = doc.get(name)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise OperationsError(f"{kind}: field {name!r}: expected {expected}, found {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise OperationsError(f"{kind}: field {name!r}: expected a finite number")
    return doc


def _alert_body(action: str, alert: Alert, by: str, time_s: float) -> dict[str, Any]:
    return {
        "action": action,
        "severity": alert.severity,
        "node": alert.node,
        "parameter": alert.parameter,
        "raised": alert.raised_s,
        "by": by,
        "comment": alert.ack_comment,
        "until": alert.shelved_until_s,
        "time": time_s,
    }


def _command_body(message: CommandMessage) -> dict[str, Any]:
    return {
        "id": message.command_id,
        "node": message.node,
        "text": message.text,
        "stage": message.stage,
        "time": message.time_s,
        "detail": message.detail,
        "release_at": message.release_at,
    }


# --- applying them ---------------------------------------------------------------------------
class SharedOperations:
    """This console's side: publishes its operators' actions and its commands' stages,
    applies the other consoles'. `start()` after the commander has started."""

    def __init__(
        self, engine: Engine, commander: Commander, console: str, channel: OperationsChannel
    ) -> None:
        self.engine = engine
        self.commander = commander
        self.console = console
        self.channel = channel
        self.remote: dict[str, dict[int, RemoteCommand]] = {}  # console -> id -> command
        self.online: dict[str, bool] = {}  # other consoles, as their retained state says
        self.applied = 0  # documents applied
        self.malformed = 0
        self.refused = 0  # requests refused
        self._pending: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._actions: dict[tuple[str, str, str], dict[str, Any]] = {}  # ours, newest last
        self._local: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._local = self.engine.bus.subscribe(AlertMessage, CommandMessage, maxsize=100_000)
        await self.channel.open(self.console, self.deliver)
        self.channel.send("state", encode("state", self.console, {"online": True}))
        await self._publish_queue()
        self._task = asyncio.create_task(self._forward(), name="shared-operations")

    async def stop(self) -> None:
        if self._task is not None:
            assert self._local is not None
            with contextlib.suppress(asyncio.CancelledError):
                for message in self._local.drain():  # what happened just before the stop
                    await self._outgoing(message)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._local is not None:
            self.engine.bus.unsubscribe(self._local)
            self._local = None
        self.channel.send("state", encode("state", self.console, {"online": False}))
        await self.channel.close()

    # --- this console's actions, out ----------------------------------------------------------
    async def _forward(self) -> None:
        assert self._local is not None
        async for message in self._local:
            try:
                await self._outgoing(message)
            except Exception:  # never let one message stop the sharing
                log.exception("shared operations: could not publish %r", message)

    async def _outgoing(self, message: object) -> None:
        if isinstance(message, AlertMessage):
            change = message.change
            if change.action in ("raised", "escalated"):
                self.alert_raised(change.alert)
            if message.origin or change.action not in ("acknowledged", "shelved"):
                return
            by = change.alert.acked_by if change.action == "acknowledged" else None
            body = _alert_body(change.action, change.alert, by or self.commander.operator,
                               change.time_s)  # fmt: skip
            self.channel.send("alert", encode("alert", self.console, body))
            key = (change.alert.node, change.alert.parameter, change.action)
            self._actions.pop(key, None)
            self._actions[key] = {"v": VERSION, "kind": "alert", "console": self.console, **body}
            while len(self._actions) > MAX_ACTIONS:
                self._actions.pop(next(iter(self._actions)))
            actions = {"actions": list(self._actions.values())}
            self.channel.send("alerts", encode("alerts", self.console, actions))
        elif isinstance(message, CommandMessage) and not message.origin:
            self.channel.send("command", encode("command", self.console, _command_body(message)))
            if message.stage in ("queued", "edited") or message.stage in LEFT_QUEUE:
                await self._publish_queue()

    async def _publish_queue(self) -> None:
        records = await self.commander.queued()
        commands = [
            {"id": r.id, "node": r.node, "text": r.text, "stage": "queued", "time": r.updated,
             "detail": r.detail, "release_at": r.release_at}
            for r in records
        ]  # fmt: skip
        body = {"commands": commands, "time": self.engine.clock()}
        self.channel.send("queue", encode("queue", self.console, body))

    def request_cancel(self, console: str, command_id: int, reason: str = "") -> None:
        """Ask `console` to cancel its queued command `command_id` in this operator's name
        (it checks the role; the outcome arrives as the command's next stage)."""
        if self.commander.actor.role == "viewer":
            raise OperationsError(
                f"{self.commander.operator} is a viewer and may not cancel commands"
            )
        known = self.remote.get(console, {}).get(command_id)
        if known is None or known.stage in LEFT_QUEUE:
            raise OperationsError(f"{command_ref(console, command_id)} is not queued")
        body = {"action": "cancel", "id": command_id, "by": self.commander.operator,
                "reason": reason or f"cancelled from console {self.console}"}  # fmt: skip
        self.channel.send("request", encode("request", self.console, body), to=console)

    def queued(self) -> list[RemoteCommand]:
        """The other consoles' queued commands, oldest first."""
        waiting = [
            c for by_id in self.remote.values() for c in by_id.values() if c.stage not in LEFT_QUEUE
        ]
        return sorted(waiting, key=lambda c: (c.time_s, c.console, c.command_id))

    # --- the others', in ---------------------------------------------------------------------
    def deliver(self, kind: str, console: str, payload: bytes) -> None:
        """A document from another console (the channel calls this on the event loop)."""
        if console == self.console:
            return  # our own, echoed
        try:
            doc = decode(payload)
            if doc["kind"] != kind or doc["console"] != console:
                raise OperationsError(
                    f"a {doc['kind']!r} document from {doc['console']!r} arrived as "
                    f"{kind!r} from {console!r}"
                )
            self._apply(doc)
        except (OperationsError, ValueError, TypeError) as error:
            self.malformed += 1
            shown = payload[:200].decode("utf-8", "replace")
            self._note(
                "operations-malformed",
                "WARNING",
                f"from console {console} ({kind}): {_reason(error)}; payload: {shown}",
            )
            return
        self.applied += 1

    def _apply(self, doc: dict[str, Any]) -> None:
        kind = doc["kind"]
        if kind == "alert":
            self._apply_alert(doc)
        elif kind == "command":
            self._apply_command(doc)
        elif kind == "alerts":
            for action in doc["actions"]:
                if not isinstance(action, dict):
                    raise OperationsError(f"alerts: expected alert actions, found {action!r}")
                self._apply(decode(json.dumps({**action, "console": doc["console"]}).encode()))
        elif kind == "queue":
            self._apply_queue(doc)
        elif kind == "state":
            self.online[doc["console"]] = doc["online"]
            word = "online" if doc["online"] else "offline"
            self._note("operations-console", "INFO", f"console {doc['console']} is {word}")
        elif kind == "request":
            task = asyncio.create_task(self._request(doc))
            task.add_done_callback(_log_failure)

    def _apply_alert(self, doc: dict[str, Any]) -> None:
        action = doc["action"]
        if action not in ("acknowledged", "shelved"):
            raise OperationsError(
                f"alert: field 'action': expected acknowledged or shelved, found {action!r}"
            )
        if action == "shelved" and not isinstance(doc.get("until"), int | float):
            raise OperationsError(
                f"alert: field 'until': expected a time, found {doc.get('until')!r}"
            )
        key = (doc["node"], doc["parameter"], action)
        if not self._try_alert(doc):
            if len(self._pending) >= MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            self._pending[key] = doc

    def _try_alert(self, doc: dict[str, Any]) -> bool:
        """Apply an alert action if its alert is here; False to keep it for later."""
        assert self.engine.processor is not None
        alert = self.engine.processor.alerts.find(doc["node"], doc["parameter"])
        if alert is None or alert.raised_s < doc["raised"] - MATCH_S:
            return False  # not raised here yet
        if alert.raised_s > doc["raised"] + MATCH_S:
            return True  # raised again since: the action was for an earlier raise
        if RANK.get(alert.severity, 0) < RANK.get(str(doc.get("severity")), 0):
            return False  # escalated there, not here yet (an escalation needs a new ack)
        who = f"{doc['by']}@{doc['console']}"
        if doc["action"] == "acknowledged":
            if alert.acked_s is None:
                self.engine.acknowledge(
                    alert.id, who, str(doc.get("comment") or ""), origin=doc["console"]
                )
        elif alert.shelved_until_s != doc["until"]:
            self.engine.shelve(alert.id, float(doc["until"]), origin=doc["console"])
        return True

    def alert_raised(self, alert: Alert) -> None:
        """An alert was raised here: apply what another console did to it first."""
        for action in ("acknowledged", "shelved"):
            doc = self._pending.get((alert.node, alert.parameter, action))
            if doc is not None and self._try_alert(doc):
                del self._pending[(alert.node, alert.parameter, action)]

    def _apply_command(self, doc: dict[str, Any]) -> None:
        console = doc["console"]
        by_id = self.remote.setdefault(console, {})
        command = by_id.get(doc["id"])
        release_at = doc.get("release_at")
        release_at = float(release_at) if isinstance(release_at, int | float) else None
        detail = str(doc.get("detail") or "")
        if command is None:
            command = RemoteCommand(console, doc["id"], doc["node"], doc["text"], doc["stage"],
                                    float(doc["time"]), detail, release_at)  # fmt: skip
            by_id[doc["id"]] = command
        else:
            command.stage, command.time_s, command.detail = doc["stage"], doc["time"], detail
            command.text = doc["text"] or command.text
            command.release_at = release_at if release_at is not None else command.release_at
        self.engine.bus.publish(
            CommandMessage(command.command_id, command.node, command.text, command.stage,
                           command.time_s, detail, release_at, origin=console)
        )  # fmt: skip
        text = f"{command.ref} {command.text}: {command.stage}" + (f" ({detail})" if detail else "")
        self._note("remote-command", "INFO", text, command.node)

    def _apply_queue(self, doc: dict[str, Any]) -> None:
        console = doc["console"]
        by_id = self.remote.setdefault(console, {})
        listed: set[int] = set()
        for entry in doc["commands"]:
            _check_entry(entry)
            listed.add(entry["id"])
            known = by_id.get(entry["id"])
            # a queue document may arrive after the stages that took a command out of
            # it (different topics): it does not bring a finished command back
            if known is None or known.stage in ("queued", "gone"):
                by_id[entry["id"]] = RemoteCommand(
                    console, entry["id"], str(entry.get("node", "")), str(entry.get("text", "")),
                    "queued", float(entry.get("time") or 0.0), str(entry.get("detail") or ""),
                    entry.get("release_at") if isinstance(entry.get("release_at"), int | float)
                    else None,
                )  # fmt: skip
                if known is None:
                    c = by_id[entry["id"]]
                    self.engine.bus.publish(
                        CommandMessage(c.command_id, c.node, c.text, "queued", c.time_s,
                                       c.detail, c.release_at, origin=console)
                    )  # fmt: skip
                    text = f"{c.ref} {c.text}: queued (in its console's queue)"
                    self._note("remote-command", "INFO", text, c.node)
        for command_id, command in by_id.items():
            if command_id not in listed and command.stage not in LEFT_QUEUE:
                command.stage = "gone"  # left the queue while we were not listening
                self.engine.bus.publish(
                    CommandMessage(command.command_id, command.node, command.text, "gone",
                                   self.engine.clock(), "no longer in its console's queue",
                                   origin=console)
                )  # fmt: skip
                self._note("remote-command", "INFO", f"{command.ref} {command.text}: gone "
                           "(no longer in its console's queue)", command.node)  # fmt: skip

    async def _request(self, doc: dict[str, Any]) -> None:
        if doc["action"] != "cancel":
            self._refuse(doc, f"unknown request {doc['action']!r}")
            return
        config = self.commander.config
        role = config.commanding.role_of(doc["by"]) if config is not None else "operator"
        actor = Actor(f"{doc['by']}@{doc['console']}", role)
        reason = str(doc.get("reason") or f"cancelled from console {doc['console']}")
        try:
            await self.commander.cancel(doc["id"], reason, actor=actor)
        except (GroundctlError, KeyError, ValueError) as error:
            why = error.message if isinstance(error, GroundctlError) else str(error.args[0])
            self._refuse(doc, why)

    def _refuse(self, doc: dict[str, Any], why: str) -> None:
        self.refused += 1
        self._note(
            "operations-refused",
            "WARNING",
            f"console {doc['console']} ({doc['by']}) asked to {doc['action']} command "
            f"{doc['id']}: refused: {why}",
        )

    def _note(self, kind: str, severity: str, text: str, node: str = "") -> None:
        self.engine.note(Event(self.engine.clock(), node, "operations", kind, severity, text))


def _check_entry(entry: Any) -> None:
    """One command of a queue document, or OperationsError naming the field."""
    if not isinstance(entry, dict):
        raise OperationsError(f"queue: expected command objects, found {entry!r}")
    for name, types in (("id", (int,)), ("node", (str,)), ("text", (str,)),
                        ("time", (int, float))):  # fmt: skip
        value = entry.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            expected = " or ".join(t.__name__ for t in types)
            raise OperationsError(f"queue: command field {name!r}: expected {expected}, "
                                  f"found {value!r}")  # fmt: skip
    release_at = entry.get("release_at")
    if release_at is not None and not isinstance(release_at, int | float):
        raise OperationsError(f"queue: command field 'release_at': expected a time, found "
                              f"{release_at!r}")  # fmt: skip


def _reason(error: Exception) -> str:
    return error.message if isinstance(error, OperationsError) else str(error)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("shared operations: request failed", exc_info=task.exception())
