"""Loading a mission database: a full example loads; each mistake gets one precise message."""

from __future__ import annotations

import pytest

from groundctl.errors import MDBError
from groundctl.mdb.codec import Codec, calibrate, encode_telemetry
from groundctl.mdb.expr import ExpressionError, compile_expression
from groundctl.mdb.loader import load_mission
from groundctl.mdb.model import Enumeration, Polynomial, Table

GOOD = """\
[mission]
name = "demo"
id = "apid"
byte_order = "big"

[[packets]]
name = "POWER"
id = 0x101
period_s = 1
fields = [
  { name = "BATT_V", offset = 6, type = "u16", unit = "V", poly = [0, 0.001] },
  { name = "BATT_I", type = "i16", unit = "A", poly = [0, 0.01] },
  { name = "MODE", type = "u2", states = { "0" = "SAFE", "1" = "ECO", "2" = "PERF" } },
  { name = "HEATER", type = "u1" },
  { name = "SPARE", type = "u5" },
  { name = "TEMP", type = "u8", unit = "degC", table = [[0, -40], [100, 10], [255, 90]], limits = { yellow = [-10, 60], red = [-20, 80], persistence = 2, when = "MODE != 'SAFE'" } },
]

[[derived]]
name = "BATT_P"
expr = "BATT_V * BATT_I"
unit = "W"
limits = { red = [-50, 50] }

[[commands]]
name = "SET_MODE"
id = 0x1901
function_code = 3
hazardous = false
arguments = [ { name = "mode", type = "u8", states = { SAFE = 0, ECO = 1, PERF = 2 }, default = "ECO" } ]
verify = { accepted = "POWER.MODE == 1", timeout_s = 5 }
"""


def write(tmp_path, text):
    path = tmp_path / "demo.toml"
    path.write_text(text)
    return path


def test_a_full_example_loads_and_decodes(tmp_path):
    mission = load_mission(write(tmp_path, GOOD))
    power = mission.packets[0x101]
    assert [f.name for f in power.fields] == ["BATT_V", "BATT_I", "MODE", "HEATER", "SPARE", "TEMP"]
    assert [f.bit_offset for f in power.fields] == [48, 64, 80, 82, 83, 88]
    assert isinstance(power.field("BATT_V").calibration, Polynomial)
    assert isinstance(power.field("TEMP").calibration, Table)
    assert isinstance(power.field("MODE").calibration, Enumeration)
    assert mission.commands["SET_MODE"].arguments[0].default == "ECO"
    raw = encode_telemetry(
        mission, power, {"BATT_V": 28000, "BATT_I": -150, "MODE": 2, "HEATER": 1, "TEMP": 50}
    )
    values = Codec(mission).decode(raw).values
    assert values["BATT_V"] == pytest.approx(28.0)
    assert values["BATT_I"] == pytest.approx(-1.5)
    assert values["MODE"] == "PERF" and values["HEATER"] == 1
    assert values["TEMP"] == pytest.approx(-15.0)  # halfway between -40 and 10


