"""The command line (`groundctl.commanding.syntax`) and roles (`groundctl.commanding.roles`).

Oracles: packets are checked by decoding their header with the codec's `parse_header`,
their checksum by XOR-ing the bytes here (and with `verify_cfs_checksum`), and their
arguments by struct-unpacking the bytes by hand from the layouts written in the mission
TOML files; the cFS packets are compared with the uplinks recorded from real flight
software (tests/fixtures/cfs/cfs-lab-session.jsonl).
"""

from __future__ import annotations

import json
import struct
from functools import reduce
from operator import xor
from pathlib import Path

import pytest

from groundctl.commanding.roles import check_confirmation, check_role
from groundctl.commanding.syntax import CommandLine, ValidCommand, parse, validate
from groundctl.errors import CommandError
from groundctl.mdb.codec import parse_header, verify_cfs_checksum
from groundctl.mdb.loader import load_mission

ROOT = Path(__file__).parents[2]
SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
ODC_APID = 0x180  # odc-node.toml: every command goes to APID 0x180, first word 0x1980


@pytest.fixture(scope="module")
def odc():
    return load_mission(ROOT / "data" / "missions" / "odc-node.toml")


@pytest.fixture(scope="module")
def cfs():
    return load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")


@pytest.fixture(scope="module")
def uplinks():
    """The recorded uplink datagrams, by their note (the first one of each note)."""
    rows = [json.loads(line) for line in SESSION.read_text().splitlines()]
    found: dict[str, bytes] = {}
    for row in rows:
        if row["dir"] == "up":
            found.setdefault(row["note"], bytes.fromhex(row["hex"]))
    return found


def check(text, mission):
    return validate(parse(text), mission)


def refused(text, mission) -> CommandError:
    with pytest.raises(CommandError) as caught:
        check(text, mission)
    return caught.value


def xor_all(data: bytes) -> int:
    return reduce(xor, data, 0)


def assert_command_packet(packet: bytes, word0: int, function_code: int, payload: int) -> None:
    """The cFS command layout of docs/mdb.md, checked field by field."""
    assert len(packet) == 8 + payload
    header = parse_header(packet)
    assert header is not None
    assert header.msgid == word0
    assert (header.version, header.type, header.secondary_header) == (0, 1, True)
    assert header.sequence_flags == 0b11 and header.sequence_count == 0
    assert header.packet_length == len(packet)  # the length field is total - 7
    assert packet[6] == function_code
    assert xor_all(packet) == 0xFF  # the checksum byte makes the XOR of every byte 0xFF
    assert verify_cfs_checksum(packet)


# --- parse ----------------------------------------------------------------------------------


def test_parse_splits_node_command_and_arguments():
    line = parse("  ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=2h  ")
    assert line == CommandLine("ODC-07", "SUBMIT_JOB", {"job_id": "42", "gpu_seconds": "2h"})
    assert list(line.arguments) == ["job_id", "gpu_seconds"]  # order as typed
    assert parse("cfs ES_NOOP") == CommandLine("cfs", "ES_NOOP", {})


def test_parse_takes_quoted_values_with_spaces_and_equals_signs():
    line = parse("""N CMD text="two words" other='a b  c' eq=a=b empty="" """)
    assert line.arguments == {"text": "two words", "other": "a b  c", "eq": "a=b", "empty": ""}


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("", "empty command", "NODE COMMAND [ARGUMENT=VALUE ...]"),
        ("   \t ", "empty command", "NODE COMMAND [ARGUMENT=VALUE ...]"),
        ("ODC-07", "ODC-07: no command given", "NODE COMMAND [ARGUMENT=VALUE ...]"),
        (
            "ODC-07 SET_POWER_MODE ECO",
            "ODC-07 SET_POWER_MODE: 'ECO' is not ARGUMENT=VALUE",
            "name every argument, e.g. mode=ECO",
        ),
        ("ODC-07 NOOP 1x=3", "ODC-07 NOOP: '1x' is not an argument name", ""),
        ("ODC-07 NOOP =3", "ODC-07 NOOP: '' is not an argument name", ""),
        ("ODC-07 NOOP a-b=3", "ODC-07 NOOP: 'a-b' is not an argument name", ""),
        (
            "ODC-07 SUBMIT_JOB job_id=1 job_id=2",
            "ODC-07 SUBMIT_JOB: argument job_id given twice",
            "",
        ),
        (
            "mode=ECO SET_POWER_MODE",
            "'mode=ECO SET_POWER_MODE': the node and the command come first",
            "NODE COMMAND [ARGUMENT=VALUE ...], e.g. ODC-07 SET_POWER_MODE mode=ECO",
        ),
    ],
)
def test_parse_errors_are_precise(text, message, hint):
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.message == message
    assert caught.value.hint == hint


