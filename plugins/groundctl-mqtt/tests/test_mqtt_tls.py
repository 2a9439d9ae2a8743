"""TLS to a real mosquitto: a throwaway CA, a server certificate for 127.0.0.1 and client
certificates made with `openssl`; mutual TLS (the certificate's CN as the user name),
passwords over TLS, and the clear refusals: a client certificate from an untrusted CA, a
client without TLS, a broker certificate the client does not trust."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from groundctl_mqtt import MqttLink
from groundctl_mqtt.broker import Broker
from groundctl_mqtt.wire import WireFrame, encode_frame
from mqtt_testbroker import (
    MOSQUITTO,
    MOSQUITTO_PASSWD,
    PASSWORDS,
    Mosquitto,
    free_port,
    missing,
)
from test_mqtt_agent import aio, watch

from groundctl.links.base import LinkError, LinkState

OPENSSL = shutil.which("openssl")
STATION = "GS-1"
DOWN = f"groundctl/station/{STATION}/down"


def openssl(directory: Path, *args: str) -> None:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *args], cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def make_ca(directory: Path, name: str) -> None:
    """A self-signed CA: NAME.crt, NAME.key."""
    openssl(directory, *f"req -x509 -newkey rsa:2048 -nodes -days 2 -keyout {name}.key "
            f"-out {name}.crt -subj /CN={name}".split())  # fmt: skip


def make_cert(directory: Path, ca: str, name: str, cn: str, ext: str = "") -> None:
    """A certificate for `cn` signed by CA `ca`: NAME.crt, NAME.key."""
    openssl(directory, *f"req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr "
            f"-subj /CN={cn}".split())  # fmt: skip
    sign = (f"x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial -days 2 "
            f"-out {name}.crt").split()  # fmt: skip
    if ext:
        (directory / f"{name}.ext").write_text(ext + "\n")
        sign += ["-extfile", f"{name}.ext"]
    openssl(directory, *sign)


def wait_listening(port: int) -> None:
    """Poll until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # polling, not waiting to pass


@dataclass
class TlsBroker:
    """mosquitto with two TLS listeners: `mtls_port` needs a client certificate from the
    CA (its CN is the user name), `password_port` takes user names and passwords."""

    broker: Mosquitto
    pki: Path
    mtls_port: int
    password_port: int

    def file(self, name: str) -> str:
        return str(self.pki / name)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    if MOSQUITTO is None or MOSQUITTO_PASSWD is None:
        missing("mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)")
    if OPENSSL is None:
        missing("the openssl command is needed to make test certificates")
    tmp_path = tmp_path_factory.mktemp("tls")
    pki = tmp_path / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_cert(pki, "ca", "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1")
    make_cert(pki, "ca", "console", "console")
    make_cert(pki, "ca", "agent", "agent")
    make_ca(pki, "rogue-ca")  # a CA neither the broker nor the clients trust
    make_cert(pki, "rogue-ca", "rogue", "console")
    directory = tmp_path / "broker"
    directory.mkdir()
    broker = Mosquitto(directory)
    password_port, mtls_port = free_port(), free_port()
    tls = f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
    # the plain listener first (the port `start` polls), then the two TLS listeners
    broker.config.write_text(
        broker.config.read_text()
        + f"listener {password_port} 127.0.0.1\n{tls}"
        + f"listener {mtls_port} 127.0.0.1\n{tls}"
        + "require_certificate true\nuse_identity_as_username true\n"
    )
    broker.start()  # polls the plain listener
    try:
        wait_listening(password_port)
        wait_listening(mtls_port)
        yield TlsBroker(broker, pki, mtls_port, password_port)
    finally:
        broker.stop()


def tls_link(tls_broker: TlsBroker, port: int, client_id: str, **options: Any) -> MqttLink:
    return MqttLink(
        "gs1",
        "fleet",
        {
            "broker": f"127.0.0.1:{port}",
            "station": STATION,
            "client_id": client_id,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.3,
            **options,
        },
    )


async def receive_one(link: MqttLink, publisher: Broker) -> None:
    """Open `link`, publish one frame through `publisher` (an agent's settings), and
    check the link delivers it with the header's node and time."""
    up, _ = watch(link)
    await link.open()
    try:
        await asyncio.wait_for(up.wait(), 5)
        frame = WireFrame(b"\x01\x02\x03", 1795000000.25, "ODC-07", "sim", "down", 1, STATION, "t")
        async with publisher.client(f"pub-{link.client_id}", clean_session=True) as client:
            await client.publish(DOWN, encode_frame(frame), qos=1)
        got = await asyncio.wait_for(anext(aiter(link.frames())), 5)
    finally:
        await link.close()
    assert (got.raw, got.time_s, got.node) == (b"\x01\x02\x03", 1795000000.25, "ODC-07")
    assert link.connections == 1 and link.counters.errors == 0


