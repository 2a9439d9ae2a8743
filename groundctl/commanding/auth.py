"""Authenticated commands: HMAC-SHA256 with an anti-replay counter.

Pure code: no sockets, no SQLite. A command packet (cFS layout: 6-byte CCSDS primary
header, byte 6 function code, byte 7 checksum, arguments from byte 8) is signed by
appending a 40-byte security trailer: the counter as u64 big-endian, then the 32-byte
HMAC-SHA256 of everything before the MAC with the checksum byte set to 0. The length
field covers the trailer, and with the `cfs-xor` checksum byte 7 is set last so that the
XOR of the whole signed packet is 0xFF. The node checks the MAC and accepts a counter
only when it is above the last one it accepted, so a recorded command cannot be replayed.

Keys are at least `MIN_KEY_BYTES` random bytes written as hex, in a file only its owner
may read, or in an environment variable. No message here ever contains key material.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from groundctl.errors import GroundctlError

if TYPE_CHECKING:
    from groundctl.config import NodeConfig

COUNTER_BYTES = 8
MAC_BYTES = 32
TRAILER_BYTES = COUNTER_BYTES + MAC_BYTES  # 40
MIN_KEY_BYTES = 16
MAX_COUNTER = 2**64 - 1
CHECKSUMS = ("cfs-xor", "none")

_HEADER_BYTES = 8  # primary header, function code, checksum
_CHECKSUM_AT = 7
_MAX_PACKET_BYTES = 0xFFFF + 7  # the largest length field
_NEW_KEY_HINT = (
    "a key is 32 random bytes as 64 hex digits, e.g. "
    "python3 -c 'import secrets; print(secrets.token_hex(32))'"
)


class AuthError(GroundctlError):
    """A command key that cannot be used: missing, unreadable, malformed or exposed."""

    title = "authentication error"


def sign(packet: bytes, key: bytes, counter: int, *, checksum: str = "cfs-xor") -> bytes:
    """Return `packet` signed with `key` and `counter`: the 40-byte security trailer
    appended, the length field covering it and the checksum byte set for `checksum`
    ("cfs-xor", or "none" to leave byte 7 at 0).

    Raises ValueError for a counter outside 1..2**64-1, a packet shorter than its 8
    header bytes, a key shorter than MIN_KEY_BYTES, an unknown checksum or a signed
    packet too long for the length field.
    """
    if not 1 <= counter <= MAX_COUNTER:
        raise ValueError(f"counter {counter} is outside 1..2**64-1")
    if len(packet) < _HEADER_BYTES:
        raise ValueError(f"a command packet has at least {_HEADER_BYTES} bytes, got {len(packet)}")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a key of {len(key)} bytes is too short: at least {MIN_KEY_BYTES}")
    if checksum not in CHECKSUMS:
        raise ValueError(f"unknown checksum {checksum!r}: expected one of {', '.join(CHECKSUMS)}")
    total = len(packet) + TRAILER_BYTES
    if total > _MAX_PACKET_BYTES:
        raise ValueError(f"a signed packet of {total} bytes does not fit the length field")
    signed = bytearray(packet)
    signed += struct.pack(">Q", counter)
    struct.pack_into(">H", signed, 4, total - 7)
    signed[_CHECKSUM_AT] = 0
    signed += hmac.new(key, bytes(signed), hashlib.sha256).digest()
    if checksum == "cfs-xor":
        x = 0xFF
        for b in signed:
            x ^= b
        signed[_CHECKSUM_AT] = x
    return bytes(signed)


def read_key_file(path: Path) -> bytes:
    """The key in the file at `path`: hex digits, whitespace and '#' comment lines
    ignored. AuthError when the file is missing or unreadable, readable or writable by
    group or others (POSIX), not hex, or shorter than MIN_KEY_BYTES."""
    where = f"key file {path}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AuthError(f"{where} does not exist", hint=_NEW_KEY_HINT) from None
    except OSError as error:
        raise AuthError(f"{where} cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise AuthError(f"{where} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if os.name == "posix" and mode & 0o077:
        raise AuthError(
            f"{where} is accessible to group or others (mode {mode:04o})",
            hint=f"only its owner may read a key: chmod 600 {path}",
        )
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise AuthError(
            f"{where}: not hex (it holds non-ASCII bytes)", hint=_NEW_KEY_HINT
        ) from None
    except OSError as error:
        raise AuthError(f"{where} cannot be read: {error.strerror}") from None
    return _parse_key(text, where)


def read_key_env(name: str) -> bytes:
    """The key in environment variable `name`, in the format of a key file. AuthError
    naming the variable when it is unset, empty, not hex or too short."""
    where = f"environment variable {name}"
    text = os.environ.get(name)
    if text is None:
        raise AuthError(f"{where} is not set", hint=f"export {name}=<key>; {_NEW_KEY_HINT}")
    return _parse_key(text, where)


def node_key(node: NodeConfig) -> bytes | None:
    """The command key of a configured node (its `key_file` or `key_env`), or None when
    the node does not require authenticated commands. AuthError, naming the node, when
    the key cannot be read."""
    if not node.requires_auth:
        return None
    try:
        if node.key_file is not None:
            return read_key_file(node.key_file)
        return read_key_env(node.key_env)
    except AuthError as error:
        raise AuthError(f"node {node.name}: {error.message}", hint=error.hint) from None


def generate_key() -> str:
    """A new random key (32 bytes from the `secrets` module) as 64 hex digits."""
    return secrets.token_hex(32)


def _parse_key(text: str, where: str) -> bytes:
    """Hex digits of `text` (whitespace and '#' comment lines ignored) as bytes; the
    messages say where and what is wrong, never what the key is."""
    digits: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        for column, char in enumerate(line, 1):
            if char.isspace():
                continue
            if char not in "0123456789abcdefABCDEF":
                raise AuthError(
                    f"{where}: not hex: line {number}, column {column} is not a hex digit",
                    hint="a key is hex digits only (comment lines start with '#'); "
                    + _NEW_KEY_HINT,
                )
            digits.append(char)
    if not digits:
        raise AuthError(f"{where} holds no key", hint=_NEW_KEY_HINT)
    if len(digits) % 2:
        raise AuthError(
            f"{where}: not hex: an odd number of hex digits ({len(digits)})",
            hint="two hex digits per byte; " + _NEW_KEY_HINT,
        )
    key = bytes.fromhex("".join(digits))
    if len(key) < MIN_KEY_BYTES:
        raise AuthError(
            f"{where}: key too short: {len(key)} bytes, at least {MIN_KEY_BYTES} "
            f"({2 * MIN_KEY_BYTES} hex digits) needed",
            hint=_NEW_KEY_HINT,
        )
    return key