@pytest.mark.parametrize("text", ['ODC-07 NOOP text="two words', "ODC-07 NOOP text='open"])
def test_parse_refuses_an_unbalanced_quote(text):
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.message == f"{text!r}: No closing quotation"
    assert caught.value.hint == "close the quote around the value"


@pytest.mark.parametrize(
    "line",
    [
        CommandLine("ODC-07", "SET_POWER_MODE", {"mode": "ECO"}),
        CommandLine("cfs", "ES_NOOP", {}),
        CommandLine("N", "CMD", {"text": "two words", "empty": "", "eq": "a=b"}),
        CommandLine("N", "CMD", {"quote": 'it\'s "quoted"', "tab": "a\tb", "dollar": "$HOME"}),
    ],
)
def test_canonical_text_round_trips_through_parse(line):
    assert parse(line.text) == line
    assert parse(parse(line.text).text).text == line.text


def test_canonical_text_quotes_only_what_needs_it():
    assert CommandLine("ODC-07", "SET_POWER_MODE", {"mode": "ECO"}).text == (
        "ODC-07 SET_POWER_MODE mode=ECO"
    )
    assert parse('N CMD text="two words"').text == "N CMD text='two words'"


# --- validate against odc-node ---------------------------------------------------------------


def test_set_power_mode_encodes_function_code_2_and_the_mode_byte(odc):
    valid = check("ODC-07 SET_POWER_MODE mode=ECO", odc)
    assert isinstance(valid, ValidCommand)
    assert (valid.node, valid.name, dict(valid.values)) == (
        "ODC-07",
        "SET_POWER_MODE",
        {"mode": "ECO"},
    )
    packet = valid.packet
    assert_command_packet(packet, 0x1800 | ODC_APID, function_code=2, payload=1)
    assert parse_header(packet).apid == ODC_APID
    assert packet[8] == 1  # ECO = 1
    assert not valid.hazardous
    assert valid.text == "ODC-07 SET_POWER_MODE mode=ECO"


@pytest.mark.parametrize(
    ("name", "raw"), [("SAFE", 0), ("ECO", 1), ("NOMINAL", 2), ("PERFORMANCE", 3)]
)
def test_every_power_mode_name_encodes_its_raw_value(odc, name, raw):
    assert check(f"ODC-07 SET_POWER_MODE mode={name}", odc).packet[8] == raw


def test_a_state_may_be_given_by_its_raw_value(odc):
    by_number = check("ODC-07 SET_POWER_MODE mode=1", odc)
    assert by_number.packet == check("ODC-07 SET_POWER_MODE mode=ECO", odc).packet


def test_unknown_command_names_the_mission_and_suggests_the_close_match(odc):
    error = refused("ODC-07 SET_POWER_MOD mode=ECO", odc)
    assert error.message == "ODC-07 SET_POWER_MOD: no command SET_POWER_MOD in mission odc-node"
    assert error.hint == "did you mean SET_POWER_MODE?"
    lower = refused("ODC-07 set_power_mode mode=ECO", odc)  # names are matched exactly
    assert lower.message == "ODC-07 set_power_mode: no command set_power_mode in mission odc-node"
    assert lower.hint.startswith("did you mean SET_POWER_MODE")


def test_unknown_command_without_a_close_match_lists_the_commands(odc):
    error = refused("ODC-07 WARP", odc)
    assert error.message == "ODC-07 WARP: no command WARP in mission odc-node"
    assert error.hint.startswith("commands: CANCEL_JOB, CLEAR_FAULTS, INJECT_FAULT, NOOP, ")
    assert "SET_POWER_MODE" in error.hint and "SUBMIT_JOB" in error.hint


def test_missing_argument_is_named_with_what_it_takes(odc):
    error = refused("ODC-07 SET_POWER_MODE", odc)
    assert error.message == (
        "ODC-07 SET_POWER_MODE: missing argument mode (one of SAFE, ECO, NOMINAL, PERFORMANCE)"
    )
    assert error.hint == "usage: SET_POWER_MODE mode=<one of SAFE, ECO, NOMINAL, PERFORMANCE>"
    error = refused("ODC-07 SUBMIT_JOB job_id=42", odc)
    assert error.message == "ODC-07 SUBMIT_JOB: missing argument gpu_seconds (u32 1..604800 s)"
    assert error.hint == (
        "usage: SUBMIT_JOB job_id=<u32 1..> gpu_seconds=<u32 1..604800 s> "
        "[priority=<one of LOW, NORMAL, HIGH, URGENT>]"
    )


