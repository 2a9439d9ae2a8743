"""KISS capture files (.kss, .kiss) as a groundctl recording format.

A KISS capture is the byte stream a TNC sent its host, saved as is: FEND-delimited,
FESC-escaped KISS frames, one after the other. Registered under the
`groundctl.recordings` entry-point group as `kiss`, so `groundctl db import` and the
replay link read these files like the built-in formats.

Each frame is opened exactly as the live KISS link opens it (`KissDecoder` with its
defaults: TNC port 0, AX.25 on), so importing a capture archives the same frames as
receiving the same bytes live:

- an AX.25 UI frame with PID 0xF0 in a data frame on port 0: its information field (the
  space packet), with no problem; as with the live link, the AX.25 address field,
  control and PID bytes are link framing and are not kept;
- anything else comes out as received, with a problem naming the file, the byte offset
  and the kind the live link counts it as: the KISS payload for a data frame that is not
  AX.25 UI with PID 0xF0 (`not AX.25 UI`, `not PID 0xF0`, `no information field`), the
  whole KISS frame for another command, another TNC port or a command byte alone (`not a
  data frame`, `other port`, `empty`), the still-escaped bytes between the FENDs for a
  `bad escape`, and the bytes after the last FEND for a file that ends inside a frame
  (`cut off`). Bytes before the first FEND are a frame like any other, as on the wire.

A KISS capture records no times: every frame gets the `time_s` it is read with (the
import time for `groundctl db import`, the time the replay was opened for a replay).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from groundctl.links.framing import END, ESC, ESC_END, ESC_ESC
from groundctl.recordings import RecordingError
from groundctl.telemetry.model import Frame
from groundctl_kiss.kiss import KissDecoder


class KissRecording:
    """The `kiss` recording format: KISS capture files, opened as the live link opens
    a TNC's stream (TNC port 0, AX.25 UI frames carrying space packets)."""

    NAME = "kiss"
    DESCRIPTION = (
        "KISS capture (a TNC's byte stream): AX.25 UI frames on TNC port 0 give their "
        "information field, anything else its bytes as received; no receive times"
    )
    SUFFIXES = (".kss", ".kiss")

    def sniff(self, head: bytes) -> bool:
        """A KISS capture starts with FEND (0xC0), which no space packet does (its first
        byte holds version 0 in the top three bits)."""
        return head[:1] == bytes([END])

    def read(self, path: Path, node: str, link: str, time_s: float) -> Iterator[tuple[Frame, str]]:
        """(frame, problem) for each KISS frame of the file, in order; see the module
        docstring for what each kind of frame gives. Raises RecordingError only when the
        file cannot be read."""
        try:
            data = path.read_bytes()
        except OSError as error:
            raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None
        for offset, raw, problem in read_kiss(data):
            where = f"{path} byte {offset}"
            yield Frame(raw, time_s, link, node, "down"), f"{where}: {problem}" if problem else ""


def read_kiss(data: bytes) -> Iterator[tuple[int, bytes, str]]:
    """(offset, bytes, problem) for each KISS frame of a whole capture, in order.

    `offset` is where the frame's bytes start in `data` (after its FEND); `problem` is ""
    or "KIND: detail" with KIND one of kiss.PROBLEMS. Pure: the file reader and the tests share it.
    """
    decoder = KissDecoder()
    start = 0
    while (end := data.find(END, start)) >= 0:
        # One FEND-terminated piece at a time, so that each frame's offset is known;
        # the decoder skips an empty piece (two FENDs in a row).
        for received in decoder.feed(data[start : end + 1]):
            if received.problem == "bad escape":
                yield start, received.data, f"bad escape: {_bad_escape(data, start, end)}"
            elif received.problem:
                yield start, received.data, f"{received.problem}: {received.detail}"
            else:
                yield start, received.data, ""
        start = end + 1
    rest = data[start:]  # never fed to the decoder: what it would hold as pending()
    if rest:
        yield (
            start,
            rest,
            f"cut off: the file ends inside a KISS frame ({len(rest)} bytes after the "
            "last FEND, no closing FEND)",
        )


def _bad_escape(data: bytes, start: int, end: int) -> str:
    """Where and what the first bad escape is in the frame data[start:end] (between two
    FENDs): a FESC followed by neither TFEND nor TFESC."""
    index = start
    while index < end:
        if data[index] != ESC:
            index += 1
            continue
        following = data[index + 1] if index + 1 < end else None
        if following not in (ESC_END, ESC_ESC):
            found = "the closing FEND" if following is None else f"0x{following:02x}"
            return (
                f"FESC (0xdb) at byte {index} is followed by {found}, expected TFEND (0xdc) "
                "or TFESC (0xdd); the frame is kept as received, still escaped"
            )
        index += 2
    return "the decoder found an escape it could not undo"  # not reached: it found one
