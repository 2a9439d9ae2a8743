"""Read two-line element sets (TLE, 3LE, OMM JSON, OMM CSV) and say exactly what is wrong.

Parsers never raise for bad content: they return the good `TLE` values and one
`TLEProblem` per bad record (source, 1-based line, field, found vs expected), so a file
with one broken satellite still feeds the other ten thousand to the pass predictor.
Only `load_tle_file` raises, and only when the file itself cannot be read.

Pure module: no sockets, no SQLite, no Textual.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sgp4 import exporter, omm
from sgp4.alpha5 import from_alpha5
from sgp4.api import SGP4_ERRORS, WGS72, Satrec

from groundctl.errors import TLEError
from groundctl.orbits.model import TLE

__all__ = [
    "TLEProblem",
    "checksum",
    "load_tle_file",
    "parse_any",
    "parse_omm_csv",
    "parse_omm_json",
    "parse_tle_text",
    "stale",
]

TLE_LINE_LENGTH = 69
MAX_MEAN_MOTION_REV_PER_DAY = 20.0

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIX_EPOCH_JD = 2440587.5
_BOM = "\ufeff"
# Alpha-5 leaves out I and O so they cannot be read as 1 and 0.
_ALPHA5_RE = re.compile(r"[A-HJ-NP-Z][0-9]{4}")
_OMM_FIELDS = (
    "OBJECT_NAME",
    "OBJECT_ID",
    "EPOCH",
    "MEAN_MOTION",
    "ECCENTRICITY",
    "INCLINATION",
    "RA_OF_ASC_NODE",
    "ARG_OF_PERICENTER",
    "MEAN_ANOMALY",
    "EPHEMERIS_TYPE",
    "CLASSIFICATION_TYPE",
    "NORAD_CAT_ID",
    "ELEMENT_SET_NO",
    "REV_AT_EPOCH",
    "BSTAR",
    "MEAN_MOTION_DOT",
    "MEAN_MOTION_DDOT",
)


@dataclass(frozen=True)
class TLEProblem:
    """One thing wrong with one record of a TLE source.

    `source` is the file path, URL or "config"; `line` the 1-based line number in it
    (for OMM JSON the record number, counted from 1; 0 when nothing better applies);
    `field` names what is wrong ("line 1 checksum", "line 2 inclination", "pairing",
    "OMM MEAN_MOTION") and `message` says the value found and what is expected.
    """

    source: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line > 0 else self.source
        return f"{where}: {self.field}: {self.message}"


def checksum(line: str) -> int:
    """Return the TLE mod-10 checksum of the first 68 characters of `line`.

    Digits count their value, '-' counts 1, everything else 0. The result is what column 69
    of a valid element line holds.
    """
    total = 0
    for char in line[: TLE_LINE_LENGTH - 1]:
        if char.isdigit():
            total += int(char)
        elif char == "-":
            total += 1
    return total % 10


def parse_tle_text(
    text: str, source: str = "<text>", *, first_line: int = 1
) -> tuple[list[TLE], list[TLEProblem]]:
    """Parse TLE (two lines) and 3LE (name line + two lines) records, mixed freely.

    A text line directly before a line 1 is that record's name (a leading "0 " as in
    Space-Track/CelesTrak 3LE files is removed); records without one are named by their
    catalogue number. Blank lines, trailing whitespace, CRLF and a leading BOM are
    tolerated. `first_line` is the line number of the first line of `text` in `source`
    (for TLE text embedded in a larger file).

    Returns the valid records, in file order, and one `TLEProblem` per bad field or bad
    pairing; a bad record is skipped and parsing goes on. Never raises for bad content.
    """
    if text.startswith(_BOM):
        text = text[1:]
    # Split on "\n" only, so line numbers agree with editors even if a lone "\r" sneaks in.
    lines = [
        (first_line + index, raw.rstrip())
        for index, raw in enumerate(text.split("\n"))
        if raw.strip()
    ]
    tles: list[TLE] = []
    problems: list[TLEProblem] = []
    pending_name: tuple[int, str] | None = None
    i = 0
    while i < len(lines):
        number, line = lines[i]
        kind = _line_kind(line)
        if kind == "text":
            if pending_name is not None:
                problems.append(_stray(source, *pending_name))
            pending_name = (number, line)
            i += 1
            continue
        if kind == "2":
            after = f" (after name line {_show(pending_name[1])})" if pending_name else ""
            problems.append(
                TLEProblem(
                    source,
                    number,
                    "pairing",
                    f"line 2 of catalogue number {line[2:7].strip() or '?'} has no line 1 "
                    f"before it{after}; expected a line 1 (starting '1 ') right before "
                    "each line 2",
                )
            )
            pending_name = None
            i += 1
            continue
        # kind == "1"
        if i + 1 < len(lines) and _line_kind(lines[i + 1][1]) == "2":
            number2, line2 = lines[i + 1]
            name = _clean_name(pending_name[1]) if pending_name else ""
            tle, record_problems = _build_record(name, line, number, line2, number2, source)
            problems.extend(record_problems)
            if tle is not None:
                tles.append(tle)
            i += 2
        else:
            problems.append(
                TLEProblem(
                    source,
                    number,
                    "pairing",
                    f"line 1 of catalogue number {line[2:7].strip() or '?'} is not followed "
                    "by a line 2; expected a line 2 (starting '2 ') on the next line",
                )
            )
            i += 1
        pending_name = None
    if pending_name is not None:
        problems.append(_stray(source, *pending_name))
    return tles, problems


def parse_omm_json(text: str, source: str = "<json>") -> tuple[list[TLE], list[TLEProblem]]:
    """Parse OMM mean elements in CelesTrak's GP JSON format (a list of objects, or one).

    Each record is turned into TLE lines with sgp4 (`omm.initialize` then `export_tle`) so
    every `TLE` looks the same whatever its source. Problems carry `line` = record number
    (1-based) and say "record N" in the message; the returned `TLE.line` is 0 because JSON
    records have no line of their own. Invalid JSON gives a single problem with the line
    and column of the syntax error. Never raises for bad content.
    """
    if text.startswith(_BOM):
        text = text[1:]
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [
            TLEProblem(
                source,
                exc.lineno,
                "JSON",
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}; "
                "expected a list of OMM objects as CelesTrak's GP JSON",
            )
        ]
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        return [], [
            TLEProblem(
                source,
                1,
                "JSON",
                f"top-level value is a {type(document).__name__}, expected a list of OMM objects",
            )
        ]
    tles: list[TLE] = []
    problems: list[TLEProblem] = []
    for index, record in enumerate(document):
        number = index + 1
        if not isinstance(record, dict):
            problems.append(
                TLEProblem(
                    source,
                    number,
                    "OMM record",
                    f"record {number} is a {type(record).__name__}, expected an object "
                    "with OBJECT_NAME, NORAD_CAT_ID, EPOCH, ...",
                )
            )
            continue
        tle, record_problems = _omm_record(record, source, number, f"record {number}", 0)
        problems.extend(record_problems)
        if tle is not None:
            tles.append(tle)
    return tles, problems


def parse_omm_csv(text: str, source: str = "<csv>") -> tuple[list[TLE], list[TLEProblem]]:
    """Parse OMM mean elements in CelesTrak's GP CSV format (header row, one row each).

    Columns are those of the JSON format. Problems and the returned `TLE.line` use the CSV
    line number of the row. A header lacking required columns gives one problem on line 1
    and no records. Never raises for bad content.
    """
    if text.startswith(_BOM):
        text = text[1:]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
    except csv.Error as exc:
        return [], [TLEProblem(source, 1, "CSV", f"unreadable CSV header: {exc}")]
    missing = [name for name in _OMM_FIELDS if name not in header]
    if missing:
        return [], [
            TLEProblem(
                source,
                1,
                "OMM header",
                f"header lacks column(s) {', '.join(missing)}; expected CelesTrak GP CSV "
                f"columns {', '.join(_OMM_FIELDS)}",
            )
        ]
    reader.fieldnames = header
    tles: list[TLE] = []
    problems: list[TLEProblem] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(TLEProblem(source, reader.line_num, "CSV", f"unreadable row: {exc}"))
            continue
        number = reader.line_num
        tle, record_problems = _omm_record(row, source, number, f"row on line {number}", number)
        problems.extend(record_problems)
        if tle is not None:
            tles.append(tle)
    return tles, problems


def parse_any(text: str, source: str) -> tuple[list[TLE], list[TLEProblem]]:
    """Parse `text` as OMM JSON, OMM CSV or TLE/3LE, whichever it looks like.

    JSON if the first non-blank character is '[' or '{'; CSV if the first non-blank line
    names OBJECT_NAME or NORAD_CAT_ID; TLE/3LE otherwise. Never raises for bad content.
    """
    body = text[1:] if text.startswith(_BOM) else text
    stripped = body.lstrip()
    if stripped.startswith(("[", "{")):
        return parse_omm_json(body, source)
    first = stripped.split("\n", 1)[0]
    if "OBJECT_NAME" in first or "NORAD_CAT_ID" in first:
        return parse_omm_csv(body, source)
    return parse_tle_text(body, source)


def load_tle_file(path: str | Path) -> tuple[list[TLE], list[TLEProblem]]:
    """Read a TLE, 3LE, OMM JSON or OMM CSV file (UTF-8, BOM and CRLF tolerated).

    Returns the valid records and the problems found (see `parse_any`); `source` in both is
    `str(path)`. Raises `TLEError` when the file cannot be read or is not UTF-8 text.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise TLEError(
            f"cannot read TLE file {source}: {reason}",
            hint="check the path (relative paths are taken from the current directory) "
            "and that the file is readable",
        ) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TLEError(
            f"TLE file {source} is not UTF-8 text (byte {exc.start}: {exc.reason})",
            hint="give a text file with TLE/3LE lines, or OMM JSON/CSV as served by CelesTrak",
        ) from exc
    return parse_any(text, source)