def test_extra_argument_lists_the_real_ones(odc):
    error = refused("ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=10 gpu=1", odc)
    assert error.message == (
        "ODC-07 SUBMIT_JOB: no argument gpu (its arguments: job_id, gpu_seconds, priority)"
    )
    error = refused("ODC-07 NOOP verbose=1", odc)
    assert error.message == "ODC-07 NOOP: no argument verbose (its arguments: none)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ODC-07 SUBMIT_JOB job_id=forty-two gpu_seconds=10",
            "ODC-07 SUBMIT_JOB: argument job_id: expected a number, found 'forty-two'",
        ),
        (
            "ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=ten",
            "ODC-07 SUBMIT_JOB: argument gpu_seconds: expected a number, found 'ten'",
        ),
        (
            "ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=0",
            "ODC-07 SUBMIT_JOB: argument gpu_seconds: 0 is below the minimum 1",
        ),
        (
            "ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=604801",
            "ODC-07 SUBMIT_JOB: argument gpu_seconds: 604801 is above the maximum 604800",
        ),
        (
            "ODC-07 SUBMIT_JOB job_id=0 gpu_seconds=1",
            "ODC-07 SUBMIT_JOB: argument job_id: 0 is below the minimum 1",
        ),
        (
            "ODC-07 SUBMIT_JOB job_id=4294967296 gpu_seconds=1",
            "ODC-07 SUBMIT_JOB: argument job_id: 4294967296 does not fit u32 (0 to 4294967295)",
        ),
        (
            "ODC-07 SET_POWER_MODE mode=TURBO",
            "ODC-07 SET_POWER_MODE: argument mode: 'TURBO' is not one of "
            "SAFE, ECO, NOMINAL, PERFORMANCE",
        ),
        (
            "ODC-07 SET_POWER_MODE mode=eco",
            "ODC-07 SET_POWER_MODE: argument mode: 'eco' is not one of "
            "SAFE, ECO, NOMINAL, PERFORMANCE",
        ),
    ],
)
def test_bad_values_say_what_is_expected(odc, text, message):
    error = refused(text, odc)
    assert error.message == message
    assert error.hint.startswith("usage: ")


def test_range_limits_themselves_are_allowed(odc):
    for seconds in (1, 604800):
        packet = check(f"ODC-07 SUBMIT_JOB job_id=7 gpu_seconds={seconds}", odc).packet
        assert struct.unpack(">IIB", packet[8:]) == (7, seconds, 1)


def test_submit_job_defaults_to_normal_priority(odc):
    valid = check("ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=600", odc)
    assert valid.values["priority"] == "NORMAL"
    packet = valid.packet
    assert_command_packet(packet, 0x1980, function_code=3, payload=9)
    # job_id u32 big-endian, gpu_seconds u32 big-endian, priority u8 (NORMAL = 1)
    assert struct.unpack(">IIB", packet[8:]) == (42, 600, 1)
    assert valid.text == "ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=600 priority=NORMAL"
    urgent = check("ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=600 priority=URGENT", odc)
    assert struct.unpack(">IIB", urgent.packet[8:]) == (42, 600, 3)


def test_inject_fault_defaults_to_60_seconds(odc):
    valid = check("ODC-07 INJECT_FAULT fault=LINK_DROP", odc)
    assert valid.values == {"fault": "LINK_DROP", "duration_s": 60}
    assert_command_packet(valid.packet, 0x1980, function_code=100, payload=5)
    assert struct.unpack(">BI", valid.packet[8:]) == (6, 60)  # LINK_DROP = 6


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [("2h", 7200), ("90min", 5400), ("7200s", 7200), ("7200", 7200), ("1d", 86400), ("0.5min", 30)],
)
def test_time_units_convert_to_seconds(odc, typed, seconds):
    valid = check(f"ODC-07 SUBMIT_JOB job_id=42 gpu_seconds={typed}", odc)
    assert int(valid.values["gpu_seconds"]) == seconds
    assert struct.unpack(">IIB", valid.packet[8:]) == (42, seconds, 1)
    again = check(valid.text, odc)  # the canonical text means the same command
    assert again.packet == valid.packet


def test_a_fraction_of_a_second_is_refused(odc):
    error = refused("ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=1500ms", odc)
    assert error.message == (
        "ODC-07 SUBMIT_JOB: argument gpu_seconds: 1500ms is 1.5 s, not a whole number of s"
    )
    error = refused("ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=1.5s", odc)
    assert error.message.startswith("ODC-07 SUBMIT_JOB: argument gpu_seconds: ")


