"""Connecting to the broker: address, credentials, TLS, and clear errors.

Shared by the link (consoles) and the agent (stations).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from groundctl.links.base import LinkError
from groundctl.links.udp import parse_address

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
# CONNACK return codes (MQTT 3.1.1) that retrying cannot fix
_LOGIN = "a wrong user name or password, or a user the broker does not allow"
_REFUSED = {
    1: "protocol version refused",
    2: "client identifier rejected",
    4: f"bad user name or password ({_LOGIN})",
    5: f"not authorized ({_LOGIN})",
}
# the same for MQTT 5 reason codes
_REFUSED_V5 = {
    0x84: "protocol version refused",
    0x85: "client identifier rejected",
    0x86: f"bad user name or password ({_LOGIN})",
    0x87: f"not authorized ({_LOGIN})",
    0x8C: "bad authentication method",
}
_LOGIN_HINT = (
    "check options 'username' and 'password_env' / 'password_file' "
    "(and the broker's password file and ACL)"
)
_TLS_HINT = (
    "check options 'tls', 'ca_file', 'cert_file' and 'key_file': is the port a TLS one "
    "(or a plain one), does the broker trust the CA of the client certificate, does it "
    "require one?"
)
_VERIFY_HINT = (
    "check option 'ca_file' (the CA that signed the broker's certificate) and that option "
    "'broker' names a host or IP address the certificate is for"
)


class ClosedBeforeAccepted(aiomqtt.MqttError):
    """The broker closed the connection before accepting it (no CONNACK): a TLS handshake
    it refused (client certificate), or a plain client on a TLS port. Not worth retrying."""


@dataclass(frozen=True)
class Broker:
    """Where the broker is and how to log in."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive_s: int = 30

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def client(
        self,
        identifier: str,
        *,
        clean_session: bool,
        will: aiomqtt.Will | None = None,
        sink: type[asyncio.Queue[aiomqtt.Message]] | None = None,
        max_inflight: int | None = None,
    ) -> aiomqtt.Client:
        """A new (not yet connected) client with these settings; `max_inflight`: QoS 1
        messages published and not yet acknowledged at once (paho's default: 20)."""
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            clean_session=clean_session,
            will=will,
            keepalive=self.keepalive_s,
            tls_context=self.tls_context() if self.tls else None,
            queue_type=sink,
            max_inflight_messages=max_inflight,
            timeout=10,
        )
        client.pending_calls_threshold = 1000  # the agent publishes batches at once
        _fail_fast(client)
        return client

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context


