"""The Hamlib clients against the real daemons (rotctld and rigctld with their dummy
devices, on loopback), and against local TCP servers for what the daemons will not do on
demand (stay silent, answer out of step)."""

from __future__ import annotations

import asyncio
import math
import re
import time

import hamlib_support
import pytest
from hamlib_support import Daemon, free_port, raw_request
from testsupport import aio

from groundctl.errors import ConfigError
from groundctl.station.hamlib import (
    RPRT_CODES,
    HamlibError,
    Radio,
    RadioLimits,
    Rotator,
    RotatorLimits,
    TargetError,
    parse_address,
    rprt_meaning,
)

# the daemons' fixtures (pytest finds fixtures among a test module's names)
hamlib_daemons = hamlib_support.hamlib_daemons
rigctld = hamlib_support.rigctld
rotctld = hamlib_support.rotctld

FAST = {"backoff_s": (0.05, 0.2)}


def raw_values(port: int, command: str) -> dict[str, str]:
    """'Label: value' lines of a reply read by hand, without the client under test."""
    return {
        key.strip(): value.strip()
        for key, sep, value in (line.partition(":") for line in raw_request(port, command)[1:])
        if sep
    }


async def eventually(call, what: str, timeout_s: float = 5.0, pause_s: float = 0.02):
    """Await `call()` until it returns a true value; that value. AssertionError naming
    `what` after `timeout_s`. HamlibError counts as not yet."""
    end = time.monotonic() + timeout_s
    while True:
        try:
            if result := await call():
                return result
        except HamlibError:
            pass
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(pause_s)


# --- limits -----------------------------------------------------------------------------------
@aio
async def test_rotator_limits_are_the_daemons_dump_state(rotctld):
    _, port = rotctld
    rotator = Rotator("Weilheim-1", "127.0.0.1", port)
    limits = await rotator.limits()
    told = raw_values(port, "\\dump_state")  # the daemon's own report, read by hand
    await rotator.close()
    assert limits == RotatorLimits(
        float(told["Minimum Azimuth"]),
        float(told["Maximum Azimuth"]),
        float(told["Minimum Elevation"]),
        float(told["Maximum Elevation"]),
    )
    assert limits == RotatorLimits(-180.0, 450.0, 0.0, 90.0)  # the dummy's documented travel


@aio
async def test_rotator_limits_are_cached_then_read_again_from_a_new_daemon(hamlib_daemons):
    daemon = hamlib_daemons("rotctld", "-C", "min_az=0,max_az=360,min_el=5,max_el=85")
    rotator = Rotator("Weilheim-1", "127.0.0.1", daemon.port, **FAST)
    assert await rotator.limits() == RotatorLimits(0.0, 360.0, 5.0, 85.0)
    assert await rotator.limits() == RotatorLimits(0.0, 360.0, 5.0, 85.0)
    assert rotator.requests == 1  # read once

    daemon.args = ["-C", "min_az=-90,max_az=90,min_el=10,max_el=80"]
    daemon.restart()
    await eventually(lambda: asyncio.sleep(0, not rotator.connected), "the drop to be noticed")
    assert await rotator.limits() == RotatorLimits(-90.0, 90.0, 10.0, 80.0)
    assert (rotator.requests, rotator.reconnects) == (2, 1)
    # and the new limits are the ones enforced
    with pytest.raises(
        TargetError, match="azimuth 100 deg is outside the rotator's range -90 to 90"
    ):
        await rotator.set_position(100, 45)
    await rotator.close()


@aio
async def test_radio_limits_are_the_daemons_rx_and_tx_ranges(rigctld):
    _, port = rigctld
    radio = Radio("IC-9700", "127.0.0.1", port)
    limits = await radio.limits()
    lines = raw_request(port, "\\dump_state")
    # by hand: the echo, protocol, model, ITU region, then the first RX range
    first_rx = lines[4].split()
    await radio.close()
    assert limits.rx[0] == (round(float(first_rx[0])), round(float(first_rx[1])))
    assert limits == RadioLimits(rx=[(150_000, 1_500_000_000)], tx=[(150_000, 1_500_000_000)])


