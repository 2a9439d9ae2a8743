"""The config's ground-station control: [stations.rotator], [stations.radio] and the nodes'
frequencies. Every error names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundctl.config import RadioConfig, RotatorConfig, load_config
from groundctl.errors import ConfigError

BASE = """\
[[stations]]
name = "Weilheim"
lat_deg = 47.88
lon_deg = 11.08

[stations.rotator]
address = "127.0.0.1:4533"
update_s = 0.5
threshold_deg = 3
preposition_s = 90
park = [0, 90]
max_az = 360

[stations.radio]
address = "radio.local"

[[stations]]
name = "Santiago"
lat_deg = -33.15
lon_deg = -70.67

[nodes.ODC-07]
downlink_hz = 437_000_000
uplink_hz = 145_900_000
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "groundctl.toml"
    path.write_text(text)
    return path, load_config(path)


def test_station_control_is_read_with_defaults(tmp_path):
    _, config = load(tmp_path, BASE)
    assert set(config.control) == {"Weilheim"}  # Santiago has neither
    control = config.control["Weilheim"]
    assert control.rotator == RotatorConfig(
        "127.0.0.1", 4533, update_s=0.5, threshold_deg=3.0, preposition_s=90.0,
        park=(0.0, 90.0), max_az=360.0,
    )  # fmt: skip
    assert control.radio == RadioConfig("radio.local", 4532)  # the default rigctld port
    node = config.nodes["ODC-07"]
    assert (node.downlink_hz, node.uplink_hz) == (437_000_000, 145_900_000)
    assert [s.name for s in config.stations] == ["Weilheim", "Santiago"]


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ('address = "127.0.0.1:4533"', 'address = "127.0.0.1:x"', "rotator.address", "HOST:PORT"),
        ("update_s = 0.5", "update_s = 0", "rotator.update_s", "out of range"),
        ("park = [0, 90]", 'park = "up"', "rotator.park", "[azimuth_deg, elevation_deg]"),
        ("max_az = 360", "max_az = 360\nmin_az = 400", "rotator.max_az", "not above min_az"),
        ("threshold_deg = 3", "threshold = 3", "rotator.threshold", "unknown key"),
        ('address = "radio.local"', "address = 4532", "radio.address", "non-empty string"),
        ("uplink_hz = 145_900_000", "uplink_hz = -1", "ODC-07.uplink_hz", "out of range"),
        ("uplink_hz = 145_900_000", "uplink_hz = 1.5e8", "ODC-07.uplink_hz", "whole number"),
    ],
)
def test_bad_station_control_names_file_line_and_key(tmp_path, old, new, key, message):
    assert old in BASE
    text = BASE.replace(old, new, 1)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    error = caught.value.message
    path = tmp_path / "groundctl.toml"
    assert error.startswith(f"{path}:"), error
    line = int(error.split(":")[1])
    assert text.splitlines()[line - 1].startswith(key.split(".")[-1]), error
    assert key in error and message in error, error
