"""TLE/3LE/OMM ingest, checked against outside oracles (the real Starlink file, Skyfield,
sgp4's own OMM exporter and propagator) rather than against our own parser."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sgp4.api import WGS72, Satrec
from sgp4.exporter import export_omm
from skyfield.api import EarthSatellite, load

from groundctl.errors import TLEError
from groundctl.orbits.model import TLE
from groundctl.orbits.tle import (
    TLEProblem,
    checksum,
    load_tle_file,
    parse_any,
    parse_omm_csv,
    parse_omm_json,
    parse_tle_text,
    stale,
)

STARLINK = Path(__file__).parents[1] / "fixtures" / "starlink-2026-05-13.tle"


def _real_lines() -> list[str]:
    return STARLINK.read_text(encoding="utf-8").splitlines()


def _real_records(count: int, start: int = 0) -> list[tuple[str, str, str]]:
    """(name, line1, line2) of `count` records of the real file, from record `start`."""
    lines = _real_lines()
    return [
        (lines[3 * i].strip(), lines[3 * i + 1], lines[3 * i + 2])
        for i in range(start, start + count)
    ]


def _mod10(line: str) -> int:
    """Independent TLE checksum: digits add their value, minus signs add one."""
    total = 0
    for position in range(68):
        char = line[position]
        if "0" <= char <= "9":
            total += ord(char) - ord("0")
        elif char == "-":
            total += 1
    return total % 10


def _fix(line: str) -> str:
    """Give an edited element line a correct checksum again."""
    return line[:68] + str(_mod10(line))


def _put(line: str, first_col: int, text: str) -> str:
    """Overwrite columns starting at 1-based `first_col` and re-checksum."""
    start = first_col - 1
    return _fix(line[:start] + text + line[start + len(text) :])


# --- the real file -----------------------------------------------------------------------


def test_whole_starlink_file_parses_to_every_named_record_without_problems():
    lines = _real_lines()
    name_lines = [
        (number, line.strip())
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.startswith(("1 ", "2 "))
    ]

    tles, problems = load_tle_file(STARLINK)

    assert problems == []
    assert len(name_lines) == 10_361
    assert len(tles) == len(name_lines)
    assert [t.name for t in tles] == [name for _, name in name_lines]
    # line 1 of each record is the line right after its name line
    assert [t.line for t in tles] == [number + 1 for number, _ in name_lines]
    assert all(t.source == str(STARLINK) for t in tles)
    assert all(t.line1 == lines[t.line - 1] and t.line2 == lines[t.line] for t in tles)
    assert len({t.norad_id for t in tles}) == len(tles)
    assert all(t.epoch.tzinfo is not None and t.epoch.utcoffset() == timedelta(0) for t in tles)


def test_classification_c_of_the_real_file_is_accepted():
    name, line1, line2 = _real_records(1)[0]
    assert line1[7] == "C"

    tles, problems = parse_tle_text(f"{name}\n{line1}\n{line2}\n")

    assert problems == []
    assert tles[0].line1[7] == "C"


@pytest.mark.parametrize("code", ["U", "S"])
def test_classifications_u_and_s_are_accepted(code):
    _, line1, line2 = _real_records(1)[0]
    tles, problems = parse_tle_text(f"{_put(line1, 8, code)}\n{line2}\n")
    assert problems == []
    assert tles[0].line1[7] == code


def test_epochs_agree_with_skyfield_within_a_millisecond():
    ts = load.timescale(builtin=True)
    records = _real_records(10_361)[::97]
    tles, problems = parse_tle_text("\n".join("\n".join(r) for r in records))
    assert problems == []
    assert len(tles) == len(records) > 100

    for tle, (_, line1, line2) in zip(tles, records, strict=True):
        oracle = EarthSatellite(line1, line2, ts=ts).epoch.utc_datetime()
        assert abs((tle.epoch - oracle).total_seconds()) < 1e-3, tle.name


def test_checksum_matches_column_69_of_every_real_line_and_an_independent_sum():
    element_lines = [line for line in _real_lines() if line.startswith(("1 ", "2 "))]
    assert len(element_lines) == 2 * 10_361
    assert all(checksum(line) == int(line[68]) for line in element_lines)

    # minus signs count one, letters, dots, plus signs and spaces count nothing
    assert checksum("-" * 68) == 68 % 10
    assert checksum("A+. " * 17) == 0
    edited = element_lines[0][:20] + "9-9-9" + element_lines[0][25:]
    assert checksum(edited) == _mod10(edited)
    # only the first 68 characters count: column 69 is the checksum itself
    assert checksum(element_lines[0][:68] + "9") == checksum(element_lines[0][:68] + "0")


# --- one bad record among good ones ---------------------------------------------------------

Edit = Callable[[list[str]], list[str]]


def _three_records() -> list[str]:
    """9 lines: names on lines 1, 4, 7; record B (lines 4-6) is the one the tests break."""
    return [line for record in _real_records(3) for line in record]


def _edit_b_line(index: int, edit: Callable[[str], str]) -> Edit:
    def apply(lines: list[str]) -> list[str]:
        lines = list(lines)
        lines[index] = edit(lines[index])
        return lines

    return apply


def _flip_checksum(line: str) -> str:
    return line[:68] + str((int(line[68]) + 3) % 10)


ERROR_CASES: list[tuple[str, Edit, int, str, str]] = [
    # (id, edit, problem line, field, text the message must contain)
    ("bad checksum", _edit_b_line(4, _flip_checksum), 5, "line 1 checksum", "computed"),
    ("short line", _edit_b_line(5, lambda line: line[:60]), 6, "line 2 length", "60"),
    (
        "catalogue numbers differ",
        _edit_b_line(5, lambda line: _put(line, 3, "12345")),
        6,
        "line 2 catalogue number",
        "12345",
    ),
    (
        "inclination above 180",
        _edit_b_line(5, lambda line: _put(line, 9, "190.1534")),
        6,
        "line 2 inclination",
        "190.1534",
    ),
    (
        "negative eccentricity",
        _edit_b_line(5, lambda line: _put(line, 27, "-001912")),
        6,
        "line 2 eccentricity",
        "-001912",
    ),
    (
        "mean motion above 20",
        _edit_b_line(5, lambda line: _put(line, 53, "25.46691953")),
        6,
        "line 2 mean motion",
        "25.46691953",
    ),
    (
        "mean motion zero",
        _edit_b_line(5, lambda line: _put(line, 53, " 0.00000000")),
        6,
        "line 2 mean motion",
        "0.00000000",
    ),
    (
        "RAAN above 360",
        _edit_b_line(5, lambda line: _put(line, 18, "361.0000")),
        6,
        "line 2 RAAN",
        "361",
    ),
    (
        "argument of perigee above 360",
        _edit_b_line(5, lambda line: _put(line, 35, "400.0000")),
        6,
        "line 2 argument of perigee",
        "400",
    ),
    (
        "mean anomaly above 360",
        _edit_b_line(5, lambda line: _put(line, 44, "999.9999")),
        6,
        "line 2 mean anomaly",
        "999.9999",
    ),
    (
        "epoch day zero",
        _edit_b_line(4, lambda line: _put(line, 21, "000.50000000")),
        5,
        "line 1 epoch day",
        "000.50000000",
    ),
    (
        "epoch day 366 in a common year",
        _edit_b_line(4, lambda line: _put(line, 21, "366.50000000")),
        5,
        "line 1 epoch day",
        "366.50000000",
    ),
    (
        "unknown classification",
        _edit_b_line(4, lambda line: _put(line, 8, "X")),
        5,
        "line 1 classification",
        "'X'",
    ),
    (
        "catalogue number with letter O",
        _edit_b_line(4, lambda line: _put(line, 3, "O0001")),
        5,
        "line 1 catalogue number",
        "O0001",
    ),
    (
        "sgp4 rejects the orbit",
        _edit_b_line(5, lambda line: _put(line, 27, "9990000")),
        5,
        "sgp4",
        "sgp4 rejected",
    ),
    ("line 2 without line 1", lambda lines: lines[:4] + lines[5:], 5, "pairing", "line 2"),
    ("line 1 without line 2", lambda lines: lines[:5] + lines[6:], 5, "pairing", "line 1"),
]


@pytest.mark.parametrize(
    ("edit", "line", "field", "fragment"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_one_bad_record_gives_one_problem_and_the_others_survive(edit, line, field, fragment):
    lines = edit(_three_records())
    names = [lines[0].strip(), lines[-3].strip()]

    tles, problems = parse_tle_text("\n".join(lines) + "\n", "bad.tle")

    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.source, problem.line, problem.field) == ("bad.tle", line, field)
    assert fragment in problem.message
    assert [t.name for t in tles] == names


def test_checksum_problem_gives_found_and_computed_values():
    lines = _three_records()
    computed = _mod10(lines[4])
    found = (computed + 3) % 10
    lines[4] = lines[4][:68] + str(found)

    _, problems = parse_tle_text("\n".join(lines), "bad.tle")

    assert [p.message for p in problems] == [f"checksum is {found}, computed {computed}"]
    assert (
        str(problems[0]) == f"bad.tle:5: line 1 checksum: checksum is {found}, computed {computed}"
    )


def test_stray_text_line_is_reported_and_every_record_kept():
    lines = _three_records()
    lines.insert(3, "THIS LINE IS NOT PART OF ANY RECORD")

    tles, problems = parse_tle_text("\n".join(lines), "stray.tle")

    assert [(p.line, p.field) for p in problems] == [(4, "pairing")]
    assert "THIS LINE IS NOT PART" in problems[0].message
    assert [t.name for t in tles] == [lines[0].strip(), lines[4].strip(), lines[7].strip()]


def test_stray_text_line_at_the_end_is_reported():
    lines = [*_three_records(), "END OF FILE"]
    tles, problems = parse_tle_text("\n".join(lines))
    assert [(p.line, p.field) for p in problems] == [(10, "pairing")]
    assert len(tles) == 3


def test_several_bad_fields_in_one_record_are_all_named():
    lines = _three_records()
    lines[5] = _put(_put(lines[5], 9, "190.0000"), 53, "25.00000000")
    tles, problems = parse_tle_text("\n".join(lines))
    assert sorted(p.field for p in problems) == ["line 2 inclination", "line 2 mean motion"]
    assert len(tles) == 2


# --- layout tolerance ---------------------------------------------------------------------


def test_two_line_records_are_named_by_catalogue_number_and_mix_with_3le():
    (name_a, a1, a2), (_, b1, b2), (name_c, c1, c2) = _real_records(3)
    text = f"{a1}\n{a2}\n\n{name_c}\n{c1}\n{c2}\n{b1}\n{b2}\n"

    tles, problems = parse_tle_text(text)

    assert problems == []
    assert [t.name for t in tles] == [a1[2:7], name_c, b1[2:7]]
    assert [t.line for t in tles] == [1, 5, 7]
    assert name_a != tles[0].name


def test_leading_zero_on_name_line_is_removed():
    name, line1, line2 = _real_records(1)[0]
    tles, problems = parse_tle_text(f"0 {name}\n{line1}\n{line2}")
    assert problems == []
    assert tles[0].name == name


def test_crlf_bom_and_trailing_whitespace_files_read_like_plain_ones(tmp_path):
    records = _real_records(3)
    plain = "".join(f"{n}\n{a}\n{b}\n" for n, a, b in records)
    messy = "\ufeff" + "".join(f"{n}   \r\n{a}  \r\n{b}\t\r\n\r\n" for n, a, b in records)
    (tmp_path / "plain.tle").write_bytes(plain.encode())
    (tmp_path / "messy.tle").write_bytes(messy.encode("utf-8"))

    expected, _ = load_tle_file(tmp_path / "plain.tle")
    tles, problems = load_tle_file(tmp_path / "messy.tle")

    assert problems == []
    assert len(tles) == 3
    assert [(t.name, t.line1, t.line2, t.epoch) for t in tles] == [
        (t.name, t.line1, t.line2, t.epoch) for t in expected
    ]
    assert [t.line for t in tles] == [2, 6, 10]


def test_first_line_offsets_reported_line_numbers():
    lines = _three_records()
    lines[4] = _flip_checksum(lines[4])
    tles, problems = parse_tle_text("\n".join(lines), "config", first_line=40)
    assert [t.line for t in tles] == [41, 47]
    assert [p.line for p in problems] == [44]


def test_alpha5_catalogue_numbers_are_decoded():
    _, line1, line2 = _real_records(1)[0]
    tles, problems = parse_tle_text(f"{_put(line1, 3, 'A0001')}\n{_put(line2, 3, 'A0001')}")
    assert problems == []
    assert tles[0].norad_id == 100_001  # A = 10, I and O are skipped
    tles, problems = parse_tle_text(f"{_put(line1, 3, 'J1234')}\n{_put(line2, 3, 'J1234')}")
    assert tles[0].norad_id == 181_234  # J follows H: I is not used


# --- OMM ------------------------------------------------------------------------------------


def _omm_records(count: int) -> tuple[list[dict[str, object]], list[Satrec]]:
    """OMM records made by sgp4's own exporter from real lines (the oracle), with satrecs."""
    records, satrecs = [], []
    for name, line1, line2 in _real_records(count, start=1000):
        satrec = Satrec.twoline2rv(line1, line2, WGS72)
        records.append(export_omm(satrec, name))
        satrecs.append(satrec)
    return records, satrecs