# --- pointing ---------------------------------------------------------------------------------
@aio
async def test_set_position_moves_the_rotator_to_the_target(rotctld):
    _, port = rotctld
    rotator = Rotator("Weilheim-1", "127.0.0.1", port)
    await rotator.set_position(3.25, 2.5)

    async def arrived():
        az, el = await rotator.position()
        return (az, el) == (3.25, 2.5)  # the dummy stops exactly on the target

    await eventually(arrived, "the rotator to reach 3.25, 2.5")  # 6 deg/s: about 0.5 s
    told = raw_values(port, "p")  # another connection sees the same
    assert (told["Azimuth"], told["Elevation"]) == ("3.25", "2.50")
    await rotator.park()
    await rotator.stop()
    await rotator.close()
    assert rotator.errors == 0


@pytest.mark.parametrize(
    ("az", "el", "words"),
    [
        (450.5, 10, "azimuth 450.5 deg is outside the rotator's range -180 to 450 deg"),
        (-180.01, 10, "azimuth -180.01 deg is outside the rotator's range -180 to 450 deg"),
        (10, 90.5, "elevation 90.5 deg is outside the rotator's range 0 to 90 deg"),
        (10, -0.5, "elevation -0.5 deg is outside the rotator's range 0 to 90 deg"),
        (math.nan, 10, "azimuth nan is not a finite number"),
        (10, math.inf, "elevation inf is not a finite number"),
        (-math.inf, 10, "azimuth -inf is not a finite number"),
        ("10", 10, "azimuth '10' is not a number"),
    ],
)
@aio
async def test_targets_outside_the_limits_are_refused_and_nothing_is_sent(rotctld, az, el, words):
    _, port = rotctld
    rotator = Rotator("Weilheim-1", "127.0.0.1", port)
    await rotator.limits()  # read beforehand, so that any request made now would count
    sent = rotator.requests
    with pytest.raises(TargetError) as refused:
        await rotator.set_position(az, el)
    assert words in refused.value.message
    assert f"rotator Weilheim-1 (127.0.0.1:{port})" in refused.value.message
    assert "nothing sent" in refused.value.message
    assert rotator.requests == sent
    await asyncio.sleep(0.1)  # had it been sent (rotctld takes NaN), it would be moving
    told = raw_values(port, "p")
    assert (told["Azimuth"], told["Elevation"]) == ("0.00", "0.00")
    await rotator.close()


@aio
async def test_rprt_errors_name_the_daemon_the_command_and_the_code(rotctld, rigctld):
    rotator = Rotator("Weilheim-1", "127.0.0.1", rotctld.port)
    with pytest.raises(HamlibError) as error:
        await rotator.request("P", 10, 100)  # past the client's checks: the daemon refuses
    assert error.value.code == -1
    assert error.value.message == (
        f"rotator Weilheim-1 (127.0.0.1:{rotctld.port}): command 'P 10 100' failed: "
        "RPRT -1 (EINVAL: invalid parameter)"
    )
    with pytest.raises(HamlibError, match=r"'w x' failed: RPRT -6 \(EIO: I/O error"):
        await rotator.request("w", "x")  # send_cmd: the dummy has no serial line
    # an error reply keeps the connection in step
    assert rotator.connected
    assert await rotator.position() == (0.0, 0.0)
    assert (rotator.requests, rotator.errors, rotator.reconnects) == (3, 2, 0)
    await rotator.close()

    radio = Radio("radio IC-9700", "127.0.0.1", rigctld.port)
    with pytest.raises(HamlibError, match=r"RPRT -18 \(EDEPRECATED: function deprecated\)"):
        await radio.request("\\get_trn")
    assert f"radio IC-9700 (127.0.0.1:{rigctld.port})" in str(radio)
    await radio.close()


def test_every_hamlib_4_5_error_code_has_a_name_and_a_meaning():
    assert sorted(RPRT_CODES) == list(range(1, 21))
    names = [name for name, _ in RPRT_CODES.values()]
    assert len(set(names)) == 20
    assert rprt_meaning(-4) == "RPRT -4 (ENIMPL: function not implemented)"
    assert rprt_meaning(-11) == "RPRT -11 (ENAVAIL: function not available)"
    assert "unknown" in rprt_meaning(-99)


