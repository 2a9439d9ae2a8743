"""Adapter discovery through entry points, including a plugin that fails to import."""

from __future__ import annotations

import importlib.metadata
import sys

from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401
from groundctl.links.registry import discover
from groundctl.links.udp import UdpLink


def install_fake_plugin(tmp_path, monkeypatch, target):
    """A real distribution on sys.path whose entry point names `target`."""
    dist = tmp_path / "groundctl_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: groundctl-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[groundctl.links]\nbroken = {target}\n")
    (tmp_path / "broken_adapter.py").write_text("raise ImportError('needs libfoo 2')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_builtin_adapters_are_found_like_plugins():
    adapters, broken = discover()
    assert adapters["udp"] is UdpLink
    assert {"udp", "tcp", "http", "replay", "sim"} <= set(adapters)
    assert broken == []


def test_a_broken_plugin_is_reported_and_the_rest_still_work(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "broken_adapter:Adapter")
    adapters, broken = discover()
    assert "udp" in adapters
    assert [(b.name, b.target) for b in broken] == [("broken", "broken_adapter:Adapter")]
    assert "ImportError: needs libfoo 2" in broken[0].error
    result = CliRunner().invoke(cli, ["links"], obj={})
    assert result.exit_code == 1
    assert "udp" in result.stdout and "uplink" in result.stdout
    assert (
        "broken adapter broken (broken_adapter:Adapter): ImportError: needs libfoo 2"
        in result.stderr
    )
    sys.modules.pop("broken_adapter", None)


def test_an_entry_point_that_is_not_a_link_is_refused(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "json:dumps")
    _, broken = discover()
    assert [b.error for b in broken] == ["not a subclass of groundctl.links.Link"]
