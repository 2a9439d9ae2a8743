"""Real data for the KISS link's tests, all kept in this plugin's own tests/fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def capture() -> bytes:
    """The real KISS capture: 83 data frames from the QB50 satellite SE01."""
    return (FIXTURES / "kiss" / "example.kss").read_bytes()


@pytest.fixture(scope="session")
def packets() -> list[bytes]:
    """24 real space packets downlinked by NASA cFS (every housekeeping id, events)."""
    lines = (FIXTURES / "cfs" / "cfs-downlink-24.jsonl").read_text().splitlines()
    return [bytes.fromhex(json.loads(line)["hex"]) for line in lines]


@pytest.fixture(scope="session")
def fake_tnc_script() -> Path:
    return Path(__file__).parent / "fake_tnc.py"


def unescape_by_hand(stream: bytes) -> list[bytes]:
    """The oracle: KISS frames (command byte first) undone one byte at a time, written
    from the KISS description alone (FEND 0xC0 ends a frame; FESC 0xDB then TFEND 0xDC
    or TFESC 0xDD stand for 0xC0 and 0xDB). Fails on anything else after FESC."""
    frames: list[bytes] = []
    frame = bytearray()
    escaped = False
    for byte in stream:
        if escaped:
            frame.append({0xDC: 0xC0, 0xDD: 0xDB}[byte])
            escaped = False
        elif byte == 0xDB:
            escaped = True
        elif byte == 0xC0:
            if frame:
                frames.append(bytes(frame))
            frame = bytearray()
        else:
            frame.append(byte)
    assert not frame and not escaped, "the stream ends inside a frame"
    return frames


@pytest.fixture(scope="session")
def unescape() -> Callable[[bytes], list[bytes]]:
    return unescape_by_hand


@pytest.fixture(scope="session")
def capture_payloads(capture: bytes) -> list[bytes]:
    """What the link must deliver from the capture: each frame's payload after its
    command byte (0x00: a data frame on TNC port 0)."""
    frames = unescape_by_hand(capture)
    assert len(frames) == 83
    assert {frame[0] for frame in frames} == {0x00}
    return [frame[1:] for frame in frames]
