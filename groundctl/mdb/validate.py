"""Command argument values: check them against the mission database, convert to raw."""

from __future__ import annotations

import math

from groundctl.mdb.model import Argument, int_range

Raw = int | float | str | bytes


class ArgumentError(ValueError):
    """A value that does not fit its argument; the message says what is expected."""


def convert_argument(argument: Argument, value: object) -> Raw:
    """The raw value to encode for `value` (a state name, a number or a string).

    Raises ArgumentError naming the argument, the value and what is expected.
    """
    name = argument.name
    if argument.states:
        if isinstance(value, str) and value in argument.states:
            return argument.states[value]
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value in argument.states.values()
        ):
            return value
        choices = ", ".join(argument.states)
        raise ArgumentError(f"{name}: {value!r} is not one of {choices}")
    if argument.kind in ("str", "bytes"):
        size = argument.bits // 8
        data = value.encode() if isinstance(value, str) else value
        if not isinstance(data, bytes):
            raise ArgumentError(f"{name}: expected text, found {value!r}")
        if len(data) > size:
            raise ArgumentError(f"{name}: {len(data)} bytes is longer than {size}")
        return value if isinstance(value, str) else data
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ArgumentError(f"{name}: expected a number, found {value!r}")
    if isinstance(value, str):
        number = _number(name, value.strip().replace("_", ""), argument.kind)
    else:
        number = value
    if argument.kind in ("u", "i"):
        if isinstance(number, float):
            if not number.is_integer():
                raise ArgumentError(f"{name}: expected a whole number, found {number!r}")
            number = int(number)
        low, high = int_range(argument.kind, argument.bits)
        if not low <= number <= high:
            raise ArgumentError(
                f"{name}: {number} does not fit {argument.kind}{argument.bits} ({low} to {high})"
            )
    if isinstance(number, float) and not math.isfinite(number):
        raise ArgumentError(f"{name}: expected a finite number, found {number!r}")
    if argument.minimum is not None and number < argument.minimum:
        raise ArgumentError(f"{name}: {number} is below the minimum {argument.minimum:g}")
    if argument.maximum is not None and number > argument.maximum:
        raise ArgumentError(f"{name}: {number} is above the maximum {argument.maximum:g}")
    return number


def _number(name: str, text: str, kind: str) -> int | float:
    """A typed number: decimal (leading zeros allowed), 0x/0o/0b, or with a fraction or
    exponent (a whole number for integer arguments: 1e3 is 1000, 1.5 is refused)."""
    try:
        if kind == "f":
            return float(text)
        if text.lstrip("+-").isdigit():
            return int(text, 10)
        try:
            return int(text, 0)
        except ValueError:
            number = float(text)
    except ValueError:
        raise ArgumentError(f"{name}: expected a number, found {text!r}") from None
    if not number.is_integer():
        raise ArgumentError(f"{name}: expected a whole number, found {text!r}")
    return int(number)