def _fail_fast(client: aiomqtt.Client) -> None:
    """Make a connection the broker closes before its CONNACK fail at once, saying why
    (aiomqtt would wait for its timeout and report only "Operation timed out"). Uses
    aiomqtt's internals (`_client`, `_connected`), as aiomqtt 2.x has no hook for it."""
    inner = getattr(client, "_client", None)
    if inner is None or not hasattr(client, "_connected"):
        return
    errors: list[str] = []

    def on_log(_client: object, _userdata: object, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR:
            errors[:] = [text]  # only the latest

    previous = inner.on_disconnect

    def on_disconnect(*args: object) -> None:
        connected = client._connected
        if not connected.done():
            why = errors[-1] if errors else "connection closed"
            why = why.removeprefix("failed to receive on socket: ")
            connected.set_exception(ClosedBeforeAccepted(why))
        if previous is not None:
            previous(*args)

    inner.on_log = on_log
    inner.on_disconnect = on_disconnect


def broker_from_options(
    name: str,
    address: str,
    *,
    username: str = "",
    password_env: str = "",
    password_file: str = "",
    tls: bool = False,
    ca_file: str = "",
    cert_file: str = "",
    key_file: str = "",
    keepalive_s: int = 30,
) -> Broker:
    """A Broker from link-style options; LinkError (naming link `name` and the option)
    for an address, password or file that cannot work."""
    text = address.strip()
    if ":" not in text or text.endswith("]"):
        text = f"{text}:{DEFAULT_TLS_PORT if tls else DEFAULT_PORT}"
    host, port = parse_address(name, "broker", text)
    if password_env and password_file:
        raise LinkError(
            f"link {name}: options 'password_env' and 'password_file' are both set",
            hint="give the password one way",
        )
    password: str | None = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise LinkError(
                f"link {name}: option 'password_env': environment variable {password_env} "
                "is not set",
                hint=f"export {password_env}=... before starting groundctl",
            )
    elif password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as error:
            raise LinkError(
                f"link {name}: option 'password_file': cannot read {password_file}: "
                f"{error.strerror or error}"
            ) from None
    if password is not None and not username:
        raise LinkError(f"link {name}: a password is given but option 'username' is empty")
    for option, path in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
        if path and not tls:
            raise LinkError(
                f"link {name}: option {option!r} is set but 'tls' is false",
                hint="tls = true",
            )
        if path and not Path(path).is_file():
            raise LinkError(f"link {name}: option {option!r}: no file {path}")
    if key_file and not cert_file:
        raise LinkError(f"link {name}: option 'key_file' needs 'cert_file'")
    if not 5 <= keepalive_s <= 65535:
        raise LinkError(
            f"link {name}: option 'keepalive_s' must be 5 to 65535 seconds, found {keepalive_s}"
        )
    return Broker(
        host,
        port,
        username or None,
        password,
        tls,
        ca_file,
        cert_file,
        key_file,
        keepalive_s,
    )


def default_client_id(name: str) -> str:
    """A stable client id (the broker keeps a persistent session under it)."""
    return f"groundctl-{name}-{socket.gethostname()}"


def refusal(error: BaseException) -> str:
    """Why the broker refused the connection for good (bad credentials, TLS...), or ''."""
    if isinstance(error, ClosedBeforeAccepted):
        return (
            f"it closed the connection before accepting it ({error}): a TLS handshake it "
            "refused (client certificate missing or from a CA it does not trust), or a "
            "plain connection to a TLS port"
        )
    if isinstance(error, aiomqtt.MqttError) and "CERTIFICATE_VERIFY_FAILED" in str(error):
        detail = str(error).split("certificate verify failed:")[-1].split(" (_ssl")[0].strip()
        return (
            "TLS certificate verification failed: the broker's certificate is not trusted "
            f"({detail})"
        )
    if not isinstance(error, aiomqtt.MqttCodeError):
        return ""
    rc = error.rc
    if isinstance(rc, ReasonCode):
        return _REFUSED_V5.get(rc.value, "")
    if isinstance(rc, int):
        return _REFUSED.get(rc, "")
    return ""


def refusal_hint(error: BaseException) -> str:
    """What to check for a refusal (see `refusal`)."""
    if isinstance(error, ClosedBeforeAccepted):
        return _TLS_HINT
    if "CERTIFICATE_VERIFY_FAILED" in str(error):
        return _VERIFY_HINT
    return _LOGIN_HINT


async def first_connection(
    client: aiomqtt.Client, who: str, address: str
) -> tuple[aiomqtt.Client | None, aiomqtt.MqttError | None]:
    """Connect `client` once: (client, None) when connected, (None, error) when the broker
    is not there (yet); LinkError, naming `who`, when it refuses the connection for good
    (login, TLS), which retrying cannot mend."""
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as error:
        why = refusal(error)
        if why:
            raise LinkError(
                f"{who}: broker {address} refused the connection: {why}",
                hint=refusal_hint(error),
            ) from None
        return None, error
    return client, None


async def keep_connected(
    connected: aiomqtt.Client | None,
    new_client: Callable[[], aiomqtt.Client],
    session: Callable[[aiomqtt.Client], Awaitable[None]],
    problem: Callable[[str, str], None],
    *,
    address: str,
    min_s: float,
    max_s: float,
    failed: Callable[[], None] = lambda: None,
    dropped: Callable[[], None] = lambda: None,
) -> None:
    """Run `session(client)` on a connection, for ever (until cancelled): after a drop,
    `dropped()` and a new connection `min_s` later (jittered); after a failed attempt,
    `failed()` and another with exponential backoff up to `max_s`. `problem(kind, text)`
    hears of each failure (kind "connect" or "connection"). `connected`: a client already
    connected, to start with."""
    delay = min_s
    while True:
        client, connected = connected, None
        if client is None:
            client = new_client()
            try:
                await client.__aenter__()
            except aiomqtt.MqttError as error:
                problem("connect", f"{address}: {refusal(error) or error}")
                failed()
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, max_s)
                continue
        delay = min_s
        try:
            await session(client)
        except (aiomqtt.MqttError, TimeoutError) as error:  # a drop, an unanswered publish
            problem("connection", f"{address}: {error}")
        finally:
            dropped()
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)
        await asyncio.sleep(delay * random.uniform(0.5, 1.5))
