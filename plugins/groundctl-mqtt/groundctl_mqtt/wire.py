"""The wire format between station agents and consoles: topics and frame payloads.

Pure: bytes and strings in, values out, no sockets.

Topics, under a prefix (default ``groundctl``)::

    {prefix}/station/{station}/down    frames received from nodes (agent -> consoles), QoS 1
    {prefix}/station/{station}/up      frames to send to nodes (consoles -> agent), QoS 1
    {prefix}/station/{station}/state   retained JSON: the agent online/offline, its links

A frame payload is ``b"GCF1"``, a big-endian u16 header length, a compact JSON header,
then the frame's raw bytes::

    {"t": 1795000000.25, "node": "ODC-07", "link": "sim", "dir": "down", "seq": 42,
     "station": "GS-1", "src": "3f2a..."}

``seq`` is the agent's archive frame id (it only grows within one archive, ``src``);
``t`` the receive (or send) time, Unix seconds. An uplink's ``seq`` is the sender's own
number and ``src`` identifies the sender, so that the agent can drop a redelivery.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Literal

MAGIC = b"GCF1"
DEFAULT_PREFIX = "groundctl"
_LENGTH = struct.Struct(">H")
_HEAD = len(MAGIC) + _LENGTH.size
MAX_HEADER = 0xFFFF

Direction = Literal["down", "up"]


class WireError(ValueError):
    """A payload that is not a frame of this format; the message says where and why."""


@dataclass(frozen=True, slots=True)
class WireFrame:
    """One frame as it crosses the broker."""

    raw: bytes
    time_s: float
    node: str
    link: str
    direction: Direction
    seq: int
    station: str
    source: str = ""  # the agent archive's token (down) or the sender's id (up)


def topic(prefix: str, station: str, kind: Literal["down", "up", "state"]) -> str:
    """``{prefix}/station/{station}/{kind}``. ValueError for a name MQTT cannot carry."""
    for what, name in (("prefix", prefix), ("station", station)):
        if not name or any(c in name for c in "+#\0") or (what == "station" and "/" in name):
            raise ValueError(f"{what} {name!r} cannot be part of an MQTT topic")
    return f"{prefix}/station/{station}/{kind}"


OPS_KINDS = ("alert", "alerts", "command", "queue", "state")


def ops_topic(prefix: str, console: str, kind: str, sender: str = "") -> str:
    """Shared operations: ``{prefix}/ops/{console}/{kind}`` (alert, alerts, command,
    queue, state), and ``{prefix}/ops/{console}/request/{sender}`` for a request to `console`.
    ValueError for a name MQTT cannot carry."""
    for what, name in (("prefix", prefix), ("console", console), ("console", sender or "x")):
        if not name or any(c in name for c in "+#\0") or (what == "console" and "/" in name):
            raise ValueError(f"{what} {name!r} cannot be part of an MQTT topic")
    if kind == "request":
        return f"{prefix}/ops/{console}/request/{sender or '+'}"
    return f"{prefix}/ops/{console}/{kind}"


def parse_ops_topic(prefix: str, text: str) -> tuple[str, str]:
    """(kind, sending console) of a shared-operations topic; ValueError if it is not one."""
    parts = text.removeprefix(f"{prefix}/ops/").split("/")
    if not text.startswith(f"{prefix}/ops/"):
        raise ValueError(f"topic {text!r} is not under {prefix}/ops/")
    if len(parts) == 2 and parts[1] in OPS_KINDS:
        return parts[1], parts[0]
    if len(parts) == 3 and parts[1] == "request":
        return "request", parts[2]
    raise ValueError(f"topic {text!r} is not a shared-operations topic")


def encode_frame(frame: WireFrame) -> bytes:
    """The payload carrying `frame`."""
    header: dict[str, Any] = {
        "t": frame.time_s,
        "node": frame.node,
        "link": frame.link,
        "dir": frame.direction,
        "seq": frame.seq,
        "station": frame.station,
    }
    if frame.source:
        header["src"] = frame.source
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > MAX_HEADER:
        raise WireError(f"frame header of {len(text)} bytes is longer than {MAX_HEADER}")
    return MAGIC + _LENGTH.pack(len(text)) + text + frame.raw


def decode_frame(payload: bytes) -> WireFrame:
    """The frame a payload carries. WireError names what is wrong and at which byte."""
    if len(payload) < _HEAD:
        raise WireError(
            f"payload of {len(payload)} bytes is shorter than the {_HEAD}-byte frame prefix"
        )
    if payload[: len(MAGIC)] != MAGIC:
        raise WireError(
            f"payload starts with {payload[: len(MAGIC)]!r}, expected the magic {MAGIC!r}"
        )
    (length,) = _LENGTH.unpack_from(payload, len(MAGIC))
    end = _HEAD + length
    if end > len(payload):
        raise WireError(
            f"header length {length} at byte 4 runs past the end of the {len(payload)}-byte payload"
        )
    try:
        header = json.loads(payload[_HEAD:end].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WireError(f"header (bytes {_HEAD} to {end}) is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise WireError(f"header is a JSON {type(header).__name__}, expected an object")
    t = header.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise WireError(f"header 't' must be a finite number of Unix seconds, found {t!r}")
    seq = header.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise WireError(f"header 'seq' must be an integer >= 0, found {seq!r}")
    direction = header.get("dir")
    if direction not in ("down", "up"):
        raise WireError(f"header 'dir' must be 'down' or 'up', found {direction!r}")
    texts: dict[str, str] = {}
    for key in ("node", "link", "station", "src"):
        value = header.get(key, "")
        if not isinstance(value, str):
            raise WireError(f"header {key!r} must be a string, found {value!r}")
        texts[key] = value
    if not texts["node"]:
        raise WireError("header 'node' is missing or empty")
    return WireFrame(
        payload[end:],
        float(t),
        texts["node"],
        texts["link"],
        "down" if direction == "down" else "up",
        seq,
        texts["station"],
        texts["src"],
    )


def encode_state(state: dict[str, Any]) -> bytes:
    """A retained state message (compact JSON)."""
    return json.dumps(state, separators=(",", ":"), sort_keys=True).encode()


def decode_state(payload: bytes) -> dict[str, Any]:
    """A state message; WireError when it is not a JSON object."""
    try:
        state = json.loads(payload.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WireError(f"state is not JSON: {error}") from None
    if not isinstance(state, dict):
        raise WireError(f"state is a JSON {type(state).__name__}, expected an object")
    return state
