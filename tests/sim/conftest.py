"""Shared fixtures of the simulator tests.

The oracle is the `odc-node` mission database: commands are built with its encoder and
everything a node sends is decoded with its codec (`groundctl.mdb`), never with the
simulator's own packing code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.mdb.codec import Codec, Decoded, encode_command
from groundctl.mdb.loader import load_mission
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.sim.fleet import SimFleet, Transmission
from groundctl.telemetry.model import Frame

ROOT = Path(__file__).parents[2]
ODC = ROOT / "data" / "missions" / "odc-node.toml"
START = datetime(2026, 11, 29, tzinfo=UTC)
START_S = START.timestamp()


@dataclass(frozen=True)
class Received:
    """One transmission as the ground decodes it with the mission database."""

    node: str
    sent_s: float  # the simulated second it went out
    raw: bytes
    decoded: Decoded

    @property
    def packet(self) -> str | None:
        return self.decoded.packet.name if self.decoded.packet else None

    @property
    def ok(self) -> bool:
        return self.decoded.packet is not None and not self.decoded.error


class Odc:
    """The mission database as a ground system uses it: build commands, decode packets."""

    def __init__(self) -> None:
        self.mission = load_mission(ODC)
        self.codec = Codec(self.mission)

    def command(self, name: str, **arguments: Any) -> bytes:
        return encode_command(self.mission, self.mission.commands[name], arguments)

    def decode(self, transmissions: Iterable[Transmission | Frame]) -> list[Received]:
        """Simulator transmissions, or frames a link delivered, decoded."""
        return [Received(t.node, t.time_s, t.raw, self.codec.decode(t.raw)) for t in transmissions]

    decode_frames = decode

    @staticmethod
    def series(
        received: Iterable[Received], parameter: str, node: str | None = None, *, raw: bool = False
    ) -> list[tuple[float, Any]]:
        """(packet time, value) of PACKET.FIELD in the packets that decoded."""
        packet, name = parameter.split(".")
        out = []
        for r in received:
            if r.ok and r.packet == packet and (node is None or r.node == node):
                values = r.decoded.raw_values if raw else r.decoded.values
                assert r.decoded.time_s is not None
                out.append((r.decoded.time_s, values[name]))
        return out

    def latest(self, received: Iterable[Received], parameter: str, node: str | None = None) -> Any:
        values = self.series(received, parameter, node)
        assert values, f"no {parameter} received"
        return values[-1][1]

    @staticmethod
    def events(received: Iterable[Received], node: str | None = None) -> list[dict[str, Any]]:
        """The EVENT packets that decoded, as dicts with their packet time `t`."""
        return [
            {**r.decoded.values, "t": r.decoded.time_s, "node": r.node}
            for r in received
            if r.ok and r.packet == "EVENT" and (node is None or r.node == node)
        ]


@pytest.fixture(scope="session")
def odc() -> Odc:
    return Odc()


@pytest.fixture(scope="session")
def config() -> Any:
    return load_config(demo_config_path())


@pytest.fixture(scope="session")
def satellites(config: Any) -> Callable[..., list[Any]]:
    """The demo fleet's nodes of the given names, in fleet order."""
    fleet = load_fleet(config, now=START)

    def pick(*names: str) -> list[Any]:
        found = fleet.satellites(list(names))
        assert len(found) == len(names), names
        return found

    return pick


@pytest.fixture(scope="session")
def contact_plan(config: Any, satellites: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """contact_plan(*names): the contact plan of those demo nodes over the demo stations
    for the window a fleet starting at START plans (30 min before, 24 h after), computed
    with the pass predictor and the planner directly."""

    def plan(*names: str) -> list[Any]:
        start = START - timedelta(minutes=30)
        end = start + timedelta(hours=24.5)
        prediction = predict(satellites(*names), config.stations, start, end, workers=1)
        return plan_contacts(prediction.passes, config.stations)

    return plan


@pytest.fixture(scope="session")
def make_fleet(config: Any, satellites: Callable[..., list[Any]]) -> Callable[..., SimFleet]:
    """A SimFleet of the named demo nodes over the demo stations, from START."""

    def make(*names: str, **options: Any) -> SimFleet:
        options.setdefault("start_s", START_S)
        return SimFleet(satellites(*names), config.stations, **options)

    return make


class Bench:
    """One node on the lab bench (no contact gating): send commands, run seconds, and
    keep everything it sent, decoded."""

    def __init__(self, fleet: SimFleet, odc: Odc, node: str) -> None:
        self.fleet = fleet
        self.odc = odc
        self.node = node
        self.received: list[Received] = []

    @property
    def now(self) -> float:
        return self.fleet.t

    @property
    def sim(self) -> Any:
        return self.fleet.nodes[self.node]

    def send(self, name: str, **arguments: Any) -> None:
        self.send_raw(self.odc.command(name, **arguments))

    def send_raw(self, raw: bytes) -> None:
        self.fleet.command(self.node, raw)

    def run(self, seconds: float) -> list[Received]:
        """Simulate `seconds` more; the packets sent meanwhile."""
        sent, _ = self.fleet.advance(self.fleet.t + seconds)
        received = self.odc.decode(sent)
        self.received += received
        return received

    def latest(self, parameter: str) -> Any:
        return self.odc.latest(self.received, parameter)

    def events(self, since_s: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in self.odc.events(self.received) if e["t"] >= since_s]


@pytest.fixture
def bench(make_fleet: Callable[..., SimFleet], odc: Odc) -> Callable[..., Bench]:
    """bench(node="ODC-07", seed=7, **fleet options): a node on the lab bench from START."""

    def make(node: str = "ODC-07", seed: int = 7, **options: Any) -> Bench:
        return Bench(make_fleet(node, gate=False, seed=seed, **options), odc, node)

    return make
