"""Load and validate a mission database TOML file (format: docs/mdb.md).

Every problem is an MDBError naming the file, the line and the key: unknown type,
overlapping fields, limits out of order, duplicate names, a derived expression that is
not allowed or names an unknown parameter, a command default out of range...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from groundctl.errors import MDBError
from groundctl.mdb.expr import ExpressionError, compile_expression
from groundctl.mdb.model import (
    Argument,
    ByteOrder,
    Calibration,
    Command,
    Derived,
    Enumeration,
    EventMapping,
    Field,
    Limits,
    Mission,
    Packet,
    Polynomial,
    Table,
    TimeFormat,
    Verification,
    int_range,
)
from groundctl.tomlreader import Keys, TomlReader, kind_of, parse_toml, read_text

_TYPE = re.compile(r"^(u|i|f|str|bytes)(\d+)$")
TYPES_HELP = "u1..u64, i1..i64, f32, f64, strN and bytesN (N bytes)"
_COUNTER = re.compile(r"^\s*([A-Za-z_][\w]*)\.([A-Za-z_][\w]*)\s*\+=\s*(\d+)\s*$")
_EVENT = re.compile(r"^\s*event\s+(\S+)\s+(\d+)\s*$")


def load_mission(path: str | Path) -> Mission:
    """Read and validate a mission database file; raise MDBError on the first problem."""
    path = Path(path)
    text = read_text(path, MDBError, "mission database")
    raw = parse_toml(text, path, MDBError, hint="see docs/mdb.md for the format")
    return _Reader(path, text).mission(raw)


def parse_type(text: str) -> tuple[Literal["u", "i", "f", "str", "bytes"], int]:
    """'u12' -> ('u', 12); 'str16' -> ('str', 128 bits). ValueError when unknown."""
    match = _TYPE.match(text)
    if not match:
        raise ValueError(text)
    kind, size = match.group(1), int(match.group(2))
    if kind in ("str", "bytes"):
        if not 1 <= size <= 65535:
            raise ValueError(text)
        return kind, size * 8  # type: ignore[return-value]
    if kind == "u" and not 1 <= size <= 64:
        raise ValueError(text)
    if kind == "i" and not 1 <= size <= 64:
        raise ValueError(text)
    if kind == "f" and size not in (32, 64):
        raise ValueError(text)
    return kind, size  # type: ignore[return-value]


class _Reader(TomlReader):
    error_class = MDBError

    def mission(self, raw: dict[str, Any]) -> Mission:
        self.check_keys(raw, {"mission", "packets", "derived", "commands"}, ())
        head = self.table(raw.get("mission", {}), ("mission",))
        self.check_keys(
            head, {"name", "description", "id", "byte_order", "checksum", "time"}, ("mission",)
        )
        name = self.string(head, "name", ("mission",))
        id_kind = self.choice(head, "id", ("mission",), ("msgid", "apid"), "apid")
        order = self.byte_order(head, ("mission",), "big")
        checksum = self.choice(head, "checksum", ("mission",), ("none", "cfs-xor"), "none")
        time = self.time(head["time"], order) if "time" in head else None

        packets: dict[int, Packet] = {}
        names: dict[str, int] = {}
        raw_packets = raw.get("packets", [])
        if not isinstance(raw_packets, list):
            raise self.error(("packets",), "expected [[packets]] tables")
        for i, item in enumerate(raw_packets):
            packet = self.packet(item, ("packets", i), order)
            keys: Keys = ("packets", i)
            if id_kind == "apid" and packet.id > 0x7FF:
                raise self.error(
                    (*keys, "id"),
                    f"APID 0x{packet.id:x} does not fit 11 bits (0 to 0x7ff)",
                    hint='with id = "msgid" in [mission], ids are the whole first header word',
                )
            if packet.id in packets:
                raise self.error(
                    (*keys, "id"),
                    f"id 0x{packet.id:04x} is already used by {packets[packet.id].name}",
                )
            if packet.name in names:
                raise self.error((*keys, "name"), f"duplicate packet name {packet.name!r}")
            packets[packet.id] = packet
            names[packet.name] = packet.id

        parameters = {f"{p.name}.{f.name}" for p in packets.values() for f in p.fields}
        short = {f.name for p in packets.values() for f in p.fields}
        derived = self.derived(raw.get("derived", []), parameters | short)
        known = parameters | short | {d.name for d in derived}
        for p_index, item in enumerate(raw_packets):
            packet = packets[names[item["name"]]]
            for f_index, f in enumerate(packet.fields):
                if f.limits and f.limits.when:
                    self.check_expression(
                        f.limits.when,
                        ("packets", p_index, "fields", f_index, "limits", "when"),
                        known,
                    )
        for d_index, d in enumerate(derived):
            if d.limits and d.limits.when:
                self.check_expression(d.limits.when, ("derived", d_index, "limits", "when"), known)
        commands = self.commands(raw.get("commands", []), packets, order)
        return Mission(
            name=name,
            id_kind=id_kind,  # type: ignore[arg-type]
            packets=packets,
            commands=commands,
            derived=tuple(derived),
            time=time,
            checksum=checksum,  # type: ignore[arg-type]
            description=self.text(head, "description", ("mission",)),
            source=str(self.path),
        )

    # --- helpers ----------------------------------------------------------------------
    def choice(
        self, table: Mapping[str, Any], key: str, keys: Keys, options: tuple[str, ...], default: str
    ) -> str:
        value = self.string(table, key, keys, default=default)
        if value not in options:
            raise self.error((*keys, key), f"{value!r} is not one of {', '.join(options)}")
        return value

    def byte_order(self, table: Mapping[str, Any], keys: Keys, default: ByteOrder) -> ByteOrder:
        return self.choice(table, "byte_order", keys, ("big", "little"), default)  # type: ignore[return-value]

    def type_of(self, table: Mapping[str, Any], keys: Keys) -> tuple[Any, int]:
        text = self.string(table, "type", keys)
        try:
            return parse_type(text)
        except ValueError:
            raise self.error(
                (*keys, "type"), f"unknown type {text!r}", hint=f"types: {TYPES_HELP}"
            ) from None

    def check_expression(self, text: str, keys: Keys, known: set[str]) -> None:
        try:
            expression = compile_expression(text)
        except ExpressionError as error:
            raise self.error(keys, f"{text!r}: {error}") from None
        unknown = sorted(expression.names - known)
        if unknown:
            raise self.error(keys, f"{text!r} names unknown parameter(s): {', '.join(unknown)}")

    # --- sections ---------------------------------------------------------------------
    def time(self, value: Any, order: ByteOrder) -> TimeFormat:
        keys: Keys = ("mission", "time")
        entry = self.table(value, keys)
        self.check_keys(entry, {"seconds", "subseconds", "subsecond_scale", "epoch"}, keys)
        if "seconds" not in entry:
            raise self.error(
                (*keys, "seconds"),
                "missing",
                hint='e.g. seconds = { offset = 6, type = "u32", byte_order = "big" }',
            )
        seconds = self.field(entry["seconds"], (*keys, "seconds"), "seconds", 0, order)
        subseconds = (
            self.field(entry["subseconds"], (*keys, "subseconds"), "subseconds", 0, order)
            if "subseconds" in entry
            else None
        )
        epoch_text = self.string(entry, "epoch", keys, default="1970-01-01T00:00:00Z")
        try:
            epoch = datetime.fromisoformat(epoch_text.replace("Z", "+00:00"))
        except ValueError:
            raise self.error((*keys, "epoch"), f"{epoch_text!r} is not an ISO 8601 time") from None
        if epoch.tzinfo is None:
            epoch = epoch.replace(tzinfo=UTC)
        return TimeFormat(
            seconds=seconds,
            subseconds=subseconds,
            subsecond_scale=self.number(
                entry, "subsecond_scale", keys, default=1.0 / 65536, low=0, high=1
            ),
            epoch_unix_s=epoch.timestamp(),
        )

    def packet(self, value: Any, keys: Keys, order: ByteOrder) -> Packet:
        entry = self.table(value, keys)
        self.check_keys(
            entry,
            {"name", "id", "period_s", "description", "length", "fields", "event", "crc"},
            keys,
        )
        name = self.identifier(entry, "name", keys)
        pid = self.integer(entry, "id", keys, low=0, high=0xFFFF)
        raw_fields = entry.get("fields", [])
        if not isinstance(raw_fields, list):
            raise self.error((*keys, "fields"), "expected a list of field tables")
        fields: list[Field] = []
        cursor = 6 * 8  # a packet's own fields start after the primary header by default
        for j, item in enumerate(raw_fields):
            f = self.field(item, (*keys, "fields", j), None, cursor, order)
            for other in fields:
                if f.bit_offset < other.end_bit and other.bit_offset < f.end_bit:
                    raise self.error(
                        (*keys, "fields", j),
                        f"{f.name} (bits {f.bit_offset}-{f.end_bit - 1}) overlaps "
                        f"{other.name} (bits {other.bit_offset}-{other.end_bit - 1})",
                        hint="check offset, bit and type of both fields",
                    )
                if other.name == f.name:
                    raise self.error((*keys, "fields", j, "name"), f"duplicate field {f.name!r}")
            fields.append(f)
            cursor = f.end_bit
        crc = self.choice(entry, "crc", keys, ("none", "crc16-ccitt"), "none")
        needed = (max((f.end_bit for f in fields), default=48) + 7) // 8
        if crc != "none":
            needed += 2  # the CRC follows the fields
        length = self.integer(entry, "length", keys, default=needed, low=7, high=65542)
        if length < needed:
            raise self.error((*keys, "length"), f"{length} bytes, but the fields need {needed}")
        period = (
            self.number(entry, "period_s", keys, low=0.001, high=86400 * 7)
            if "period_s" in entry
            else None
        )
        event = self.event(entry["event"], (*keys, "event"), fields) if "event" in entry else None
        return Packet(
            name=name,
            id=pid,
            fields=tuple(fields),
            period_s=period,
            description=self.text(entry, "description", keys),
            min_length=needed,
            length=length,
            event=event,
            crc=crc,  # type: ignore[arg-type]
        )

    def text(self, table: Mapping[str, Any], key: str, keys: Keys) -> str:
        """An optional free-text key (unit, description): a string, default ""."""
        value = table.get(key, "")
        if not isinstance(value, str):
            raise self.error((*keys, key), f"expected a string, found {kind_of(value)}")
        return value

    def identifier(self, table: Mapping[str, Any], key: str, keys: Keys) -> str:
        value = self.string(table, key, keys)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise self.error(
                (*keys, key),
                f"{value!r} is not a valid name",
                hint="letters, digits and _, not starting with a digit",
            )
        return value

    def field(
        self,
        value: Any,
        keys: Keys,
        default_name: str | None,
        cursor: int,
        order: ByteOrder,
    ) -> Field:
        entry = self.table(value, keys)
        self.check_keys(
            entry,
            {
                "name",
                "offset",
                "bit",
                "type",
                "byte_order",
                "unit",
                "description",
                "poly",
                "table",
                "states",
                "limits",
            },
            keys,
        )
        name = self.identifier(entry, "name", keys) if default_name is None else default_name
        kind, bits = self.type_of(entry, keys)
        if "offset" in entry:
            offset = self.integer(entry, "offset", keys, low=0, high=65541)
            bit = self.integer(entry, "bit", keys, default=0, low=0, high=7)
            start = offset * 8 + bit
        else:
            if "bit" in entry:
                raise self.error((*keys, "bit"), "bit needs an offset", hint="add offset = N")
            start = cursor
        if default_name is None and start < 48:
            raise self.error(
                (*keys, "offset"),
                f"{name} starts at byte {start // 8}, inside the 6-byte primary header",
                hint="packet fields start at byte 6 or later (offsets count from the packet start)",
            )
        if kind in ("f", "str", "bytes") and start % 8:
            raise self.error(
                keys,
                f"a {kind} field must start on a byte boundary (bit offset {start} is not)",
                hint="give it an offset and no bit, or move the fields before it",
            )
        byte_order = self.byte_order(entry, keys, order)
        if (start % 8 or bits % 8) and byte_order == "little" and "byte_order" in entry:
            raise self.error(
                (*keys, "byte_order"),
                "a bit field is read most significant bit first; little-endian does not apply",
            )
        if kind in ("u", "i") and (start % 8 or bits % 8):
            byte_order = "big"
        calibration = self.calibration(entry, keys, kind, bits)
        limits = (
            self.limits(entry["limits"], (*keys, "limits"), calibration)
            if "limits" in entry
            else None
        )
        if (
            limits is not None
            and isinstance(calibration, Enumeration)
            and any(
                v is not None
                for v in (limits.yellow_low, limits.yellow_high, limits.red_low, limits.red_high)
            )
        ):
            raise self.error(
                (*keys, "limits"),
                "an enumerated field has states, not numeric bands",
                hint="use yellow_states / red_states",
            )
        return Field(
            name=name,
            bit_offset=start,
            bits=bits,
            kind=kind,
            byte_order=byte_order,
            unit=self.text(entry, "unit", keys),
            description=self.text(entry, "description", keys),
            calibration=calibration,
            limits=limits,
        )

    def calibration(
        self, entry: Mapping[str, Any], keys: Keys, kind: str, bits: int
    ) -> Calibration | None:
        present = [k for k in ("poly", "table", "states") if k in entry]
        if len(present) > 1:
            raise self.error(keys, f"one calibration only, found {', '.join(present)}")
        if not present:
            return None
        if kind in ("str", "bytes"):
            raise self.error((*keys, present[0]), f"a {kind} field cannot be calibrated")
        key = present[0]
        value = entry[key]
        if key == "poly":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
            ):
                raise self.error((*keys, "poly"), "expected a list of coefficients [c0, c1, ...]")
            return Polynomial(tuple(float(c) for c in value))
        if key == "table":
            points: list[tuple[float, float]] = []
            if not isinstance(value, list) or len(value) < 2:
                raise self.error((*keys, "table"), "expected at least two [raw, eng] points")
            for point in value:
                if not (
                    isinstance(point, list)
                    and len(point) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
                ):
                    raise self.error((*keys, "table"), f"bad point {point!r}: expected [raw, eng]")
                if points and point[0] <= points[-1][0]:
                    raise self.error(
                        (*keys, "table"),
                        f"raw values must increase: {point[0]} after {points[-1][0]}",
                    )
                points.append((float(point[0]), float(point[1])))
            return Table(tuple(points))
        states = self.table(value, (*keys, "states"))
        result: dict[int, str] = {}
        low, high = int_range(kind, bits) if kind in ("u", "i") else (None, None)
        for raw_text, state in states.items():
            try:
                raw = int(raw_text, 0)
            except ValueError:
                raise self.error(
                    (*keys, "states", raw_text),
                    f"expected an integer raw value, found {raw_text!r}",
                ) from None
            if low is not None and high is not None and not low <= raw <= high:
                raise self.error(
                    (*keys, "states", raw_text), f"{raw} does not fit the field's type"
                )
            if not isinstance(state, str) or not state:
                raise self.error((*keys, "states", raw_text), "expected a state name")
            result[raw] = state
        return Enumeration(result)

    def limits(self, value: Any, keys: Keys, calibration: Calibration | None) -> Limits:
        entry = self.table(value, keys)
        self.check_keys(
            entry, {"yellow", "red", "persistence", "when", "yellow_states", "red_states"}, keys
        )
        bands: dict[str, tuple[float | None, float | None]] = {}
        for band in ("yellow", "red"):
            if band in entry:
                pair = entry[band]
                if (
                    not isinstance(pair, list)
                    or len(pair) != 2
                    or not all(v is None or isinstance(v, int | float) for v in pair)
                ):
                    raise self.error((*keys, band), f"expected [low, high], found {kind_of(pair)}")
                bands[band] = (pair[0], pair[1])
        yl, yh = bands.get("yellow", (None, None))
        rl, rh = bands.get("red", (None, None))
        ordered = [v for v in (rl, yl, yh, rh) if v is not None]
        if ordered != sorted(ordered):
            raise self.error(
                keys,
                f"limits out of order: red low {rl}, yellow low {yl}, yellow high {yh}, "
                f"red high {rh}",
                hint="expected red low <= yellow low <= yellow high <= red high",
            )
        states: dict[str, tuple[str, ...]] = {}
        for key in ("yellow_states", "red_states"):
            listed = entry.get(key, [])
            if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
                raise self.error((*keys, key), "expected a list of state names")
            if listed:
                if not isinstance(calibration, Enumeration):
                    raise self.error((*keys, key), "only an enumerated field has states")
                unknown = sorted(set(listed) - set(calibration.states.values()))
                if unknown:
                    raise self.error((*keys, key), f"unknown state(s): {', '.join(unknown)}")
            states[key] = tuple(listed)
        when = entry.get("when")
        if when is not None and (not isinstance(when, str) or not when.strip()):
            raise self.error((*keys, "when"), "expected an expression string")
        return Limits(
            yellow_low=yl,
            yellow_high=yh,
            red_low=rl,
            red_high=rh,
            persistence=self.integer(entry, "persistence", keys, default=1, low=1, high=1000),
            when=when,
            yellow_states=states["yellow_states"],
            red_states=states["red_states"],
        )

    def event(self, value: Any, keys: Keys, fields: list[Field]) -> EventMapping:
        entry = self.table(value, keys)
        self.check_keys(entry, {"app", "id", "severity", "text", "severities"}, keys)
        names = {f.name for f in fields}
        picked = {}
        for key in ("app", "id", "severity", "text"):
            name = self.string(entry, key, keys)
            if name not in names:
                raise self.error((*keys, key), f"{name!r} is not a field of this packet")
            picked[key] = name
        severities = {}
        for raw_text, label in self.table(
            entry.get("severities", {}), (*keys, "severities")
        ).items():
            try:
                severities[int(raw_text)] = str(label)
            except ValueError:
                raise self.error(
                    (*keys, "severities", raw_text), "expected an integer key"
                ) from None
        return EventMapping(
            app=picked["app"],
            event_id=picked["id"],
            severity=picked["severity"],
            text=picked["text"],
            severities=severities,
        )

    def derived(self, value: Any, known: set[str]) -> list[Derived]:
        if not isinstance(value, list):
            raise self.error(("derived",), "expected [[derived]] tables")
        result: list[Derived] = []
        for i, item in enumerate(value):
            keys: Keys = ("derived", i)
            entry = self.table(item, keys)
            self.check_keys(entry, {"name", "expr", "unit", "description", "limits"}, keys)
            name = self.identifier(entry, "name", keys)
            if name in known or any(d.name == name for d in result):
                raise self.error((*keys, "name"), f"{name!r} is already a parameter")
            expr = self.string(entry, "expr", keys)
            # A derived parameter may use fields and the derived parameters before it.
            self.check_expression(expr, (*keys, "expr"), known | {d.name for d in result})
            limits = (
                self.limits(entry["limits"], (*keys, "limits"), None) if "limits" in entry else None
            )
            result.append(
                Derived(
                    name=name,
                    expression=expr,
                    unit=self.text(entry, "unit", keys),
                    description=self.text(entry, "description", keys),
                    limits=limits,
                )
            )
        return result

    def commands(
        self, value: Any, packets: Mapping[int, Packet], order: ByteOrder
    ) -> dict[str, Command]:
        if not isinstance(value, list):
            raise self.error(("commands",), "expected [[commands]] tables")
        result: dict[str, Command] = {}
        for i, item in enumerate(value):
            keys: Keys = ("commands", i)
            entry = self.table(item, keys)
            self.check_keys(
                entry,
                {"name", "id", "function_code", "arguments", "hazardous", "description", "verify"},
                keys,
            )
            name = self.identifier(entry, "name", keys)
            if name in result:
                raise self.error((*keys, "name"), f"duplicate command name {name!r}")
            arguments: list[Argument] = []
            raw_args = entry.get("arguments", [])
            if not isinstance(raw_args, list):
                raise self.error((*keys, "arguments"), "expected a list of argument tables")
            for j, arg in enumerate(raw_args):
                argument = self.argument(arg, (*keys, "arguments", j), order)
                if any(a.name == argument.name for a in arguments):
                    raise self.error(
                        (*keys, "arguments", j, "name"), f"duplicate argument {argument.name!r}"
                    )
                arguments.append(argument)
            hazardous = entry.get("hazardous", False)
            if not isinstance(hazardous, bool):
                raise self.error((*keys, "hazardous"), "expected true or false")
            result[name] = Command(
                name=name,
                id=self.integer(entry, "id", keys, low=0, high=0xFFFF),
                function_code=self.integer(
                    entry, "function_code", keys, default=0, low=0, high=127
                ),
                arguments=tuple(arguments),
                hazardous=hazardous,
                description=self.text(entry, "description", keys),
                verification=self.verification(entry.get("verify", {}), (*keys, "verify"), packets),
            )
        return result

    def argument(self, value: Any, keys: Keys, order: ByteOrder) -> Argument:
        entry = self.table(value, keys)
        self.check_keys(
            entry,
            {
                "name",
                "type",
                "byte_order",
                "unit",
                "min",
                "max",
                "states",
                "default",
                "description",
            },
            keys,
        )
        name = self.identifier(entry, "name", keys)
        kind, bits = self.type_of(entry, keys)
        low = self.number(entry, "min", keys) if "min" in entry else None
        high = self.number(entry, "max", keys) if "max" in entry else None
        if kind in ("u", "i"):
            type_low, type_high = int_range(kind, bits)
            for key, bound in (("min", low), ("max", high)):
                if bound is not None and not type_low <= bound <= type_high:
                    raise self.error((*keys, key), f"{bound:g} does not fit {kind}{bits}")
        if low is not None and high is not None and low > high:
            raise self.error(keys, f"min {low:g} is above max {high:g}")
        states: dict[str, int] = {}
        for state, raw in self.table(entry.get("states", {}), (*keys, "states")).items():
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise self.error((*keys, "states", state), "expected an integer raw value")
            if kind in ("u", "i"):
                low_raw, high_raw = int_range(kind, bits)
                if not low_raw <= raw <= high_raw:
                    raise self.error((*keys, "states", state), f"{raw} does not fit {kind}{bits}")
            states[state] = raw
        default = entry.get("default")
        argument = Argument(
            name=name,
            kind=kind,
            bits=bits,
            byte_order=self.byte_order(entry, keys, order),
            unit=self.text(entry, "unit", keys),
            minimum=low,
            maximum=high,
            states=states,
            default=default,
            description=self.text(entry, "description", keys),
        )
        if default is not None:
            from groundctl.mdb.validate import ArgumentError, convert_argument

            try:
                convert_argument(argument, default)
            except ArgumentError as error:
                raise self.error((*keys, "default"), str(error)) from None
        return argument

    def verification(self, value: Any, keys: Keys, packets: Mapping[int, Packet]) -> Verification:
        entry = self.table(value, keys)
        self.check_keys(entry, {"accepted", "completed", "failed", "timeout_s"}, keys)
        fields = {f"{p.name}.{f.name}" for p in packets.values() for f in p.fields}
        stages: dict[str, tuple[str, ...]] = {}
        for stage in ("accepted", "completed", "failed"):
            conditions = entry.get(stage, [])
            if isinstance(conditions, str):
                conditions = [conditions]
            if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
                raise self.error((*keys, stage), "expected a condition or a list of conditions")
            for condition in conditions:
                counter = _COUNTER.match(condition)
                if counter:
                    name = f"{counter.group(1)}.{counter.group(2)}"
                    if name not in fields:
                        raise self.error((*keys, stage), f"{condition!r}: no field {name}")
                    continue
                if _EVENT.match(condition):
                    continue
                self.check_expression(condition, (*keys, stage), fields)
            stages[stage] = tuple(conditions)
        return Verification(
            accepted=stages["accepted"],
            completed=stages["completed"],
            failed=stages["failed"],
            timeout_s=self.number(entry, "timeout_s", keys, default=10.0, low=0.1, high=86400),
        )
