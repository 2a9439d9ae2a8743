"""Real Hamlib daemons for the station tests: `rotctld` and `rigctld` with their dummy
devices (model 1) on free loopback ports.

The fixtures `rotctld` and `rigctld` yield a running `Daemon`, which unpacks as
`(process, port)`; `hamlib_daemons` is a factory for daemons with extra arguments (e.g.
`-C min_az=0,max_az=360`). All of them are terminated at the end of the test. Tests that
use them are skipped (with the reason) when the binaries are not installed; CI installs
them (Debian package libhamlib-utils). To use the fixtures in a test module, bind them to
names of the module (pytest finds fixtures there; an import would trip ruff's F811):

    import hamlib_support
    rotctld = hamlib_support.rotctld

`raw_request` talks to a daemon without the client under test: an outside check of what
the daemon holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

ROTCTLD = shutil.which("rotctld")
RIGCTLD = shutil.which("rigctld")
MISSING = "Hamlib's rotctld/rigctld are not installed (Debian: apt-get install libhamlib-utils)"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connect(port: int) -> socket.socket | None:
    """A connection to whatever listens on 127.0.0.1:port, or None (not one to itself:
    connecting to a free port of the ephemeral range can pick that very port)."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except OSError:
        return None
    if sock.getsockname() == sock.getpeername():
        sock.close()
        return None
    return sock


def _die_with_parent() -> None:
    """In the daemon's process: be terminated when the test process dies, even killed
    (Linux's PR_SET_PDEATHSIG), so that an interrupted run leaves no daemon behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


class Daemon:
    """A rotctld or rigctld process on 127.0.0.1; unpacks as (process, port).

    `restart()` kills it and starts it again on the same port (its dummy device starts
    afresh), `kill()` kills it, `start()` starts it again after a kill; `args` may be
    changed between the two (e.g. other rotator limits)."""

    def __init__(self, program: str, *args: str, port: int | None = None) -> None:
        self.program = program
        self.args = list(args)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        # The connection that found the daemon ready, kept open: closing it could close
        # the next client's connection under it (see raw_request).
        self.probe: socket.socket | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop())

    def __iter__(self) -> Iterator[Any]:
        return iter((self.process, self.port))

    def __getitem__(self, index: int) -> Any:
        return (self.process, self.port)[index]

    def __len__(self) -> int:
        return 2

    @property
    def command(self) -> list[str]:
        return [self.program, "-m", "1", "-T", "127.0.0.1", "-t", str(self.port), *self.args]

    def start(self) -> Daemon:
        """Start the daemon and return once it accepts connections (polled, with a
        deadline). A port taken in the meantime by something else: a new port is picked,
        unless the daemon is being restarted on its own port."""
        keep_port = self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
                preexec_fn=_die_with_parent,
            )
            while self.process.poll() is None:
                self.probe = connect(self.port)
                if self.probe is not None:
                    if self.process.poll() is None:
                        return self
                    self.probe.close()  # someone else's
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"{self} did not accept connections: {self.output()}")
                time.sleep(0.01)
            # It exited: the port is taken (by another test's daemon, say).
            if keep_port:
                time.sleep(0.05)
            else:
                self.port = free_port()
        raise RuntimeError(f"{self} could not start: {self.output()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    def restart(self) -> Daemon:
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Terminate (kill after 5 s) and forget the log."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        self.kill()
        self.log.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def __str__(self) -> str:
        return " ".join(self.command)


def raw_request(port: int, command: str, timeout_s: float = 5.0) -> list[str]:
    """Send `+command` on a connection of its own; the reply's lines up to RPRT (included).
    Independent of groundctl's client: the tests' outside view of the daemon.

    rigctld 4.5 closes a client's socket three times (two fclose() of fdopen()s of the
    same descriptor, then close()), so a connection it accepts just as another client
    leaves can be closed under it; such a connection is tried again."""
    for _ in range(5):
        data = b""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
                sock.sendall(f"+{command}\n".encode())
                while not any(line.startswith(b"RPRT ") for line in data.split(b"\n")):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except ConnectionResetError:
            continue
        if data:
            break
    return data.decode().splitlines()


def _require(program: str | None) -> str:
    """The program's path; without it the test is skipped, or fails where the daemons
    must be there (GROUNDCTL_REQUIRE_DAEMONS, which CI sets)."""
    if program is None:
        if os.environ.get("GROUNDCTL_REQUIRE_DAEMONS"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return program


@pytest.fixture
def hamlib_daemons() -> Iterator[Callable[..., Daemon]]:
    """`start("rotctld" | "rigctld", *extra_args)` -> a running Daemon; all are stopped
    at the end of the test."""
    started: list[Daemon] = []

    def start(name: str, *args: str) -> Daemon:
        program = _require({"rotctld": ROTCTLD, "rigctld": RIGCTLD}[name])
        daemon = Daemon(program, *args)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def rotctld(hamlib_daemons: Callable[..., Daemon]) -> Daemon:
    """rotctld with the dummy rotator (az -180..450, el 0..90, 6 deg/s), unpacks as
    (process, port)."""
    return hamlib_daemons("rotctld")


@pytest.fixture
def rigctld(hamlib_daemons: Callable[..., Daemon]) -> Daemon:
    """rigctld with the dummy rig (150 kHz to 1.5 GHz), unpacks as (process, port)."""
    return hamlib_daemons("rigctld")
