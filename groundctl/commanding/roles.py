"""Operator roles: who may send which commands.

- viewer: watches; sends nothing;
- operator: sends commands that are not hazardous;
- flight-director: sends everything, hazardous commands with a confirmation.

The role comes from the config (`[operators]`, `[commanding] default_role`) for the
login name of the person running groundctl; procedures run with the role of the person
who starts them.
"""

from __future__ import annotations

from groundctl.errors import CommandError

ROLES = ("viewer", "operator", "flight-director")


def check_role(role: str, user: str, command_text: str, hazardous: bool) -> None:
    """CommandError unless `role` may send the command."""
    if role == "viewer":
        raise CommandError(
            f"{command_text}: {user} is a viewer and may not send commands",
            hint="a flight director can give you the operator role in the config's [operators]",
        )
    if hazardous and role != "flight-director":
        raise CommandError(
            f"{command_text}: hazardous, and {user} ({role}) may not send hazardous commands",
            hint="only a flight director may send hazardous commands",
        )
    if role not in ROLES:
        raise CommandError(f"{command_text}: unknown role {role!r} for {user}")


def check_confirmation(command_text: str, name: str, hazardous: bool, confirm: str | bool) -> None:
    """CommandError when a hazardous command lacks its confirmation.

    `confirm` is True (procedures' `confirm=True`, the CLI's `--confirm`) or the text the
    operator typed in the console, which must be the command's name.
    """
    if not hazardous:
        return
    if confirm is True or (isinstance(confirm, str) and confirm.strip() == name):
        return
    raise CommandError(
        f"{command_text}: {name} is hazardous and needs confirming",
        hint="--confirm on the command line, confirm=True in a procedure, "
        f"or type {name} in the console's confirmation box",
    )