def _assert_same_orbit(tles: list[TLE], satrecs: list[Satrec]) -> None:
    assert len(tles) == len(satrecs)
    for tle, original in zip(tles, satrecs, strict=True):
        assert tle.norad_id == original.satnum
        jd, fr = original.jdsatepoch + 1.0, original.jdsatepochF
        err_a, r_a, _ = original.sgp4(jd, fr)
        err_b, r_b, _ = tle.satrec().sgp4(jd, fr)
        assert (err_a, err_b) == (0, 0), tle.name
        distance_km = sum((a - b) ** 2 for a, b in zip(r_a, r_b, strict=True)) ** 0.5
        assert distance_km < 1e-3, (tle.name, distance_km)


def test_omm_json_gives_tles_that_fly_like_the_original_lines():
    records, satrecs = _omm_records(25)
    text = json.dumps(records, indent=2)

    tles, problems = parse_omm_json(text, "gp.json")

    assert problems == []
    assert [t.name for t in tles] == [r["OBJECT_NAME"] for r in records]
    assert all(t.line == 0 and t.source == "gp.json" for t in tles)
    assert all(t.line1[7] == "C" for t in tles)
    _assert_same_orbit(tles, satrecs)


def test_omm_csv_gives_tles_that_fly_like_the_original_lines():
    records, satrecs = _omm_records(25)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)

    tles, problems = parse_omm_csv(out.getvalue(), "gp.csv")

    assert problems == []
    assert [t.line for t in tles] == list(range(2, 27))
    _assert_same_orbit(tles, satrecs)


