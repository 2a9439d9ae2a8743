"""Clients of Hamlib's network daemons: `rotctld` (antenna rotators) and `rigctld` (radios).

Both daemons speak one line-based protocol over TCP. Every command is sent in Hamlib's
extended response mode (a `+` before the command): the daemon echoes the command's long
name and arguments, then the values, one per line, and ends with `RPRT n`, where 0 is
success and a negative n is one of Hamlib's error codes. An unknown command gets no reply
at all, and a command with too few arguments swallows the lines that follow it, so the
client checks the echo of every reply and closes the connection as soon as it is out of
step (or silent for `timeout_s`): a late reply would otherwise answer the next request.

A client keeps one connection, opened by the first request, and sends one request at a
time on it. After a connection error it waits before connecting again (`backoff_s`: from
the first value, doubling up to the second, back to the first after a success); a request
during that wait fails at once, saying when the client will retry, so that a tracking loop
keeps its own period. Targets are checked against the daemon's own limits (its
`dump_state`) before anything is sent: a rotator that is sent an azimuth of NaN moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import numbers
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from groundctl.errors import ConfigError, GroundctlError

# Hamlib 4.5's `enum rig_errcode_e` (rig.h): RPRT -n is -RIG_E...; messages from rigerror().
RPRT_CODES: dict[int, tuple[str, str]] = {
    1: ("EINVAL", "invalid parameter"),
    2: ("ECONF", "invalid configuration (serial port, ...)"),
    3: ("ENOMEM", "memory shortage"),
    4: ("ENIMPL", "function not implemented"),
    5: ("ETIMEOUT", "communication with the device timed out"),
    6: ("EIO", "I/O error talking to the device"),
    7: ("EINTERNAL", "internal Hamlib error"),
    8: ("EPROTO", "protocol error"),
    9: ("ERJCTED", "command rejected by the device"),
    10: ("ETRUNC", "command performed, but an argument was truncated"),
    11: ("ENAVAIL", "function not available"),
    12: ("ENTARGET", "VFO not targetable"),
    13: ("BUSERROR", "communication bus error"),
    14: ("BUSBUSY", "communication bus collision"),
    15: ("EARG", "invalid argument or handle"),
    16: ("EVFO", "invalid VFO"),
    17: ("EDOM", "argument out of the function's domain"),
    18: ("EDEPRECATED", "function deprecated"),
    19: ("ESECURITY", "security error: password missing or wrong"),
    20: ("EPOWER", "device is not powered on"),
}

_TOKEN = re.compile(r"[^\s\x00-\x1f\x7f]+")  # one word, as the daemons split their input
_VFO = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def rprt_meaning(code: int) -> str:
    """`RPRT -1` -> 'RPRT -1 (EINVAL: invalid parameter)'."""
    name, text = RPRT_CODES.get(abs(code), ("unknown", "an error code Hamlib 4.5 does not define"))
    return f"RPRT {code} ({name}: {text})"


class HamlibError(GroundctlError):
    """A request to rotctld or rigctld failed or was refused; the message names the daemon
    (kind, name and address), the command and the reason. `code` is the RPRT code when
    the daemon answered with an error, `retry_in_s` the time until the client connects
    again when it is not connected; both None otherwise."""

    title = "station error"

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        code: int | None = None,
        retry_in_s: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.retry_in_s = retry_in_s


class TargetError(HamlibError):
    """A position or frequency refused before sending: not a finite number, not an
    integer, or outside the daemon's limits. Nothing was sent."""


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """'host:port', 'host', '[v6]:port' or a bare IPv6 address -> (host, port).

    Raises ConfigError quoting the value."""
    value = text.strip()
    hint = f'e.g. "127.0.0.1:{default_port}", "localhost" (port {default_port}) or "[::1]:4533"'
    host, port_text = value, ""
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :] if end > 0 else "?"
        if end < 0 or (rest and not rest.startswith(":")):
            raise ConfigError(f"address {text!r}: unbalanced [ ] around the host", hint=hint)
        host, port_text = value[1:end], rest[1:] if rest else ""
        if rest == ":":
            raise ConfigError(f"address {text!r}: no port after ':'", hint=hint)
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        if not port_text:
            raise ConfigError(f"address {text!r}: no port after ':'", hint=hint)
    if not host or any(c.isspace() for c in host):
        raise ConfigError(f"address {text!r}: no host name or IP address", hint=hint)
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(
            f"address {text!r}: port {port_text!r} is not a number from 1 to 65535", hint=hint
        )
    return host, int(port_text)


