"""The console's ground segment: a Session running in a thread of its own.

The engine decodes, checks limits, archives and verifies on its own event loop in a
background thread, so the console's thread only draws. Bus messages land in a
`ConsoleState` (coalesced); the UI takes snapshots of it on a timer. Everything the UI
asks of the engine (send a command, acknowledge an alert, read history from the
archive) is a coroutine handed to the engine's loop; the UI awaits its result without
blocking (`await backend.call(...)`).

In replay (`replay=` a `groundctl.replay.ReplaySource`) the only link is a replay link,
commanding is disabled, and the controls (pause, step, speed, seek) run on the engine's
loop; the UI reads `replay_status`, a `ReplayStatus` the engine's thread renews ten times
a second and after each control.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import math
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from groundctl.bus import (
    AlertMessage,
    Bus,
    CommandMessage,
    EventMessage,
    LinkStateMessage,
    SampleMessage,
    StationMessage,
)
from groundctl.operations import OperationsError, RemoteCommand, command_ref
from groundctl.ui.state import ConsoleState

if TYPE_CHECKING:
    from groundctl.commander import Commander, Outcome
    from groundctl.config import Config, StationControl
    from groundctl.links.base import Link
    from groundctl.links.replay import ReplayLink
    from groundctl.mdb.model import Mission
    from groundctl.orbits.model import Pass
    from groundctl.planning.plan import Job, Plan
    from groundctl.replay import ReplaySource
    from groundctl.session import Session

T = TypeVar("T")
CLOCK_PERIOD_S = 0.1


class BackendError(RuntimeError):
    """The ground segment could not start (the message says why)."""


# Alerts are not acknowledged nor shelved in a replay: its archive is scratch, and an
# acknowledgement there would claim an operator saw an alert that is only being replayed.
ALERTS_READ_ONLY = (
    "alerts cannot be acknowledged or shelved during replay: the replay's archive is "
    "scratch, and the alert is only being replayed"
)


@dataclass(frozen=True)
class ReplayStatus:
    """Where a replay is, as the UI shows it (made on the engine's thread)."""

    title: str
    time_s: float  # the recorded time reached (NaN before the replay is up)
    speed: float  # times real time; 0 is as fast as possible
    paused: bool
    finished: bool  # the recording was replayed to its end
    frames: int  # frames delivered so far (every lap and seek counted)
    running: bool = False  # the replay is up


def faster(speed: float, ladder: tuple[float, ...]) -> float:
    """The next speed up `ladder` from `speed`; past its top, 0 (as fast as possible)."""
    if speed == 0:
        return 0.0
    return next((s for s in ladder if s > speed * (1 + 1e-9)), 0.0)


def slower(speed: float, ladder: tuple[float, ...]) -> float:
    """The next speed down `ladder` from `speed` (0: from the top); its bottom stays."""
    if speed == 0:
        return ladder[-1]
    return next((s for s in reversed(ladder) if s < speed * (1 - 1e-9)), ladder[0])


class Backend:
    """Start with `start()` (blocking until the session is up; from the UI, call it in a
    worker thread), stop with `stop()` (flushes the archive)."""

    def __init__(
        self,
        config: Config,
        archive_path: str | Path,
        *,
        sim: bool | None = None,
        sim_options: Mapping[str, Any] | None = None,
        links: list[Link] | None = None,
        operator: str | None = None,
        role: str | None = None,
        replay: ReplaySource | None = None,
        replay_speed: float = 1.0,
        replay_seek_s: float | None = None,
        replay_paused: bool = False,
        missions: tuple[dict[str, Mission], Mission | None] | None = None,
    ) -> None:
        """`replay` runs the console over a replay of that source instead of links: its
        replay link is built here (LinkError at once if its options are bad) at
        `replay_speed`, goes to `replay_seek_s` (Unix seconds) and is paused if
        `replay_paused`, before its first frame; commanding is disabled. `missions`
        (node -> database, and the default) replaces the config's."""
        self.config = config
        self.archive_path = Path(archive_path)
        self.sim = sim
        self.sim_options = dict(sim_options or {})
        self.given_links = links
        self.operator = operator
        self.role = role
        self.replay = replay
        self.missions = missions
        self.replay_link: ReplayLink | None = None
        self._replay_start = (replay_seek_s, replay_paused)
        self._speed_before_max = replay_speed or 1.0
        self._seeking: tuple[float, int] | None = None  # (time sought, frames then)
        if replay is not None:
            from groundctl.links.replay import ReplayLink

            self.replay_link = ReplayLink(
                "replay", replay.node, {**replay.options, "speed": replay_speed}
            )
            self.given_links = [self.replay_link]
        self.replay_status = ReplayStatus(
            replay.title if replay is not None else "",
            math.nan,
            replay_speed,
            replay_paused,
            False,
            0,
        )
        self.state = ConsoleState()
        self.session: Session | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        # a read connection for history, used from one thread of its own
        self._archive: Any = None
        self._reader = concurrent.futures.ThreadPoolExecutor(1, "groundctl-history")
        self._engine_thread: threading.Thread | None = None

    # --- lifecycle (any thread) --------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> None:
        """Start the engine thread and wait until the session is up (BackendError, or the
        session's own GroundctlError, if it cannot start)."""
        self._thread = threading.Thread(target=self._main, name="groundctl-engine", daemon=True)
        self._engine_thread = self._thread
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise BackendError(f"the ground segment did not start within {timeout_s:g} s")
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the session (links closed, every frame archived) and the thread."""
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._error is None

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coroutine` on the engine's loop; a concurrent Future of its result."""
        if self.loop is None:
            coroutine.close()
            raise BackendError("the ground segment is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await `coroutine` run on the engine's loop, from another loop (the UI's)."""
        return await asyncio.wrap_future(self.submit(coroutine))

    # --- the engine's thread ------------------------------------------------------------------
    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:
            if not self._ready.is_set():
                self._error = error
                self._ready.set()

    async def _run(self) -> None:
        from groundctl.session import Session

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # subscribed before anything starts: the links' first states and the first
        # frames are shown too
        bus = Bus()
        latest = bus.subscribe(SampleMessage, mode="latest")
        # every station update (not coalesced): one that sent a target is never skipped
        others = bus.subscribe(
            EventMessage,
            AlertMessage,
            CommandMessage,
            LinkStateMessage,
            StationMessage,
            maxsize=50_000,
        )
        session = Session(
            self.config,
            self.archive_path,
            sim=self.sim,
            sim_options=self.sim_options,
            links=self.given_links,
            operator=self.operator,
            role=self.role,
            source="console",
            bus=bus,
            stations=True,
            replay=self.replay is not None,
            missions=self.missions,
        )
        link = self.replay_link
        seek_s, paused = self._replay_start
        if link is not None and (paused or seek_s is not None):
            link.pause()  # no frame before the seek, or none at all when paused
        try:
            await session.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        if link is not None:
            assert session.engine is not None
            # The engine's clock is the replay link's, which runs on past the end of the
            # recording (stale alerts would follow that were never in it): this one stops
            # at the last frame, and knows a seek has moved it.
            session.engine.clock = functools.partial(self._replay_time, link)
            if seek_s is not None:
                self._seek_now(seek_s)
            if not paused:
                link.resume()
            self._renew_status()  # before anyone may ask the clock
        self.session = session
        assert session.engine is not None
        tasks = [
            asyncio.create_task(self._pump(latest, CLOCK_PERIOD_S), name="console-samples"),
            asyncio.create_task(self._pump(others), name="console-messages"),
            asyncio.create_task(self._clock(), name="console-clock"),
        ]
        self.state.set_clock(self.clock())  # the first snapshot has the real clock
        self._renew_status()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            bus.unsubscribe(latest)
            bus.unsubscribe(others)
            await session.stop()
            if self._archive is not None:
                await asyncio.get_running_loop().run_in_executor(self._reader, self._archive.close)
            self._reader.shutdown(wait=False)

    async def _pump(self, subscription: Any, period_s: float = 0.0) -> None:
        """Apply what arrives to the state; with `period_s`, at most that often (the
        coalescing subscription then holds one message per parameter between looks)."""
        clock = self.clock
        apply = self.state.apply
        async for batch in subscription.batches():
            now = clock()
            for message in batch:
                apply(message, now)
            if period_s:
                await asyncio.sleep(period_s)

    async def _clock(self) -> None:
        while True:
            lag = max((getattr(link, "lag_s", 0.0) for link in self.links), default=0.0)
            self.state.set_clock(self.clock(), lag)
            self._renew_status()
            await asyncio.sleep(CLOCK_PERIOD_S)

    # --- replay (the engine's thread) ---------------------------------------------------------
    def _replay_time(self, link: ReplayLink) -> float:
        """The recorded time reached: the last frame's once the recording is over (the
        link's clock would run on), the time sought until a frame after a seek comes
        (a paused link's clock stays at the frame before), else the link's clock."""
        if link.finished and link.position_s is not None:
            return link.position_s
        if self._seeking is not None:
            sought, frames = self._seeking
            if link.counters.frames_in == frames and not link.finished:
                return sought
            self._seeking = None
        return link.clock()

    def _renew_status(self) -> ReplayStatus:
        link = self.replay_link
        if link is None or self.replay is None:
            return self.replay_status
        status = ReplayStatus(
            self.replay.title,
            self._replay_time(link),
            link.speed,
            link.paused,
            link.finished,
            link.counters.frames_in,
            running=True,
        )
        self.replay_status = status  # one reference: safe to read from any thread
        return status

    def _seek_now(self, time_s: float) -> None:
        link = self.replay_link
        assert link is not None
        link.seek(time_s)
        self._seeking = (time_s, link.counters.frames_in)

    async def _control(self, what: str, time_s: float | None = None) -> ReplayStatus:
        """Apply one control to the replay link (on the engine's loop)."""
        link = self.replay_link
        session = self.session
        if link is None or session is None or session.engine is None:
            raise BackendError("not replaying")
        if what == "pause":
            if link.paused:
                link.resume()
            else:
                link.pause()
        elif what == "step":
            link.step()
        elif what in ("faster", "slower", "max"):
            from groundctl.replay import SPEEDS

            speed = link.speed
            if what == "faster":
                speed = faster(speed, SPEEDS)
            elif what == "slower":
                speed = slower(speed, SPEEDS)
            elif speed:
                self._speed_before_max, speed = speed, 0.0
            else:
                speed = self._speed_before_max
            link.set_speed(speed)
        elif what == "seek":
            assert time_s is not None
            engine = session.engine
            if engine.pump(link.name).done():
                # the recording was over and its frames ended: open it again, held still
                # until the seek is in place
                paused = link.paused
                link.pause()
                await engine.detach(link.name)
                engine.attach(link)
                await link.open()
                self._seek_now(time_s)
                if not paused:
                    link.resume()
            else:
                self._seek_now(time_s)
        else:
            raise ValueError(f"unknown replay control {what!r}")
        self.state.set_clock(self.clock())
        return self._renew_status()

    # --- what the UI asks ---------------------------------------------------------------------
    def clock(self) -> float:
        """The engine's clock: the simulated or the recorded time in a simulation or a
        replay, else the wall clock."""
        session = self.session
        if session is None or session.engine is None:
            return time.time()
        link = self.replay_link
        if link is not None:
            if threading.current_thread() is not self._engine_thread:
                shown = self.replay_status.time_s  # the link is the engine thread's
                return shown if math.isfinite(shown) else time.time()
            return self._replay_time(link)
        return session.engine.clock()

    @property
    def replaying(self) -> bool:
        return self.replay is not None

    async def replay_pause(self) -> ReplayStatus:
        """Pause the replay, or resume it."""
        return await self.call(self._control("pause"))

    async def replay_step(self) -> ReplayStatus:
        """Deliver the next frame and stay paused."""
        return await self.call(self._control("step"))

    async def replay_faster(self) -> ReplayStatus:
        """The next speed up `groundctl.replay.SPEEDS` (past the top: as fast as possible)."""
        return await self.call(self._control("faster"))

    async def replay_slower(self) -> ReplayStatus:
        """The next speed down `groundctl.replay.SPEEDS`."""
        return await self.call(self._control("slower"))

    async def replay_max(self) -> ReplayStatus:
        """As fast as possible, or back to the speed before."""
        return await self.call(self._control("max"))

    async def replay_seek(self, time_s: float) -> ReplayStatus:
        """Go on from the first frame at or after `time_s` (Unix seconds); paused stays
        paused; after the end of the recording, it replays again from there."""
        return await self.call(self._control("seek", time_s))

    @property
    def links(self) -> list[Link]:
        return list(self.session.links) if self.session is not None else []

    @property
    def commander(self) -> Commander:
        if self.session is None or self.session.commander is None:
            raise BackendError("the ground segment is not running")
        return self.session.commander

    @property
    def simulated(self) -> bool:
        return any(type(link).__name__ == "SimLink" for link in self.links)

    @property
    def speed(self) -> float | None:
        for link in self.links:
            speed = getattr(link, "speed", None)
            if type(link).__name__ == "SimLink" and speed is not None:
                return float(speed)
        return None

    def station_control(self) -> list[StationControl]:
        """The stations with a rotator or a radio, in the config's order (none in a
        replay: its session drives no station)."""
        if self.replaying:
            return []
        control = self.config.control
        return [control[s.name] for s in self.config.stations if s.name in control]

    def mission_of(self, node: str) -> Mission | None:
        try:
            return self.commander.mission_of(node)
        except Exception:
            return None

    def nodes(self) -> list[str]:
        """Nodes the console knows: configured, served by a link, or heard from."""
        names = self.state.node_names() | set(self.config.nodes)
        for link in self.links:
            fleet = getattr(link, "fleet", None)
            if fleet is not None:
                names |= set(fleet.nodes)
            elif link is self.replay_link and self.replay and self.replay.kind != "file":
                continue  # an archive's replay link: its node is only a label
            elif link.node and link.node != "fleet":
                names.add(link.node)
        return sorted(names)

    async def issue(self, text: str, confirm: bool | str = False) -> Outcome:
        async def run() -> Outcome:
            return await self.commander.issue(text, confirm=confirm, source="console")

        return await self.call(run())

    async def acknowledge(self, alert_id: int, comment: str = "") -> None:
        self._alerts_writable()
        await self.call(self.commander.acknowledge(alert_id, comment))

    async def shelve(self, alert_id: int, until_s: float) -> None:
        self._alerts_writable()
        await self.call(self.commander.shelve(alert_id, until_s))

    def _alerts_writable(self) -> None:
        if self.replaying:
            from groundctl.errors import CommandError

            raise CommandError(ALERTS_READ_ONLY)

    async def cancel(self, command_id: int, reason: str = "") -> None:
        await self.call(self.commander.cancel(command_id, reason))

    async def queued(self) -> list[Any]:
        return await self.call(self.commander.queued())

    def remote_queued(self) -> list[RemoteCommand]:
        """The other consoles' queued commands, oldest first (shared operations; none
        when the ground segment is not up or shares no operations)."""
        session = self.session
        operations = session.operations if session is not None else None
        if operations is None:
            return []
        for _ in range(3):  # read from the UI's thread: the engine's may change it meanwhile
            with contextlib.suppress(RuntimeError):
                return operations.queued()
        return []

    async def cancel_remote(self, origin: str, command_id: int, reason: str = "") -> None:
        """Ask console `origin` to cancel its queued command `command_id` (it checks this
        operator's role there; the outcome arrives as the command's next stage)."""

        async def run() -> None:
            session = self.session
            if session is None or session.operations is None:
                raise OperationsError(
                    f"{command_ref(origin, command_id)} not cancelled: this console shares no "
                    "operations with other consoles ([operations] is not configured)"
                )
            session.operations.request_cancel(origin, command_id, reason)

        await self.call(run())

    async def history(
        self, node: str, parameter: str, start_s: float, end_s: float, limit: int = 5000
    ) -> list[tuple[float, Any]]:
        """(time, value) of a parameter from the archive (read on the engine's thread
        pool, never the UI's)."""

        def read() -> list[tuple[float, Any]]:
            from groundctl.archive import open_archive

            if self._archive is None:
                self._archive = open_archive(self.archive_path)
            return [
                (s.time_s, s.value)
                for s in self._archive.query_samples(
                    parameter, node=node, start_s=start_s, end_s=end_s, limit=limit
                )
            ]

        async def run() -> list[tuple[float, Any]]:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._reader, read)

        return await self.call(run())

    async def contacts(self, hours: float = 24.0) -> list[Pass]:
        """The contact plan from now for `hours`: the simulator's own plan, else predicted
        from the config's fleet and stations (in a thread, never on a loop)."""
        from groundctl.session import contact_plan

        start = datetime.fromtimestamp(self.clock(), UTC)
        end = start + timedelta(hours=hours)
        return await self.call(contact_plan(self.config, self.links, start, end))

    async def fleet_plan(self, hours: float = 24.0, jobs: Sequence[Job] | None = None) -> Plan:
        """The fleet plan from now for `hours` (groundctl.planning): the simulated nodes,
        else the config's fleet, each starting from its latest telemetry, with `jobs` (None:
        the config's [planning] jobs file, read again each time); planned in a thread,
        never on a loop."""
        from groundctl.planning.fleet import plan_fleet, read_jobs
        from groundctl.planning.forecast import NodeStart

        async def run() -> Plan:
            start = datetime.fromtimestamp(self.clock(), UTC)
            sim: Any = next((k for k in self.links if getattr(k, "fleet", None)), None)
            if sim is not None:
                satellites = list(sim.fleet.satellites)
            else:
                from groundctl.fleet import load_fleet

                fleet = await asyncio.to_thread(load_fleet, self.config, now=start)
                satellites = fleet.satellites(None)
            queued = jobs
            job_file = self.config.planning.jobs_file
            if queued is None:
                queued = []
                if job_file is not None:  # checked against the config's whole fleet
                    from groundctl.fleet import load_fleet

                    fleet = await asyncio.to_thread(load_fleet, self.config, now=start)
                    queued = await asyncio.to_thread(read_jobs, job_file, fleet.names())
            latest = self.commander.latest_values
            starts = {
                node: NodeStart.from_telemetry(dict(values)) for node, values in latest.items()
            }
            plan, _ = await asyncio.to_thread(
                plan_fleet, self.config, start, hours, satellites=satellites, jobs=queued,
                starts=starts,
            )  # fmt: skip
            return plan

        return await self.call(run())
