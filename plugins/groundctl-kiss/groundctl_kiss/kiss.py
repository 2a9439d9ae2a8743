"""KISS: frames between a host and a TNC, and what the link makes of each one.

A KISS frame is FEND, a command byte, the payload, FEND, with FEND and FESC in the
command byte and the payload escaped (FESC TFEND, FESC TFESC): the same escaping as SLIP,
so groundctl's SLIP framing does the byte work. The command byte's high nibble is the TNC
port (radio channel), its low nibble the command: 0 is a data frame. Pure code.
"""

from __future__ import annotations

from typing import NamedTuple

from groundctl.links.framing import SlipDecoder, slip_encode
from groundctl_kiss.ax25 import PID_NO_LAYER3, Ax25Error, parse_ui_frame

DATA_FRAME = 0x0
MAX_PORT = 15


def kiss_encode(payload: bytes, port: int = 0, command: int = DATA_FRAME) -> bytes:
    """One KISS frame: FEND, the escaped command byte (`port` << 4 | `command`) and
    payload, FEND. Raises ValueError for a port or command outside 0-15."""
    if not 0 <= port <= MAX_PORT or not 0 <= command <= 0x0F:
        raise ValueError(f"KISS port {port} and command {command} must be 0 to 15")
    return slip_encode(bytes([port << 4 | command]) + payload)


class Received(NamedTuple):
    """What to deliver for one KISS frame, and what was wrong with it.

    `problem` is "" for a frame delivered as meant, else a short kind (one of PROBLEMS)
    and `detail` says exactly what; `data` is then the bytes as received, so that the
    archive keeps them.
    """

    data: bytes
    problem: str = ""
    detail: str = ""


PROBLEMS = (
    "bad escape",  # the whole piece between FENDs, still escaped
    "not a data frame",  # a KISS command other than 0: the whole frame, command byte first
    "other port",  # a data frame on another TNC port: likewise
    "empty",  # a command byte and nothing else: likewise
    "not AX.25 UI",  # the KISS payload
    "not PID 0xF0",  # the KISS payload
    "no information field",  # the KISS payload
    "cut off",  # bytes after the last FEND when the connection ended (said by the link)
)


class KissDecoder:
    """KISS frames from a byte stream however it is split, opened down to what the link
    delivers: the information field of AX.25 UI frames (`ax25`) or the KISS payload of
    data frames on TNC port `port`. Everything else comes out as received, with a problem.
    """

    def __init__(self, port: int = 0, ax25: bool = True) -> None:
        self.port = port
        self.ax25 = ax25
        self._frames = SlipDecoder()

    def feed(self, data: bytes) -> list[Received]:
        """The frames completed by `data`, in order."""
        return [self.open(piece, problem) for piece, problem in self._frames.feed(data)]

    def pending(self) -> bytes:
        """Bytes received after the last FEND (an unfinished frame)."""
        return self._frames.pending()

    def open(self, frame: bytes, problem: str = "") -> Received:
        """One unescaped KISS frame (`problem` from unescaping it, if any) -> Received."""
        if problem:
            return Received(frame, "bad escape", problem)
        port, command = frame[0] >> 4, frame[0] & 0x0F
        if command != DATA_FRAME:
            return Received(frame, "not a data frame", f"KISS command {command} on port {port}")
        if port != self.port:
            return Received(frame, "other port", f"data frame on TNC port {port}, not {self.port}")
        payload = frame[1:]
        if not payload:
            return Received(frame, "empty", "data frame with no payload")
        if not self.ax25:
            return Received(payload)
        try:
            ui = parse_ui_frame(payload)
        except Ax25Error as error:
            return Received(payload, "not AX.25 UI", str(error))
        if ui.pid != PID_NO_LAYER3:
            return Received(payload, "not PID 0xF0", f"UI frame with PID 0x{ui.pid:02x}")
        if not ui.info:
            return Received(payload, "no information field", f"UI frame from {ui.source}")
        return Received(ui.info)
