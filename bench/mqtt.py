"""Benchmark: a station agent's frames through a real mosquitto to a console's `mqtt` link.

Starts mosquitto on a free 127.0.0.1 port (its own temporary config: anonymous, no
persistence, no limit on queued messages), a station agent on the simulator (`--nodes`
nodes of a Walker shell over the demo's five stations, ungated: every node transmits)
in a process of its own, as at a station, and in this process a console: a groundctl
Session whose one link is `mqtt`. Four parts, each `--seconds` long:

- baseline: the agent's Session alone (simulator at speed 0, engine, archive; no broker,
  no forwarder, no console), in the same kind of process: frames/s archived at the station.
- throughput, backlog: an agent with no link forwarding the archive the baseline left (a
  backlog, as after an outage): the console's frames/s and samples/s in steady state
  (after the first tenth of the part). The capacity of the path agent -> broker -> console.
- throughput, live: the agent's simulator at speed 0 (as fast as possible) while it
  forwards: the same figures. The simulator and the forwarder share the agent's event loop.
- latency: the agent's simulator paced at half the backlog throughput (a rate the path
  sustains, so that the figures are of the path, not of a growing queue). For each frame,
  the wall time the agent's engine processed it (`Engine.on_processed`; the simulator's
  frame times are simulated) to the wall time the console's engine processed it, matched
  by (node, frame time, raw bytes). This includes the agent's archive commit (its writer's
  batches are at most 0.25 s old) and the forwarder reading the archive back, as the agent
  runs in production. Median and p99.

Prints the ratio console / baseline (frames/s) for both throughputs: what forwarding
through the broker costs next to archiving at the station (the forwarder, mosquitto, the
console's link and the console's own engine and archive, on the same machine).

    python bench/mqtt.py                    # 20 nodes, 4 x 12 s
    python bench/mqtt.py --quick            # a few seconds: smoke test
    python bench/mqtt.py --nodes 50 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from groundctl.config import Config, demo_config_path, parse_config
from groundctl.session import Session

ROOT = Path(__file__).resolve().parents[1]
START = "2026-11-29T00:00:00+00:00"
STATION = "GS-1"
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
Key = tuple[str, float, bytes]  # node, frame time, raw: one frame on both sides


def fleet_config(nodes: int) -> Config:
    """The demo's stations with a Walker shell of `nodes` (10 per plane)."""
    demo = demo_config_path()
    text = demo.read_text()
    planes = max(1, nodes // 10)
    text = text.replace(
        'walker = { name_format = "ODC-{n:02d}", planes = 4, per_plane = 6,',
        f'walker = {{ name_format = "ODC-{{n:03d}}", planes = {planes}, '
        f"per_plane = {min(nodes, 10)},",
    )
    assert f"planes = {planes}" in text
    return parse_config(text, demo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- the broker -------------------------------------------------------------------------------
class Mosquitto:
    def __init__(self, folder: Path) -> None:
        assert MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)"
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_queued_messages 0\n"  # no limit: a console behind must not lose frames
            f"log_dest file {folder / 'mosquitto.log'}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.02)  # polling for the listener
        raise RuntimeError(f"mosquitto did not listen on {self.port} within 10 s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


# --- the station (a process of its own) -----------------------------------------------------
def station(conn: Any, job: dict[str, Any]) -> None:
    """Run in a spawned process: the agent (or, with port 0, its Session alone) for
    `job["seconds"]`; send back what it did."""
    conn.send(asyncio.run(run_station(job)))
    conn.close()


async def run_station(job: dict[str, Any]) -> dict[str, Any]:
    """`job["archive"]` given: an agent without links forwarding that archive's frames
    (a backlog); else the simulator at `job["speed"]`, through an agent when
    `job["port"]` is set, in a Session alone when it is 0."""
    config = fleet_config(job["nodes"])
    options = {"speed": job["speed"], "seed": 1, "start": START, "gate": False}
    backlog = bool(job.get("archive"))
    archive = Path(job.get("archive") or Path(job["folder"]) / f"station-{job['name']}.db")
    seen: dict[Key, float] = {}
    agent = None
    if job["port"]:
        from groundctl_mqtt.agent import Agent
        from groundctl_mqtt.broker import Broker

        agent = Agent(
            config,
            archive,
            STATION,
            Broker("127.0.0.1", job["port"]),
            client_id=f"bench-agent-{job['name']}",
            sim=not backlog,
            sim_options=options,
            links=[] if backlog else None,
        )
        session = agent.session
        await agent.start()
    else:
        session = Session(config, archive, sim=True, sim_options=options, source="bench")
        await session.start()
    assert session.engine is not None
    link: Any = session.links[0] if session.links else None

    def count() -> int:
        if link is None:
            assert agent is not None
            return agent.counters.forwarded
        return int(link.counters.frames_in)

    if job["record"]:

        def processed(p: Any) -> None:
            seen[(p.frame.node, p.frame.time_s, p.frame.raw)] = time.time()

        session.engine.on_processed(processed)
    wall0 = time.monotonic()
    await asyncio.sleep(job["seconds"] / 10)
    frames0, warm = count(), time.monotonic()
    await asyncio.sleep(max(0.0, job["seconds"] - (time.monotonic() - wall0)))
    frames1, end = count(), time.monotonic()
    sim_s = link.clock() - link.start_s if link is not None else 0.0
    forwarded = 0
    if agent is not None:
        await agent.stop()  # lets the batch being published finish
        forwarded = agent.counters.forwarded
    else:
        await session.stop()
    return {
        "frames": frames1,
        "frames_per_s": (frames1 - frames0) / (end - warm),
        "sim_s": sim_s,
        "forwarded": forwarded,
        "seen": seen,
        "archive": str(archive),
    }


def spawn(job: dict[str, Any]) -> tuple[Any, Any]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=station, args=(theirs, job), name=f"station-{job['name']}")
    process.start()
    theirs.close()
    return process, ours


async def collect(process: Any, conn: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = await asyncio.to_thread(conn.recv)
    except EOFError:
        raise SystemExit(f"the station's process failed (exit code {process.exitcode})") from None
    await asyncio.to_thread(process.join, 30)
    return result


# --- the console (this process) -------------------------------------------------------------
async def console(
    job: dict[str, Any], port: int, folder: Path
) -> tuple[dict[str, Any], dict[Key, float], dict[str, float]]:
    """The console's Session with an mqtt link, while a station runs `job`. Returns the
    station's report, the wall time each frame was processed here, and the steady-state
    counts here."""
    from groundctl_mqtt import MqttLink

    from groundctl.links.base import LinkState

    config = fleet_config(job["nodes"])
    link = MqttLink(
        "gs1",
        "fleet",
        {"broker": f"127.0.0.1:{port}", "station": STATION, "client_id": f"bench-{job['name']}"},
    )
    up = asyncio.Event()
    link.on_state_change(lambda _l, _o, new: up.set() if new is LinkState.UP else None)
    seen: dict[Key, float] = {}
    counts = {"frames": 0, "samples": 0}

    def processed(p: Any) -> None:
        now = time.time()
        counts["frames"] += 1
        counts["samples"] += len(p.samples)
        if job["record"]:
            seen[(p.frame.node, p.frame.time_s, p.frame.raw)] = now

    session = Session(
        config, folder / f"console-{job['name']}.db", links=[link], on_processed=processed
    )
    await session.start()
    try:
        await asyncio.wait_for(up.wait(), 10)
        process, conn = spawn({**job, "port": port})
        # wait for the first frame (the station's process starts), then time a steady window
        while not counts["frames"] and process.is_alive():
            await asyncio.sleep(0.01)
        wall0 = time.monotonic()
        await asyncio.sleep(job["seconds"] / 10)
        before, warm = dict(counts), time.monotonic()
        await asyncio.sleep(max(0.0, job["seconds"] - (time.monotonic() - wall0)))
        after, end = dict(counts), time.monotonic()
        report = await collect(process, conn)
    finally:
        await session.stop()
    steady = {
        "frames": after["frames"],
        "frames_per_s": (after["frames"] - before["frames"]) / (end - warm),
        "samples_per_s": (after["samples"] - before["samples"]) / (end - warm),
        "duplicates": link.duplicates,
        "errors": link.counters.errors,
    }
    return report, seen, steady


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--nodes", type=int, help="simulated nodes, 10 a plane (default 20)")
    parser.add_argument(
        "--seconds", type=float, help="wall seconds of each part (default 12; quick 3)"
    )
    args = parser.parse_args()
    nodes = args.nodes or 20
    seconds = args.seconds or (3.0 if args.quick else 12.0)
    if MOSQUITTO is None:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder)
        broker.start()
        try:
            job = {"nodes": nodes, "seconds": seconds, "folder": tmp, "record": False}
            print(
                f"fleet: {nodes} nodes x 5 stations, all in view; agent (own process) -> "
                f"mosquitto 127.0.0.1:{broker.port} -> console mqtt link; {seconds:g} s per part"
            )
            process, conn = spawn({**job, "name": "alone", "port": 0, "speed": 0.0})
            alone = asyncio.run(collect(process, conn))
            backlog, _, drained = asyncio.run(
                console({**job, "name": "backlog", "speed": 0.0, "archive": alone["archive"]},
                        broker.port, folder)
            )  # fmt: skip
            live, _, steady = asyncio.run(
                console({**job, "name": "max", "speed": 0.0}, broker.port, folder)
            )
            per_sim_s = alone["frames"] / max(alone["sim_s"], 1e-9)
            speed = min(100_000.0, 0.5 * drained["frames_per_s"] / per_sim_s)
            paced, console_seen, paced_steady = asyncio.run(
                console({**job, "name": "paced", "speed": speed, "record": True}, broker.port,
                        folder)
            )  # fmt: skip
        finally:
            broker.stop()

    agent_seen: dict[Key, float] = paced["seen"]
    latencies = [console_seen[k] - t for k, t in agent_seen.items() if k in console_seen]

    def through(label: str, station: dict[str, Any], console: dict[str, float]) -> None:
        print(
            f"  {label}: {console['frames']:,} frames at the console (the agent forwarded "
            f"{station['forwarded']:,}); steady {console['frames_per_s']:,.0f} frames/s, "
            f"{console['samples_per_s']:,.0f} samples/s; duplicates {console['duplicates']}, "
            f"errors {console['errors']}"
        )

    print(
        f"  baseline (agent's session alone, no broker): {alone['frames']:,} frames archived; "
        f"steady {alone['frames_per_s']:,.0f} frames/s"
    )
    through("throughput, backlog (agent forwarding its archive, not receiving)", backlog, drained)
    through(
        f"throughput, live (agent's simulator at max speed, {live['frames']:,} frames archived)",
        live,
        steady,
    )
    if latencies:
        print(
            f"  latency (agent processed -> console processed; agent at speed {speed:,.1f} = "
            f"{speed * per_sim_s:,.0f} frames/s, half the backlog throughput): "
            f"{len(latencies):,} frames matched of {len(agent_seen):,}; median "
            f"{statistics.median(latencies) * 1e3:,.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1e3:,.1f} ms "
            f"(console steady {paced_steady['frames_per_s']:,.0f} frames/s)"
        )
    else:
        print("  latency: no frame matched")
    ratios = (("backlog", drained), ("live", steady))
    for label, figures in ratios:
        print(
            f"  ratio (console through the broker, {label} / baseline, frames/s): "
            f"{figures['frames_per_s'] / alone['frames_per_s']:.2f}"
        )


if __name__ == "__main__":
    main()
