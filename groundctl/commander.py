"""The commander: commands from the console, procedures and the CLI, to nodes and back.

One path for every command: parse and validate against the node's mission database
(groundctl.commanding.syntax), check the operator's role and a hazardous command's
confirmation, archive it as queued (with its audit rows), then per node, in order:
release it when the node is reachable (now, at its next AOS, or at its time tag), sign it
when the node requires authentication, send it through the link that serves the node,
and follow its verification (groundctl.commanding.verify) from the telemetry and events
the engine receives. Every stage goes on the bus (`CommandMessage`), into
`command_stages` and into the audit trail.

A node gets one command at a time: the next is released once the previous is done
(completed, failed or timed out), so counters verify each command and never two at once. Queued
commands live in the archive, so they survive a restart; commands a previous run left
half-verified are marked failed (outcome unknown) when the commander starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from groundctl.archive.commands import Actor, CommandRecord, CommandStore
from groundctl.bus import CommandMessage
from groundctl.commanding.roles import check_confirmation, check_role
from groundctl.commanding.syntax import CommandLine, ValidCommand, parse, validate
from groundctl.commanding.verify import StageChange, Verifier, counter_of
from groundctl.errors import CommandError, GroundctlError
from groundctl.mdb.model import Mission
from groundctl.telemetry.model import Event, Frame

if TYPE_CHECKING:
    from groundctl.config import Config
    from groundctl.engine import Engine
    from groundctl.links.base import Link
    from groundctl.telemetry.pipeline import Processed


RETRY_S = 1.0  # wall seconds before trying again a send the link refused
# At AOS, how long (clock seconds) a command waits for the first values of the counters its
# verification compares with: 2.5 periods of their packet, within these bounds.
BASELINE_WAIT_MIN_S = 3.0
BASELINE_WAIT_MAX_S = 30.0


def login_name() -> str:
    """The operator: the login name of the user running groundctl (from the process's
    user id, so the environment cannot claim another name)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name  # the real user, not $LOGNAME / $USER
    except (ImportError, KeyError, OSError):  # no passwd entry (containers), not POSIX
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


@dataclass
class Outcome:
    """What became of a command: its record id, final stage and every stage seen."""

    command_id: int
    text: str
    stage: str = "queued"
    detail: str = ""
    stages: list[StageChange] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ok(self) -> bool:
        return self.stage in ("completed", "accepted", "sent") and self.done.is_set()