def test_parse_any_sniffs_json_csv_and_3le():
    records, _ = _omm_records(2)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    three_le = "".join(f"{n}\n{a}\n{b}\n" for n, a, b in _real_records(2, start=1000))

    from_json, _ = parse_any("\n  " + json.dumps(records), "x")
    from_csv, _ = parse_any(out.getvalue(), "x")
    from_3le, _ = parse_any(three_le, "x")

    assert [t.line for t in from_json] == [0, 0]
    assert [t.line for t in from_csv] == [2, 3]
    assert [t.line for t in from_3le] == [2, 5]
    assert [t.norad_id for t in from_json] == [t.norad_id for t in from_3le]
    assert [t.norad_id for t in from_csv] == [t.norad_id for t in from_3le]


def test_omm_json_record_with_missing_or_bad_field_is_named_and_skipped():
    records, _ = _omm_records(4)
    del records[1]["MEAN_MOTION"]
    records[2]["INCLINATION"] = "steep"

    tles, problems = parse_omm_json(json.dumps(records), "gp.json")

    assert [(p.line, p.field) for p in problems] == [
        (2, "OMM MEAN_MOTION"),
        (3, "OMM INCLINATION"),
    ]
    assert "record 2" in problems[0].message
    assert "'steep'" in problems[1].message
    assert [t.name for t in tles] == [records[0]["OBJECT_NAME"], records[3]["OBJECT_NAME"]]


