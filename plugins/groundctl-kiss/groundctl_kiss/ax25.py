"""AX.25 addresses and UI frames, as a KISS TNC hands them over (no flags, no FCS).

A UI frame is the address field (destination, source, then up to 8 digipeaters, 7 bytes
each), a control byte (0x03; 0x13 with the poll/final bit), a PID byte (0xF0: no layer 3)
and the information field. In each 7-byte address the callsign's six characters, padded
with spaces, are shifted left by one bit; the seventh byte is `CRRSSIDX`: C the
command/response bit (H, has-been-repeated, for a digipeater), RR reserved (both 1), the
4-bit SSID, and X the end-of-address bit, set only in the last address. Pure code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ADDRESS_BYTES = 7
CALLSIGN_CHARS = 6
MAX_DIGIPEATERS = 8
UI_CONTROL = 0x03
POLL_FINAL = 0x10
PID_NO_LAYER3 = 0xF0

_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_END_OF_ADDRESS = 0x01
_RESERVED = 0x60
_C_OR_H = 0x80


class Ax25Error(ValueError):
    """Bytes that are not the AX.25 this module reads, or a callsign it cannot encode."""


@dataclass(frozen=True)
class Address:
    """A station: callsign (1-6 upper-case letters and digits) and SSID (0-15)."""

    callsign: str
    ssid: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.callsign) <= CALLSIGN_CHARS or not set(self.callsign) <= _ALLOWED:
            raise Ax25Error(
                f"callsign {self.callsign!r} must be 1 to 6 upper-case letters and digits"
            )
        if not 0 <= self.ssid <= 15:
            raise Ax25Error(f"SSID {self.ssid} of {self.callsign} must be 0 to 15")

    @classmethod
    def parse(cls, text: str) -> Address:
        """'CALL' or 'CALL-SSID' (letters in either case) -> Address. Raises Ax25Error."""
        call, sep, ssid = text.strip().upper().partition("-")
        if sep and not (ssid.isdigit() and ssid.isascii()):
            raise Ax25Error(f"SSID {ssid!r} in {text!r} must be a number from 0 to 15")
        return cls(call, int(ssid) if sep else 0)

    def __str__(self) -> str:
        return f"{self.callsign}-{self.ssid}" if self.ssid else self.callsign


def encode_address(address: Address, *, last: bool, c_bit: bool = False) -> bytes:
    """The 7 bytes of one address subfield.

    `last` sets the end-of-address bit (the source, or the last digipeater); `c_bit` sets
    bit 7 of the SSID byte (the command/response bit; has-been-repeated for a digipeater).
    """
    padded = address.callsign.ljust(CALLSIGN_CHARS)
    ssid_byte = _RESERVED | (address.ssid << 1)
    if c_bit:
        ssid_byte |= _C_OR_H
    if last:
        ssid_byte |= _END_OF_ADDRESS
    return bytes(ord(char) << 1 for char in padded) + bytes([ssid_byte])


def decode_address(field: bytes) -> tuple[Address, bool, bool]:
    """7 bytes -> (address, c_bit, last). Raises Ax25Error when the callsign bytes are
    not shifted upper-case letters and digits padded with spaces, or have the
    end-of-address bit set (a sign of unshifted text)."""
    if len(field) != ADDRESS_BYTES:
        raise Ax25Error(f"an address is 7 bytes, found {len(field)}")
    chars = []
    for position, byte in enumerate(field[:CALLSIGN_CHARS]):
        if byte & _END_OF_ADDRESS:
            raise Ax25Error(f"callsign byte {position} (0x{byte:02x}) is not shifted")
        chars.append(chr(byte >> 1))
    text = "".join(chars)
    callsign = text.rstrip(" ")
    if not callsign or " " in callsign or not set(callsign) <= _ALLOWED:
        raise Ax25Error(f"callsign {text!r} is not letters and digits padded with spaces")
    ssid_byte = field[CALLSIGN_CHARS]
    return (
        Address(callsign, (ssid_byte >> 1) & 0x0F),
        bool(ssid_byte & _C_OR_H),
        bool(ssid_byte & _END_OF_ADDRESS),
    )


@dataclass(frozen=True)
class UiFrame:
    """A parsed UI frame: who sent it to whom, by which path, and what it carries."""

    destination: Address
    source: Address
    via: tuple[Address, ...]
    pid: int
    info: bytes


def build_ui_frame(
    destination: Address,
    source: Address,
    info: bytes,
    via: Sequence[Address] = (),
    pid: int = PID_NO_LAYER3,
) -> bytes:
    """A UI command frame from `source` to `destination`, through the digipeaters `via`.

    As a command frame (AX.25 2.x) its destination C bit is 1 and its source C bit 0.
    Raises Ax25Error for more than 8 digipeaters.
    """
    if len(via) > MAX_DIGIPEATERS:
        raise Ax25Error(f"at most {MAX_DIGIPEATERS} digipeaters, found {len(via)}")
    parts = [
        encode_address(destination, last=False, c_bit=True),
        encode_address(source, last=not via),
    ]
    parts += [encode_address(hop, last=n == len(via) - 1) for n, hop in enumerate(via)]
    return b"".join(parts) + bytes([UI_CONTROL, pid]) + info


def parse_ui_frame(frame: bytes) -> UiFrame:
    """A UI frame (without FCS, as a KISS TNC delivers it) -> UiFrame.

    Raises Ax25Error saying what is wrong: an address field that never ends or is cut
    short, fewer than 2 or more than 10 addresses, a callsign that is not shifted
    letters and digits, a control byte other than UI, or a missing PID.
    """
    addresses: list[Address] = []
    offset = 0
    while True:
        if len(addresses) == 2 + MAX_DIGIPEATERS:
            raise Ax25Error(f"the address field does not end within {len(addresses)} addresses")
        field = frame[offset : offset + ADDRESS_BYTES]
        if len(field) < ADDRESS_BYTES:
            raise Ax25Error(
                f"the address field is cut short at byte {len(frame)} "
                f"(address {len(addresses) + 1} needs bytes {offset}-{offset + 6})"
            )
        try:
            address, _, last = decode_address(field)
        except Ax25Error as error:
            raise Ax25Error(f"address {len(addresses) + 1}: {error}") from None
        addresses.append(address)
        offset += ADDRESS_BYTES
        if last:
            break
    if len(addresses) < 2:
        raise Ax25Error("the address field ends after the destination: no source")
    if len(frame) < offset + 2:
        raise Ax25Error(f"the frame ends after the address field ({len(frame)} bytes)")
    control = frame[offset]
    if (control & ~POLL_FINAL) != UI_CONTROL:
        raise Ax25Error(f"control byte 0x{control:02x} is not a UI frame (0x03)")
    return UiFrame(
        destination=addresses[0],
        source=addresses[1],
        via=tuple(addresses[2:]),
        pid=frame[offset + 1],
        info=frame[offset + 2 :],
    )
