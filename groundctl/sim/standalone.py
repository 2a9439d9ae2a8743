"""The simulator as a separate program on the wire, like NASA cFS's lab setup.

One node: command packets arrive as UDP datagrams on `listen` (CI_LAB's 1234), and
telemetry goes out as one datagram per packet to `send_to` (where the ground's TO_LAB
output goes, 1235). The UDP sockets are groundctl's own `udp` link, pointed the other
way round. The console drives it through a `udp` link exactly as it would flight
software. A node the fleet was built with a key for (`SimFleet(keys=...)`, from
`groundctl sim --udp --key-file`) takes only authenticated commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from groundctl.links.udp import UdpLink
from groundctl.sim.fleet import SimFleet


async def serve_udp(
    fleet: SimFleet,
    node: str,
    listen: str,
    send_to: str,
    *,
    speed: float = 1.0,
    duration_s: float | None = None,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run `node` of `fleet` on UDP until `duration_s` simulated seconds have passed or
    `stop` is set; return how many packets it sent. `ready(port)` is called with the
    bound command port once listening. `speed` 0 runs as fast as possible."""
    wire = UdpLink("sim-udp", node, {"uplink": send_to, "downlink": listen})
    await wire.open()
    assert wire.bound_port is not None
    if ready is not None:
        ready(wire.bound_port)
    stop = stop or asyncio.Event()

    async def commands() -> None:
        async for frame in wire.frames():
            with contextlib.suppress(Exception):  # a command out of contact is lost in space
                fleet.command(node, frame.raw)

    listener = asyncio.create_task(commands())
    loop = asyncio.get_running_loop()
    wall0, sim0 = loop.time(), fleet.t
    end = sim0 + duration_s if duration_s is not None else None
    sent = 0
    try:
        while not stop.is_set() and (end is None or fleet.t < end):
            if speed:
                target = sim0 + (loop.time() - wall0) * speed
                if target < fleet.t + 1.0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), (fleet.t + 1.0 - target) / speed)
                    continue
            else:
                target = fleet.t + 1.0
            if end is not None:
                target = min(target, end)
            packets, _ = fleet.advance(target)
            for tx in packets:
                if tx.node == node:
                    await wire.send(tx.raw)
                    sent += 1
            await asyncio.sleep(0)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await wire.close()
    return sent