def test_a_fraction_in_the_arguments_own_unit_says_not_a_whole_number(odc):
    error = refused("ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=1.5s", odc)
    assert "whole number" in error.message


def test_a_unit_of_another_dimension_does_not_convert(odc):
    error = refused("ODC-07 SUBMIT_JOB job_id=42 gpu_seconds=2GB", odc)
    assert error.message == (
        "ODC-07 SUBMIT_JOB: argument gpu_seconds: unit 'GB' does not convert to 's'"
    )
    assert error.hint == "give gpu_seconds in ms, s, min, h, d"
    assert "min" in error.hint and "h" in error.hint


def test_a_unit_on_an_argument_without_one_is_refused(odc):
    error = refused("ODC-07 SUBMIT_JOB job_id=5s gpu_seconds=10", odc)
    assert error.message == (
        "ODC-07 SUBMIT_JOB: argument job_id: '5s' has a unit but job_id takes a plain number"
    )


@pytest.mark.parametrize(
    ("typed", "size"),
    [
        ("2GB", 2_000_000_000),
        ("1GiB", 1_073_741_824),
        ("1.5kB", 1500),
        ("3MiB", 3 * 1024**2),
        ("1TB", 10**12),
        ("12345B", 12345),
        ("12345", 12345),
    ],
)
def test_data_units_convert_to_bytes(odc, typed, size):
    valid = check(f"ODC-07 START_DOWNLINK max_bytes={typed}", odc)
    assert valid.values["max_bytes"] in (size, str(size))
    assert_command_packet(valid.packet, 0x1980, function_code=6, payload=8)
    assert struct.unpack(">Q", valid.packet[8:]) == (size,)


def test_start_downlink_defaults_to_everything(odc):
    valid = check("ODC-07 START_DOWNLINK", odc)
    assert struct.unpack(">Q", valid.packet[8:]) == (0,)


def test_numbers_take_hex_and_underscores(odc):
    valid = check("ODC-07 SUBMIT_JOB job_id=0x10 gpu_seconds=1_000", odc)
    assert struct.unpack(">IIB", valid.packet[8:]) == (16, 1000, 1)


def test_hex_with_letter_digits_on_a_plain_argument(odc):
    valid = check("ODC-07 SUBMIT_JOB job_id=0x2A gpu_seconds=10", odc)
    assert struct.unpack(">IIB", valid.packet[8:]) == (42, 10, 1)


def test_hex_ending_in_the_unit_letter_is_not_a_unit(odc):
    try:
        valid = check("ODC-07 START_DOWNLINK max_bytes=0x1B", odc)
    except CommandError:
        return  # refusing it would be acceptable too
    assert struct.unpack(">Q", valid.packet[8:]) == (27,)


@pytest.mark.parametrize(
    ("text", "hazardous"),
    [
        ("ODC-07 REBOOT", True),
        ("ODC-07 SAFE_MODE", True),
        ("ODC-07 NOOP", False),
        ("ODC-07 SET_POWER_MODE mode=SAFE", False),
        ("ODC-07 STOP_DOWNLINK", False),
    ],
)
def test_hazardous_flag(odc, text, hazardous):
    assert check(text, odc).hazardous is hazardous


def test_reboot_and_safe_mode_packets(odc):
    for name, code in (("REBOOT", 8), ("SAFE_MODE", 9)):
        assert_command_packet(check(f"ODC-07 {name}", odc).packet, 0x1980, code, payload=0)


# --- validate against cfs-lab: the recorded uplinks --------------------------------------------


def normalised(recorded: bytes) -> bytes:
    """The recorded packet with sequence count 0 and its checksum recomputed by hand."""
    packet = bytearray(recorded)
    packet[2] &= 0xC0  # keep the sequence flags, drop the 14-bit count
    packet[3] = 0
    packet[7] = 0
    packet[7] = xor_all(packet) ^ 0xFF
    return bytes(packet)


def test_es_noop_matches_the_recorded_uplink(cfs, uplinks):
    recorded = uplinks["CFE_ES NOOP"]
    assert recorded.hex() == "1806c00100010021"
    assert verify_cfs_checksum(recorded)
    ours = check("cfs ES_NOOP", cfs).packet
    assert_command_packet(ours, 0x1806, function_code=0, payload=0)
    assert ours[:2] == recorded[:2] and ours[4:7] == recorded[4:7]
    assert ours[2] & 0xC0 == recorded[2] & 0xC0  # sequence flags
    assert parse_header(recorded).sequence_count == 1
    assert ours == normalised(recorded)


