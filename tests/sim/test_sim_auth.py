"""Authenticated commands on the simulated node, checked against the ground's signing.

Commands are built with the `odc-node` mission database's encoder and signed with
`groundctl.commanding.auth.sign` (itself checked against the stdlib's `hmac` in
tests/commanding/test_auth.py); what the node sends back is decoded with the database's
codec. The node's trailer check (`groundctl.sim.wire`) is its own code: these tests hold
the two implementations to one wire format.
"""

from __future__ import annotations

import ast
import asyncio
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)
from groundctl.commanding.auth import sign
from groundctl.config import demo_config_path, load_config
from groundctl.links.base import LinkContext, LinkError
from groundctl.links.sim import SimLink
from groundctl.mdb.codec import cfs_checksum
from groundctl.sim import wire
from groundctl.sim.fleet import SimError
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor

ROOT = Path(__file__).parents[2]
KEY = bytes.fromhex("8f3a5c1e9b2d47f0a6c8e1d3b5f79a0c2e4f6a8b0d1c3e5f7a9b2c4d6e8f0a1b")
OTHER_KEY = bytes(reversed(KEY))
NODE = "ODC-07"


def with_checksum(raw: bytes | bytearray) -> bytes:
    buf = bytearray(raw)
    buf[7] = 0
    buf[7] = cfs_checksum(buf)
    return bytes(buf)


@pytest.fixture
def keyed(bench):
    """keyed(**options): ODC-07 on the lab bench, requiring commands signed with KEY."""

    def make(**options):
        return bench(NODE, keys={NODE: KEY}, **options)

    return make


def signed(odc, name, counter, key=KEY, **arguments):
    return sign(odc.command(name, **arguments), key, counter)


def counters(b):
    return (
        b.latest("COMMS_HK.CMD_COUNT"),
        b.latest("COMMS_HK.ERR_COUNT"),
        b.latest("COMMS_HK.AUTH_FAILURES"),
    )


def cmd_events(events):
    return [(e["APP"], e["EVENT_ID"], e["SEVERITY"], e["TEXT"]) for e in events]


# --- accepted -------------------------------------------------------------------------


def test_a_keyed_node_executes_signed_commands(keyed, odc):
    b = keyed()
    b.run(3)
    assert counters(b) == (0, 0, 0)
    t = b.now
    b.send_raw(signed(odc, "NOOP", 1))
    b.send_raw(signed(odc, "SUBMIT_JOB", 2, job_id=77, gpu_seconds=600, priority="HIGH"))
    b.run(3)
    assert counters(b) == (2, 0, 0)
    assert b.latest("COMMS_HK.LAST_FC") == "SUBMIT_JOB"
    assert b.latest("COMPUTE_HK.JOBS_RUNNING") == 1  # the arguments arrived whole
    assert cmd_events(b.events(t)) == [
        ("CMD", 1, "INFO", "NOOP received, ODC-07 ok"),
        ("COMPUTE", 20, "INFO", "job 77 queued (600 GPU-s)"),
    ]
    assert b.sim.auth_counter == 2
    # counters need only rise, not by one
    b.send_raw(signed(odc, "SET_THROTTLE", 1_000_000, level="LOW"))
    b.run(2)
    assert counters(b) == (3, 0, 0)
    assert b.latest("THERMAL_HK.THROTTLE_LEVEL") == "LOW"


ARGUMENTS = {
    "SET_POWER_MODE": {"mode": "ECO"},
    "SUBMIT_JOB": {"job_id": 5, "gpu_seconds": 60},
    "CANCEL_JOB": {"job_id": 5},
    "SET_THROTTLE": {"level": "HIGH"},
    "START_DOWNLINK": {"max_bytes": 123_456_789},
    "INJECT_FAULT": {"fault": "THERMAL_RUNAWAY", "duration_s": 300},
}


