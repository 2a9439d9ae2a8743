"""The one command syntax of the console, procedures and the CLI, checked against the MDB.

    NODE COMMAND [ARGUMENT=VALUE ...]

e.g. `ODC-07 SET_POWER_MODE mode=ECO`, `ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=2h`,
`cfs TO_LAB_ENABLE_OUTPUT dest_ip=127.0.0.1`. Values are state names, numbers (decimal,
`0x` hex, `_` separators) or text (quote it when it has spaces: `text="two words"`). A
number may carry a unit when the argument has one: the argument's own unit, or one of the
same dimension that converts exactly (`ms`, `s`, `min`, `h`, `d`; `B`, `kB`, `MB`, `GB`, `TB`,
`KiB`, `MiB`, `GiB`, `TiB`). Command names are matched exactly (upper case), argument
names too.

`parse` checks the shape of the line; `validate` checks it against a mission database
(unknown command, missing or extra argument, type, range, enumeration, unit) and builds
the packet. Every problem is a CommandError naming the node, the command and the
argument, and saying what is expected; nothing is sent.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from groundctl.errors import CommandError
from groundctl.mdb.codec import encode_command
from groundctl.mdb.model import Argument, Command, Mission
from groundctl.mdb.validate import ArgumentError, convert_argument

# unit -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, float]] = {
    "ms": ("time", 0.001),
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "d": ("time", 86400.0),
    "B": ("data", 1.0),
    "kB": ("data", 1e3),
    "MB": ("data", 1e6),
    "GB": ("data", 1e9),
    "TB": ("data", 1e12),
    "KiB": ("data", 1024.0),
    "MiB": ("data", 1024.0**2),
    "GiB": ("data", 1024.0**3),
    "TiB": ("data", 1024.0**4),
}
# a decimal number and a unit (hex numbers take no unit: 0x1B is 27, not 0x1 bytes)
_NUMBER_UNIT = re.compile(r"^([-+]?[0-9_]*\.?[0-9_]+(?:[eE][-+]?\d+)?)\s*([A-Za-z/%]+)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CommandLine:
    """A parsed command line: who it is for, which command, arguments as typed."""

    node: str
    command: str
    arguments: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The canonical form of the line (values quoted only when they need it)."""
        parts = [self.node, self.command]
        parts += [f"{name}={shlex.quote(value)}" for name, value in self.arguments.items()]
        return " ".join(parts)


@dataclass(frozen=True)
class ValidCommand:
    """A command checked against its node's mission database, ready to be signed and sent.

    `values` are the operator's values after unit conversion (state names stay names);
    `packet` is the encoded, unsigned packet (sequence count 0).
    """

    node: str
    mission: Mission
    command: Command
    values: Mapping[str, Any]
    packet: bytes

    @property
    def name(self) -> str:
        return self.command.name

    @property
    def hazardous(self) -> bool:
        return self.command.hazardous

    @property
    def text(self) -> str:
        line = CommandLine(
            self.node, self.command.name, {k: _show(v) for k, v in self.values.items()}
        )
        return line.text


def parse(text: str) -> CommandLine:
    """Split a command line into node, command and `name=value` arguments.

    CommandError for an empty line, unbalanced quotes, an argument without `=`, a bad
    argument name or an argument given twice.
    """
    try:
        words = shlex.split(text.strip(), posix=True)
    except ValueError as error:
        raise CommandError(
            f"{text.strip()!r}: {error}", hint="close the quote around the value"
        ) from None
    if not words:
        raise CommandError("empty command", hint="NODE COMMAND [ARGUMENT=VALUE ...]")
    if len(words) < 2:
        raise CommandError(
            f"{words[0]}: no command given", hint="NODE COMMAND [ARGUMENT=VALUE ...]"
        )
    node, command, *rest = words
    if "=" in node or "=" in command:
        raise CommandError(
            f"{text.strip()!r}: the node and the command come first",
            hint="NODE COMMAND [ARGUMENT=VALUE ...], e.g. ODC-07 SET_POWER_MODE mode=ECO",
        )
    arguments: dict[str, str] = {}
    for word in rest:
        name, equals, value = word.partition("=")
        if not equals:
            raise CommandError(
                f"{node} {command}: {word!r} is not ARGUMENT=VALUE",
                hint="name every argument, e.g. mode=ECO",
            )
        if not _NAME.match(name):
            raise CommandError(f"{node} {command}: {name!r} is not an argument name")
        if name in arguments:
            raise CommandError(f"{node} {command}: argument {name} given twice")
        arguments[name] = value
    return CommandLine(node, command, arguments)


