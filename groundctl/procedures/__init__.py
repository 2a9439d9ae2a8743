"""Procedures: scripted command sequences in plain Python (docs/procedures.md).

Import the API from here in a procedure file::

    from groundctl.procedures import cmd, tlm, wait_check, wait_pass, wait, alert, log
"""

from groundctl.procedures.api import (
    CheckFailed,
    CommandResult,
    ContactInfo,
    alert,
    cmd,
    contacts,
    dry_run,
    log,
    now,
    tlm,
    wait,
    wait_check,
    wait_pass,
)

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