def test_the_node_reads_every_signed_command_as_the_unsigned_one(odc):
    for counter, name in enumerate(odc.mission.commands, 1):
        plain = odc.command(name, **ARGUMENTS.get(name, {}))
        expected = wire.parse_command(plain)
        assert expected.name == name and not expected.error
        got = wire.parse_command(sign(plain, KEY, counter), key=KEY, last_counter=counter - 1)
        assert (got.name, got.arguments, got.error, got.counter) == (
            name,
            expected.arguments,
            "",
            counter,
        )
        assert wire.check_auth(sign(plain, KEY, counter), KEY, counter - 1) == wire.AuthCheck(
            counter=counter
        )


# --- rejected -------------------------------------------------------------------------


def flipped(raw: bytes, index: int) -> bytes:
    """One bit of byte `index` flipped, the checksum made right again."""
    buf = bytearray(raw)
    buf[index] ^= 0x10
    return with_checksum(buf)


def forged_cases(odc):
    """name -> (packets sent after the accepted SET_THROTTLE of counter 5, event, text)"""
    first = signed(odc, "SET_THROTTLE", 5, level="LOW")
    noop = signed(odc, "NOOP", 6)
    return first, {
        "wrong key": ([signed(odc, "NOOP", 6, key=OTHER_KEY)], 8, "bad MAC"),
        "flipped MAC byte": ([flipped(noop, len(noop) - 1)], 8, "bad MAC"),
        "flipped counter byte": ([flipped(noop, len(noop) - 33)], 8, "bad MAC"),
        "flipped function code": ([flipped(noop, 6)], 8, "bad MAC"),
        "no trailer": ([odc.command("NOOP")], 8, "no security trailer"),
        "replayed": ([first], 9, "counter 5 is not above 5 (replayed or old)"),
        "older counter": (
            [signed(odc, "NOOP", 3)],
            9,
            "counter 3 is not above 5 (replayed or old)",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong key",
        "flipped MAC byte",
        "flipped counter byte",
        "flipped function code",
        "no trailer",
        "replayed",
        "older counter",
    ],
)
def test_forged_replayed_and_unsigned_commands_are_refused(keyed, odc, case):
    first, cases = forged_cases(odc)
    packets, event_id, reason = cases[case]
    b = keyed()
    b.send_raw(first)
    b.run(2)
    assert counters(b) == (1, 0, 0)
    t = b.now
    for raw in packets:
        b.send_raw(raw)
    b.run(2)
    assert counters(b) == (1, 0, 1)  # not an error, not executed: an authentication failure
    assert b.latest("COMMS_HK.LAST_FC") == "SET_THROTTLE"
    assert cmd_events(b.events(t)) == [
        ("CMD", event_id, "ERROR", f"authentication failed: {reason}")
    ]
    # a refused command does not use up a counter: the next one in line is taken
    b.send_raw(signed(odc, "NOOP", 6))
    b.run(2)
    assert counters(b) == (2, 0, 1)
    # the database's limit on AUTH_FAILURES turns the refusal into an alert
    processor = TelemetryProcessor(default=odc.mission)
    alerts = [
        (c.action, c.alert.parameter, c.alert.severity)
        for r in b.received
        for c in processor.process(Frame(r.raw, r.sent_s, "sim", r.node)).alerts
    ]
    assert ("raised", "COMMS_HK.AUTH_FAILURES", "yellow") in alerts


def test_each_refusal_counts_once(keyed, odc):
    b = keyed()
    raw = signed(odc, "NOOP", 1)
    for _ in range(3):
        b.send_raw(raw)
    b.send_raw(signed(odc, "NOOP", 2, key=OTHER_KEY))
    b.run(2)
    assert counters(b) == (1, 0, 3)
    assert [e["EVENT_ID"] for e in b.events()] == [1, 9, 9, 8]


def test_length_and_checksum_are_checked_before_the_trailer(keyed, odc):
    b = keyed()
    good = signed(odc, "NOOP", 1)
    bad_checksum = good[:7] + bytes([good[7] ^ 0x01]) + good[8:]
    b.send_raw(bad_checksum)
    b.send_raw(good + b"\x00")  # the length field no longer matches
    b.run(2)
    assert counters(b) == (0, 2, 0)
    assert cmd_events(b.events()) == [
        ("CMD", 3, "ERROR", "command rejected: bad checksum"),
        ("CMD", 6, "ERROR", "command rejected: length field says 48 bytes, 49 received"),
    ]
    b.send_raw(good)  # the counter was not used up by either
    b.run(2)
    assert counters(b) == (1, 2, 0)


