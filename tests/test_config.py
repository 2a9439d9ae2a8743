"""The config: the demo loads; each kind of mistake gets one precise message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from groundctl.config import demo_config_path, load_config, resolve_config_path
from groundctl.errors import ConfigError
from groundctl.fleet import load_fleet
from groundctl.orbits.tle import parse_tle_text

GOOD = """\
[archive]
path = "ops.db"

[[fleet]]
tle_file = "fleet.tle"
names = { "44714" = "ODC-01" }
priority = 2

[nodes.ODC-01]
priority = 9

[[stations]]
name = "Alpha"
lat_deg = 47.88
lon_deg = 11.08
alt_m = 600
min_elevation_deg = 5
horizon_mask = [[0, 5], [90, 10], [180, 3]]
antennas = 2

[[stations]]
name = "Beta"
lat_deg = -25.9
lon_deg = 27.7

[missions.cfs]
path = "fleet.tle"

[links.lab]
adapter = "udp"
uplink = "127.0.0.1:1234"
"""

TLE = """\
STARLINK-1008
1 44714C 19074B   26132.95048611 -.00027894  00000+0 -54858-3 0  1322
2 44714  53.1534 236.8965 0001912  20.7505  90.9471 15.46691953    14
"""

ISS = """\
ISS (ZARYA)
1 25544U 98067A   26132.51782528  .00016717  00000-0  10270-3 0  9009
2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "fleet.tle").write_text(TLE)
    path = tmp_path / "groundctl.toml"
    path.write_text(text)
    return path


def test_a_full_config_loads(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert [s.name for s in cfg.stations] == ["Alpha", "Beta"]
    alpha = cfg.stations[0]
    assert alpha.horizon_mask == ((0, 5), (90, 10), (180, 3)) and alpha.antennas == 2
    assert cfg.stations[1].min_elevation_deg == 0 and cfg.stations[1].antennas == 1
    assert cfg.links["lab"].adapter == "udp" and cfg.links["lab"].options["uplink"]
    assert cfg.missions["cfs"].path == tmp_path / "fleet.tle"
    fleet = load_fleet(cfg)
    assert fleet.names() == ["ODC-01"]
    assert fleet.priorities == {"ODC-01": 9}  # the [nodes] entry beats the source's 2


def test_demo_config_has_a_fleet_and_stations_spread_over_the_globe():
    cfg = load_config(demo_config_path())
    assert cfg.is_demo
    assert len(cfg.stations) >= 4
    lats = [s.lat_deg for s in cfg.stations]
    lons = [s.lon_deg for s in cfg.stations]
    assert min(lats) < -20 and max(lats) > 20 and max(lons) - min(lons) > 180
    fleet = load_fleet(cfg)
    assert len(fleet.tles) >= 24 and not fleet.problems and not fleet.stale


def test_resolution_order(tmp_path, monkeypatch):
    assert resolve_config_path(None, cwd=tmp_path) == demo_config_path()
    local = write(tmp_path, GOOD)
    assert resolve_config_path(None, cwd=tmp_path) == local
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config_path(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("change", "line", "expected"),
    [
        (
            ("lat_deg = 47.88", "lat_deg = 147.88"),
            14,
            "stations[0].lat_deg: 147.88 is out of range",
        ),
        (("lon_deg = 27.7", 'lon_deg = "east"'), 24, "stations[1].lon_deg: expected a number"),
        (("alt_m = 600", "altitude = 600"), 16, "stations[0].altitude: unknown key 'altitude'"),
        (('name = "Beta"', 'name = "alpha"'), 22, "stations[1].name: duplicate station name"),
        (
            ("[[0, 5], [90, 10], [180, 3]]", "[[0, 5], [180, 10], [90, 3]]"),
            18,
            "azimuths must increase: 90.0 after 180.0",
        ),
        (("antennas = 2", "antennas = 0"), 19, "stations[0].antennas: 0 is out of range"),
        (('tle_file = "fleet.tle"', 'tle_file = "missing.tle"'), 5, "missing.tle does not exist"),
        (('adapter = "udp"', 'kind = "udp"'), 29, "links.lab.adapter: missing"),
        (("priority = 9", "priority = 9.5"), 10, "nodes.ODC-01.priority: expected a whole number"),
        (('"44714" = "ODC-01"', 'ODC = "ODC-01"'), 6, "expected a catalogue number"),
    ],
)
def test_each_mistake_names_file_line_and_key(tmp_path, change, line, expected):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert expected in message


def test_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace('name = "Beta"', "name = Beta"))
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 22"):
        load_config(path)


def test_unknown_top_level_section(tmp_path):
    path = write(tmp_path, GOOD + "\n[station]\nname = 'x'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "station: unknown key 'station'" in str(caught.value)
    assert "stations" in caught.value.hint


def test_fleet_source_must_be_exactly_one(tmp_path):
    path = write(
        tmp_path, GOOD.replace('tle_file = "fleet.tle"', 'tle_file = "fleet.tle"\ntle = "x"')
    )
    with pytest.raises(
        ConfigError, match=r"groundctl.toml:4: fleet\[0\]: expected exactly one source, found 2"
    ):
        load_config(path)


def test_celestrak_source_not_yet_fetched_says_what_to_run(tmp_path):
    path = write(tmp_path, GOOD.replace('tle_file = "fleet.tle"', 'celestrak_group = "starlink"'))
    cfg = load_config(path)
    with pytest.raises(ConfigError) as caught:
        load_fleet(cfg, cached=lambda source: None)
    assert "has not been fetched yet" in str(caught.value)
    assert "groundctl tle fetch" in caught.value.hint


def test_the_documented_example_loads(tmp_path):
    """docs/config.md's complete example is a valid config (files it names created here)."""
    doc = (Path(__file__).parents[1] / "docs" / "config.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "fleet.tle").write_text(TLE)
    (tmp_path / "missions").mkdir()
    (tmp_path / "missions" / "odc-node.toml").write_text("")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "odc-01.key").write_text("00" * 32)
    path = tmp_path / "groundctl.toml"
    path.write_text(example)
    cfg = load_config(path)
    assert cfg.stations[0].horizon_mask[1] == (90.0, 12.5)
    assert [s.celestrak_catnr for s in cfg.fleet][-1] == (25544, 48274)
    now = datetime(2026, 5, 13, tzinfo=UTC)
    fetched, _ = parse_tle_text(ISS, "https://celestrak.org/...")
    fleet = load_fleet(cfg, now=now, cached=lambda source: (fetched, now))
    names = set(fleet.names())
    assert {"ODC-01", "ODC-03", "SIM-01", "SIM-24", "ISS (ZARYA)"} <= names
    assert fleet.priorities["ODC-01"] == 10 and fleet.priorities["SIM-01"] == 0


def test_fleet_keeps_one_tle_per_catalogue_number_and_unique_names():
    from groundctl.fleet import fleet_from_tles

    tles, _ = parse_tle_text(TLE + ISS)
    older = replace(tles[0], epoch=tles[0].epoch - timedelta(days=3), line=99)
    twin = replace(tles[1], name=tles[0].name)  # another satellite, same name
    fleet = fleet_from_tles([older, tles[0], twin], now=tles[0].epoch)
    assert [t.name for t in fleet.tles] == ["STARLINK-1008", "STARLINK-1008 (25544)"]
    assert fleet.tles[0].epoch == tles[0].epoch
    assert [p.field for p in fleet.problems] == ["catalogue number", "node name"]