@aio
async def test_arguments_that_cannot_be_sent_are_refused_before_connecting():
    rotator = Rotator("Weilheim-1", "127.0.0.1", free_port())  # nothing listens: no need
    for command, args in [("P", ("1 2", 3)), ("p\nS", ()), ("P", (math.nan, 1)), ("+p", ())]:
        with pytest.raises(HamlibError, match="not sent"):
            await rotator.request(command, *args)
    assert (rotator.requests, rotator.errors, rotator.connected) == (0, 0, False)


# --- radios -----------------------------------------------------------------------------------
@aio
async def test_radio_frequencies_and_split_round_trip(rigctld):
    _, port = rigctld
    radio = Radio("IC-9700", "127.0.0.1", port)
    await radio.set_frequency(437_012_345)
    await radio.set_split(True, "VFOB")
    await radio.set_tx_frequency(145_987_654)
    assert await radio.frequency() == 437_012_345
    assert await radio.tx_frequency() == 145_987_654
    assert await radio.split() == (True, "VFOB")
    # what the daemon holds, asked on another connection
    assert raw_values(port, "f")["Frequency"] == "437012345"
    assert raw_values(port, "i")["TX Frequency"] == "145987654"
    await radio.set_split(False, "VFOA")
    assert await radio.split() == (False, "VFOA")
    await radio.close()


@pytest.mark.parametrize(
    ("hz", "words"),
    [
        (0, "frequency 0 Hz is not > 0"),
        (-5, "frequency -5 Hz is not > 0"),
        (149_999, "frequency 149999 Hz is outside the radio's {d} ranges (150000 to 1500000000"),
        (1_500_000_001, "1500000001 Hz is outside the radio's {d} ranges"),
        (437e6, "frequency 437000000.0 is not a whole number of Hz"),
        (True, "frequency True is not a whole number of Hz"),
    ],
)
@aio
async def test_frequencies_outside_the_ranges_are_refused_and_nothing_is_sent(rigctld, hz, words):
    _, port = rigctld
    radio = Radio("IC-9700", "127.0.0.1", port)
    await radio.set_frequency(437_000_000)
    await radio.set_tx_frequency(145_900_000)
    sent = radio.requests
    with pytest.raises(TargetError, match=re.escape(words.format(d="RX"))):
        await radio.set_frequency(hz)
    with pytest.raises(TargetError, match=re.escape(words.format(d="TX"))):
        await radio.set_tx_frequency(hz)
    assert radio.requests == sent
    assert raw_values(port, "f")["Frequency"] == "437000000"
    assert raw_values(port, "i")["TX Frequency"] == "145900000"
    await radio.close()


# --- timeouts, lost daemons, reconnection ---------------------------------------------------------
@aio
async def test_a_silent_peer_times_out_and_the_connection_is_closed():
    received = bytearray()
    closed = asyncio.Event()

    async def silent(reader, writer):
        while data := await reader.read(100):
            received.extend(data)
        closed.set()  # the client hung up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rotator = Rotator("Weilheim-1", "127.0.0.1", port, timeout_s=0.2, **FAST)
    started = time.monotonic()
    with pytest.raises(HamlibError) as error:
        await rotator.position()
    took = time.monotonic() - started
    assert 0.2 <= took < 1.0
    assert error.value.message == (
        f"rotator Weilheim-1 (127.0.0.1:{port}): command 'p': no reply within 0.2 s; "
        "connection closed"
    )
    await asyncio.wait_for(closed.wait(), 2)
    assert bytes(received) == b"+p\n"
    assert not rotator.connected
    assert rotator.errors == 1
    server.close()


@aio
async def test_an_unknown_command_gets_no_reply_and_the_client_recovers(rotctld):
    rotator = Rotator("Weilheim-1", "127.0.0.1", rotctld.port, timeout_s=0.3, **FAST)
    with pytest.raises(HamlibError, match=r"'\\no_such_command': no reply within 0.3 s"):
        await rotator.request("\\no_such_command")
    assert not rotator.connected
    assert await eventually(rotator.position, "the client to reconnect") == (0.0, 0.0)
    assert rotator.reconnects == 1


