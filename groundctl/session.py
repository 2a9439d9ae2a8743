"""A running ground segment: the engine, its links and the commander, built from a config.

`groundctl run`, `groundctl cmd` and the console all start one `Session`: the config's
links (`[links]`), or the simulator when asked for or when none are configured; each
node's mission database; the archive; and a commander acting for the operator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundctl.bus import Bus
from groundctl.commander import Commander
from groundctl.config import Config
from groundctl.engine import Engine
from groundctl.errors import ConfigError
from groundctl.links.base import Link, LinkContext
from groundctl.mdb.model import Mission
from groundctl.orbits.model import Pass
from groundctl.paths import data_dir
from groundctl.telemetry.pipeline import Processed

if TYPE_CHECKING:
    from groundctl.operations import SharedOperations
    from groundctl.station.tracker import StationTracker


def load_missions(config: Config, nodes: list[str]) -> tuple[dict[str, Mission], Mission | None]:
    """Each node's mission database, and the default (for nodes not named) from the
    config (`[nodes.NAME] mission`, `[commanding] mission`); the shipped odc-node
    database when the config names none."""
    from groundctl.mdb.loader import load_mission

    cache: dict[Path, Mission] = {}

    def load(name: str) -> Mission | None:
        entry = config.missions.get(name) if name else None
        if entry is None:
            if name:
                raise ConfigError(f"{config.path}: no mission {name!r} in [missions]")
            return None
        if entry.path not in cache:
            cache[entry.path] = load_mission(entry.path)
        return cache[entry.path]

    default = load(config.mission_name(""))
    if default is None:
        default = load_mission(data_dir() / "missions" / "odc-node.toml")
    missions = {}
    for node in nodes:
        mission = load(config.mission_name(node))
        if mission is not None and mission is not default:
            missions[node] = mission
    return missions, default


def predicted_contacts(config: Config, start: datetime, end: datetime) -> list[Pass]:
    """The contact plan of the config's fleet and stations from `start` to `end`:
    scheduled passes, by AOS (pass prediction: seconds of work, call it off the loop)."""
    from groundctl.fleet import load_fleet
    from groundctl.orbits.passes import predict
    from groundctl.orbits.plan import plan_contacts

    fleet = load_fleet(config, now=start)
    prediction = predict(fleet.satellites(None), config.stations, start, end, workers=1)
    planned = plan_contacts(prediction.passes, config.stations)
    return sorted((p for p in planned if p.scheduled), key=lambda p: p.aos)


async def contact_plan(
    config: Config, links: list[Link], start: datetime, end: datetime
) -> list[Pass]:
    """Contacts overlapping `start`..`end`, by AOS: the simulator's own plan when a link
    simulates the fleet, else predicted in a worker thread."""
    plan: list[Pass] | None = None
    for link in links:
        fleet = getattr(link, "fleet", None)
        if fleet is not None and hasattr(fleet, "contacts"):
            plan = list(fleet.contacts())
            break
    if plan is None:
        plan = await asyncio.to_thread(predicted_contacts, config, start, end)
    return sorted((p for p in plan if p.los > start and p.aos < end), key=lambda p: p.aos)


PLAN_REFRESH_S = 3600.0  # clock seconds between refreshes of the stations' contact plan
REPLAY_DISABLED = "commanding is disabled during replay: a replay has no node to command"


class Session:
    """Engine + links + commander. `await start()`, use, `await stop()`.

    `sim` True runs the simulator (`sim_options`: the sim link's options) instead of the
    configured links; None uses the configured links, or the simulator when there are
    none. `links` given explicitly replaces both (tests, replay). `replay` disables
    commanding. `missions` (node -> database, and the default) replaces the config's.
    `on_processed` sees every received frame once processed (`Engine.on_processed`).
    `stations` tracks with the config's station rotators and radios (the console and
    procedures do; a one-off command does not).
    """

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
        source: str = "cli",
        bus: Bus | None = None,
        replay: bool = False,
        missions: tuple[dict[str, Mission], Mission | None] | None = None,
        on_processed: Callable[[Processed], None] | None = None,
        stations: bool = False,
    ) -> None:
        self.config = config
        self.archive_path = Path(archive_path)
        self.use_sim = sim if sim is not None else not config.links
        self.sim_options = dict(sim_options or {})
        self._given_links = links
        self.operator = operator
        self.role = role
        self.source = source
        self.bus = bus  # subscribe to it before start() to miss nothing
        self.replay = replay  # a replay: commanding disabled
        self._missions = missions
        self._on_processed = on_processed
        self.stations = stations  # drive the config's station rotators and radios
        self.links: list[Link] = []
        self.engine: Engine | None = None
        self.commander: Commander | None = None
        self.trackers: list[StationTracker] = []  # the stations' rotators and radios
        self.operations: SharedOperations | None = None  # [operations]: shared with others
        self._plan_refreshed = 0.0
        self._background: set[asyncio.Task[None]] = set()

    def _build_links(self) -> list[Link]:
        if self._given_links is not None:
            return list(self._given_links)
        if self.use_sim:
            from groundctl.links.sim import SimLink

            link: Link = SimLink("sim", "fleet", self.sim_options)
            link.bind(LinkContext(config=self.config))
            return [link]
        from groundctl.links.registry import build

        return [build(self.config, entry) for entry in self.config.links.values()]

    async def start(self) -> None:
        """Build and open everything; links are opened after the engine is attached to
        them, so their whole life is archived."""
        self.links = self._build_links()
        nodes = sorted({*self.config.nodes, *(link.node for link in self.links)})
        # mission databases are files to read and check: off the event loop
        if self._missions is not None:
            missions, default = self._missions
        else:
            missions, default = await asyncio.to_thread(load_missions, self.config, nodes)
        clock = self.links[0].clock if len(self.links) == 1 else time.time
        self.engine = Engine(self.archive_path, missions, default, clock=clock, bus=self.bus)
        if self._on_processed is not None:
            self.engine.on_processed(self._on_processed)
        await self.engine.start()
        self.commander = Commander(
            self.engine,
            config=self.config,
            operator=self.operator,
            role=self.role,
            source=self.source,
            disabled=REPLAY_DISABLED if self.replay else "",
        )
        try:
            for link in self.links:
                self.engine.attach(link)
            for link in self.links:
                await link.open()
            await self.commander.start()
            if self.config.operations is not None and not self.replay:
                await self._start_operations()
            if self.stations and self.config.control and not self.replay:
                await self._start_stations()
        except BaseException:
            await self.stop()
            raise

    async def _start_operations(self) -> None:
        """Share alert actions and commands with the other consoles ([operations])."""
        from groundctl.operations import SharedOperations

        wanted = self.config.operations
        assert wanted is not None and self.engine is not None and self.commander is not None
        link = next((k for k in self.links if k.name == wanted.link), None)
        where = f"{self.config.path}: [operations] link = {wanted.link!r}"
        if link is None:
            raise ConfigError(f"{where}: this session has no such link")
        channel_of = getattr(link, "operations_channel", None)
        if channel_of is None:
            raise ConfigError(
                f"{where}: a {type(link).__name__} cannot share operations",
                hint="name an mqtt link (groundctl-mqtt)",
            )
        self.operations = SharedOperations(
            self.engine, self.commander, wanted.console, channel_of(wanted.console)
        )
        await self.operations.start()

    async def _start_stations(self) -> None:
        """Track with each station's rotator and radio ([stations.rotator], [...radio])."""
        from groundctl.station.tracker import station_trackers

        engine = self.engine
        assert engine is not None
        tles: dict[str, tuple[str, str]] = {}
        sim: Any = next((link for link in self.links if getattr(link, "fleet", None)), None)
        if sim is not None:
            tles = {s.name: (s.line1, s.line2) for s in sim.fleet.satellites}
        else:
            from groundctl.fleet import load_fleet

            fleet = await asyncio.to_thread(load_fleet, self.config)
            tles = {s.name: (s.line1, s.line2) for s in fleet.satellites(None)}
        plan: list[Pass] = []

        async def refresh() -> None:
            now = datetime.fromtimestamp(engine.clock(), UTC)
            plan[:] = await contact_plan(
                self.config, self.links, now - timedelta(hours=1), now + timedelta(hours=24)
            )

        await refresh()
        self._plan_refreshed = engine.clock()

        def contacts() -> list[Pass]:
            if engine.clock() - self._plan_refreshed > PLAN_REFRESH_S:
                self._plan_refreshed = engine.clock()
                task = asyncio.create_task(refresh())
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return plan

        speed = float(getattr(sim, "speed", 1.0)) if sim is not None else 1.0
        self.trackers = station_trackers(
            self.config,
            clock=engine.clock,
            contacts=contacts,
            tles=tles,
            publish=engine.station,
            note=engine.note,
            speed=speed,
        )
        for tracker in self.trackers:
            tracker.start()

    async def stop(self) -> None:
        for tracker in self.trackers:
            await tracker.stop()
        self.trackers = []
        if self.operations is not None:
            await self.operations.stop()
            self.operations = None
        if self.commander is not None and self.commander._started:
            await self.commander.stop()
        if self.engine is not None:
            await self.engine.stop()

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
