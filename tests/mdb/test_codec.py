"""The packet codec: generated layouts round-trip, checked against ccsdspy; real CYGNSS data."""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from pathlib import Path

import ccsdspy
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groundctl.mdb.codec import Codec, encode_telemetry, int_range, parse_header, split_packets
from groundctl.mdb.model import Field, Mission, Packet

FIXTURES = Path(__file__).parents[1] / "fixtures"
logging.getLogger("ccsdspy").setLevel(logging.WARNING)


@st.composite
def layouts(draw):
    """A packet of sequential fields: bit fields, byte-aligned ints of both orders, floats."""
    fields = []
    bit = 48
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["u", "i", "f", "aligned"]))
        if kind == "f":
            bit = (bit + 7) // 8 * 8
            bits = draw(st.sampled_from([32, 64]))
            order = draw(st.sampled_from(["big", "little"]))
            fields.append(Field(f"F{i}", bit, bits, "f", order))
        elif kind == "aligned":
            bit = (bit + 7) // 8 * 8
            bits = draw(st.sampled_from([8, 16, 32, 64]))
            order = draw(st.sampled_from(["big", "little"]))
            fields.append(Field(f"F{i}", bit, bits, draw(st.sampled_from(["u", "i"])), order))
        else:
            bits = draw(st.integers(1, 63))
            fields.append(Field(f"F{i}", bit, bits, kind, "big"))
        bit += bits
    length = (bit + 7) // 8
    return Packet("P", 0x123, tuple(fields), min_length=length)


def value_for(f: Field, draw):
    if f.kind == "f":
        width = 32 if f.bits == 32 else 64
        return draw(st.floats(allow_nan=False, allow_infinity=False, width=width))
    low, high = int_range(f.kind, f.bits)
    return draw(st.integers(low, high))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_layouts_round_trip_and_agree_with_ccsdspy(data):
    packet = data.draw(layouts())
    mission = Mission("gen", "apid", {packet.id: packet}, {})
    values = {f.name: value_for(f, data.draw) for f in packet.fields}
    raw = encode_telemetry(mission, packet, values, sequence_count=5)
    decoded = Codec(mission).decode(raw)
    assert decoded.error == ""
    assert decoded.raw_values == values

    # ccsdspy, an independent decoder, reads the same bytes to the same values. It cannot
    # read unaligned bit fields wider than 32 bits: those are checked by slicing the
    # packet's bits as one big-endian integer, which shares nothing with the codec.
    wide = [f for f in packet.fields if f.kind != "f" and f.bits > 32 and f.bit_offset % 8]
    whole = int.from_bytes(raw, "big")
    for f in wide:
        value = (whole >> (len(raw) * 8 - f.bit_offset - f.bits)) & ((1 << f.bits) - 1)
        if f.kind == "i" and value >> (f.bits - 1):
            value -= 1 << f.bits
        assert value == values[f.name], f
    narrow = [f for f in packet.fields if f not in wide]
    if not narrow:
        return
    definition = ccsdspy.FixedLength(
        [
            ccsdspy.PacketField(
                name=f.name,
                data_type={"u": "uint", "i": "int", "f": "float"}[f.kind],
                bit_length=f.bits,
                bit_offset=f.bit_offset,
                byte_order=f.byte_order,
            )
            for f in narrow
        ]
    )
    oracle = definition.load(io.BytesIO(raw))
    for f in narrow:
        expected = oracle[f.name][0]
        if f.kind == "f":
            assert np.float64(expected) == np.float64(
                np.float32(values[f.name]) if f.bits == 32 else values[f.name]
            )
        else:
            assert int(expected) == values[f.name], f


def test_cygnss_file_splits_and_decodes_per_its_catalogue():
    stream = (
        FIXTURES / "ccsds" / "CYGNSS_F7_L0_2022_086_10_15_V01_F__first101pkts.tlm"
    ).read_bytes()
    rows = list(csv.DictReader((FIXTURES / "ccsds" / "Overview.csv").open()))
    catalogue = {
        int(r["APID_Decimal"]): (
            r["Packet Short Name"],
            int(r["Packet Size (Bytes)\nas computed from bit totals"]),
        )
        for r in rows
    }
    packets = {apid: Packet(name, apid, (), min_length=7) for apid, (name, _) in catalogue.items()}
    codec = Codec(Mission("cygnss", "apid", packets, {}))
    chunks = split_packets(stream)
    assert len(chunks) == 101 and all(c.error == "" for c in chunks)
    assert sum(len(c.data) for c in chunks) == len(stream)
    assert stream[:6].hex() == "0987c0000689"
    decoded = [codec.decode(c.data) for c in chunks]
    assert all(d.error == "" for d in decoded)
    by_apid = Counter(d.header.apid for d in decoded)
    assert by_apid == {384: 4, 386: 4, 391: 1, 392: 4, 393: 40, 394: 39, 1313: 9}
    for d, c in zip(decoded, chunks, strict=True):
        name, size = catalogue[d.header.apid]
        assert d.packet.name == name
        assert len(c.data) == size, (name, len(c.data), size)


