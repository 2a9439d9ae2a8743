"""Recording file formats: the built-in ones and those from plugins.

groundctl reads two formats itself (`groundctl.ingest.read_recording`): JSON lines as
recorded from UDP sessions and CCSDS packet files. A third-party package adds a format by
registering an object under the entry-point group `groundctl.recordings`, exactly as link
adapters register under `groundctl.links`; `groundctl db import` and the replay link then
read its files like the built-in ones. A plugin that fails to load is reported once, with
its name and error, as a `RecordingFormatWarning`; the other formats keep working.

A format is any object (a class, instantiated without arguments, or an instance) with:

- `NAME: str` -- short and unique (e.g. "kiss");
- `DESCRIPTION: str` -- one line for help texts;
- `SUFFIXES: tuple[str, ...]` -- file name endings it reads, dot included (".kss");
- `read(path, node, link, time_s) -> Iterator[tuple[Frame, str]]` -- the contract of
  `read_recording`: every received byte of the file comes out in some frame, in file
  order; a piece that cannot be read still comes out, as its bytes, with a problem string
  naming the file and byte offset (and "" for a good frame); `time_s` is the receive time
  of frames whose file records none; RecordingError only when the file itself cannot be
  read;
- optionally `sniff(head) -> bool` -- whether the first SNIFF_BYTES bytes of a file look
  like this format (for files whose name does not say).

How a file's format is chosen (see `groundctl.ingest.read_recording`): a plugin whose
SUFFIXES match the file name; else the built-in JSON lines by suffix (.jsonl, .json) or
first byte "{"; else a plugin whose sniff says yes; else a CCSDS packet file. The
built-in suffixes cannot be claimed by a plugin, so the built-in formats read the same
files whatever is installed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from groundctl.errors import GroundctlError
from groundctl.telemetry.model import Frame

GROUP = "groundctl.recordings"
SNIFF_BYTES = 64  # how much of a file a plugin's sniff() is shown
JSON_SUFFIXES = (".jsonl", ".json")  # the built-in JSON-lines format's, reserved to it


class RecordingError(GroundctlError):
    """A recording file that cannot be read at all (missing, unreadable, a format bug)."""

    title = "recording error"


class RecordingFormatWarning(UserWarning):
    """A recording-format plugin that could not be loaded; the other formats still work."""


class RecordingFormat(Protocol):
    """What a recording-format plugin provides (`sniff` may be left out: never a match)."""

    NAME: str
    DESCRIPTION: str
    SUFFIXES: tuple[str, ...]

    def sniff(self, head: bytes) -> bool:
        """Whether a file starting with `head` (its first SNIFF_BYTES bytes) is this format."""
        ...

    def read(self, path: Path, node: str, link: str, time_s: float) -> Iterator[tuple[Frame, str]]:
        """(frame, problem) for each record of the file, as `read_recording` gives them."""
        ...


class FormatInfo(NamedTuple):
    """A format as help texts and errors show it."""

    name: str
    description: str
    suffixes: tuple[str, ...]


@dataclass(frozen=True)
class BrokenFormat:
    """A `groundctl.recordings` entry point that could not be used, and why."""

    name: str  # the entry point's name
    target: str  # module:attribute as registered
    error: str


# The built-in formats, read by groundctl.ingest itself. CCSDS is the last resort: any
# file no other format claims.
BUILTIN_FORMATS = (
    FormatInfo(
        "jsonl",
        'JSON lines recorded from UDP sessions: {"t": unix_s, "dir": "up"|"down", "hex": ...}',
        JSON_SUFFIXES,
    ),
    FormatInfo(
        "ccsds",
        "CCSDS packet file: concatenated space packets (any file no other format claims)",
        (),
    ),
)
_BUILTIN_NAMES = frozenset(info.name for info in BUILTIN_FORMATS)
_BUILTIN_SUFFIXES = frozenset(suffix for info in BUILTIN_FORMATS for suffix in info.suffixes)

# Formats registered in-process (tests, embedding applications); they take precedence
# over an installed entry point of the same NAME.
_registered: dict[str, RecordingFormat] = {}
_warned: dict[Any, Any] = {}  # the warnings registry of broken plugins already reported


def check_format(candidate: Any) -> RecordingFormat:
    """The format an entry point or caller names: `candidate` itself, or an instance when
    it is a class. Raises ValueError saying what is missing or wrong."""
    if isinstance(candidate, type):
        try:
            candidate = candidate()
        except Exception as error:  # a plugin's constructor can fail in any way
            raise ValueError(
                f"cannot be instantiated without arguments: {type(error).__name__}: {error}"
            ) from None
    name = getattr(candidate, "NAME", None)
    if not isinstance(name, str) or not name.strip():
        raise ValueError("NAME must be a non-empty string")
    if name in _BUILTIN_NAMES:
        raise ValueError(f"NAME {name!r} is a built-in format's")
    if not isinstance(getattr(candidate, "DESCRIPTION", None), str):
        raise ValueError(f"format {name!r}: DESCRIPTION must be a string")
    suffixes = getattr(candidate, "SUFFIXES", None)
    if not isinstance(suffixes, tuple) or not all(
        isinstance(suffix, str) and len(suffix) > 1 and suffix.startswith(".")
        for suffix in suffixes
    ):
        raise ValueError(
            f"format {name!r}: SUFFIXES must be a tuple of file name endings such as "
            f"('.kss',), found {suffixes!r}"
        )
    taken = sorted({suffix.lower() for suffix in suffixes} & _BUILTIN_SUFFIXES)
    if taken:
        raise ValueError(
            f"format {name!r}: suffix {taken[0]!r} belongs to the built-in JSON-lines format"
        )
    if not callable(getattr(candidate, "read", None)):
        raise ValueError(f"format {name!r}: read(path, node, link, time_s) is missing")
    sniff = getattr(candidate, "sniff", None)
    if sniff is not None and not callable(sniff):
        raise ValueError(f"format {name!r}: sniff must be a method taking the file's head")
    return candidate  # type: ignore[no-any-return]


def register_recording_format(candidate: Any) -> RecordingFormat:
    """Make a format known in this process without installing a package (tests, or an
    application embedding groundctl); it replaces an installed one of the same NAME.

    Returns the format (an instance when `candidate` is a class). Raises ValueError when
    `candidate` is not a recording format.
    """
    fmt = check_format(candidate)
    _registered[fmt.NAME] = fmt
    return fmt


def unregister_recording_format(name: str) -> None:
    """Forget a format registered with register_recording_format (nothing if unknown)."""
    _registered.pop(name, None)


def discover() -> tuple[dict[str, RecordingFormat], list[BrokenFormat]]:
    """Every plugin format by NAME (installed entry points, then the ones registered in
    this process), and the entry points that could not be used."""
    formats: dict[str, RecordingFormat] = {}
    broken: list[BrokenFormat] = []
    for point in entry_points(group=GROUP):
        try:
            loaded = point.load()
        except Exception as error:  # a plugin's import can fail in any way
            broken.append(BrokenFormat(point.name, point.value, f"{type(error).__name__}: {error}"))
            continue
        try:
            fmt = check_format(loaded)
        except ValueError as error:
            broken.append(BrokenFormat(point.name, point.value, f"not a recording format: {error}"))
            continue
        if fmt.NAME in formats:
            broken.append(
                BrokenFormat(
                    point.name,
                    point.value,
                    f"format name {fmt.NAME!r} is already used by {origin(formats[fmt.NAME])}",
                )
            )
            continue
        formats[fmt.NAME] = fmt
    formats.update(_registered)
    return formats, broken


def loaded_formats() -> dict[str, RecordingFormat]:
    """The plugin formats that work; each broken plugin is reported as one
    RecordingFormatWarning naming it, its target and its error (not a traceback)."""
    formats, broken = discover()
    for bad in broken:
        # Located at the entry-point group rather than a source line: the message is the
        # whole story, and Python's default filter shows it once per process.
        warnings.warn_explicit(
            f"recording format plugin {bad.name!r} ({bad.target}) is not used: {bad.error}; "
            "the built-in formats and the other plugins still work",
            RecordingFormatWarning,
            filename=GROUP,
            lineno=0,
            module=__name__,
            registry=_warned,
        )
    return formats


def recording_formats() -> list[FormatInfo]:
    """Every format a recording can be in, for help texts and errors: the built-in ones,
    then the plugins' by name. A broken plugin is left out (and warned about)."""
    plugins = loaded_formats()
    return [
        *BUILTIN_FORMATS,
        *(
            FormatInfo(fmt.NAME, fmt.DESCRIPTION, fmt.SUFFIXES)
            for fmt in sorted(plugins.values(), key=lambda fmt: fmt.NAME)
        ),
    ]


