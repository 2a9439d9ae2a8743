"""Links built from a config's [links.NAME] tables: node binding, adapters, errors."""

from __future__ import annotations

import pytest

from groundctl.config import parse_config
from groundctl.links.base import LinkError
from groundctl.links.registry import build
from groundctl.links.sim import SimLink
from groundctl.links.udp import UdpLink

CONFIG = """
[[fleet]]
walker = { name_format = "N-{n}", planes = 1, per_plane = 2, altitude_km = 550, inclination_deg = 53 }

[[stations]]
name = "Here"
lat_deg = 48.0
lon_deg = 11.0

[links.lab]
adapter = "udp"
node = "cfs"
uplink = "127.0.0.1:1234"

[links.fleet]
adapter = "sim"
speed = 60

[links.broken]
adapter = "udp"
uplink = "nowhere"

[links.typo]
adapter = "upd"
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "ops.toml"
    path.write_text(CONFIG)
    return parse_config(CONFIG, path)


def test_a_link_reaches_the_node_its_config_names(config):
    link = build(config, config.links["lab"])
    assert isinstance(link, UdpLink)
    assert (link.name, link.node, link.uplink) == ("lab", "cfs", ("127.0.0.1", 1234))


def test_the_node_defaults_to_the_link_name_and_the_link_gets_the_config(config):
    link = build(config, config.links["fleet"])
    assert isinstance(link, SimLink)
    assert link.node == "fleet" and link.speed == 60.0
    assert link.context.config is config


def test_a_bad_option_names_file_line_and_link(config):
    with pytest.raises(LinkError) as caught:
        build(config, config.links["broken"])
    message = caught.value.message
    line = CONFIG.splitlines().index("[links.broken]") + 1
    assert message.startswith(f"{config.path}:{line}: links.broken: link broken: option 'uplink'")
    assert "HOST:PORT" in message


def test_an_unknown_adapter_lists_the_installed_ones(config):
    with pytest.raises(LinkError) as caught:
        build(config, config.links["typo"])
    assert "no link adapter 'upd' is installed" in caught.value.message
    for name in ("udp", "tcp", "http", "replay", "sim"):
        assert name in caught.value.hint