def stale(tles: Iterable[TLE], now: datetime, max_age_days: float = 7.0) -> list[TLE]:
    """Return the TLEs whose epoch is more than `max_age_days` days before `now`.

    `now` must be timezone-aware (UTC); raises `ValueError` if it is naive. Order is kept.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("stale(): `now` must be a timezone-aware datetime (UTC)")
    limit = now - timedelta(days=max_age_days)
    return [tle for tle in tles if tle.epoch < limit]


# --- TLE lines -------------------------------------------------------------------------


def _line_kind(line: str) -> str:
    """'1' or '2' for an element line (by its first two columns), 'text' for anything else."""
    if len(line) >= 2 and line[0] in "12" and line[1] == " ":
        return line[0]
    return "text"


def _clean_name(line: str) -> str:
    name = line.strip()
    if name.startswith("0 "):
        name = name[2:].strip()
    return name


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _stray(source: str, number: int, line: str) -> TLEProblem:
    return TLEProblem(
        source,
        number,
        "pairing",
        f"text line {_show(line.strip())} is neither an element line nor a name followed by "
        "a line 1; expected a name line right before a line 1, or a line starting '1 ' or "
        "'2 '",
    )


class _Fields:
    """Collects field problems of one record; `line` is set for the element line at hand."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.line = 0
        self.prefix = ""
        self.problems: list[TLEProblem] = []

    def add(self, field: str, message: str) -> None:
        self.problems.append(TLEProblem(self.source, self.line, f"{self.prefix}{field}", message))

    def number(self, field: str, raw: str, low: float, high: float, unit: str) -> float | None:
        """Parse a plain decimal column and check low <= value <= high."""
        try:
            value = float(raw)
        except ValueError:
            self.add(
                field, f"{field} is {raw.strip()!r}, expected a number {low:g} to {high:g} {unit}"
            )
            return None
        if not low <= value <= high:
            self.add(field, f"{field} is {raw.strip()}, expected {low:g} to {high:g} {unit}")
            return None
        return value

    def catalogue(self, raw: str) -> int | None:
        """Decode a 5-column catalogue number, plain digits or Alpha-5 ("A0001" = 100001)."""
        if _ALPHA5_RE.fullmatch(raw):
            return int(from_alpha5(raw))
        if raw.strip().isdigit() and raw.strip().isascii():
            return int(raw)
        self.add(
            "catalogue number",
            f"catalogue number is {raw!r}, expected 5 digits or Alpha-5 (a letter other "
            "than I/O and 4 digits)",
        )
        return None

    def exponent(self, field: str, raw: str) -> None:
        """Check an implied-decimal, implied-exponent column such as ' 12345-4'."""
        if not re.fullmatch(r"[ +-][0-9 ]{5}[+-][0-9]", raw):
            self.add(
                field,
                f"{field} is {raw!r}, expected sign, 5 digits, exponent sign and digit "
                "(e.g. ' 12345-4' for 0.12345e-4)",
            )


