"""AX.25 addresses and UI frames against hand-worked bytes and a real TNC trace."""

from __future__ import annotations

import re

import pytest
from groundctl_kiss.ax25 import (
    Address,
    Ax25Error,
    build_ui_frame,
    decode_address,
    encode_address,
    parse_ui_frame,
)


def test_address_bytes_match_the_spec_example_nj7p_from_n7lem() -> None:
    # The AX.25 2.2 specification's non-repeater example, worked by hand: each character
    # shifted left one bit ("N" 0x4E -> 0x9C), spaces to 0x40; the destination's SSID
    # byte is C=1, RR=11, SSID 0, X=0 (0xE0), the source's C=0, RR=11, SSID 0, X=1 (0x61).
    destination = bytes([0x9C, 0x94, 0x6E, 0xA0, 0x40, 0x40, 0xE0])
    source = bytes([0x9C, 0x6E, 0x98, 0x8A, 0x9A, 0x40, 0x61])
    assert encode_address(Address("NJ7P"), last=False, c_bit=True) == destination
    assert encode_address(Address("N7LEM"), last=True) == source
    frame = build_ui_frame(Address("NJ7P"), Address("N7LEM"), b"\x08\x00")
    assert frame == destination + source + b"\x03\xf0\x08\x00"
    assert decode_address(destination) == (Address("NJ7P"), True, False)
    assert decode_address(source) == (Address("N7LEM"), False, True)


def test_ssid_and_digipeater_bytes_worked_by_hand() -> None:
    # WB2OSZ-15 as the last digipeater: W 0x57 -> 0xAE, B 0x42 -> 0x84, 2 0x32 -> 0x64,
    # O 0x4F -> 0x9E, S 0x53 -> 0xA6, Z 0x5A -> 0xB4; H=0, RR=11, SSID 1111, X=1 -> 0x7F.
    assert encode_address(Address("WB2OSZ", 15), last=True) == bytes.fromhex("ae84649ea6b47f")
    frame = build_ui_frame(
        Address("ODC07", 1), Address("GND1"), b"pkt", via=[Address("WB2OSZ", 15)]
    )
    assert frame.hex() == (
        "9e8886606e40e2"  # ODC07-1: C=1, SSID 1
        "8e9c8862404060"  # GND1: not the last address, X=0
        "ae84649ea6b47f"  # WB2OSZ-15: last
        "03f0" + b"pkt".hex()
    )


def test_a_real_aprs_frame_with_two_digipeaters_parses() -> None:
    # VK4TEC>APU25N,RELAY,WIDE as a TNC's trace mode prints it (AX.25 version 1 C bits).
    raw = bytes.fromhex("82A0AA646A9C60 AC9668A88A8660 A48A9882B24060 AE92888A404061 03F00D")
    ui = parse_ui_frame(raw)
    assert ui.destination == Address("APU25N")
    assert ui.source == Address("VK4TEC")
    assert ui.via == (Address("RELAY"), Address("WIDE"))
    assert (ui.pid, ui.info) == (0xF0, b"\r")


def test_ui_frames_round_trip_with_any_path_and_payload() -> None:
    payload = bytes(range(256)) * 2
    for hops in range(9):
        via = [Address(f"DIGI{n}", n) for n in range(hops)]
        ui = parse_ui_frame(build_ui_frame(Address("ODC07", 1), Address("GND1", 9), payload, via))
        assert (ui.destination, ui.source, ui.via) == (
            Address("ODC07", 1),
            Address("GND1", 9),
            tuple(via),
        )
        assert (ui.pid, ui.info) == (0xF0, payload)


def test_ui_with_the_poll_bit_is_still_ui() -> None:
    frame = bytearray(build_ui_frame(Address("A"), Address("B"), b"x"))
    frame[14] = 0x13
    assert parse_ui_frame(bytes(frame)).info == b"x"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"ON01SE\x00ON01SE\x00\x03\x00\x02", "address 1: callsign byte 0 (0x4f) is not shifted"),
        (bytes.fromhex("9e8886606e40e2 8e9c88"), "cut short at byte 10"),
        (bytes.fromhex("9e8886606e40e3 03f0"), "ends after the destination"),
        (bytes.fromhex("9e8886606e40e2 8e9c8862404061"), "ends after the address field"),
        (bytes.fromhex("9e8886606e40e2 8e9c8862404061 00f0"), "0x00 is not a UI frame"),
        (bytes.fromhex("9e8886606e40e2 8e9c8862404061 3f"), "ends after the address field"),
        (bytes.fromhex("9e8886606e40e2 40408e40404061 03f0"), "is not letters and digits"),
        (bytes.fromhex("9e8886606e40e2" * 10 + "03f0"), "does not end within 10 addresses"),
    ],
    ids=[
        "unshifted ASCII (the real capture)",
        "truncated source",
        "no source",
        "no control",
        "I frame",
        "no PID",
        "embedded space",
        "address field never ends",
    ],
)
def test_what_is_not_a_ui_frame_says_why(raw: bytes, reason: str) -> None:
    with pytest.raises(Ax25Error, match=re.escape(reason)):
        parse_ui_frame(raw)


def test_callsigns_are_checked() -> None:
    assert Address.parse("gnd1-0") == Address("GND1", 0)
    assert Address.parse("ODC07-15") == Address("ODC07", 15)
    assert str(Address.parse("ODC07-1")) == "ODC07-1" and str(Address("GND1")) == "GND1"
    for text, reason in [
        ("", "1 to 6"),
        ("GROUND1", "1 to 6"),
        ("GND 1", "1 to 6"),
        ("GND_1", "1 to 6"),
        ("GND1-16", "SSID 16 of GND1 must be 0 to 15"),
        ("GND1-", "SSID '' in 'GND1-' must be a number"),
        ("GND1--1", "must be a number"),
    ]:
        with pytest.raises(Ax25Error, match=reason):
            Address.parse(text)
    with pytest.raises(Ax25Error, match="at most 8 digipeaters"):
        build_ui_frame(Address("A"), Address("B"), b"x", [Address("C")] * 9)