def test_an_authentic_command_with_bad_arguments_is_an_error_and_uses_its_counter(keyed, odc):
    b = keyed()
    mode = bytearray(odc.command("SET_POWER_MODE", mode="ECO"))
    mode[8] = 9
    bad = sign(bytes(mode), KEY, 1)
    b.send_raw(bad)
    b.run(2)
    assert counters(b) == (0, 1, 0)
    assert cmd_events(b.events()) == [
        ("CMD", 7, "ERROR", "SET_POWER_MODE rejected: mode 9 unknown")
    ]
    t = b.now
    b.send_raw(bad)  # authentic, but its counter is spent
    b.run(2)
    assert counters(b) == (0, 1, 1)
    assert cmd_events(b.events(t)) == [
        ("CMD", 9, "ERROR", "authentication failed: counter 1 is not above 1 (replayed or old)")
    ]


def test_the_last_counter_survives_a_reboot(keyed, odc):
    b = keyed()
    recorded = signed(odc, "NOOP", 1)
    b.send_raw(recorded)
    b.send_raw(signed(odc, "REBOOT", 2))
    rebooted = b.now
    b.run(b.sim.params.boot_s + 3)
    assert ("CMD", 5, "INFO", "boot complete (REBOOT command)") in cmd_events(b.events(rebooted))
    assert counters(b) == (0, 0, 0)  # the flight-software counters restarted
    t = b.now
    b.send_raw(recorded)  # recorded before the reboot, replayed after it
    b.run(2)
    assert counters(b) == (0, 0, 1)
    assert cmd_events(b.events(t)) == [
        ("CMD", 9, "ERROR", "authentication failed: counter 1 is not above 2 (replayed or old)")
    ]
    b.send_raw(signed(odc, "NOOP", 3))
    b.run(2)
    assert counters(b) == (1, 0, 1)


def test_reset_counters_zeroes_auth_failures_but_not_the_counter(keyed, odc):
    b = keyed()
    b.send_raw(signed(odc, "NOOP", 4))
    b.send_raw(signed(odc, "NOOP", 4))
    b.run(2)
    assert counters(b) == (1, 0, 1)
    b.send_raw(signed(odc, "RESET_COUNTERS", 5))
    b.run(2)
    assert counters(b) == (0, 0, 0)
    b.send_raw(signed(odc, "NOOP", 5))
    b.run(2)
    assert counters(b) == (0, 0, 1)


def test_an_unkeyed_node_is_unchanged(bench, odc):
    b = bench(NODE)
    b.send("NOOP")
    b.run(2)
    assert counters(b) == (1, 0, 0)
    t = b.now
    b.send_raw(signed(odc, "NOOP", 1))  # a trailer it does not expect: extra argument bytes
    b.run(2)
    assert counters(b) == (1, 1, 0)
    assert cmd_events(b.events(t)) == [
        ("CMD", 4, "ERROR", "command rejected: NOOP: 40 argument bytes, expected 0")
    ]
    assert b.sim.key is None and b.sim.auth_counter == 0


def test_keys_for_nodes_that_are_not_simulated_are_refused(make_fleet):
    with pytest.raises(SimError) as caught:
        make_fleet(NODE, gate=False, keys={"ODC-99": KEY})
    assert caught.value.message == "keys given for nodes that are not simulated: ODC-99"