def _build_record(
    name: str, line1: str, number1: int, line2: str, number2: int, source: str
) -> tuple[TLE | None, list[TLEProblem]]:
    """Validate one line 1/line 2 pair, build its sgp4 Satrec and return the TLE."""
    check = _Fields(source)
    for label, line, number in (("line 1", line1, number1), ("line 2", line2, number2)):
        check.line, check.prefix = number, f"{label} "
        if len(line) != TLE_LINE_LENGTH:
            check.add(
                "length",
                f"line is {len(line)} characters long, expected {TLE_LINE_LENGTH} "
                "(after removing trailing whitespace)",
            )
    if check.problems:
        # Columns are unreliable on a short or long line: one length problem says it all.
        return None, check.problems

    check.line, check.prefix = number1, "line 1 "
    _check_checksum(check, line1)
    catalogue1 = check.catalogue(line1[2:7])
    if line1[7] not in "UCS":
        check.add("classification", f"classification is {line1[7]!r}, expected U, C or S")
    _check_epoch(check, line1[18:20], line1[20:32])
    try:
        float(line1[33:43])
    except ValueError:
        check.add(
            "mean motion derivative",
            f"mean motion derivative is {line1[33:43].strip()!r}, expected a decimal "
            "number of rev/day² (e.g. '-.00027894')",
        )
    check.exponent("mean motion second derivative", line1[44:52])
    check.exponent("BSTAR", line1[53:61])
    if line1[62] not in "0123456789 ":
        check.add("ephemeris type", f"ephemeris type is {line1[62]!r}, expected a digit")
    if line1[64:68].strip() and not line1[64:68].strip().isdigit():
        check.add("element set number", f"element set number is {line1[64:68]!r}, expected digits")

    check.line, check.prefix = number2, "line 2 "
    _check_checksum(check, line2)
    catalogue2 = check.catalogue(line2[2:7])
    if catalogue1 is not None and catalogue2 is not None and catalogue1 != catalogue2:
        check.add(
            "catalogue number",
            f"catalogue number is {line2[2:7].strip()}, expected {line1[2:7].strip()} as on line 1",
        )
    check.number("inclination", line2[8:16], 0, 180, "degrees")
    check.number("RAAN", line2[17:25], 0, 360, "degrees")
    eccentricity = line2[26:33]
    if not re.fullmatch(r"[0-9 ]{7}", eccentricity):
        check.add(
            "eccentricity",
            f"eccentricity is {eccentricity!r}, expected 7 digits with an implied leading "
            "decimal point (0 <= e < 1, e.g. '0001912' for 0.0001912)",
        )
    check.number("argument of perigee", line2[34:42], 0, 360, "degrees")
    check.number("mean anomaly", line2[43:51], 0, 360, "degrees")
    _check_mean_motion(check, line2[52:63])
    if line2[63:68].strip() and not line2[63:68].strip().isdigit():
        check.add("revolution number", f"revolution number is {line2[63:68]!r}, expected digits")
    if check.problems:
        return None, check.problems

    check.line, check.prefix = number1, ""
    try:
        satrec = Satrec.twoline2rv(line1, line2, WGS72)
    except (ValueError, RuntimeError) as exc:
        check.add("sgp4", f"sgp4 rejected the element lines: {exc}")
        return None, check.problems
    if satrec.error:
        check.add("sgp4", f"sgp4 rejected the elements: {_sgp4_error(satrec.error)}")
        return None, check.problems
    norad_id = int(satrec.satnum)
    return (
        TLE(
            name=name or str(norad_id),
            line1=line1,
            line2=line2,
            norad_id=norad_id,
            epoch=_satrec_epoch(satrec),
            source=source,
            line=number1,
        ),
        [],
    )


