"""Framing: how frames are cut out of a byte stream (TCP, serial, files).

Each decoder is incremental: `feed(data)` takes whatever a read returned, however the
stream was split, and returns the frames completed so far as `(frame, problem)` pairs.
A problem ("" when none) says what was wrong with a piece that is still returned, so
that it can be archived as malformed: nothing received is dropped. Encoders are plain
functions. Pure code: no sockets here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from groundctl.mdb.codec import PRIMARY_HEADER_BYTES, parse_header

Framed = tuple[bytes, str]

# SLIP (RFC 1055), whose escaping KISS uses too (FEND, FESC, TFEND, TFESC).
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def slip_encode(frame: bytes) -> bytes:
    """One frame with SLIP escaping between END bytes."""
    body = frame.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(
        bytes([END]), bytes([ESC, ESC_END])
    )
    return bytes([END]) + body + bytes([END])


class _DelimitedDecoder(ABC):
    """Frames ending at a delimiter byte; each piece goes through `_unpack`. Empty pieces
    (two delimiters in a row) are skipped."""

    DELIMITER = 0

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Framed]:
        self._buffer += data
        frames: list[Framed] = []
        while True:
            end = self._buffer.find(self.DELIMITER)
            if end < 0:
                return frames
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if raw:
                frames.append(self._unpack(raw))

    def pending(self) -> bytes:
        """Bytes received after the last delimiter (an unfinished frame)."""
        return bytes(self._buffer)

    @abstractmethod
    def _unpack(self, raw: bytes) -> Framed:
        """One delimited piece -> (frame, problem)."""


class SlipDecoder(_DelimitedDecoder):
    """SLIP/KISS frames: END-delimited, ESC-escaped."""

    DELIMITER = END

    def _unpack(self, raw: bytes) -> Framed:
        return _slip_unescape(raw)


def _slip_unescape(raw: bytes) -> Framed:
    out = bytearray()
    problem = ""
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == ESC:
            nxt = raw[i + 1] if i + 1 < len(raw) else None
            if nxt == ESC_END:
                out.append(END)
            elif nxt == ESC_ESC:
                out.append(ESC)
            else:
                problem = problem or f"bad escape at byte {i}: 0xdb followed by " + (
                    "nothing" if nxt is None else f"0x{nxt:02x}"
                )
                out.append(b)
                if nxt is not None:
                    out.append(nxt)
            i += 2
            continue
        out.append(b)
        i += 1
    return (bytes(out) if not problem else raw), problem


def cobs_encode(frame: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing, with a 0x00 delimiter after the frame."""
    out = bytearray()
    block = bytearray()
    for b in frame:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            continue
        block.append(b)
        if len(block) == 254:
            out.append(255)
            out += block
            block.clear()
    out.append(len(block) + 1)
    out += block
    out.append(0)
    return bytes(out)


def cobs_decode(encoded: bytes) -> Framed:
    """One COBS-encoded frame (without its 0x00 delimiter) -> (frame, problem)."""
    out = bytearray()
    i = 0
    while i < len(encoded):
        code = encoded[i]
        if code == 0:
            return encoded, f"bad COBS block at byte {i}"
        block = encoded[i + 1 : i + code]
        if len(block) != code - 1:
            return encoded, f"COBS block at byte {i} is cut short"
        out += block
        i += code
        if code < 255 and i < len(encoded):
            out.append(0)
    return bytes(out), ""


class CobsDecoder(_DelimitedDecoder):
    """COBS frames delimited by 0x00."""

    DELIMITER = 0

    def _unpack(self, raw: bytes) -> Framed:
        return cobs_decode(raw)


def length_prefix_encode(frame: bytes) -> bytes:
    """A 4-byte big-endian length, then the frame."""
    return len(frame).to_bytes(4, "big") + frame


class LengthPrefixDecoder:
    """Frames preceded by a 4-byte big-endian length; a length over `max_length` is a
    framing error: the rest of the stream is returned as one malformed piece."""

    def __init__(self, max_length: int = 1 << 20) -> None:
        self._buffer = bytearray()
        self.max_length = max_length
        self.broken = False

    def feed(self, data: bytes) -> list[Framed]:
        self._buffer += data
        frames: list[Framed] = []
        while not self.broken and len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:4], "big")
            if length > self.max_length:
                self.broken = True
                frames.append(
                    (bytes(self._buffer), f"length prefix {length} exceeds {self.max_length}")
                )
                self._buffer.clear()
                return frames
            if len(self._buffer) < 4 + length:
                break
            frames.append((bytes(self._buffer[4 : 4 + length]), ""))
            del self._buffer[: 4 + length]
        if self.broken and self._buffer:
            frames.append((bytes(self._buffer), "after a framing error"))
            self._buffer.clear()
        return frames


class CcsdsDecoder:
    """Space packets back to back, cut by the primary header's length field."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Framed]:
        self._buffer += data
        frames: list[Framed] = []
        while len(self._buffer) >= PRIMARY_HEADER_BYTES:
            header = parse_header(bytes(self._buffer[:PRIMARY_HEADER_BYTES]))
            assert header is not None
            if len(self._buffer) < header.packet_length:
                break
            frames.append((bytes(self._buffer[: header.packet_length]), ""))
            del self._buffer[: header.packet_length]
        return frames