StateCallback = Callable[["HamlibClient", bool, str], object]


class HamlibClient:
    """One connection to a Hamlib daemon, one request at a time.

    `name` names the device in messages (the kind, "rotator" or "radio", is put before it
    unless it already starts with it). `timeout_s` bounds connecting and each request's
    reply; `backoff_s` is (first, longest) wait before connecting again after an error.
    """

    KIND = "daemon"
    DAEMON = "the Hamlib daemon"
    # Short command -> the long name the daemon echoes (others are checked by arguments).
    ECHO: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        timeout_s: float = 2.0,
        backoff_s: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise HamlibError(f"{self.KIND} {name}: timeout_s must be > 0, found {timeout_s!r}")
        low, high = backoff_s
        if not (0 <= low <= high and math.isfinite(high)):
            raise HamlibError(
                f"{self.KIND} {name}: backoff_s must be (first, longest) with "
                f"0 <= first <= longest, found {backoff_s!r}"
            )
        self.name = name
        self.host = host
        self.port = port
        self.timeout_s = float(timeout_s)
        self.backoff_s = (float(low), float(high))
        self.requests = 0  # commands sent to the daemon
        self.errors = 0  # failures: connecting, timeouts, lost connections, RPRT != 0
        self.reconnects = 0  # connections made after the first one
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._callbacks: list[StateCallback] = []
        self._state: bool | None = None  # None: never tried; then connected or not
        self._ever_connected = False
        self._delay = self.backoff_s[0]
        self._retry_at = 0.0  # time.monotonic() before which no connection is attempted
        self._last_problem = ""

    # --- what the caller sees -----------------------------------------------------------
    @property
    def connected(self) -> bool:
        """A connection is open (and the daemon has not closed it, as far as we know)."""
        return self._writer is not None and not (self._reader is not None and self._reader.at_eof())

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        """'rotator Weilheim-1 (127.0.0.1:4533)'."""
        kind = self.KIND + " "
        label = self.name if self.name.startswith(kind) else kind + self.name
        return f"{label} ({self.address})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def on_state(self, callback: StateCallback) -> None:
        """Call `callback(client, connected, reason)` when the connection comes up or is
        lost (or cannot be made at first): once per change, not per failed attempt."""
        self._callbacks.append(callback)

    async def close(self) -> None:
        """Close the connection (a later request connects again, without waiting)."""
        writer = self._drop("closed by groundctl")
        self._delay, self._retry_at = self.backoff_s[0], 0.0
        if writer is not None:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(self, command: str, *args: str | int | float) -> list[str]:
        """Send `+command args` and return the reply's lines between the echo and `RPRT 0`.

        Raises HamlibError when the daemon answers RPRT != 0, when it cannot be reached,
        when it does not answer within `timeout_s` (the connection is closed), or at once,
        with nothing sent, while waiting to reconnect or for an argument that cannot be sent.
        """
        words = self._words(command, args)
        shown = " ".join(words)
        self._check_backoff(shown)
        async with self._lock:
            self._check_backoff(shown)
            reader, writer = await self._connection(shown)
            self.requests += 1
            try:
                writer.write(("+" + shown + "\n").encode())
                async with asyncio.timeout(self.timeout_s):
                    await writer.drain()
                    lines, code = await self._reply(reader, words)
            except TimeoutError:
                reason = f"no reply within {self.timeout_s:g} s"
                raise self._lost(shown, reason, "; connection closed") from None
            except HamlibError as error:  # out of step, or closed by the daemon
                raise self._lost(shown, error.message) from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                raise self._lost(shown, _reason(error)) from None
            except BaseException:  # cancelled mid-reply: the next reply would be this one's
                self._drop("request cancelled")
                raise
            self._delay = self.backoff_s[0]  # the connection works
        if code != 0:
            self.errors += 1
            raise HamlibError(f"{self}: command '{shown}' failed: {rprt_meaning(code)}", code=code)
        return lines

    # --- the protocol -------------------------------------------------------------------
    def _words(self, command: str, args: tuple[str | int | float, ...]) -> list[str]:
        """The command and its arguments as sent, or HamlibError (nothing is sent)."""
        words = [command]
        for arg in args:
            if isinstance(arg, bool):
                words.append("1" if arg else "0")
            elif isinstance(arg, int):
                words.append(str(arg))
            elif isinstance(arg, float):
                if not math.isfinite(arg):
                    raise TargetError(
                        f"{self}: command '{command}' not sent: argument {arg!r} is not finite"
                    )
                words.append(f"{arg:.6f}")
            else:
                words.append(str(arg))
        for word in words:
            if not _TOKEN.fullmatch(word):
                raise HamlibError(
                    f"{self}: command '{command}' not sent: {word!r} is not one word "
                    "(the daemon would read it as several, or as none)"
                )
        if command.startswith("+"):
            raise HamlibError(f"{self}: command '{command}' not sent: give it without the '+'")
        return words

    async def _reply(self, reader: asyncio.StreamReader, words: list[str]) -> tuple[list[str], int]:
        """Read one reply: (lines between the echo and RPRT, the RPRT code)."""
        lines: list[str] = []
        first = True
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # a line longer than the stream's limit (64 KiB)
                raise HamlibError("a reply line is longer than 64 KiB") from None
            if not raw.endswith(b"\n"):
                raise HamlibError("connection closed by the daemon")  # EOF
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("RPRT "):
                try:
                    return lines, int(line[5:])
                except ValueError:
                    raise HamlibError(f"reply out of step ({line!r}); connection closed") from None
            if first:
                self._check_echo(line, words)
                first = False
            else:
                lines.append(line)

    def _check_echo(self, line: str, words: list[str]) -> None:
        """The first line names the command and repeats its arguments ('set_pos: 1 2');
        anything else is the answer to another request."""
        command, args = words[0], words[1:]
        name, colon, rest = line.partition(":")
        expected = command[1:] if command.startswith("\\") else self.ECHO.get(command)
        if not colon or (expected is not None and name != expected) or rest.split() != args:
            raise HamlibError(
                f"reply out of step: {line!r} does not echo the command; connection closed"
            )

    # --- the connection -----------------------------------------------------------------
    def _check_backoff(self, shown: str) -> None:
        if self._writer is not None:
            return
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise HamlibError(
                f"{self}: command '{shown}' not sent: not connected "
                f"(last error: {self._last_problem}); retry in {max(wait, 0.1):.1f} s",
                hint=f"is {self.DAEMON} running at {self.address}?",
                retry_in_s=wait,
            )

    async def _connection(self, shown: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None:
            if not self._reader.at_eof():
                return self._reader, self._writer
            # Closed while idle (the daemon went away or restarted): connect again now.
            self._drop("connection closed by the daemon")
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as error:
            reason = (
                f"no connection within {self.timeout_s:g} s"
                if isinstance(error, TimeoutError)
                else _reason(error)
            )
            self._failed(reason)
            wait = self._retry_at - time.monotonic()
            raise HamlibError(
                f"{self}: command '{shown}' not sent: cannot connect: {reason}; "
                f"retry in {max(wait, 0.1):.1f} s",
                hint=f"is {self.DAEMON} running at {self.address}?",
                retry_in_s=max(wait, 0.0),
            ) from None
        self._reader, self._writer = reader, writer
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._connected()
        self._notify(True, "connected")
        return reader, writer

    def _connected(self) -> None:
        """A new connection is up: subclasses forget what they read from the last one."""

    def _lost(self, shown: str, reason: str, more: str = "") -> HamlibError:
        """The connection failed mid-request: close it and start the backoff."""
        self._drop(reason)
        self._failed(reason)
        wait = max(self._retry_at - time.monotonic(), 0.0)
        return HamlibError(f"{self}: command '{shown}': {reason}{more}", retry_in_s=wait)

    def _failed(self, reason: str) -> None:
        self.errors += 1
        self._last_problem = reason
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.backoff_s[1])
        if self._state is None:
            self._notify(False, reason)

    def _drop(self, reason: str) -> asyncio.StreamWriter | None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            self._notify(False, reason)
        return writer

    def _notify(self, connected: bool, reason: str) -> None:
        if self._state is connected:
            return
        self._state = connected
        for callback in list(self._callbacks):
            callback(self, connected, reason)