def test_malformed_packets_are_reported_not_raised():
    packet = Packet("P", 0x10, (Field("A", 48, 16, "u"),), min_length=8)
    codec = Codec(Mission("m", "apid", {0x10: packet}, {}))
    good = encode_telemetry(codec.mission, packet, {"A": 7})
    assert codec.decode(good).values == {"A": 7}
    assert codec.decode(good[:3]).error == "truncated: 3 bytes, a header needs 6"
    assert codec.decode(good[:-1]).error == "length field says 8 bytes, got 7"
    assert codec.decode(good + b"\0").error == "length field says 8 bytes, got 9"
    unknown = bytearray(good)
    unknown[1] = 0x11
    assert codec.decode(bytes(unknown)).error == "unknown id 0x0011"
    short = bytearray(good[:7])
    short[4:6] = (0).to_bytes(2, "big")
    assert codec.decode(bytes(short)).error == "too short for P: 7 bytes, needs 8"
    versioned = bytearray(good)
    versioned[0] |= 0x20
    assert codec.decode(bytes(versioned)).error == "bad version 1, expected 0"
    # A stream cut mid-packet keeps its tail, with the reason.
    chunks = split_packets(good + good[:5])
    assert [c.error for c in chunks] == ["", "truncated header"]
    assert chunks[1].data == good[:5]


def test_crc_checked_packets_against_the_reference_vectors(tmp_path):
    import json

    from groundctl.mdb.codec import crc16_ccitt
    from groundctl.mdb.loader import load_mission

    vectors = json.loads((FIXTURES / "ccsds" / "vectors.json").read_text())["vectors"]
    pus = [v for v in vectors if "pus" in v]
    assert len(pus) == 4
    for v in pus:  # the CRC of everything but the last two bytes is the stated CRC
        raw = bytes.fromhex(v["hex"])
        assert f"{crc16_ccitt(raw[:-2]):04x}" == v["pus"]["crc16_hex"]
    path = tmp_path / "pus.toml"
    path.write_text(
        '[mission]\nname = "pus"\n\n[[packets]]\nname = "TM"\nid = 239\ncrc = "crc16-ccitt"\n'
        'fields = [ { name = "SERVICE", offset = 7, type = "u8" }, '
        '{ name = "SUBTYPE", type = "u8" } ]\n'
    )
    codec = Codec(load_mission(path))
    for v in pus:
        raw = bytes.fromhex(v["hex"])
        if v["primary_header"]["type"] != 0:
            continue
        decoded = codec.decode(raw)
        assert decoded.error == ""
        assert (decoded.values["SERVICE"], decoded.values["SUBTYPE"]) == (
            v["pus"]["service"],
            v["pus"]["message_subtype"],
        )
        corrupt = bytearray(raw)
        corrupt[9] ^= 0x40
        bad = codec.decode(bytes(corrupt))
        assert bad.error == (
            f"bad checksum: CRC-16 is 0x{v['pus']['crc16_hex']}, "
            f"computed 0x{crc16_ccitt(corrupt[:-2]):04x}"
        )
    # Encoding appends a CRC that decoding accepts.
    mission = codec.mission
    packet = mission.packets[239]
    built = encode_telemetry(mission, packet, {"SERVICE": 3, "SUBTYPE": 25})
    assert codec.decode(built).values["SUBTYPE"] == 25
    assert int.from_bytes(built[-2:], "big") == crc16_ccitt(built[:-2])


def test_variable_length_packets_split_by_their_length_fields():
    stream = (FIXTURES / "ccsds" / "apid01232.tlm").read_bytes()
    chunks = split_packets(stream)
    assert len(chunks) == 16 and all(c.error == "" for c in chunks)
    assert {len(c.data) for c in chunks} == {24, 36, 84}
    headers = [parse_header(c.data) for c in chunks]
    assert {h.apid for h in headers} == {1232}
    assert [h.sequence_count for h in headers] == list(range(16))
    # ccsdspy, independently, finds the same packets.
    assert ccsdspy.utils.split_packet_bytes(io.BytesIO(stream)) == [c.data for c in chunks]
