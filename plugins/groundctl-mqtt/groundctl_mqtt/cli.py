"""`groundctl agent`: run a station agent (registered under `groundctl.commands`)."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import click

from groundctl.cli import context
from groundctl.errors import GroundctlError
from groundctl.links.base import LinkError
from groundctl_mqtt.broker import broker_from_options
from groundctl_mqtt.wire import DEFAULT_PREFIX


class AgentUsageError(GroundctlError):
    title = "agent error"


@click.command("agent")
@click.option("--station", required=True, help="This station's name (its topics).")
@click.option("--broker", "address", required=True, metavar="HOST[:PORT]", help="MQTT broker.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Topic prefix.")
@click.option("--client-id", default="", help="MQTT client id. Default: groundctl-agent-STATION.")
@click.option("--username", default="", help="Broker user name.")
@click.option("--password-env", default="", metavar="VAR", help="Variable holding the password.")
@click.option("--password-file", default="", metavar="FILE", help="File holding the password.")
@click.option("--tls", is_flag=True, help="Connect with TLS (default port 8883).")
@click.option("--ca-file", default="", help="CA certificates to verify the broker (PEM).")
@click.option("--cert-file", default="", help="Client certificate for mutual TLS (PEM).")
@click.option("--key-file", default="", help="The client certificate's key (PEM).")
@click.option("--keepalive", "keepalive_s", type=int, default=30, show_default=True)
@click.option(
    "--sim/--links",
    "sim",
    default=None,
    help="Run the simulator, or the config's [links]. Default: the links when the config "
    "has any, else the simulator.",
)
@click.option("--speed", type=float, default=1.0, show_default=True, help="Simulator speed.")
@click.option("--start", help="Simulator: simulated start, ISO 8601 UTC. Default: now.")
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator: random seed.")
@click.option("--nodes", default="", help="Simulator: comma-separated nodes (default: all).")
@click.option(
    "--gate/--no-gate",
    default=True,
    show_default=True,
    help="Simulator: transmit only during the contact plan's contacts.",
)
@click.pass_context
def agent(
    ctx: click.Context,
    station: str,
    address: str,
    prefix: str,
    client_id: str,
    username: str,
    password_env: str,
    password_file: str,
    tls: bool,
    ca_file: str,
    cert_file: str,
    key_file: str,
    keepalive_s: int,
    sim: bool | None,
    speed: float,
    start: str | None,
    seed: int,
    nodes: str,
    gate: bool,
) -> None:
    """Run a station agent: archive locally, forward frames through an MQTT broker.

    Runs the config's links (or the simulator), archives everything in the archive, and
    publishes each archived frame to PREFIX/station/STATION/down (QoS 1), resuming after
    the last one the broker acknowledged; commands from PREFIX/station/STATION/up go to
    the nodes. Ctrl-C stops it.

    \b
    Examples:
      groundctl agent --station GS-1 --broker broker.example:1883 --sim --speed 60
      groundctl --archive gs1.db agent --station GS-1 --broker broker.example --tls \\
          --ca-file ca.pem --username gs1 --password-env GS1_MQTT_PASSWORD
    """
    from groundctl_mqtt.agent import run_agent

    try:
        broker = broker_from_options(
            "agent",
            address,
            username=username,
            password_env=password_env,
            password_file=password_file,
            tls=tls,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            keepalive_s=keepalive_s,
        )
    except LinkError as error:
        raise AgentUsageError(
            error.message.replace("link agent: option", "option"), hint=error.hint
        ) from None
    cfg = context.config(ctx)
    path = context.archive_path(ctx, cfg)
    sim_options: dict[str, Any] = {"speed": speed, "seed": seed, "nodes": nodes, "gate": gate}
    if start:
        from groundctl.cli.passes import parse_time

        sim_options["start"] = parse_time(start, "--start").isoformat()
    else:
        sim_options["start"] = datetime.fromtimestamp(
            float(int(datetime.now(UTC).timestamp())), UTC
        ).isoformat()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"agent {station}: archive {path}, broker {broker.address}", err=True)
        done = await run_agent(
            cfg,
            path,
            station,
            broker,
            stop=stop,
            prefix=prefix,
            client_id=client_id,
            sim=sim,
            sim_options=sim_options,
        )
        c = done.counters
        click.echo(
            f"agent {station}: {c.forwarded} frames forwarded, {c.commands_sent} commands "
            f"sent, {c.commands_failed} refused",
            err=True,
        )

    asyncio.run(main())