def test_omm_csv_row_with_out_of_range_field_names_its_line():
    records, _ = _omm_records(3)
    records[1]["ECCENTRICITY"] = 1.5
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)

    tles, problems = parse_omm_csv(out.getvalue(), "gp.csv")

    assert [(p.line, p.field) for p in problems] == [(3, "OMM ECCENTRICITY")]
    assert "1.5" in problems[0].message
    assert len(tles) == 2


def test_omm_csv_header_without_required_columns_is_one_problem():
    tles, problems = parse_omm_csv("OBJECT_NAME,NORAD_CAT_ID\nX,1\n", "gp.csv")
    assert tles == []
    assert [(p.line, p.field) for p in problems] == [(1, "OMM header")]
    assert "MEAN_MOTION" in problems[0].message


def test_malformed_json_gives_one_problem_with_its_line():
    text = '[\n  {"OBJECT_NAME": "X",\n   "NORAD_CAT_ID": 1,,\n   "EPOCH": "2026"}\n]\n'

    tles, problems = parse_omm_json(text, "gp.json")

    assert tles == []
    assert len(problems) == 1
    assert (problems[0].line, problems[0].field) == (3, "JSON")
    assert "line 3 column 22" in problems[0].message
    assert str(problems[0]).startswith("gp.json:3: JSON: ")


