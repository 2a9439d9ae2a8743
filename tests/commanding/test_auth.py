"""Signing commands and reading keys (`groundctl.commanding.auth`).

Oracles: the MAC is computed here with the stdlib's `hmac` and `hashlib` from the wire
format's description, the packets are built with the mission database's encoder, and the
header and checksum are checked with the database codec's `parse_header` and
`verify_cfs_checksum`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct
from pathlib import Path

import pytest

from groundctl.commanding.auth import (
    MIN_KEY_BYTES,
    TRAILER_BYTES,
    AuthError,
    generate_key,
    node_key,
    read_key_env,
    read_key_file,
    sign,
)
from groundctl.config import NodeConfig
from groundctl.errors import GroundctlError
from groundctl.mdb.codec import encode_command, parse_header, verify_cfs_checksum
from groundctl.mdb.loader import load_mission

ROOT = Path(__file__).parents[2]
KEY = bytes(range(0x40, 0x60))  # 32 bytes
KEY_HEX = KEY.hex()
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture(scope="module")
def odc():
    return load_mission(ROOT / "data" / "missions" / "odc-node.toml")


def command(mission, name, **arguments):
    return encode_command(mission, mission.commands[name], arguments)


def expected_signature(packet: bytes, key: bytes, counter: int) -> tuple[bytes, bytes]:
    """(signed bytes before the MAC with byte 7 zero, MAC), straight from the format."""
    total = len(packet) + 40
    body = bytearray(packet)
    body[4:6] = (total - 7).to_bytes(2, "big")
    body[7] = 0
    body += counter.to_bytes(8, "big")
    return bytes(body), hmac.new(key, bytes(body), hashlib.sha256).digest()


# --- signing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments", "counter"),
    [
        ("NOOP", {}, 1),
        ("SUBMIT_JOB", {"job_id": 0x01020304, "gpu_seconds": 3600, "priority": "HIGH"}, 42),
        ("START_DOWNLINK", {"max_bytes": 2**40}, 2**64 - 1),
        ("SET_POWER_MODE", {"mode": "ECO"}, 2**32 + 7),
    ],
)
def test_signing_appends_counter_and_an_independently_computed_mac(odc, name, arguments, counter):
    packet = command(odc, name, **arguments)
    signed = sign(packet, KEY, counter)
    body, mac = expected_signature(packet, KEY, counter)

    assert len(signed) == len(packet) + TRAILER_BYTES == len(packet) + 40
    assert signed[-32:] == mac
    assert signed[-40:-32] == struct.pack(">Q", counter)
    assert signed[:7] == body[:7]  # the header, with the new length
    assert signed[8:-32] == body[8:]  # function code aside: arguments and counter
    assert signed[6] == packet[6]
    assert signed[8:-40] == packet[8:]  # the arguments as the database encoded them

    header = parse_header(signed)
    assert header is not None
    assert header.packet_length == len(signed)
    assert header.data_length == len(signed) - 7
    assert (header.apid, header.type) == (parse_header(packet).apid, 1)
    assert verify_cfs_checksum(signed)


def test_the_mac_ignores_the_checksum_byte_and_none_leaves_it_zero(odc):
    packet = command(odc, "SET_THROTTLE", level="MEDIUM")
    xor = sign(packet, KEY, 9)
    none = sign(packet, KEY, 9, checksum="none")
    assert none[7] == 0
    assert xor[:7] == none[:7] and xor[8:] == none[8:]  # only the checksum byte differs
    assert verify_cfs_checksum(none) == (xor[7] == 0)
    assert none[-32:] == expected_signature(packet, KEY, 9)[1]
    # whatever the checksum byte of the packet given, the same signed packet
    scrambled = bytearray(packet)
    scrambled[7] ^= 0x5A
    assert sign(bytes(scrambled), KEY, 9) == xor


def test_key_and_counter_change_the_mac(odc):
    packet = command(odc, "NOOP")
    macs = {
        sign(packet, KEY, 1)[-32:],
        sign(packet, KEY, 2)[-32:],
        sign(packet, bytes(reversed(KEY)), 1)[-32:],
        sign(packet, KEY[:MIN_KEY_BYTES], 1)[-32:],
    }
    assert len(macs) == 4


def test_signing_works_for_any_cfs_mission():
    lab = load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")
    packet = encode_command(lab, lab.commands["ES_NOOP"], {})
    signed = sign(packet, KEY, 3)
    assert signed[-32:] == expected_signature(packet, KEY, 3)[1]
    assert verify_cfs_checksum(signed)
    assert parse_header(signed).packet_length == len(signed)


@pytest.mark.parametrize(
    ("packet", "key", "counter", "checksum", "message"),
    [
        (bytes(8), KEY, 0, "cfs-xor", "counter 0 is outside 1..2**64-1"),
        (bytes(8), KEY, -1, "cfs-xor", "counter -1 is outside"),
        (bytes(8), KEY, 2**64, "cfs-xor", "is outside 1..2**64-1"),
        (bytes(7), KEY, 1, "cfs-xor", "at least 8 bytes, got 7"),
        (b"", KEY, 1, "cfs-xor", "at least 8 bytes, got 0"),
        (bytes(8), KEY[:15], 1, "cfs-xor", "a key of 15 bytes is too short"),
        (bytes(8), KEY, 1, "crc16", "unknown checksum 'crc16'"),
        (bytes(65_503), KEY, 1, "cfs-xor", "65543 bytes does not fit the length field"),
    ],
)
def test_sign_refuses_what_cannot_be_signed(packet, key, counter, checksum, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sign(packet, key, counter, checksum=checksum)


# --- key files -------------------------------------------------------------------------


def key_file(tmp_path: Path, text: str, mode: int = 0o600, name: str = "node.key") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def assert_no_key_material(error: AuthError, *secrets: str) -> None:
    shown = f"{error.message} {error.hint}".lower()
    for secret in secrets:
        for i in range(0, max(1, len(secret) - 7)):
            assert secret[i : i + 8].lower() not in shown, "key material in the message"


def test_a_key_file_is_hex_with_comments_and_whitespace(tmp_path):
    text = (
        "# ODC-07 command key\n"
        f"  {KEY_HEX[:32].upper()}\n"
        "\n"
        "   # written by the key ceremony\n"
        f"{KEY_HEX[32:48]} {KEY_HEX[48:]}\t\n"
    )
    assert read_key_file(key_file(tmp_path, text)) == KEY


def test_a_missing_key_file_is_named(tmp_path):
    path = tmp_path / "nowhere.key"
    with pytest.raises(AuthError) as caught:
        read_key_file(path)
    assert caught.value.message == f"key file {path} does not exist"
    assert caught.value.hint
    assert isinstance(caught.value, GroundctlError)
    assert caught.value.title == "authentication error"


def test_a_folder_is_not_a_key_file(tmp_path):
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    with pytest.raises(AuthError) as caught:
        read_key_file(folder)
    assert caught.value.message == f"key file {folder} is not a regular file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{KEY_HEX[:20]}\n{KEY_HEX[20:30]}zz{KEY_HEX[32:]}\n", "not hex: line 2, column 11"),
        (f"0x{KEY_HEX}", "not hex: line 1, column 2 is not a hex digit"),
        (f"{KEY_HEX}-", "not hex: line 1, column 65"),
        (f"# comment\n{KEY_HEX}0\n", "not hex: an odd number of hex digits (65)"),
        (KEY_HEX[:30], "key too short: 15 bytes, at least 16 (32 hex digits) needed"),
        ("# only a comment\n\n", "holds no key"),
        ("", "holds no key"),
    ],
)
def test_a_bad_key_file_says_what_is_wrong_without_showing_the_key(tmp_path, text, message):
    path = key_file(tmp_path, text)
    with pytest.raises(AuthError) as caught:
        read_key_file(path)
    error = caught.value
    assert error.message.startswith(f"key file {path}")
    assert message in error.message
    assert error.hint
    assert_no_key_material(error, KEY_HEX)


def test_a_key_file_that_is_not_text_is_not_hex(tmp_path):
    path = tmp_path / "binary.key"
    path.write_bytes(bytes(range(0x80, 0xA0)))  # a raw key, not its hex
    path.chmod(0o600)
    with pytest.raises(AuthError) as caught:
        read_key_file(path)
    assert caught.value.message == f"key file {path}: not hex (it holds non-ASCII bytes)"


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o700 | 0o004])
def test_a_key_file_others_can_read_is_refused(tmp_path, mode):
    path = key_file(tmp_path, KEY_HEX, mode=mode)
    with pytest.raises(AuthError) as caught:
        read_key_file(path)
    error = caught.value
    assert error.message == f"key file {path} is accessible to group or others (mode {mode:04o})"
    assert f"chmod 600 {path}" in error.hint
    assert_no_key_material(error, KEY_HEX)


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_a_key_file_only_its_owner_can_read_is_taken(tmp_path, mode):
    assert read_key_file(key_file(tmp_path, KEY_HEX, mode=mode)) == KEY


# --- environment -----------------------------------------------------------------------


def test_a_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("GROUNDCTL_TEST_KEY", f"  {KEY_HEX}\n")
    assert read_key_env("GROUNDCTL_TEST_KEY") == KEY


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "environment variable GROUNDCTL_TEST_KEY is not set"),
        ("", "environment variable GROUNDCTL_TEST_KEY holds no key"),
        (f"{KEY_HEX[:6]}g{KEY_HEX[7:]}", "environment variable GROUNDCTL_TEST_KEY: not hex: "),
        (KEY_HEX[:31], "environment variable GROUNDCTL_TEST_KEY: not hex: an odd number"),
        (KEY_HEX[:24], "environment variable GROUNDCTL_TEST_KEY: key too short: 12 bytes"),
    ],
)
def test_a_bad_key_variable_is_named(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("GROUNDCTL_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("GROUNDCTL_TEST_KEY", value)
    with pytest.raises(AuthError) as caught:
        read_key_env("GROUNDCTL_TEST_KEY")
    assert caught.value.message.startswith(message)
    assert caught.value.hint
    assert_no_key_material(caught.value, KEY_HEX)


# --- configured nodes and new keys ------------------------------------------------------


def test_a_node_without_a_key_needs_none(tmp_path):
    assert node_key(NodeConfig(name="ODC-01", priority=10)) is None


def test_a_node_key_from_its_file_or_variable(tmp_path, monkeypatch):
    path = key_file(tmp_path, KEY_HEX)
    assert node_key(NodeConfig(name="ODC-07", key_file=path)) == KEY
    other = bytes(reversed(KEY))
    monkeypatch.setenv("ODC_08_KEY", other.hex())
    assert node_key(NodeConfig(name="ODC-08", key_env="ODC_08_KEY")) == other


def test_a_node_key_that_cannot_be_read_names_the_node(tmp_path, monkeypatch):
    monkeypatch.delenv("ODC_09_KEY", raising=False)
    with pytest.raises(AuthError) as caught:
        node_key(NodeConfig(name="ODC-09", key_env="ODC_09_KEY"))
    assert caught.value.message == "node ODC-09: environment variable ODC_09_KEY is not set"
    assert "ODC_09_KEY" in caught.value.hint
    path = key_file(tmp_path, KEY_HEX[:20])
    with pytest.raises(AuthError) as caught:
        node_key(NodeConfig(name="ODC-10", key_file=path))
    assert caught.value.message.startswith(f"node ODC-10: key file {path}: key too short")


def test_generated_keys_are_random_hex_that_reads_back(monkeypatch):
    first, second = generate_key(), generate_key()
    assert first != second
    for text in (first, second):
        assert len(text) == 64 and text == text.lower()
        assert len(bytes.fromhex(text)) == 32
    monkeypatch.setenv("GROUNDCTL_TEST_KEY", first)
    assert read_key_env("GROUNDCTL_TEST_KEY") == bytes.fromhex(first)