def test_the_simulator_does_not_use_the_ground_code_it_is_tested_against():
    for path in sorted((ROOT / "groundctl" / "sim").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names
        } | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        bad = {m for m in imported if m.startswith(("groundctl.commanding", "groundctl.mdb"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


# --- the sim link: keys from the config -------------------------------------------------


def write_config(tmp_path, node_entry):
    """The demo config, its missions by absolute path, with `node_entry` added to
    [nodes.ODC-07]."""
    text = demo_config_path().read_text()
    missions = ROOT / "data" / "missions"
    text = text.replace('path = "../missions/', f'path = "{missions}/')
    marker = "[nodes.ODC-07]\npriority = 5\n"
    assert marker in text
    text = text.replace(marker, marker + node_entry + "\n")
    path = tmp_path / "groundctl.toml"
    path.write_text(text)
    return load_config(path)


def make_link(config):
    link = SimLink(
        "sim",
        "fleet",
        {"start": "2026-11-29T00:00:00Z", "speed": 0.0, "gate": False, "nodes": "ODC-07,ODC-01"},
    )
    link.bind(LinkContext(config=config))
    return link


def test_the_sim_link_gives_a_node_with_key_env_its_key(tmp_path, monkeypatch, odc):
    monkeypatch.setenv("GROUNDCTL_TEST_ODC07_KEY", "# ODC-07\n" + KEY.hex())
    config = write_config(tmp_path, 'key_env = "GROUNDCTL_TEST_ODC07_KEY"')
    assert config.nodes["ODC-07"].requires_auth
    link = make_link(config)

    async def main():
        await link.open()
        try:
            await link.send(signed(odc, "NOOP", 1), node="ODC-07")
            await link.send(odc.command("NOOP"), node="ODC-07")
            await link.send(odc.command("NOOP"), node="ODC-01")
        finally:
            await link.close()

    asyncio.run(main())
    keyed, plain = link.fleet.nodes["ODC-07"], link.fleet.nodes["ODC-01"]
    assert keyed.key == KEY
    assert (keyed.state.cmd_count, keyed.state.err_count, keyed.state.auth_failures) == (1, 0, 1)
    assert plain.key is None
    assert (plain.state.cmd_count, plain.state.auth_failures) == (1, 0)


def test_a_key_the_sim_link_cannot_read_is_a_link_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GROUNDCTL_TEST_ODC07_KEY", raising=False)
    link = make_link(write_config(tmp_path, 'key_env = "GROUNDCTL_TEST_ODC07_KEY"'))
    with pytest.raises(LinkError) as caught:
        asyncio.run(link.open())
    assert caught.value.message == (
        "node ODC-07: environment variable GROUNDCTL_TEST_ODC07_KEY is not set"
    )
    assert "GROUNDCTL_TEST_ODC07_KEY" in caught.value.hint


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_key_file_others_can_read_stops_the_sim_link(tmp_path):
    key_file = tmp_path / "odc-07.key"
    key_file.write_text(KEY.hex())
    key_file.chmod(0o644)
    link = make_link(write_config(tmp_path, 'key_file = "odc-07.key"'))
    with pytest.raises(LinkError) as caught:
        asyncio.run(link.open())
    assert caught.value.message == (
        f"node ODC-07: key file {key_file} is accessible to group or others (mode 0644)"
    )
    assert f"chmod 600 {key_file}" in caught.value.hint


# --- groundctl sim --udp --key-file ------------------------------------------------------


def run_cli(*args):
    """groundctl on the demo config, whatever the environment holds."""
    env = {k: None for k in os.environ if k.startswith("GROUNDCTL_")}
    return CliRunner(env=env).invoke(
        cli, ["--config", str(demo_config_path()), *args], obj={}, catch_exceptions=False
    )


def test_key_file_goes_with_udp(tmp_path):
    key_file = tmp_path / "odc-07.key"
    key_file.write_text(KEY.hex())
    key_file.chmod(0o600)
    result = run_cli("sim", "--key-file", str(key_file), "--duration", "5")
    assert result.exit_code == 2
    assert "--key-file goes with --udp" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_bad_key_file_stops_the_udp_node_before_it_starts(tmp_path):
    key_file = tmp_path / "odc-07.key"
    key_file.write_text(KEY.hex())
    key_file.chmod(0o640)
    result = run_cli("sim", "--udp", "--listen", "127.0.0.1:0", "--key-file", str(key_file))
    assert result.exit_code == 2
    assert "authentication error" in result.stderr
    assert f"chmod 600 {key_file}" in result.stderr
    assert KEY.hex()[:16] not in result.stderr
    assert "Traceback" not in result.output