# --- staleness and files ------------------------------------------------------------------


def test_stale_keeps_only_epochs_older_than_the_limit():
    now = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
    base = TLE("x", "", "", 1, now)
    ages = [0.0, 6.9, 7.0, 7.1, 30.0]
    tles = [replace(base, name=f"{age}", epoch=now - timedelta(days=age)) for age in ages]

    assert [t.name for t in stale(tles, now)] == ["7.1", "30.0"]
    assert [t.name for t in stale(tles, now, max_age_days=1.0)] == ["6.9", "7.0", "7.1", "30.0"]
    with pytest.raises(ValueError, match="timezone-aware"):
        stale(tles, datetime(2026, 5, 20))


def test_stale_on_the_real_file_matches_epoch_days_read_from_the_lines():
    tles, _ = load_tle_file(STARLINK)
    now = datetime(2026, 5, 20, 0, 0, tzinfo=UTC)  # limit: 2026-05-13 00:00 = day 133.0
    expected = sum(1 for t in tles if float(t.line1[20:32]) < 133.0)
    assert 0 < expected < len(tles)
    assert len(stale(tles, now)) == expected


def test_missing_file_raises_tle_error_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "sats.tle"
    with pytest.raises(TLEError) as caught:
        load_tle_file(missing)
    assert str(missing) in caught.value.message
    assert caught.value.hint


def test_directory_and_binary_files_raise_tle_error(tmp_path):
    with pytest.raises(TLEError, match=str(tmp_path)):
        load_tle_file(tmp_path)
    binary = tmp_path / "sats.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TLEError, match="UTF-8"):
        load_tle_file(binary)


def test_problem_without_line_prints_source_only():
    assert str(TLEProblem("gp.json", 0, "JSON", "empty")) == "gp.json: JSON: empty"
