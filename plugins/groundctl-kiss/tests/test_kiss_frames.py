"""The KISS decoder on the real capture, however the stream is split, and on bad input."""

from __future__ import annotations

from collections import Counter

import pytest
from groundctl_kiss.ax25 import Address, build_ui_frame
from groundctl_kiss.kiss import PROBLEMS, KissDecoder, Received, kiss_encode


def feed_in_chunks(decoder: KissDecoder, stream: bytes, size: int) -> list[Received]:
    received: list[Received] = []
    for start in range(0, len(stream), size):
        received += decoder.feed(stream[start : start + size])
    return received


def test_the_capture_is_what_its_readme_says(capture: bytes, capture_payloads: list[bytes]) -> None:
    assert Counter(map(len, capture_payloads)) == {81: 81, 9: 1, 6: 1}
    assert capture.count(0xDB) == 126
    assert sum(p.count(0xC0) + p.count(0xDB) for p in capture_payloads) == 126


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 81, 82, 83, 500, 7000])
def test_the_real_capture_unescapes_however_split(
    capture: bytes, capture_payloads: list[bytes], size: int
) -> None:
    bare = feed_in_chunks(KissDecoder(ax25=False), capture, size)
    assert bare == [Received(p) for p in capture_payloads]
    # Unshifted ASCII callsigns: not AX.25, so each payload comes out whole and flagged.
    checked = feed_in_chunks(KissDecoder(ax25=True), capture, size)
    assert [r.data for r in checked] == capture_payloads
    assert {r.problem for r in checked} == {"not AX.25 UI"}


def test_ui_frames_give_their_information_field(packets: list[bytes]) -> None:
    stream = b"".join(
        kiss_encode(build_ui_frame(Address("GND1"), Address("ODC07", 1), p), port=3)
        for p in packets
    )
    assert feed_in_chunks(KissDecoder(port=3), stream, 13) == [Received(p) for p in packets]


def test_what_cannot_be_opened_comes_out_as_received() -> None:
    header = bytes.fromhex("9e8886606e40e2 8e9c8862404061 03f0")  # ODC07-1 <- GND1, UI
    stream = b"".join(
        [
            b"\xc0\x00\xdb\x41\x01\xc0",  # FESC then 0x41
            b"\xc0\x00" + header[:10] + b"\xc0",  # the address field cut short
            b"\xc0\x00" + header[:14] + b"\x03\xcc\x01\xc0",  # PID 0xCC
            b"\xc0\x00" + header + b"\xc0",  # UI with nothing in it
            b"\xc0\x10" + header + b"\x01\xc0",  # a data frame on TNC port 1
            b"\xc0\x06\x01\xc0",  # KISS command 6 (SetHardware)
            b"\xc0\x00\xc0",  # a command byte alone
            b"\xc0\x00" + header + b"\x01\x02\xc0",  # a good one after all that
            b"\xc0\x00\x12",  # unfinished
        ]
    )
    decoder = KissDecoder()
    received = decoder.feed(stream)
    assert [(r.data, r.problem) for r in received] == [
        (b"\x00\xdb\x41\x01", "bad escape"),
        (header[:10], "not AX.25 UI"),
        (header[:14] + b"\x03\xcc\x01", "not PID 0xF0"),
        (header, "no information field"),
        (b"\x10" + header + b"\x01", "other port"),
        (b"\x06\x01", "not a data frame"),
        (b"\x00", "empty"),
        (b"\x01\x02", ""),
    ]
    assert {r.problem for r in received} - {""} <= set(PROBLEMS)
    assert "0xdb followed by 0x41" in received[0].detail
    assert "cut short" in received[1].detail
    assert decoder.pending() == b"\x00\x12"


def test_kiss_encode_escapes_the_command_byte_too() -> None:
    assert kiss_encode(b"\xc0\xdb", port=12) == b"\xc0\xdb\xdc\xdb\xdc\xdb\xdd\xc0"
    with pytest.raises(ValueError, match="0 to 15"):
        kiss_encode(b"x", port=16)
