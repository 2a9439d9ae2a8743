"""The procedure API: what a procedure file imports.

A procedure is a Python file with a `main` function; its parameters (with type hints and
defaults) are the procedure's arguments, given with `groundctl run FILE -a name=value`.
It is plain, synchronous Python: each call below blocks the procedure (never the ground
segment, which runs beside it) until it is done::

    from groundctl.procedures import cmd, log, tlm, wait_check, wait_pass

    def main(node: str = "ODC-01", min_soc: float = 40) -> None:
        wait_pass(node)
        cmd(f"{node} NOOP")
        wait_check(f"{node}.BATT_SOC >= {min_soc}", timeout=30)
        log(f"{node} battery at {tlm(node + '.BATT_SOC')} %")

Times (`timeout`, `wait`) are in seconds of the ground segment's clock: wall time with
real links, simulated time with the simulator (so a procedure against a fast simulator
runs fast). A failed check or command raises `CheckFailed`: the run stops there and
`groundctl run` exits 1. In a dry run (`--dry-run`) commands and checks are validated
against the mission database and nothing is sent or waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from groundctl.errors import ProcedureError

if TYPE_CHECKING:
    from groundctl.orbits.model import Pass
    from groundctl.procedures.runner import ProcedureRunner

T = TypeVar("T")

__all__ = [
    "CheckFailed",
    "CommandResult",
    "ContactInfo",
    "alert",
    "cmd",
    "contacts",
    "dry_run",
    "log",
    "now",
    "tlm",
    "wait",
    "wait_check",
    "wait_pass",
]


class CheckFailed(Exception):
    """A command or check failed: the procedure stops here (`groundctl run` exits 1)."""


@dataclass(frozen=True)
class CommandResult:
    """What became of a command: its archive id, last stage (completed, accepted, sent,
    failed, timeout, cancelled, or 'validated' in a dry run) and what showed it."""

    command_id: int | None
    text: str
    stage: str
    detail: str = ""
    stages: list[tuple[str, float, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.stage in ("completed", "accepted", "sent", "validated")


@dataclass(frozen=True)
class ContactInfo:
    """A node in contact: with which station (when the link knows), from AOS to LOS."""

    node: str
    station: str | None
    aos: datetime | None
    los: datetime | None


_local = threading.local()


def _runner() -> ProcedureRunner:
    runner: ProcedureRunner | None = getattr(_local, "runner", None)
    if runner is None:
        raise ProcedureError(
            "the procedure API works inside a procedure run",
            hint="run the file with: groundctl run FILE",
        )
    return runner


def _bind(runner: ProcedureRunner | None) -> None:
    """Make `runner` the current run of this thread (the runner's procedure thread)."""
    _local.runner = runner


def cmd(
    command: str,
    *,
    confirm: bool = False,
    wait: bool = True,
    timeout: float | None = None,
    at: datetime | None = None,
    check: bool = True,
) -> CommandResult:
    """Send a command, e.g. `cmd("ODC-07 SET_POWER_MODE mode=ECO")`.

    The command is validated against the node's mission database and sent when the node
    is in contact (queued for its next contact otherwise, or for the time tag `at`).
    With `wait` (default) this returns when it is verified: completed, or failed / timed
    out, which raises CheckFailed unless `check=False`. `timeout` bounds the whole wait,
    queueing included (default: wait for the contact, then the command's own
    verification timeout). A hazardous command needs `confirm=True`.
    """
    return _runner().cmd(command, confirm=confirm, wait=wait, timeout=timeout, at=at, check=check)


def tlm(parameter: str, default: Any = ProcedureError) -> Any:
    """The latest value of `NODE.PARAMETER`, e.g. `tlm("ODC-07.BATT_SOC")` or
    `tlm("ODC-07.POWER_HK.BATT_SOC")`: engineering units, state names for enumerations.

    Raises ProcedureError when the node has sent no such value yet, unless `default` is
    given (it is returned instead). A name the mission database does not have is always
    an error. In a dry run: the newest value in the archive, else `default`, else None.
    """
    return _runner().tlm(parameter, default)


def wait_check(check: str, timeout: float = 60.0) -> None:
    """Wait until `NODE.EXPRESSION` holds, e.g. `wait_check("ODC-07.BATT_SOC > 40",
    timeout=30)`: the expression is over that node's parameters (docs/mdb.md syntax).

    Raises CheckFailed with the values it saw when it does not hold within `timeout`.
    """
    _runner().wait_check(check, timeout)


def wait_pass(node: str, station: str | None = None, timeout: float | None = None) -> ContactInfo:
    """Wait until `node` is in contact (at `station`, when given): returns at once when it
    already is. `timeout` default: a day. Raises CheckFailed when it runs out."""
    return _runner().wait_pass(node, station, timeout)


def wait(seconds: float) -> None:
    """Wait `seconds` on the ground segment's clock."""
    _runner().wait(seconds)


def alert(text: str, severity: str = "WARNING") -> None:
    """Raise an operator alert from the procedure: printed, archived as an event and
    shown in the console's event pane."""
    _runner().alert(text, severity)


def log(text: str) -> None:
    """Write a line to the run's log (printed and archived)."""
    _runner().log(text)


def dry_run() -> bool:
    """True in a dry run (`groundctl run --dry-run`): nothing is sent, no check waits,
    and `tlm` gives the newest archived value (or its `default`, or None)."""
    return _runner().dry_run


def now() -> datetime:
    """The ground segment's time (UTC): simulated time with the simulator."""
    return _runner().now()


def contacts(node: str | None = None, hours: float = 24.0) -> list[Pass]:
    """The contact plan: scheduled passes (`groundctl.orbits.model.Pass`: node, station,
    aos, tca, los, max_elevation_deg, sunlit...) from now for `hours`, for one node or
    all, sorted by AOS."""
    return _runner().contacts(node, hours)


def call_in_procedure(runner: ProcedureRunner, fn: Callable[[], T]) -> T:
    """Run `fn` with `runner` as the current run (for tests of the API)."""
    _bind(runner)
    try:
        return fn()
    finally:
        _bind(None)
