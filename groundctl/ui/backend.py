"""The console's ground segment: a Session running in a thread of its own.

The engine decodes, checks limits, archives and verifies on its own event loop in a
background thread, so the console's thread only draws. Bus messages land in a
`ConsoleState` (coalesced); the UI takes snapshots of it on a timer. Everything the UI
asks of the engine (send a command, acknowledge an alert, read history from the
archive) is a coroutine handed to the engine's loop; the UI awaits its result without
blocking (`await backend.call(...)`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine, Mapping
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
)
from groundctl.ui.state import ConsoleState

if TYPE_CHECKING:
    from groundctl.commander import Commander, Outcome
    from groundctl.config import Config
    from groundctl.links.base import Link
    from groundctl.mdb.model import Mission
    from groundctl.orbits.model import Pass
    from groundctl.session import Session

T = TypeVar("T")
CLOCK_PERIOD_S = 0.1


class BackendError(RuntimeError):
    """The ground segment could not start (the message says why)."""


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
    ) -> None:
        self.config = config
        self.archive_path = Path(archive_path)
        self.sim = sim
        self.sim_options = dict(sim_options or {})
        self.given_links = links
        self.operator = operator
        self.role = role
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

    # --- lifecycle (any thread) --------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> None:
        """Start the engine thread and wait until the session is up (BackendError, or the
        session's own GroundctlError, if it cannot start)."""
        self._thread = threading.Thread(target=self._main, name="groundctl-engine", daemon=True)
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
        others = bus.subscribe(
            EventMessage, AlertMessage, CommandMessage, LinkStateMessage, maxsize=50_000
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
        )
        try:
            await session.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self.session = session
        assert session.engine is not None
        tasks = [
            asyncio.create_task(self._pump(latest, CLOCK_PERIOD_S), name="console-samples"),
            asyncio.create_task(self._pump(others), name="console-messages"),
            asyncio.create_task(self._clock(), name="console-clock"),
        ]
        self.state.set_clock(self.clock())  # the first snapshot has the real clock
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
            await asyncio.sleep(CLOCK_PERIOD_S)

    # --- what the UI asks ---------------------------------------------------------------------
    def clock(self) -> float:
        session = self.session
        if session is None or session.engine is None:
            return time.time()
        return session.engine.clock()

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
            elif link.node and link.node != "fleet":
                names.add(link.node)
        return sorted(names)

    async def issue(self, text: str, confirm: bool | str = False) -> Outcome:
        async def run() -> Outcome:
            return await self.commander.issue(text, confirm=confirm, source="console")

        return await self.call(run())

    async def acknowledge(self, alert_id: int, comment: str = "") -> None:
        await self.call(self.commander.acknowledge(alert_id, comment))

    async def shelve(self, alert_id: int, until_s: float) -> None:
        await self.call(self.commander.shelve(alert_id, until_s))

    async def cancel(self, command_id: int, reason: str = "") -> None:
        await self.call(self.commander.cancel(command_id, reason))

    async def queued(self) -> list[Any]:
        return await self.call(self.commander.queued())

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