async def refused(link: MqttLink) -> LinkError:
    """`open()` raises one LinkError at once (not a retry loop), without a chained
    traceback, and leaves the link CLOSED."""
    with pytest.raises(LinkError) as caught:
        await asyncio.wait_for(link.open(), 5)
    error = caught.value
    assert error.__cause__ is None and error.__suppress_context__
    assert "refused the connection" in error.message
    assert link.state is LinkState.CLOSED
    await link.close()
    return error


@aio
async def test_mutual_tls_delivers_frames(tls_broker: TlsBroker) -> None:
    f = tls_broker.file
    link = tls_link(
        tls_broker,
        tls_broker.mtls_port,
        "tls-console",
        tls=True,
        ca_file=f("ca.crt"),
        cert_file=f("console.crt"),
        key_file=f("console.key"),
    )
    publisher = Broker(
        "127.0.0.1",
        tls_broker.mtls_port,
        tls=True,
        ca_file=f("ca.crt"),
        cert_file=f("agent.crt"),
        key_file=f("agent.key"),
    )
    await receive_one(link, publisher)
    # the broker took the user name from the certificate (the ACL applies to it)
    log = (tls_broker.broker.directory / "mosquitto.log").read_text()
    assert "as tls-console (p2, c0, k30, u'console')" in log


@aio
async def test_password_over_tls(tls_broker: TlsBroker, tmp_path: Path) -> None:
    f = tls_broker.file
    secret = tmp_path / "console.password"
    secret.write_text(PASSWORDS["console"] + "\n")
    link = tls_link(
        tls_broker,
        tls_broker.password_port,
        "tls-password",
        tls=True,
        ca_file=f("ca.crt"),
        username="console",
        password_file=str(secret),
    )
    publisher = Broker(
        "127.0.0.1",
        tls_broker.password_port,
        "agent",
        PASSWORDS["agent"],
        tls=True,
        ca_file=f("ca.crt"),
    )
    await receive_one(link, publisher)
    secret.write_text("wrong\n")
    wrong = tls_link(
        tls_broker,
        tls_broker.password_port,
        "tls-wrong",
        tls=True,
        ca_file=f("ca.crt"),
        username="console",
        password_file=str(secret),
    )
    error = await refused(wrong)
    assert "wrong user name or password" in error.message and "username" in error.hint


@aio
async def test_client_certificate_from_an_untrusted_ca_is_refused(tls_broker: TlsBroker) -> None:
    f = tls_broker.file
    link = tls_link(
        tls_broker,
        tls_broker.mtls_port,
        "tls-rogue",
        tls=True,
        ca_file=f("ca.crt"),
        cert_file=f("rogue.crt"),
        key_file=f("rogue.key"),
    )
    error = await refused(link)
    assert "closed the connection before accepting it" in error.message
    assert "unknown ca" in error.message
    assert "cert_file" in error.hint


@aio
async def test_missing_client_certificate_is_refused(tls_broker: TlsBroker) -> None:
    link = tls_link(
        tls_broker, tls_broker.mtls_port, "tls-nocert", tls=True, ca_file=tls_broker.file("ca.crt")
    )
    error = await refused(link)
    assert "certificate required" in error.message
    assert "cert_file" in error.hint


@aio
async def test_plain_client_on_a_tls_port_is_refused(tls_broker: TlsBroker, tmp_path: Path) -> None:
    secret = tmp_path / "console.password"
    secret.write_text(PASSWORDS["console"])
    link = tls_link(
        tls_broker,
        tls_broker.password_port,
        "tls-plain",
        username="console",
        password_file=str(secret),
    )
    error = await refused(link)
    assert "plain connection to a TLS port" in error.message
    assert "'tls'" in error.hint


@aio
async def test_untrusted_broker_certificate_is_refused(tls_broker: TlsBroker) -> None:
    f = tls_broker.file
    link = tls_link(
        tls_broker,
        tls_broker.mtls_port,
        "tls-wrong-ca",
        tls=True,
        ca_file=f("rogue-ca.crt"),
        cert_file=f("console.crt"),
        key_file=f("console.key"),
    )
    error = await refused(link)
    assert "certificate verification failed" in error.message
    assert "broker's certificate is not trusted" in error.message
    assert "ca_file" in error.hint