def _check_checksum(check: _Fields, line: str) -> None:
    computed = checksum(line)
    found = line[68]
    if not found.isdigit():
        check.add("checksum", f"checksum is {found!r}, expected a digit; computed {computed}")
    elif int(found) != computed:
        check.add("checksum", f"checksum is {found}, computed {computed}")


def _check_epoch(check: _Fields, year: str, day: str) -> None:
    if not re.fullmatch(r"[0-9 ][0-9]", year):
        check.add("epoch year", f"epoch year is {year!r}, expected two digits (57-99 = 19xx)")
        return
    two_digits = int(year)
    full_year = two_digits + (1900 if two_digits >= 57 else 2000)
    leap = full_year % 4 == 0 and (full_year % 100 != 0 or full_year % 400 == 0)
    last = 366.99999999 if leap else 365.99999999
    try:
        value = float(day)
    except ValueError:
        value = math.nan
    if not 1.0 <= value <= last:
        check.add(
            "epoch day",
            f"epoch day is {day.strip()!r}, expected a day of year {full_year} from 1 to "
            f"{last:.8f}",
        )


def _check_mean_motion(check: _Fields, raw: str) -> None:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 < value < MAX_MEAN_MOTION_REV_PER_DAY:
        check.add(
            "mean motion",
            f"mean motion is {raw.strip()!r}, expected more than 0 and less than "
            f"{MAX_MEAN_MOTION_REV_PER_DAY:g} rev/day",
        )


