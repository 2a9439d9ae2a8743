"""The wire format, byte for byte: topics, frame payloads, malformed payloads."""

from __future__ import annotations

import json
import struct

import pytest
from groundctl_mqtt.wire import (
    MAGIC,
    WireError,
    WireFrame,
    decode_frame,
    decode_state,
    encode_frame,
    encode_state,
    topic,
)

FRAME = WireFrame(b"\x08\x01\xc0\x00\x00\x03\xff\xc0\xdb", 1795000000.25, "ODC-07", "sim", "down",
                  42, "GS-1", "abc")  # fmt: skip


def test_topics() -> None:
    assert topic("groundctl", "GS-1", "down") == "groundctl/station/GS-1/down"
    assert topic("ops/eu", "GS-1", "up") == "ops/eu/station/GS-1/up"
    assert topic("groundctl", "GS-1", "state") == "groundctl/station/GS-1/state"
    for bad in ("GS+1", "GS#", "a/b", ""):
        with pytest.raises(ValueError, match="station"):
            topic("groundctl", bad, "down")


def test_round_trip() -> None:
    assert decode_frame(encode_frame(FRAME)) == FRAME
    empty = WireFrame(b"", 0.0, "N", "", "up", 0, "")
    assert decode_frame(encode_frame(empty)) == empty


def test_layout_by_hand() -> None:
    payload = encode_frame(FRAME)
    assert payload[:4] == b"GCF1" == MAGIC
    (length,) = struct.unpack(">H", payload[4:6])
    header = json.loads(payload[6 : 6 + length])
    assert header == {"t": 1795000000.25, "node": "ODC-07", "link": "sim", "dir": "down",
                      "seq": 42, "station": "GS-1", "src": "abc"}  # fmt: skip
    assert payload[6 + length :] == FRAME.raw
    assert b" " not in payload[6 : 6 + length]  # compact


def header(fields: dict[str, object]) -> bytes:
    text = json.dumps(fields).encode()
    return b"GCF1" + struct.pack(">H", len(text)) + text + b"raw"


GOOD = {"t": 1.5, "node": "N", "link": "l", "dir": "down", "seq": 1, "station": "S"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "shorter than the 6-byte frame prefix"),
        (b"GCF1\x00", "shorter than the 6-byte frame prefix"),
        (b"GCF2\x00\x00", "expected the magic b'GCF1'"),
        (b"GCF1\x00\x10{}", "header length 16 at byte 4 runs past the end of the 8-byte"),
        (b"GCF1\x00\x02{x", "header (bytes 6 to 8) is not JSON"),
        (b"GCF1\x00\x02[]", "header is a JSON list, expected an object"),
        (header({**GOOD, "t": "now"}), "header 't' must be a finite number"),
        (header({**GOOD, "t": True}), "header 't' must be a finite number"),
        (header({**GOOD, "seq": -1}), "header 'seq' must be an integer >= 0"),
        (header({**GOOD, "seq": 1.5}), "header 'seq' must be an integer >= 0"),
        (header({**GOOD, "dir": "sideways"}), "header 'dir' must be 'down' or 'up'"),
        (header({**GOOD, "node": 7}), "header 'node' must be a string"),
        (header({**GOOD, "node": ""}), "header 'node' is missing or empty"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(WireError) as caught:
        decode_frame(payload)
    assert message in str(caught.value)


def test_state() -> None:
    state = {"agent": "online", "nodes": ["ODC-07"]}
    assert decode_state(encode_state(state)) == state
    with pytest.raises(WireError, match="expected an object"):
        decode_state(b"[1]")
    with pytest.raises(WireError, match="not JSON"):
        decode_state(b"\xff")