def test_to_lab_enable_output_matches_the_recorded_uplink(cfs, uplinks):
    recorded = uplinks["TO_LAB enable output 127.0.0.1"]
    assert verify_cfs_checksum(recorded)
    valid = check("cfs TO_LAB_ENABLE_OUTPUT dest_ip=127.0.0.1", cfs)
    ours = valid.packet
    assert_command_packet(ours, 0x1880, function_code=6, payload=16)
    assert struct.unpack("16s", ours[8:]) == (b"127.0.0.1" + b"\0" * 7,)
    assert ours == normalised(recorded)
    assert parse_header(recorded).sequence_count == 0
    assert ours == recorded  # recorded with sequence count 0: identical
    # dest_ip defaults to 127.0.0.1
    assert check("cfs TO_LAB_ENABLE_OUTPUT", cfs).packet == recorded


def test_dest_ip_longer_than_16_bytes_is_refused(cfs):
    longest = "255.255.255.2550"  # 16 bytes fit exactly, no NUL left
    packet = check(f"cfs TO_LAB_ENABLE_OUTPUT dest_ip={longest}", cfs).packet
    assert packet[8:] == longest.encode()
    error = refused("cfs TO_LAB_ENABLE_OUTPUT dest_ip=255.255.255.255.255", cfs)
    assert error.message == (
        "cfs TO_LAB_ENABLE_OUTPUT: argument dest_ip: 19 bytes is longer than 16"
    )
    assert error.hint == "usage: TO_LAB_ENABLE_OUTPUT [dest_ip=<text of up to 16 bytes>]"


# --- roles and confirmation -----------------------------------------------------------------


@pytest.mark.parametrize("hazardous", [False, True])
def test_a_viewer_may_send_nothing(hazardous):
    with pytest.raises(CommandError) as caught:
        check_role("viewer", "vera", "ODC-07 NOOP", hazardous)
    assert caught.value.message == "ODC-07 NOOP: vera is a viewer and may not send commands"
    assert "[operators]" in caught.value.hint


def test_an_operator_may_send_all_but_hazardous_commands():
    check_role("operator", "olga", "ODC-07 SET_POWER_MODE mode=ECO", False)
    with pytest.raises(CommandError) as caught:
        check_role("operator", "olga", "ODC-07 REBOOT", True)
    assert caught.value.message == (
        "ODC-07 REBOOT: hazardous, and olga (operator) may not send hazardous commands"
    )
    assert caught.value.hint == "only a flight director may send hazardous commands"


@pytest.mark.parametrize("hazardous", [False, True])
def test_a_flight_director_may_send_everything(hazardous):
    check_role("flight-director", "fiona", "ODC-07 REBOOT", hazardous)


def test_an_unknown_role_may_send_nothing():
    for hazardous in (False, True):
        with pytest.raises(CommandError):
            check_role("admin", "eve", "ODC-07 NOOP", hazardous)


@pytest.mark.parametrize("confirm", [True, "REBOOT", "  REBOOT \n"])
def test_a_hazardous_command_confirmed(confirm):
    check_confirmation("ODC-07 REBOOT", "REBOOT", True, confirm)


@pytest.mark.parametrize("confirm", [False, "", "reboot", "REBOOT NOW", "SAFE_MODE", "yes"])
def test_a_hazardous_command_not_confirmed_is_refused(confirm):
    with pytest.raises(CommandError) as caught:
        check_confirmation("ODC-07 REBOOT", "REBOOT", True, confirm)
    assert caught.value.message == "ODC-07 REBOOT: REBOOT is hazardous and needs confirming"
    assert "type REBOOT" in caught.value.hint and "--confirm" in caught.value.hint


@pytest.mark.parametrize("confirm", [False, "", "anything", True])
def test_a_command_that_is_not_hazardous_needs_no_confirmation(confirm):
    check_confirmation("ODC-07 NOOP", "NOOP", False, confirm)


def test_roles_and_confirmation_on_validated_commands(odc):
    reboot = check("ODC-07 REBOOT", odc)
    check_role("flight-director", "fiona", reboot.text, reboot.hazardous)
    check_confirmation(reboot.text, reboot.name, reboot.hazardous, "REBOOT")
    with pytest.raises(CommandError):
        check_role("operator", "olga", reboot.text, reboot.hazardous)
    mode = check("ODC-07 SET_POWER_MODE mode=SAFE", odc)
    check_role("operator", "olga", mode.text, mode.hazardous)
    check_confirmation(mode.text, mode.name, mode.hazardous, False)