class Commander:
    """Commands for an engine's nodes. Create, then `await start()`; `await stop()`.

    `missions` maps node names to mission databases (`default` for the others);
    `config` gives roles, keys and the contact plan; `operator`/`role` default to the
    login name and its configured role.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        config: Config | None = None,
        missions: Mapping[str, Mission] | None = None,
        default: Mission | None = None,
        operator: str | None = None,
        role: str | None = None,
        source: str = "cli",
        disabled: str = "",
    ) -> None:
        self.engine = engine
        self.config = config
        self.disabled = disabled  # why commanding is disabled (a replay); "" when it is not
        self.missions = dict(missions if missions is not None else engine.missions)
        self.default = default if default is not None else engine.default
        self.operator = operator or login_name()
        if role is None:
            role = config.commanding.role_of(self.operator) if config else "operator"
        self.actor = Actor(self.operator, role)
        self.system = Actor("groundctl", "system")
        self.source = source
        self.store = CommandStore(engine.archive_path)
        self.latest_raw: dict[str, dict[str, Any]] = {}
        self.latest_values: dict[str, dict[str, Any]] = {}
        self._verifiers: dict[str, tuple[int, Verifier]] = {}  # node -> in-flight
        self._outcomes: dict[int, Outcome] = {}
        self._texts: dict[int, str] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        # parameters each node has sent since its last AOS (fresh counter baselines)
        self._fresh: dict[str, set[str]] = {}
        self._baseline_until: dict[int, float] = {}
        self._announced: dict[int, float | str | None] = {}  # the AOS last shown per command
        self._wake: dict[str, asyncio.Event] = {}
        self._pending_stages: list[tuple[int, str, StageChange, dict[str, Any]]] = []
        self._stage_task: asyncio.Task[None] | None = None
        self._stage_wake = asyncio.Event()
        self._started = False
        self._closing = False

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the command tables, close out what a previous run left half-done, hook into
        the engine and start releasing queued commands of reachable nodes."""
        await self.store.aopen()
        await self.store.call(self.store.interrupted, self.engine.clock(), self.system)
        self.engine.commander = self
        self._stage_task = asyncio.create_task(self._write_stages(), name="commander-stages")
        self._started = True
        for record in await self.store.call(self.store.queued):
            self._kick(record.node)

    async def stop(self) -> None:
        """Stop releasing; stages already seen are written. Commands still queued stay
        queued in the archive for the next run."""
        self._started = False
        if self.engine.commander is self:
            self.engine.commander = None
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        if self._stage_task is not None:
            self._closing = True
            self._stage_wake.set()
            await self._stage_task  # writes every stage seen, in order
            self._stage_task = None
        await self.store.aclose()

    async def __aenter__(self) -> Commander:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- issuing -----------------------------------------------------------------------------
    def mission_of(self, node: str) -> Mission:
        mission = self.missions.get(node, self.default)
        if mission is None:
            raise CommandError(
                f"{node}: no mission database for this node",
                hint="give the node a mission in the config ([nodes.NAME] mission = ...)",
            )
        return mission

    def check(self, text: str | CommandLine) -> ValidCommand:
        """Parse and validate a command against its node's mission database (no role or
        confirmation check, nothing archived): for dry runs and the console's preview."""
        line = parse(text) if isinstance(text, str) else text
        known = self.config is not None and line.node in self.config.nodes
        if not known and self.link_for(line.node) is None:
            links = ", ".join(sorted(self.engine.links)) or "none"
            raise CommandError(
                f"{line.text}: no link reaches {line.node}",
                hint=f"links: {links}; check the node name, or give it a link in the config",
            )
        return validate(line, self.mission_of(line.node))

    async def issue(
        self,
        text: str | CommandLine,
        *,
        confirm: bool | str = False,
        at: float | None = None,
        source: str | None = None,
        actor: Actor | None = None,
    ) -> Outcome:
        """Validate, authorise and queue a command; it is released as soon as its node is
        reachable (or at `at`, a time tag, Unix seconds). Returns its Outcome, whose
        `done` event is set when it completes, fails, times out or is cancelled.

        CommandError (and nothing queued) when the command is invalid, the role may not
        send it or a hazardous command is not confirmed; the refusal is audited.
        """
        actor = actor or self.actor
        command_text = text if isinstance(text, str) else text.text
        if self.disabled:
            raise CommandError(self.disabled)
        try:
            valid = self.check(text)
            check_role(actor.role, actor.operator, valid.text, valid.hazardous)
            check_confirmation(valid.text, valid.name, valid.hazardous, confirm)
        except CommandError as error:
            node = command_text.split()[0] if command_text.split() else ""
            await self.store.call(
                self.store.note,
                "denied",
                self.engine.clock(),
                actor,
                node=node,
                detail={"text": command_text.strip(), "reason": error.message},
            )
            raise
        now = self.engine.clock()
        release, release_at = ("time", at) if at is not None else ("now", None)
        record = await self.store.call(
            self.store.create,
            time_s=now,
            actor=actor,
            node=valid.node,
            mission=valid.mission.name,
            command=valid.name,
            arguments=valid.values,
            text=valid.text,
            hazardous=valid.hazardous,
            confirmed=valid.hazardous,
            source=source or self.source,
            release=release,
            release_at=release_at,
        )
        outcome = Outcome(record.id, record.text)
        outcome.stages.append(StageChange("queued", now))
        self._outcomes[record.id] = outcome
        self._texts[record.id] = record.text
        self._publish(record.id, record.node, StageChange("queued", now), release_at)
        ahead = [r.id for r in await self.store.call(self.store.queued, valid.node)]
        ahead = [i for i in ahead if i < record.id]
        flight = self._verifiers.get(valid.node)
        if flight is not None:
            ahead.insert(0, flight[0])
        if ahead:
            behind = StageChange("queued", now, f"waiting behind command {ahead[-1]}")
            self._remember(record.id, behind)
            self._publish(record.id, record.node, behind, release_at)
        self._kick(valid.node)
        return outcome

    async def wait(self, outcome: Outcome, timeout: float | None = None) -> Outcome:
        """Wait (wall-clock `timeout`, None: forever) until the command is done."""
        await asyncio.wait_for(outcome.done.wait(), timeout)
        return outcome

    async def queued(self, node: str | None = None) -> list[CommandRecord]:
        return await self.store.call(self.store.queued, node)

    async def cancel(self, command_id: int, reason: str = "", actor: Actor | None = None) -> None:
        """Cancel a queued command (KeyError: no such command; ValueError: not queued) in
        the name of `actor` (default: this commander's; another console's operator for a
        shared-operations request)."""
        actor = actor or self.actor
        record = await self.store.call(self.store.get, command_id)
        self._check_may_change(record, actor)
        await self.store.call(self.store.cancel, command_id, self.engine.clock(), actor, reason)
        change = StageChange("cancelled", self.engine.clock(), reason or "cancelled")
        self._finish(command_id, record.node, change)
        self._publish(command_id, record.node, change)

    async def cancel_source(self, source: str, reason: str) -> list[int]:
        """Cancel every queued command issued by `source` (a procedure run that ended)."""
        cancelled = []
        for record in await self.store.call(self.store.queued):
            if record.source == source:
                await self.cancel(record.id, reason)
                cancelled.append(record.id)
        return cancelled

    async def edit(
        self, command_id: int, *, text: str | None = None, at: float | None = None
    ) -> CommandRecord:
        """Change a queued command: its arguments (`text` is a whole new command line for
        the same node and command, validated again) and/or its time tag."""
        record = await self.store.call(self.store.get, command_id)
        self._check_may_change(record)
        arguments = None
        new_text = None
        if text is not None:
            valid = self.check(text)
            if (valid.node, valid.name) != (record.node, record.command):
                raise CommandError(
                    f"command {command_id} is {record.node} {record.command}: an edit may "
                    "change its arguments, not its node or command",
                    hint="cancel it and issue the other command",
                )
            check_role(self.actor.role, self.actor.operator, valid.text, valid.hazardous)
            arguments, new_text = dict(valid.values), valid.text
        release = "time" if at is not None else None
        updated = await self.store.call(
            self.store.edit,
            command_id,
            self.engine.clock(),
            self.actor,
            arguments=arguments,
            text=new_text,
            release=release,
            release_at=at,
        )
        self._texts[command_id] = updated.text
        self._publish(
            command_id, updated.node, StageChange("edited", self.engine.clock()), updated.release_at
        )
        self._kick(updated.node)
        return updated

    def _check_may_change(self, record: CommandRecord, actor: Actor | None = None) -> None:
        actor = actor or self.actor
        check_role(actor.role, actor.operator, record.text, record.hazardous)

    # --- audited operator actions --------------------------------------------------------------
    async def acknowledge(self, alert_id: int, comment: str = "") -> None:
        """Acknowledge an alert through the engine, with an audit row."""
        if self.actor.role == "viewer":
            raise CommandError(f"{self.operator} is a viewer and may not acknowledge alerts")
        change = self.engine.acknowledge(alert_id, self.operator, comment)
        await self.store.call(
            self.store.note,
            "acknowledged",
            self.engine.clock(),
            self.actor,
            node=change.alert.node,
            detail={"alert": alert_id, "parameter": change.alert.parameter, "comment": comment},
        )

    async def shelve(self, alert_id: int, until_s: float) -> None:
        """Shelve an alert (its limit checking is set aside until then), with an audit
        row."""
        if self.actor.role == "viewer":
            raise CommandError(f"{self.operator} is a viewer and may not shelve alerts")
        change = self.engine.shelve(alert_id, until_s)
        await self.store.call(
            self.store.note,
            "shelved",
            self.engine.clock(),
            self.actor,
            node=change.alert.node,
            detail={"alert": alert_id, "parameter": change.alert.parameter, "until": until_s},
        )

    # --- the engine's hooks ----------------------------------------------------------------------
    def on_frame(self, frame: Frame, processed: Processed) -> None:
        """A frame went through the pipeline: keep the node's latest values, verify."""
        node = frame.node
        if processed.samples:
            raw = self.latest_raw.setdefault(node, {})
            values = self.latest_values.setdefault(node, {})
            fresh = self._fresh.setdefault(node, set())
            for s in processed.samples:
                raw[s.parameter] = s.raw
                values[s.parameter] = s.value
                fresh.add(s.parameter)
            flight = self._verifiers.get(node)
            if flight is not None:
                command_id, verifier = flight
                self._stages(command_id, node, verifier.samples(processed.samples, frame.time_s))
            else:
                wake = self._wake.get(node)
                if wake is not None:
                    wake.set()
        for event in processed.events:
            self.on_event(event, frame.time_s)

    def on_event(self, event: Event, received_s: float | None = None) -> None:
        """An event: a node's (verification; `received_s` its frame's receive time) or
        the ground's (AOS releases the queue)."""
        if event.source == "ground":
            if event.kind == "aos":
                self._fresh[event.node] = set()
                self._kick(event.node)
            return
        flight = self._verifiers.get(event.node)
        if flight is not None:
            command_id, verifier = flight
            self._stages(command_id, event.node, verifier.event(event, received_s))

    def on_tick(self, now_s: float) -> None:
        """The clock moved: time out verifications; release time-tagged commands."""
        for node, (command_id, verifier) in list(self._verifiers.items()):
            self._stages(command_id, node, verifier.tick(now_s))
        for node, wake in self._wake.items():
            if node not in self._verifiers:
                wake.set()

    # --- releasing -----------------------------------------------------------------------------
    def link_for(self, node: str) -> Link | None:
        for link in self.engine.links.values():
            if link.serves(node):
                return link
        return None

    def _kick(self, node: str) -> None:
        if not self._started:
            return
        wake = self._wake.setdefault(node, asyncio.Event())
        wake.set()
        task = self._workers.get(node)
        if task is None or task.done():
            self._workers[node] = asyncio.create_task(
                self._release_loop(node), name=f"uplink-{node}"
            )

    async def _release_loop(self, node: str) -> None:
        """Release `node`'s queued commands one at a time while it is reachable."""
        wake = self._wake[node]
        while True:
            wake.clear()
            if node in self._verifiers:
                await wake.wait()
                continue
            queue = await self.store.call(self.store.queued, node)
            if not queue:
                return
            record = queue[0]
            self._texts.setdefault(record.id, record.text)  # queued by an earlier run
            now = self.engine.clock()
            link = self.link_for(node)
            early = record.release == "time" and record.release_at is not None
            if (early and now < (record.release_at or 0.0)) or (
                link is None or not link.in_contact(node)
            ):
                aos = link.next_contact(node) if link is not None else None
                tagged = early and now < (record.release_at or 0.0)
                if tagged:
                    aos = record.release_at
                if self._announced.get(record.id, "unset") != aos:
                    self._announced[record.id] = aos
                    if record.release != "time":
                        await self.store.call(self.store.set_release_at, record.id, aos)
                    waiting = StageChange("queued", now, _waiting(link, aos, tagged))
                    self._remember(record.id, waiting)
                    self._publish(record.id, node, waiting, aos)
                await wake.wait()
                continue
            missing = self._missing_baselines(node, record.command)
            if missing:
                until = self._baseline_until.setdefault(record.id, now + missing[1])
                if now < until:
                    if until - now >= missing[1] - 1e-9:
                        detail = f"in contact: waiting up to {missing[1]:g} s for {missing[0]}"
                        self._remember(record.id, StageChange("queued", now, detail))
                        self._publish(record.id, node, StageChange("queued", now, detail))
                    await wake.wait()
                    continue
            self._baseline_until.pop(record.id, None)
            try:
                await self._send(record, link)
            except GroundctlError as error:  # a key that cannot be read, a bad database
                detail = f"not sent: {error.message}" + (f" ({error.hint})" if error.hint else "")
                failed = StageChange("failed", self.engine.clock(), detail)
                await self.store.call(
                    self.store.stage, record.id, "failed", failed.time_s, detail, actor=self.system
                )
                self._remember(record.id, failed)
                self._publish(record.id, node, failed)
                self._finish(record.id, node, failed)

    def _missing_baselines(self, node: str, name: str) -> tuple[str, float] | None:
        """The counters `name`'s verification compares with that `node` has not sent
        since its last AOS (or at all), and how long to wait for them: a few of their
        packets' periods; None when all are there. (A lab link whose telemetry starts only
        with this command waits that long, then sends: acceptance is then implied by
        completion.)"""
        mission = self.mission_of(node)
        command = mission.commands.get(name)
        if command is None:
            return None
        fresh = self._fresh.get(node, set())
        v = command.verification
        missing, wait_s = [], 0.0
        for text in (*v.accepted, *v.failed):
            counter = counter_of(text)
            if counter is None or counter in fresh:
                continue
            missing.append(counter)
            try:
                period = mission.packet_named(counter.split(".", 1)[0]).period_s or 1.0
            except KeyError:
                period = 1.0
            wait_s = max(wait_s, min(BASELINE_WAIT_MAX_S, max(BASELINE_WAIT_MIN_S, 2.5 * period)))
        return (", ".join(missing), wait_s) if missing else None

    async def _send(self, record: CommandRecord, link: Link) -> None:
        node = record.node
        mission = self.mission_of(node)
        command = mission.commands[record.command]
        now = self.engine.clock()
        actor = self.system
        valid = validate(
            CommandLine(node, record.command, {k: str(v) for k, v in record.arguments.items()}),
            mission,
        )
        packet = valid.packet
        counter = None
        key = await asyncio.to_thread(self._key, node)  # a file or the environment
        if key is not None:
            from groundctl.commanding.auth import sign

            counter = await self.store.call(self.store.next_counter, node)
            packet = sign(packet, key, counter, checksum=mission.checksum)
        released_now = await self.store.call(
            self.store.release, record.id, now, f"via link {link.name}",
            actor=actor, link=link.name, counter=counter,
        )  # fmt: skip
        if not released_now:
            return  # cancelled while it was being prepared: never sent
        released = StageChange("released", now, f"via link {link.name}")
        self._remember(record.id, released)
        self._publish(record.id, node, released)
        from groundctl.links.base import LinkError

        # the counters' values before sending are the baselines
        verifier = Verifier(
            node,
            command.verification,
            mission,
            now,
            dict(self.latest_raw.get(node, {})),
            dict(self.latest_values.get(node, {})),
        )
        try:
            await link.send(packet, node)
        except LinkError as error:
            # not sent: back in the queue, first in line, for the next contact
            detail = f"not sent: {error.message}"
            await self.store.call(
                self.store.stage, record.id, "queued", self.engine.clock(), detail, actor=actor
            )
            self._publish(record.id, node, StageChange("queued", self.engine.clock(), detail))
            await asyncio.sleep(RETRY_S)  # a link that refuses while "in contact": retry later
            return
        # At once, with no await in between: the node's answer may be the next frame.
        # The node acts at uplink_clock (the simulator's may run ahead of the frames
        # delivered so far): the timeout runs from then.
        sent_s = link.clock()
        verifier.sent_s = sent_s
        verifier.deadline_s = link.uplink_clock(node) + command.verification.timeout_s
        sent = StageChange("sent", sent_s, f"{len(packet)} bytes")
        extra = {"raw": packet, "pass_id": self.engine.passes.current(node)}
        self._pending_stages.append((record.id, node, sent, extra))
        self._stage_wake.set()
        self._remember(record.id, sent)
        self._publish(record.id, node, sent)
        if verifier.done:  # no verification rules
            self._finish(record.id, node, StageChange("sent", sent_s, "not verifiable: no rules"))
        else:
            self._verifiers[node] = (record.id, verifier)
        await self.engine.sent(Frame(packet, sent_s, link.name, node, "up"))

    def _key(self, node: str) -> bytes | None:
        if self.config is None:
            return None
        entry = self.config.nodes.get(node)
        if entry is None or not entry.requires_auth:
            return None
        from groundctl.commanding.auth import node_key

        return node_key(entry)

    # --- stages ----------------------------------------------------------------------------------
    def _stages(self, command_id: int, node: str, changes: list[StageChange]) -> None:
        for change in changes:
            self._pending_stages.append((command_id, node, change, {}))
            self._remember(command_id, change)
            self._publish(command_id, node, change)
        if changes:
            self._stage_wake.set()
            flight = self._verifiers.get(node)
            if flight is not None and flight[0] == command_id and flight[1].done:
                del self._verifiers[node]
                self._finish(command_id, node, changes[-1])

    def _remember(self, command_id: int, change: StageChange) -> None:
        outcome = self._outcomes.get(command_id)
        if outcome is not None:
            outcome.stages.append(change)
            outcome.stage = change.stage
            outcome.detail = change.detail

    def _finish(self, command_id: int, node: str, change: StageChange) -> None:
        outcome = self._outcomes.get(command_id)
        if outcome is not None:
            outcome.stage = change.stage
            outcome.detail = change.detail
            outcome.done.set()
        wake = self._wake.get(node)
        if wake is not None:
            wake.set()

    async def _write_stages(self) -> None:
        """Write stages in the order they happened, until stopped with nothing left."""
        while True:
            await self._stage_wake.wait()
            self._stage_wake.clear()
            await self._flush_stages()
            if self._closing and not self._pending_stages:
                return

    async def _flush_stages(self) -> None:
        while self._pending_stages:
            command_id, _node, change, extra = self._pending_stages.pop(0)
            await self.store.call(
                self.store.stage, command_id, change.stage, change.time_s, change.detail,
                actor=self.system, **extra,
            )  # fmt: skip

    def _publish(
        self, command_id: int, node: str, change: StageChange, release_at: float | None = None
    ) -> None:
        self.engine.command_stage(node, change.stage)  # counted in the node's flown pass
        self.engine.bus.publish(
            CommandMessage(
                command_id,
                node,
                self._texts.get(command_id, ""),
                change.stage,
                change.time_s,
                change.detail,
                release_at,
            )
        )

    # --- for procedures and the console ---------------------------------------------------
    def reachable(self, node: str) -> bool:
        link = self.link_for(node)
        return link is not None and link.in_contact(node)

    def next_contact(self, node: str) -> float | None:
        link = self.link_for(node)
        return link.next_contact(node) if link is not None else None


def _waiting(link: Link | None, aos: float | None, time_tag: bool = False) -> str:
    from datetime import UTC, datetime

    if time_tag and aos is not None:
        return f"waiting for its time tag {datetime.fromtimestamp(aos, UTC):%Y-%m-%d %H:%M:%S}Z"
    if link is None:
        return "waiting: no link serves this node"
    if aos is None:
        return f"waiting for contact (link {link.name} is {link.state.value})"
    return f"waiting for contact: next AOS {datetime.fromtimestamp(aos, UTC):%Y-%m-%d %H:%M:%S}Z"


Callback = Callable[[CommandMessage], None]
