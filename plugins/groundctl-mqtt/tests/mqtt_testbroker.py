"""A real mosquitto on 127.0.0.1 for the MQTT tests: password file, ACL, persistence
(the `mosquitto` fixture is in conftest.py).

Users: `agent` (reads and writes the station topics), `console` (reads down and state,
writes up, reads and writes the shared operations) and `viewer` (reads only). Skipped,
saying why, when mosquitto or mosquitto_passwd is not installed (Debian/Ubuntu:
apt-get install mosquitto).
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
PASSWORDS = {"agent": "agent-secret", "console": "console-secret", "viewer": "viewer-secret"}
ACL = """\
user agent
topic readwrite groundctl/#

user console
topic read groundctl/station/+/down
topic read groundctl/station/+/state
topic write groundctl/station/+/up
topic readwrite groundctl/ops/#

user viewer
topic read groundctl/station/+/down
topic read groundctl/station/+/state
topic read groundctl/ops/#
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mosquitto:
    """One broker process; `stop` and `start` again keep its port and its persistence."""

    def __init__(self, directory: Path) -> None:
        assert MOSQUITTO is not None and MOSQUITTO_PASSWD is not None
        self.directory = directory
        self.port = free_port()
        passwords = directory / "passwords"
        for i, (user, password) in enumerate(PASSWORDS.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run(
                [MOSQUITTO_PASSWD, *create, "-b", str(passwords), user, password],
                check=True,
                capture_output=True,
            )
        (directory / "acl").write_text(ACL)
        (directory / "data").mkdir()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwords}\n"
            f"acl_file {directory / 'acl'}\n"
            "persistence true\n"
            f"persistence_location {directory / 'data'}/\n"
            "max_queued_messages 100000\n"
            f"user {getpass.getuser()}\n"
            f"log_dest file {directory / 'mosquitto.log'}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {err}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.02)  # polling for the listener, not waiting to pass
        raise RuntimeError(f"mosquitto did not listen on {self.port} within 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the broker (SIGTERM: it saves its persistence file first)."""
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def missing(reason: str) -> None:
    """Skip the test for want of a program; fail instead where the programs must be
    there (GROUNDCTL_REQUIRE_DAEMONS, which CI sets)."""
    import os

    import pytest

    if os.environ.get("GROUNDCTL_REQUIRE_DAEMONS"):
        pytest.fail(reason)
    pytest.skip(reason)
