"""A throwaway coturn ``turnserver`` for the tests, on a free port of 127.0.0.1, as the README asks of production
in what matters here: the TURN REST API scheme (``use-auth-secret`` with a ``static-auth-secret``, the one the
signaling server mints per-call credentials with).

Unlike production it relays between loopback peers (``--allow-loopback-peers``: the relay addresses and the
peers are all 127.0.0.1 here), speaks neither TLS nor DTLS, has no CLI, and keeps its user database, pid file and
log in a temporary directory. Its secret is random for each server.

``turnserver`` is Debian's ``coturn``. When it is missing, :func:`ensure_turnserver` installs it with apt-get (as
root, or through ``sudo -n``), as ``scripts/test`` does; if that is not possible it raises, and the tests fail
(never skip).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

INSTALL_HINT = "turnserver (Debian's coturn) is needed; scripts/test installs it (Debian: apt-get install coturn)"
REALM = "vwindow.test"
STUN_MAGIC = 0x2112A442


class TurnUnavailableError(RuntimeError):
    """coturn cannot be installed or started for the tests."""


def ensure_turnserver() -> str:
    """The path of ``turnserver``, installing Debian's ``coturn`` first if it is missing."""
    found = shutil.which("turnserver")
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        raise TurnUnavailableError(f"{INSTALL_HINT}; apt-get is not available here")
    if os.geteuid() == 0:
        as_root: list[str] = []
    elif shutil.which("sudo") is not None:
        as_root = ["sudo", "-n"]
    else:
        raise TurnUnavailableError(f"{INSTALL_HINT}; run as root or with sudo: apt-get install -y coturn")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "coturn"]):
        done = subprocess.run([*as_root, *command], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 and command[1] == "install":
            raise TurnUnavailableError(f"{INSTALL_HINT}; `{' '.join(command)}` failed: {done.stderr.strip()[-500:]}")
    found = shutil.which("turnserver") or shutil.which("turnserver", path="/usr/bin:/usr/sbin")
    if found is None:
        raise TurnUnavailableError(f"{INSTALL_HINT}; coturn was installed but turnserver is not on PATH")
    return found


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (coturn listens on both)."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise TurnUnavailableError("no port free for both UDP and TCP on 127.0.0.1")


def stun_binding(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """Whether a STUN Binding request over UDP to ``host:port`` gets a success response."""
    transaction = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        try:
            s.sendto(request, (host, port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == transaction


class TurnServer:
    """One ``turnserver`` on 127.0.0.1 with a random ``static-auth-secret``: :meth:`start`, :meth:`close`."""

    def __init__(self) -> None:
        self.binary = ensure_turnserver()
        self.dir = Path(tempfile.mkdtemp(prefix="vw-coturn-"))
        self.log_path = self.dir / "turnserver.log"
        self.secret = secrets.token_urlsafe(24)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's TURN URL over UDP, as the ``ice_servers`` setting names it."""
        return f"turn:{self.host}:{self.port}?transport=udp"

    def ice_servers(self) -> list[dict[str, list[str]]]:
        """The ``ice_servers`` setting of a signaling server that hands out this TURN server."""
        return [{"urls": [self.url]}]

    def command(self) -> list[str]:
        return [
            self.binary, "-n",  # no configuration file: everything is on this line
            "--listening-ip", self.host, "--relay-ip", self.host, "--listening-port", str(self.port),
            "--realm", REALM, "--fingerprint",
            "--use-auth-secret", "--static-auth-secret", self.secret,
            "--allow-loopback-peers",  # the peers' relayed addresses are 127.0.0.1 too
            "--no-tls", "--no-dtls", "--no-cli", "--no-rfc5780",
            "--userdb", str(self.dir / "turndb"), "--pidfile", str(self.dir / "turnserver.pid"),
            "--log-file", str(self.log_path), "--simple-log", "--no-stdout-log", "--verbose",
        ]

    def start(self) -> Self:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TurnUnavailableError(
                    f"turnserver exited with {self.proc.returncode} on port {self.port}:\n{self.log_tail()}")
            if stun_binding(self.host, self.port):
                return self
            time.sleep(0.05)
        raise TurnUnavailableError(f"turnserver did not answer STUN on port {self.port} within 15 s:\n"
                                   f"{self.log_tail()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def start_turn_server() -> TurnServer:
    """A started ``turnserver``, or a failed test saying why there is none (never a skip)."""
    try:
        return TurnServer().start()
    except TurnUnavailableError as exc:
        pytest.fail(f"coturn is needed for the TURN tests: {exc}", pytrace=False)


@pytest.fixture
def turn_server() -> Iterator[TurnServer]:
    """A coturn of this test's own, stopped (and its directory removed) after it."""
    server = start_turn_server()
    try:
        yield server
    finally:
        server.close()