def _sgp4_error(code: int) -> str:
    return f"error {code}: {SGP4_ERRORS.get(code, 'unknown sgp4 error')}"


def _satrec_epoch(satrec: Satrec) -> datetime:
    """The satrec's epoch (jdsatepoch + jdsatepochF) as UTC, to the microsecond."""
    whole_days = float(satrec.jdsatepoch) - _UNIX_EPOCH_JD
    days = math.floor(whole_days)
    # Keep the (exact) whole days apart from the fraction so that float rounding costs
    # nanoseconds, not the ~1 µs a single float of days since 1970 would.
    fraction = (whole_days - days) + float(satrec.jdsatepochF)
    return _UNIX_EPOCH + timedelta(days=days, microseconds=round(fraction * 86_400e6))


# --- OMM -------------------------------------------------------------------------------


class _OMMFields:
    """Reads and checks one OMM record's fields, collecting a problem per bad field."""

    def __init__(self, record: Mapping[str, object], source: str, line: int, label: str) -> None:
        self.record = record
        self.source = source
        self.line = line
        self.label = label
        self.problems: list[TLEProblem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(
            TLEProblem(self.source, self.line, f"OMM {key}", f"{self.label}: {message}")
        )

    def raw(self, key: str) -> object | None:
        value = self.record.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.add(key, f"{key} is missing, expected it in every record")
            return None
        return value

    def text(self, key: str) -> str | None:
        value = self.record.get(key)
        if value is None:
            self.add(key, f"{key} is missing, expected it in every record")
            return None
        if not isinstance(value, str):
            self.add(key, f"{key} is {value!r}, expected a string")
            return None
        return value.strip()

    def number(
        self,
        key: str,
        low: float,
        high: float,
        unit: str,
        *,
        open_low: bool = False,
        open_high: bool = False,
    ) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        interval = (
            f"{'more than' if open_low else 'from'} {low:g} "
            f"{'and less than' if open_high else 'to'} {high:g} {unit}"
        )
        number = _to_float(value)
        if number is None:
            self.add(key, f"{key} is {value!r}, expected a number {interval}")
            return None
        too_low = number <= low if open_low else number < low
        too_high = number >= high if open_high else number > high
        if too_low or too_high:
            self.add(key, f"{key} is {number!r}, expected {interval}")
            return None
        return number

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.raw(key)
        if value is None:
            return None
        number = _to_int(value)
        if number is None or not low <= number <= high:
            self.add(key, f"{key} is {value!r}, expected a whole number from {low} to {high}")
            return None
        return number


def _to_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _to_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _parse_omm_epoch(check: _OMMFields) -> str | None:
    """EPOCH as the '%Y-%m-%dT%H:%M:%S.%f' UTC string that sgp4.omm expects."""
    raw = check.text("EPOCH")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.removesuffix("Z"))
    except ValueError:
        check.add(
            "EPOCH",
            f"EPOCH is {raw!r}, expected an ISO 8601 UTC time such as '2026-05-12T22:48:42.000000'",
        )
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    # A TLE stores the year in two digits: 1957-2056 only.
    if not 1957 <= moment.year <= 2056:
        check.add("EPOCH", f"EPOCH is {raw!r}, expected a year from 1957 to 2056")
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _omm_record(
    record: Mapping[str, object], source: str, line: int, label: str, tle_line: int
) -> tuple[TLE | None, list[TLEProblem]]:
    """Check one OMM record, convert it to TLE lines with sgp4 and validate those."""
    check = _OMMFields(record, source, line, label)
    name_value = record.get("OBJECT_NAME")
    if name_value is None:
        check.add("OBJECT_NAME", "OBJECT_NAME is missing, expected it in every record")
    elif not isinstance(name_value, str):
        check.add("OBJECT_NAME", f"OBJECT_NAME is {name_value!r}, expected a string")
    object_id = check.text("OBJECT_ID")
    # sgp4 keeps OBJECT_ID minus the century and dash as the 8-column designator.
    if object_id is not None and len(object_id[2:].replace("-", "")) > 8:
        check.add(
            "OBJECT_ID",
            f"OBJECT_ID is {object_id!r}, expected an international designator like '2019-074B'",
        )
    epoch = _parse_omm_epoch(check)
    mean_motion = check.number(
        "MEAN_MOTION", 0, MAX_MEAN_MOTION_REV_PER_DAY, "rev/day", open_low=True, open_high=True
    )
    eccentricity = check.number("ECCENTRICITY", 0, 1, "", open_high=True)
    inclination = check.number("INCLINATION", 0, 180, "degrees")
    raan = check.number("RA_OF_ASC_NODE", 0, 360, "degrees")
    argp = check.number("ARG_OF_PERICENTER", 0, 360, "degrees")
    anomaly = check.number("MEAN_ANOMALY", 0, 360, "degrees")
    ephemeris_type = check.integer("EPHEMERIS_TYPE", 0, 9)
    classification = check.text("CLASSIFICATION_TYPE")
    if classification is not None and classification not in ("U", "C", "S"):
        check.add(
            "CLASSIFICATION_TYPE",
            f"CLASSIFICATION_TYPE is {classification!r}, expected U, C or S",
        )
    norad_id = check.integer("NORAD_CAT_ID", 0, 339_999)
    element_set = check.integer("ELEMENT_SET_NO", 0, 9999)
    revolution = check.integer("REV_AT_EPOCH", 0, 99_999)
    bstar = check.number("BSTAR", -1, 1, "per earth radius", open_low=True, open_high=True)
    ndot = check.number("MEAN_MOTION_DOT", -1, 1, "rev/day²", open_low=True, open_high=True)
    nddot = check.number("MEAN_MOTION_DDOT", -1, 1, "rev/day³", open_low=True, open_high=True)
    if check.problems:
        return None, check.problems

    fields: dict[str, object] = {
        "OBJECT_ID": object_id,
        "EPOCH": epoch,
        "MEAN_MOTION": mean_motion,
        "ECCENTRICITY": eccentricity,
        "INCLINATION": inclination,
        "RA_OF_ASC_NODE": raan,
        "ARG_OF_PERICENTER": argp,
        "MEAN_ANOMALY": anomaly,
        "EPHEMERIS_TYPE": ephemeris_type,
        "CLASSIFICATION_TYPE": classification,
        "NORAD_CAT_ID": norad_id,
        "ELEMENT_SET_NO": element_set,
        "REV_AT_EPOCH": revolution,
        "BSTAR": bstar,
        "MEAN_MOTION_DOT": ndot,
        "MEAN_MOTION_DDOT": nddot,
    }
    satrec = Satrec()
    try:
        omm.initialize(satrec, fields)
        # sgp4init resets the classification to 'U'; put the record's back for export.
        satrec.classification = classification
        line1, line2 = exporter.export_tle(satrec)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        check.add("record", f"sgp4 could not turn the elements into TLE lines: {exc}")
        return None, check.problems
    if satrec.error:
        check.add("record", f"sgp4 rejected the elements: {_sgp4_error(satrec.error)}")
        return None, check.problems
    name = name_value.strip() if isinstance(name_value, str) else ""
    tle, line_problems = _build_record(name, str(line1), tle_line, str(line2), tle_line, source)
    for problem in line_problems:
        check.add(
            "record",
            f"the elements do not make a valid TLE: {problem.field}: {problem.message}",
        )
    return tle, check.problems