def validate(line: CommandLine, mission: Mission) -> ValidCommand:
    """Check `line` against `mission` and encode it; CommandError says what is wrong."""
    where = f"{line.node} {line.command}"
    command = mission.commands.get(line.command)
    if command is None:
        close = difflib.get_close_matches(line.command.upper(), list(mission.commands), n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else ""
        hint = hint or "commands: " + ", ".join(sorted(mission.commands)[:20])
        raise CommandError(
            f"{where}: no command {line.command} in mission {mission.name}", hint=hint
        )
    known = {a.name: a for a in command.arguments}
    extra = [name for name in line.arguments if name not in known]
    if extra:
        expected = ", ".join(known) or "none"
        raise CommandError(
            f"{where}: no argument {extra[0]} (its arguments: {expected})",
            hint=_usage(command),
        )
    values: dict[str, Any] = {}
    for argument in command.arguments:
        typed = line.arguments.get(argument.name)
        if typed is None:
            if argument.default is None:
                raise CommandError(
                    f"{where}: missing argument {argument.name} ({_describe(argument)})",
                    hint=_usage(command),
                )
            values[argument.name] = argument.default
            continue
        value = _with_unit(where, argument, typed)
        try:
            raw = convert_argument(argument, value)
        except ArgumentError as error:
            raise CommandError(f"{where}: argument {error}", hint=_usage(command)) from None
        # numbers are kept as numbers (archived as such); state names and text as given
        numeric = not argument.states and argument.kind in ("u", "i", "f")
        values[argument.name] = raw if numeric else value
    try:
        packet = encode_command(mission, command, values)
    except ArgumentError as error:  # pragma: no cover - convert_argument checked each
        raise CommandError(f"{where}: {error}") from None
    return ValidCommand(line.node, mission, command, values, packet)


def _with_unit(where: str, argument: Argument, typed: str) -> Any:
    """The value to convert: a state name or text as typed, a number with its unit
    converted to the argument's unit."""
    if argument.states:
        # a state name, or the state's raw value
        return int(typed) if re.fullmatch(r"\d+", typed.strip()) else typed
    if argument.kind in ("str", "bytes"):
        return typed
    match = _NUMBER_UNIT.match(typed.strip())
    if match is None:
        return typed.strip()  # a bare number, or something convert_argument refuses
    number, unit = match.group(1), match.group(2)
    if unit not in UNITS and unit != argument.unit:
        return typed.strip()  # not a unit at all (4x): convert_argument says what is wrong
    if not argument.unit:
        raise CommandError(
            f"{where}: argument {argument.name}: {typed!r} has a unit but "
            f"{argument.name} takes a plain number"
        )
    if unit == argument.unit and unit not in UNITS:
        return number
    have, want = UNITS.get(unit), UNITS.get(argument.unit)
    if have is None or want is None or have[0] != want[0]:
        raise CommandError(
            f"{where}: argument {argument.name}: unit {unit!r} does not convert to "
            f"{argument.unit!r}",
            hint=f"give {argument.name} in "
            + (
                ", ".join(u for u, d in UNITS.items() if d[0] == want[0]) if want else argument.unit
            ),
        )
    try:
        quantity = Decimal(number.replace("_", ""))
    except InvalidOperation:
        raise CommandError(
            f"{where}: argument {argument.name}: {typed!r} is not a number"
        ) from None
    # exact decimal arithmetic: a u64 byte count keeps every digit
    converted = quantity * Decimal(repr(have[1])) / Decimal(repr(want[1]))
    if argument.kind in ("u", "i"):
        if converted != converted.to_integral_value():
            raise CommandError(
                f"{where}: argument {argument.name}: {typed} is {converted.normalize():f} "
                f"{argument.unit}, not a whole number of {argument.unit}"
            )
        return int(converted)
    return float(converted)


def _describe(argument: Argument) -> str:
    if argument.states:
        return "one of " + ", ".join(argument.states)
    if argument.kind in ("str", "bytes"):
        return f"text of up to {argument.bits // 8} bytes"
    parts = [f"{argument.kind}{argument.bits}"]
    if argument.minimum is not None or argument.maximum is not None:
        low = "" if argument.minimum is None else f"{argument.minimum:g}"
        high = "" if argument.maximum is None else f"{argument.maximum:g}"
        parts.append(f"{low}..{high}")
    if argument.unit:
        parts.append(argument.unit)
    return " ".join(parts)


def _usage(command: Command) -> str:
    parts = [command.name]
    for argument in command.arguments:
        shown = f"{argument.name}=<{_describe(argument)}>"
        parts.append(f"[{shown}]" if argument.default is not None else shown)
    return "usage: " + " ".join(parts)


def usage(command: Command) -> str:
    """One line: the command and its arguments with what each takes."""
    return _usage(command)[len("usage: ") :]


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