@aio
async def test_a_reply_out_of_step_closes_the_connection(rigctld):
    # rigctld answers \chk_vfo with a bare 'ChkVFO: 0', no echo and no RPRT line
    radio = Radio("IC-9700", "127.0.0.1", rigctld.port, **FAST)
    with pytest.raises(HamlibError, match="reply out of step: 'ChkVFO: 0'"):
        await radio.request("\\chk_vfo")
    assert not radio.connected

    async def tune():
        await radio.set_frequency(437_000_000)
        return await radio.frequency()

    assert await eventually(tune, "the client to reconnect") == 437_000_000
    assert radio.reconnects == 1


@aio
async def test_backoff_doubles_refuses_at_once_meanwhile_and_resets_after_success():
    port = free_port()  # nothing listens yet
    rotator = Rotator("Weilheim-1", "127.0.0.1", port, timeout_s=0.5, backoff_s=(0.2, 0.5))
    events = []
    rotator.on_state(lambda client, up, why: events.append((up, why)))

    async def attempt():
        """The message of the next request that really tries to connect (the ones
        refused during the wait are checked on the way)."""
        while True:
            started = time.monotonic()
            errors = rotator.errors
            try:
                await rotator.position()
            except HamlibError as error:
                assert 0 < error.retry_in_s <= 0.5
                if "cannot connect" in error.message:
                    return error.message
                assert "not sent: not connected (last error: connection refused); retry in" in (
                    error.message
                )
                assert time.monotonic() - started < 0.1  # at once
                assert rotator.errors == errors  # no attempt made
            await asyncio.sleep(0.02)

    started = time.monotonic()
    assert (await attempt()).endswith("cannot connect: connection refused; retry in 0.2 s")
    assert (await attempt()).endswith("retry in 0.4 s")
    assert (await attempt()).endswith("retry in 0.5 s")  # the longest wait
    assert (await attempt()).endswith("retry in 0.5 s")
    assert time.monotonic() - started >= 0.2 + 0.4 + 0.5

    async def answer(reader, writer):
        if (await reader.readline()) == b"+p\n":  # one request, then the peer goes away
            writer.write(b"get_pos:\nAzimuth: 12.00\nElevation: 34.00\nRPRT 0\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    assert await eventually(rotator.position, "the connection") == (12.0, 34.0)
    server.close()
    await server.wait_closed()
    await eventually(lambda: asyncio.sleep(0, not rotator.connected), "the drop to be noticed")
    # the success reset the wait: the next failure waits the first wait again
    assert (await attempt()).endswith("retry in 0.2 s")
    # one event per change, not one per attempt
    assert events == [
        (False, "connection refused"),
        (True, "connected"),
        (False, "connection closed by the daemon"),
    ]


@aio
async def test_a_cancelled_request_closes_the_connection_so_replies_stay_in_step():
    async def slow(reader, writer):
        while line := await reader.readline():
            _, *args = line.decode().split()
            await asyncio.sleep(0.3)
            writer.write(f"set_pos: {' '.join(args)}\nRPRT 0\n".encode())
        writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rotator = Rotator("Weilheim-1", "127.0.0.1", port, **FAST)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(rotator.request("P", "1.00", "2.00"), 0.1)
    assert not rotator.connected

    # a new connection: the late reply to 'P 1.00 2.00' cannot answer this one
    async def point():
        return await rotator.request("P", "3.00", "4.00") == []

    assert await eventually(point, "the client to reconnect")
    assert (rotator.reconnects, rotator.errors) == (1, 0)
    await rotator.close()
    server.close()


@aio
async def test_a_killed_daemon_fails_requests_and_a_restarted_one_is_reconnected(rotctld):
    events = []
    rotator = Rotator("Weilheim-1", "127.0.0.1", rotctld.port, backoff_s=(0.1, 0.4))
    rotator.on_state(lambda client, up, why: events.append((client, up, why)))
    assert await rotator.limits() == RotatorLimits(-180.0, 450.0, 0.0, 90.0)
    await rotator.set_position(1.0, 1.0)

    rotctld.kill()
    with pytest.raises(HamlibError) as error:
        await rotator.position()
    assert error.value.message.startswith(f"rotator Weilheim-1 (127.0.0.1:{rotctld.port}): ")
    assert error.value.message.endswith(
        (
            "connection closed by the daemon",  # the request found the connection closing
            "connection reset by peer",
            "cannot connect: connection refused; retry in 0.1 s",  # found it closed
        )
    )
    assert not rotator.connected
    with pytest.raises(HamlibError, match=r"retry in 0\.\d s"):  # at once, during the wait
        await rotator.position()

    rotctld.start()  # on the same port, a fresh dummy rotator (at 0, 0)
    sent = rotator.requests
    assert await eventually(rotator.position, "the client to reconnect") == (0.0, 0.0)
    assert rotator.reconnects == 1
    assert [(client, up) for client, up, _ in events] == [
        (rotator, True),
        (rotator, False),
        (rotator, True),
    ]
    assert events[1][2] in ("connection closed by the daemon", "connection reset by peer")
    # limits are read again from the new daemon, and pointing works again
    await rotator.limits()
    assert rotator.requests == sent + 2
    await rotator.set_position(0.5, 0.5)
    await rotator.close()
    assert events[-1][1:] == (False, "closed by groundctl")


@aio
async def test_concurrent_requests_each_get_their_own_answer(rigctld):
    radio = Radio("IC-9700", "127.0.0.1", rigctld.port)
    await radio.set_frequency(437_012_345)
    await radio.set_split(True, "VFOB")
    await radio.set_tx_frequency(145_987_654)
    expected = {
        "f": 437_012_345,
        "i": 145_987_654,
        "s": (True, "VFOB"),
        "d": RadioLimits(rx=[(150_000, 1_500_000_000)], tx=[(150_000, 1_500_000_000)]),
    }

    async def ask(kind):
        if kind == "f":
            return await radio.frequency()
        if kind == "i":
            return await radio.tx_frequency()
        if kind == "s":
            return await radio.split()
        radio._limits = None  # read dump_state every time: a long reply among short ones
        return await radio.limits()

    kinds = list("fisd") * 20
    answers = await asyncio.gather(*(ask(kind) for kind in kinds))
    assert answers == [expected[kind] for kind in kinds]
    assert (radio.requests, radio.errors, radio.reconnects) == (4 + len(kinds), 0, 0)
    await radio.close()


@aio
async def test_close_then_a_request_connects_again_without_waiting(rotctld):
    events = []
    rotator = Rotator("Weilheim-1", "127.0.0.1", rotctld.port)
    rotator.on_state(lambda client, up, why: events.append((up, why)))
    await rotator.position()
    await rotator.close()
    assert not rotator.connected
    await rotator.position()
    assert events == [(True, "connected"), (False, "closed by groundctl"), (True, "connected")]
    await rotator.close()


# --- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:4533", ("127.0.0.1", 4533)),
        ("rotator.local", ("rotator.local", 4532)),
        (" gs-1:4600 ", ("gs-1", 4600)),
        ("[::1]:4533", ("::1", 4533)),
        ("[::1]", ("::1", 4532)),
        ("::1", ("::1", 4532)),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text, 4532) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no host name"),
        (":4533", "no host name"),
        ("host:", "no port after ':'"),
        ("host:abc", "port 'abc' is not a number from 1 to 65535"),
        ("host:70000", "port '70000' is not a number from 1 to 65535"),
        ("host:0", "port '0' is not a number"),
        ("[::1:4533", "unbalanced"),
    ],
)
def test_parse_address_errors_quote_the_value(text, words):
    with pytest.raises(ConfigError) as error:
        parse_address(text, 4533)
    assert words in error.value.message
    assert repr(text) in error.value.message
    assert "127.0.0.1:4533" in error.value.hint


def test_hamlib_daemon_fixture_unpacks_as_process_and_port(rotctld):
    process, port = rotctld
    assert isinstance(rotctld, Daemon)
    assert process.poll() is None
    assert raw_request(port, "p")[-1] == "RPRT 0"