def test_table_calibration_extrapolates_at_the_ends():
    table = Table(((0, 0), (10, 100)))
    assert calibrate(table, 20) == pytest.approx(200)
    assert calibrate(Enumeration({1: "ON"}), 3) == "UNKNOWN(3)"


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (('type = "u16", unit = "V"', 'type = "u17x", unit = "V"'), 11, "unknown type 'u17x'"),
        (
            ('{ name = "BATT_I", type', '{ name = "BATT_I", offset = 7, type'),
            12,
            "BATT_I (bits 56-71) overlaps BATT_V (bits 48-63)",
        ),
        (
            ("yellow = [-10, 60], red = [-20, 80]", "yellow = [-10, 90], red = [-20, 80]"),
            16,
            "limits out of order: red low -20, yellow low -10, yellow high 90, red high 80",
        ),
        (('name = "HEATER"', 'name = "MODE"'), 14, "duplicate field 'MODE'"),
        (
            ('expr = "BATT_V * BATT_I"', "expr = \"BATT_V * __import__('os')\""),
            21,
            "call of __import__ is not allowed",
        ),
        (
            ('expr = "BATT_V * BATT_I"', 'expr = "BATT_V * BATT_X"'),
            21,
            "names unknown parameter(s): BATT_X",
        ),
        (('default = "ECO"', 'default = "TURBO"'), 30, "'TURBO' is not one of SAFE, ECO, PERF"),
        (('"1" = "ECO"', '"x" = "ECO"'), 13, "expected an integer raw value, found 'x'"),
        (("[100, 10], [255, 90]", "[100, 10], [50, 90]"), 16, "raw values must increase"),
        (
            ("when = \"MODE != 'SAFE'\"", 'when = "MODE.x.y != 1"'),
            16,
            "names unknown parameter(s): MODE.x.y",
        ),
        (('name = "SET_MODE"', 'name = "SET MODE"'), 26, "'SET MODE' is not a valid name"),
        (
            ('accepted = "POWER.MODE == 1"', 'accepted = "POWER.NOPE += 1"'),
            31,
            "no field POWER.NOPE",
        ),
        (("period_s = 1", "period = 1"), 9, "unknown key 'period'"),
    ],
)
def test_each_mistake_names_file_line_and_reason(tmp_path, change, line, message):
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(MDBError) as caught:
        load_mission(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text


def test_duplicate_packet_ids_and_names(tmp_path):
    second = GOOD.split("[[derived]]")[0].split("[[packets]]")[1]
    path = write(tmp_path, GOOD + "\n[[packets]]" + second)
    with pytest.raises(MDBError, match=r"id 0x0101 is already used by POWER"):
        load_mission(path)


def test_expressions_are_safe_and_correct():
    e = compile_expression("abs(A - B) / 2 if POWER.MODE == 'ECO' else max(A, B) ** 2")
    assert e.names == {"A", "B", "POWER.MODE"}
    assert e.evaluate({"A": 1, "B": 5, "POWER.MODE": "ECO"}) == 2
    assert e.evaluate({"A": 1, "B": 5, "POWER.MODE": "PERF"}) == 25
    assert compile_expression("1 < A <= 3 and not B").evaluate({"A": 3, "B": False}) is True
    with pytest.raises(ValueError, match="exponent 99999999 is too large"):
        compile_expression("(A + 9) ** 99999999").evaluate({"A": 1})
    for bad in ("A.__class__()", "[x for x in A]", "lambda: 1", "A[0]", "open('f')", "A; B"):
        with pytest.raises(ExpressionError):
            compile_expression(bad)


def test_state_name_default_encodes_to_its_raw_value(tmp_path):
    from groundctl.mdb.codec import encode_command

    mission = load_mission(write(tmp_path, GOOD))
    packet = encode_command(mission, mission.commands["SET_MODE"], {})
    assert packet[8] == 1  # ECO
    assert encode_command(mission, mission.commands["SET_MODE"], {"mode": "PERF"})[8] == 2


def test_odd_width_little_endian_integers_round_trip(tmp_path):
    text = GOOD.replace(
        '{ name = "SPARE", type = "u5" },',
        '{ name = "SPARE", type = "u5" },\n  { name = "COUNT24", offset = 12, type = "i24", byte_order = "little" },',
    ).replace('unit = "degC", table', 'unit = "degC", offset = 11, table')
    mission = load_mission(write(tmp_path, text))
    power = mission.packets[0x101]
    raw = encode_telemetry(mission, power, {"COUNT24": -123456, "BATT_V": 1})
    assert raw[12:15] == (-123456).to_bytes(3, "little", signed=True)
    assert Codec(mission).decode(raw).raw_values["COUNT24"] == -123456


NESTED = """\
[mission]
name = "nested"

[[packets]]
name = "A"
id = 1

[[packets.fields]]
name = "X"
offset = 6
type = "u8"

[[packets]]
name = "B"
id = 2

[[packets.fields]]
name = "Y"
offset = 6
type = "u8"

[[packets.fields]]
name = "Z"
offset = 7
type = "q9"
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (NESTED, 25, "packets[1].fields[1].type: unknown type 'q9'"),
        (
            GOOD.replace(
                "[[packets]]",
                '[mission.time]\nsubseconds = { offset = 10, type = "u16" }\n\n[[packets]]',
            ),
            6,
            "mission.time.seconds: missing",
        ),
        (
            GOOD.replace(
                "limits = { red = [-50, 50] }", 'limits = { red = [-50, 50], when = "MODE ==" }'
            ),
            23,
            "not a valid expression",
        ),
        (
            GOOD.replace('{ name = "HEATER", type = "u1" }', '{ name = "HEATER", type = "f32" }'),
            14,
            "a f field must start on a byte boundary",
        ),
        (GOOD.replace("id = 0x101", "id = 0x901"), 8, "APID 0x901 does not fit 11 bits"),
        (
            GOOD.replace('"2" = "PERF" }', '"2" = "PERF" }, limits = { red = [0, 1] }'),
            13,
            "an enumerated field has states, not numeric bands",
        ),
        (GOOD.replace('unit = "V", poly', "unit = 5, poly"), 11, "unit: expected a string"),
        (GOOD.replace("PERF = 2 }", "PERF = 300 }"), 30, "300 does not fit u8"),
        (
            GOOD.replace('{ name = "BATT_V", offset = 6,', '{ name = "BATT_V", offset = 2,'),
            11,
            "BATT_V starts at byte 2, inside the 6-byte primary header",
        ),
    ],
)
def test_more_mistakes_are_caught(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(MDBError) as caught:
        load_mission(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert message in str(caught.value)