def _reason(error: BaseException) -> str:
    """'connection refused' rather than "Connect call failed ('127.0.0.1', 4533)"."""
    if isinstance(error, asyncio.IncompleteReadError):
        return "connection closed by the daemon"
    if isinstance(error, OSError):
        if error.errno is not None and error.errno > 0:
            text = os.strerror(error.errno)
        else:
            text = error.strerror or str(error) or type(error).__name__
        return text[:1].lower() + text[1:]
    return str(error) or type(error).__name__


def _value(lines: list[str], label: str, client: HamlibClient, command: str) -> str:
    """The value of 'Label: value' in a reply."""
    for line in lines:
        key, colon, value = line.partition(":")
        if colon and key.strip() == label:
            return value.strip()
    raise HamlibError(
        f"{client}: command '{command}': the reply has no {label!r} line: {lines!r}",
        hint="is the device switched on and answering the daemon?",
    )


def _number(text: str, what: str, client: HamlibClient, command: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise HamlibError(f"{client}: command '{command}': {what} {text!r} is not a number")
    return value


# --- rotators -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RotatorLimits:
    """The rotator's travel in degrees, as rotctld reports it."""

    min_az: float
    max_az: float
    min_el: float
    max_el: float


class Rotator(HamlibClient):
    """An antenna rotator behind `rotctld` (default port 4533)."""

    KIND = "rotator"
    DAEMON = "rotctld"
    DEFAULT_PORT = 4533
    ECHO: ClassVar[dict[str, str]] = {"P": "set_pos", "p": "get_pos", "K": "park", "S": "stop"}

    def __init__(
        self,
        name: str,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = 2.0,
        backoff_s: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        super().__init__(name, host, port, timeout_s=timeout_s, backoff_s=backoff_s)
        self._limits: RotatorLimits | None = None

    def _connected(self) -> None:
        self._limits = None  # another daemon (or rotator) may be behind the port now

    async def limits(self) -> RotatorLimits:
        """The daemon's azimuth and elevation limits (`dump_state`; read once per
        connection)."""
        if self._limits is not None and self.connected:
            return self._limits
        lines = await self.request("\\dump_state")
        found = [
            _number(_value(lines, label, self, "\\dump_state"), label, self, "\\dump_state")
            for label in (
                "Minimum Azimuth",
                "Maximum Azimuth",
                "Minimum Elevation",
                "Maximum Elevation",
            )
        ]
        self._limits = RotatorLimits(*found)
        return self._limits

    async def set_position(self, az: float, el: float) -> None:
        """Point at azimuth `az` and elevation `el` (degrees, sent to 0.01 deg).

        TargetError, with nothing sent, for a value that is not a finite number or is
        outside the rotator's limits."""
        target: list[float] = []
        for axis, value in (("azimuth", az), ("elevation", el)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TargetError(f"{self}: {axis} {value!r} is not a number; nothing sent")
            if not math.isfinite(value):
                raise TargetError(f"{self}: {axis} {value!r} is not a finite number; nothing sent")
            target.append(float(value))
        limits = await self.limits()
        sent = [f"{value:.2f}" for value in target]
        for axis, value, text, low, high in (
            ("azimuth", target[0], sent[0], limits.min_az, limits.max_az),
            ("elevation", target[1], sent[1], limits.min_el, limits.max_el),
        ):
            if not (low <= value <= high and low <= float(text) <= high):
                raise TargetError(
                    f"{self}: {axis} {value:g} deg is outside the rotator's range "
                    f"{low:g} to {high:g} deg; nothing sent"
                )
        await self.request("P", *sent)

    async def position(self) -> tuple[float, float]:
        """(azimuth, elevation) in degrees, where the rotator points now."""
        lines = await self.request("p")
        az = _number(_value(lines, "Azimuth", self, "p"), "azimuth", self, "p")
        el = _number(_value(lines, "Elevation", self, "p"), "elevation", self, "p")
        return az, el

    async def park(self) -> None:
        """Move to the rotator's park position."""
        await self.request("K")

    async def stop(self) -> None:
        """Stop moving."""
        await self.request("S")


# --- radios ---------------------------------------------------------------------------------
@dataclass
class RadioLimits:
    """The radio's frequency ranges in Hz, (low, high) inclusive, as rigctld reports them."""

    rx: list[tuple[int, int]]
    tx: list[tuple[int, int]]


class Radio(HamlibClient):
    """A radio behind `rigctld` (default port 4532): the main VFO receives the downlink,
    the split (TX) VFO transmits the uplink."""

    KIND = "radio"
    DAEMON = "rigctld"
    DEFAULT_PORT = 4532
    ECHO: ClassVar[dict[str, str]] = {
        "F": "set_freq",
        "f": "get_freq",
        "S": "set_split_vfo",
        "s": "get_split_vfo",
        "I": "set_split_freq",
        "i": "get_split_freq",
    }

    def __init__(
        self,
        name: str,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = 2.0,
        backoff_s: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        super().__init__(name, host, port, timeout_s=timeout_s, backoff_s=backoff_s)
        self._limits: RadioLimits | None = None

    def _connected(self) -> None:
        self._limits = None

    async def limits(self) -> RadioLimits:
        """The RX and TX frequency ranges (`dump_state`; read once per connection)."""
        if self._limits is not None and self.connected:
            return self._limits
        lines = await self.request("\\dump_state")
        # protocol version, rig model, ITU region, then the RX ranges and the TX ranges,
        # one per line ('start end modes low_power high_power vfo ant'), each list ended
        # by a line of zeros.
        ranges: list[list[tuple[int, int]]] = [[], []]
        at = 3
        try:
            int(lines[0])
            for found in ranges:
                while True:
                    fields = lines[at].split()
                    at += 1
                    low, high = round(float(fields[0])), round(float(fields[1]))
                    if low == high == 0:
                        break
                    found.append((low, high))
        except (IndexError, ValueError):
            raise HamlibError(
                f"{self}: command '\\dump_state': cannot read the frequency ranges "
                f"(line {at + 1} of the reply: {lines[at] if at < len(lines) else 'missing'!r})"
            ) from None
        self._limits = RadioLimits(rx=ranges[0], tx=ranges[1])
        return self._limits

    async def _check(self, hz: int, direction: str) -> int:
        """`hz` as an int, or TargetError: not a whole number, not > 0, out of range."""
        if isinstance(hz, bool) or not isinstance(hz, numbers.Integral):
            raise TargetError(
                f"{self}: {direction} frequency {hz!r} is not a whole number of Hz; nothing sent"
            )
        hz = int(hz)
        if hz <= 0:
            raise TargetError(f"{self}: {direction} frequency {hz} Hz is not > 0; nothing sent")
        limits = await self.limits()
        ranges = limits.rx if direction == "RX" else limits.tx
        if not any(low <= hz <= high for low, high in ranges):
            allowed = ", ".join(f"{low} to {high} Hz" for low, high in ranges) or "none"
            raise TargetError(
                f"{self}: {direction} frequency {hz} Hz is outside the radio's "
                f"{direction} ranges ({allowed}); nothing sent"
            )
        return hz

    async def set_frequency(self, hz: int) -> None:
        """Tune the main VFO (the downlink) to `hz`; TargetError, with nothing sent, for a
        frequency outside the RX ranges."""
        await self.request("F", await self._check(hz, "RX"))

    async def frequency(self) -> int:
        """The main VFO's frequency in Hz."""
        lines = await self.request("f")
        return round(_number(_value(lines, "Frequency", self, "f"), "frequency", self, "f"))

    async def set_split(self, on: bool, tx_vfo: str = "VFOB") -> None:
        """Split operation on or off, transmitting on `tx_vfo` (a Hamlib VFO name)."""
        if not _VFO.fullmatch(tx_vfo):
            raise TargetError(f"{self}: TX VFO {tx_vfo!r} is not a VFO name; nothing sent")
        await self.request("S", 1 if on else 0, tx_vfo)

    async def split(self) -> tuple[bool, str]:
        """(split on, TX VFO)."""
        lines = await self.request("s")
        on = _value(lines, "Split", self, "s")
        if on not in ("0", "1"):
            raise HamlibError(f"{self}: command 's': split {on!r} is not 0 or 1")
        return on == "1", _value(lines, "TX VFO", self, "s")

    async def set_tx_frequency(self, hz: int) -> None:
        """Tune the split (TX) VFO (the uplink) to `hz`; TargetError, with nothing sent,
        for a frequency outside the TX ranges."""
        await self.request("I", await self._check(hz, "TX"))

    async def tx_frequency(self) -> int:
        """The split (TX) VFO's frequency in Hz."""
        lines = await self.request("i")
        return round(_number(_value(lines, "TX Frequency", self, "i"), "TX frequency", self, "i"))