def describe_formats(formats: Iterable[FormatInfo] | None = None) -> str:
    """One line listing the formats, e.g. for a hint: 'jsonl (.jsonl, .json), ccsds, ...'."""
    listed = recording_formats() if formats is None else formats
    return ", ".join(
        f"{info.name} ({', '.join(info.suffixes)})" if info.suffixes else info.name
        for info in listed
    )


def by_suffix(path: Path, formats: Mapping[str, RecordingFormat]) -> RecordingFormat | None:
    """The first plugin format, by NAME, whose SUFFIXES end the file name (any case)."""
    filename = path.name.lower()
    for name in sorted(formats):
        fmt = formats[name]
        if any(filename.endswith(suffix.lower()) for suffix in fmt.SUFFIXES):
            return fmt
    return None


def by_sniff(head: bytes, formats: Mapping[str, RecordingFormat]) -> RecordingFormat | None:
    """The first plugin format, by NAME, whose sniff(head) says yes. A sniff that raises
    is taken as a no: a guess at a file's content must not stop it being read."""
    for name in sorted(formats):
        sniff = getattr(formats[name], "sniff", None)
        if sniff is None:
            continue
        try:
            if sniff(head[:SNIFF_BYTES]):
                return formats[name]
        except Exception:  # a plugin's content test can fail in any way
            continue
    return None


def origin(fmt: RecordingFormat) -> str:
    """module:Class of a format object, to name the plugin in messages."""
    kind = type(fmt)
    return f"{kind.__module__}:{kind.__qualname__}"
