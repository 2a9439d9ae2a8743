"""The cfs-lab mission database decodes the real recorded cFS session exactly.

Oracles: the facts stated in tests/fixtures/cfs/README.md (written from the running flight
software), and spacepackets for the primary headers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from spacepackets.ccsds.spacepacket import SpacePacketHeader

from groundctl.mdb.codec import Codec, encode_command, verify_cfs_checksum
from groundctl.mdb.loader import load_mission

ROOT = Path(__file__).parents[2]
SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"


@pytest.fixture(scope="module")
def mission():
    return load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")


@pytest.fixture(scope="module")
def session():
    return [json.loads(line) for line in SESSION.read_text().splitlines()]


@pytest.fixture(scope="module")
def decoded(mission, session):
    codec = Codec(mission)
    return [codec.decode(bytes.fromhex(r["hex"])) for r in session if r["dir"] == "down"]


def test_every_downlink_packet_decodes(decoded):
    assert len(decoded) == 560
    assert [d.error for d in decoded if d.error] == []
    counts = Counter(d.packet.name for d in decoded)
    assert counts == {
        "ES_HK": 59,
        "EVS_HK": 62,
        "SB_HK": 61,
        "TBL_HK": 119,
        "TIME_HK": 60,
        "TO_LAB_HK": 63,
        "SAMPLE_APP_HK": 64,
        "CI_LAB_HK": 62,
        "EVS_LONG_EVENT": 10,
    }


def test_headers_agree_with_spacepackets(session, decoded):
    downlink = [bytes.fromhex(r["hex"]) for r in session if r["dir"] == "down"]
    for raw, d in zip(downlink, decoded, strict=True):
        oracle = SpacePacketHeader.unpack(raw)
        assert d.header.apid == oracle.apid
        assert d.header.sequence_count == oracle.seq_count
        assert d.header.packet_length == oracle.packet_len
        assert d.header.secondary_header == oracle.sec_header_flag


def test_first_es_housekeeping_matches_the_stated_values(decoded):
    first = next(d for d in decoded if d.packet.name == "ES_HK")
    v = first.values
    assert (v["CMD_COUNT"], v["ERR_COUNT"], v["CORE_CHECKSUM"]) == (0, 0, 33457)
    assert (v["CFE_MAJOR"], v["CFE_MINOR"], v["CFE_REVISION"], v["CFE_MISSION_REV"]) == (
        6,
        7,
        99,
        255,
    )
    # seconds 1001003 since the cFE epoch (1980-01-01), plus the subseconds
    assert int(first.time_s - 315532800) == 1001003


def test_counters_move_as_the_commands_did(decoded):
    def series(packet, name):
        values = [d.values[name] for d in decoded if d.packet.name == packet]
        return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]

    assert series("ES_HK", "CMD_COUNT") == [0, 1, 2]
    assert series("ES_HK", "ERR_COUNT") == [0, 1, 2]
    assert series("TO_LAB_HK", "CMD_COUNT")[-2:] == [1, 2]
    last_ci = [d for d in decoded if d.packet.name == "CI_LAB_HK"][-1].values
    assert (last_ci["INGEST_PACKETS"], last_ci["INGEST_ERRORS"]) == (7, 1)


def test_the_ten_events_and_their_texts(decoded):
    events = [d.values for d in decoded if d.packet.event is not None]
    assert len(events) == 10
    summary = [(e["APP_NAME"], e["EVENT_ID"], e["EVENT_TYPE"]) for e in events]
    assert summary[0] == ("TO_LAB_APP", 3, "INFO")
    assert events[0]["MESSAGE"] == "TO telemetry output enabled for IP 127.0.0.1"
    texts = [e["MESSAGE"] for e in events]
    assert "Invalid ground command code: ID = 0x1806, CC = 85" in texts
    assert "Invalid msg length: ID = 0x1806,  CC = 0, Len = 12, Expected = 8" in texts
    assert "No-op command" in texts
    assert "SAMPLE: NOOP command v1.3.0-rc4+dev39" in texts
    assert "CI: L369, cmd 186 c00 dropped, bad length=3\n" in texts
    assert sum(1 for e in events if e["APP_NAME"] == "CFE_ES" and e["EVENT_ID"] == 3) == 2
    assert all(
        e["MESSAGE"].startswith("No-op command:\n cFS Versions: ")
        for e in events
        if e["APP_NAME"] == "CFE_ES" and e["EVENT_ID"] == 3
    )
    assert [s for s in summary if s[2] == "ERROR"] == [
        ("CFE_ES", 22, "ERROR"),
        ("CFE_ES", 23, "ERROR"),
        ("CI_LAB_APP", 8, "ERROR"),
    ]
    assert all(e["SPACECRAFT_ID"] == 66 and e["PROCESSOR_ID"] == 1 for e in events)


def test_no_sequence_gaps_per_message_id(decoded):
    last = {}
    for d in decoded:
        pid = d.header.msgid
        if pid in last:
            assert d.header.sequence_count == (last[pid] + 1) % 16384
        last[pid] = d.header.sequence_count


def test_encoded_commands_are_the_recorded_bytes(mission, session):
    """Our encoder, given the sender's sequence count, reproduces every recorded command."""
    uplink = [(r["note"], bytes.fromhex(r["hex"])) for r in session if r["dir"] == "up"]
    commands = {
        "TO_LAB enable output 127.0.0.1": ("TO_LAB_ENABLE_OUTPUT", {"dest_ip": "127.0.0.1"}),
        "TO_LAB NOOP": ("TO_LAB_NOOP", {}),
        "SAMPLE_APP NOOP": ("SAMPLE_APP_NOOP", {}),
        "CFE_ES NOOP": ("ES_NOOP", {}),
    }
    compared = 0
    for note, raw in uplink:
        if note in commands:
            name, args = commands[note]
            count = int.from_bytes(raw[2:4], "big") & 0x3FFF
            ours = encode_command(mission, mission.commands[name], args, sequence_count=count)
            assert ours == raw, note
            compared += 1
    assert compared == 5
    # Every recorded command but the runt carries a valid cFS checksum.
    for note, raw in uplink:
        if "runt" not in note:
            assert verify_cfs_checksum(raw), note
