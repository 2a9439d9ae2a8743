"""`groundctl sim`: run the orbital compute node simulator.

Two ways: in-process, the simulated fleet's telemetry goes through the engine into the
archive (a training run, or a load test); with `--udp`, one node speaks on UDP like the
NASA cFS lab setup, for the console or any ground system to drive.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from groundctl.cli import cli, context, err_console
from groundctl.errors import GroundctlError


class SimUsageError(GroundctlError):
    title = "usage error"


@cli.command("sim")
@click.option("--udp", is_flag=True, help="Run one node on UDP (cFS lab style) instead.")
@click.option("--node", help="With --udp: the node to run. Default: the fleet's first.")
@click.option(
    "--listen",
    default="127.0.0.1:1234",
    show_default=True,
    help="With --udp: HOST:PORT commands arrive on (port 0: any free one, printed).",
)
@click.option(
    "--send-to",
    default="127.0.0.1:1235",
    show_default=True,
    help="With --udp: HOST:PORT telemetry datagrams go to.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --udp: the node takes only commands signed with this key (HMAC-SHA256 "
    "and a counter; hex key, file mode 600). In-process nodes take their keys from the "
    "config's [nodes] key_file or key_env.",
)
@click.option(
    "--nodes", default="", help="In-process: comma-separated nodes. Default: the whole fleet."
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated seconds per second; 0 runs as fast as possible.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--start", help="Simulated start, ISO 8601 UTC. Default: now.")
@click.option(
    "--duration", type=float, help="Stop after this many simulated seconds. Default: run on."
)
@click.option(
    "--gate/--no-gate",
    default=None,
    help="Transmit only during contacts of the contact plan. Default: on in-process, "
    "off with --udp (a lab bench is always in contact).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="'NODE FAULT at S [for S]'",
    help="Inject a fault S seconds after the start (repeatable). Faults: SENSOR_STUCK, "
    "BATTERY_UNDERVOLTAGE, THERMAL_RUNAWAY, SEU_REBOOT, PACKET_CORRUPTION, LINK_DROP.",
)
@click.pass_context
def sim(
    ctx: click.Context,
    udp: bool,
    node: str | None,
    listen: str,
    send_to: str,
    key_file: Path | None,
    nodes: str,
    speed: float,
    seed: int,
    start: str | None,
    duration: float | None,
    gate: bool | None,
    faults: tuple[str, ...],
) -> None:
    """Simulate orbital compute nodes speaking the odc-node mission database.

    The nodes fly their TLEs over the configured stations; sunlight from the real Sun
    drives their power, compute load their heat, and job results fill storage until
    downlinked. In-process, telemetry goes through the engine into the archive and a
    status line is printed every few seconds; Ctrl-C stops cleanly.

    \b
    Examples:
      groundctl sim --speed 60 --duration 3600          # an hour of the demo fleet in a minute
      groundctl sim --speed 0 --duration 86400 --fault 'ODC-07 THERMAL_RUNAWAY at 600 for 900'
      groundctl sim --udp --node ODC-07                 # commands on 1234, telemetry to 1235
      groundctl sim --udp --listen 127.0.0.1:0 --send-to 127.0.0.1:5000 --speed 10
      groundctl sim --udp --node ODC-07 --key-file odc-07.key   # signed commands only
    """
    from groundctl.sim.fleet import SimError, parse_faults

    if key_file is not None and not udp:
        raise SimUsageError(
            "--key-file goes with --udp",
            hint="in-process, a node takes its key from the config's [nodes] key_file or key_env",
        )
    if speed < 0:
        raise SimUsageError("--speed must be 0 (as fast as possible) or more")
    if duration is not None and duration <= 0:
        raise SimUsageError("--duration must be more than 0 seconds")
    try:
        schedule = parse_faults(";".join(faults))
    except SimError as error:
        raise SimUsageError(f"--fault: {error.message}", hint=error.hint) from None
    start_s = _start(start)
    cfg = context.config(ctx)
    if udp:
        _run_udp(
            cfg,
            node,
            listen,
            send_to,
            speed,
            seed,
            start_s,
            duration,
            bool(gate),
            schedule,
            key_file,
        )
    else:
        options: dict[str, Any] = {
            "speed": speed,
            "seed": seed,
            "nodes": nodes,
            "gate": True if gate is None else gate,
            "faults": ";".join(faults),
            "start": datetime.fromtimestamp(start_s, UTC).isoformat(),
            "duration": duration or 0.0,
        }
        _run_engine(ctx, cfg, options)


def _start(text: str | None) -> float:
    if not text:
        return float(int(time.time()))
    from groundctl.cli.passes import parse_time

    return parse_time(text, "--start").timestamp()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _run_udp(
    cfg: Any,
    node: str | None,
    listen: str,
    send_to: str,
    speed: float,
    seed: int,
    start_s: float,
    duration: float | None,
    gate: bool,
    schedule: list[Any],
    key_file: Path | None,
) -> None:
    from groundctl.commanding.auth import read_key_file
    from groundctl.fleet import load_fleet
    from groundctl.sim.fleet import SimFleet
    from groundctl.sim.standalone import serve_udp

    key = read_key_file(key_file) if key_file is not None else None
    fleet_tles = load_fleet(cfg, now=datetime.fromtimestamp(start_s, UTC))
    satellites = fleet_tles.satellites([node] if node else None)[:1]
    if not satellites:
        raise SimUsageError(
            f"--node {node}: not in the fleet",
            hint="fleet: " + ", ".join(fleet_tles.names()[:12]),
        )
    name = satellites[0].name
    fleet = SimFleet(
        satellites,
        cfg.stations,
        start_s=start_s,
        seed=seed,
        gate=gate,
        faults=schedule,
        keys={name: key} if key is not None else None,
    )
    signed = " (signed commands only)" if key is not None else ""

    async def main() -> int:
        stop = _stop_event()

        def ready(port: int) -> None:
            # One line on stdout, flushed: scripts and tests wait for it.
            click.echo(f"simulating {name}: commands on UDP {port}, telemetry to {send_to}{signed}")

        return await serve_udp(
            fleet, name, listen, send_to, speed=speed, duration_s=duration, ready=ready, stop=stop
        )

    sent = asyncio.run(main())
    err_console.print(f"{name}: {sent} packets sent")


def _run_engine(ctx: click.Context, cfg: Any, options: dict[str, Any]) -> None:
    from groundctl.engine import Engine
    from groundctl.links.base import LinkContext, LinkError
    from groundctl.links.sim import SimLink
    from groundctl.mdb.loader import load_mission

    mission_entry = cfg.missions.get("odc-node")
    mission = load_mission(
        mission_entry.path if mission_entry else _shipped("missions/odc-node.toml")
    )
    try:
        link = SimLink("sim", "fleet", options)
    except LinkError as error:
        raise SimUsageError(error.message, hint=error.hint) from None
    link.bind(LinkContext(config=cfg))
    path = context.archive_path(ctx, cfg)
    out = Console(highlight=False, soft_wrap=True)  # one line per status, however narrow

    async def main() -> None:
        stop = _stop_event()
        engine = Engine(path, default=mission, clock=link.clock)
        await engine.start()
        try:
            pump = engine.attach(link)  # first, so that its connecting and up are archived
            await link.open()
            out.print(
                f"simulating {len(link.fleet.nodes)} nodes from "
                f"{datetime.fromtimestamp(link.start_s, UTC):%Y-%m-%d %H:%M:%S}Z at "
                f"{'maximum speed' if not link.speed else f'{link.speed:g}x'} into {path}"
            )
            wall0 = time.monotonic()
            next_report = wall0 + 5.0
            stopped = asyncio.ensure_future(stop.wait())
            while not stop.is_set() and not pump.done():
                await asyncio.wait([pump, stopped], timeout=0.2)
                if time.monotonic() >= next_report:
                    next_report += 5.0
                    _status(out, link, engine, wall0)
            stopped.cancel()
        finally:
            await engine.stop()  # closes the link; everything received is committed
        _status(out, link, engine, wall0)

    asyncio.run(main())


def _status(out: Console, link: Any, engine: Any, wall0: float) -> None:
    elapsed = max(time.monotonic() - wall0, 1e-9)
    sim_s = link.clock() - link.start_s
    book = engine.processor.alerts if engine.processor is not None else None
    active = sum(a.active for a in book.visible(link.clock())) if book is not None else 0
    out.print(
        f"{datetime.fromtimestamp(link.clock(), UTC):%Y-%m-%d %H:%M:%S}Z  "
        f"{sim_s:,.0f} s simulated in {elapsed:,.1f} s ({sim_s / elapsed:,.1f}x)  "
        f"frames {link.counters.frames_in:,} ({link.counters.frames_in / elapsed:,.0f}/s)  "
        f"active alerts {active}"
    )


def _shipped(relative: str) -> Any:
    from groundctl.paths import data_dir

    return data_dir() / relative
