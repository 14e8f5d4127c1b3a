"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary directory, ``pg_ctl start``.

The server listens on a free TCP port of 127.0.0.1 (and on a unix socket in its own directory, so it never
collides with a system server's socket), trusts every local connection and runs without fsync (a test
database need not survive a power cut; a killed *client* loses nothing either way). Each test gets a fresh
database (:meth:`PostgresServer.create_database`), dropped after it.

The binaries are looked up on PATH and then in Debian's ``/usr/lib/postgresql/<version>/bin`` (the package
``postgresql`` puts them there and not on PATH). Missing binaries are an error, never a skip: ``scripts/test``
installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

INSTALL_HINT = ("the PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in "
                "/usr/lib/postgresql/*/bin; scripts/test installs them (Debian: apt-get install postgresql)")


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server cannot be started for the tests."""


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if all((Path(bindir) / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(bindir)
    raise PostgresUnavailableError(INSTALL_HINT)


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, started by :meth:`start`, removed by :meth:`stop`."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.bindir = find_bindir()
        self.fsync = fsync
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="vwindow-pg-"))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.user: pwd.struct_passwd | None = None
        self._names = itertools.count(1)

    # PostgreSQL refuses to run as root ("initdb: cannot be run as root"). Under root (CI containers) the
    # server runs as an unprivileged account instead: Debian's ``postgres`` user when the package made one,
    # else ``nobody``. ``setpriv`` (util-linux) switches the user for just that command, with no login
    # shell (``nobody`` has none) and no PAM; the temporary directory is handed to that user, and it is
    # made under the system's temp directory because pytest's own (``/tmp/pytest-of-root``) is closed to
    # other users.
    def _as_server_user(self, argv: Sequence[str]) -> list[str]:
        if self.user is None:
            return list(argv)
        return ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--clear-groups",
                "--reset-env", "--", *argv]

    def _run(self, argv: Sequence[str], what: str) -> None:
        result = subprocess.run(self._as_server_user(argv), capture_output=True, text=True, timeout=120,
                                cwd=self.root)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailableError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}\n{tail}")

    def start(self) -> None:
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            else:
                raise PostgresUnavailableError("running as root and there is neither a 'postgres' nor a 'nobody' "
                                          "user to run the PostgreSQL server as (initdb refuses root)")
            if shutil.which("setpriv") is None:
                raise PostgresUnavailableError("running as root needs setpriv (util-linux) to start PostgreSQL as "
                                          f"{self.user.pw_name} (initdb refuses root)")
            self.root.chmod(0o755)
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "--auth=trust", "--username=postgres",
                   "--encoding=UTF8", "--locale=C", "--no-sync"], "initdb")
        self.sockdir.mkdir()
        if self.user is not None:
            os.chown(self.sockdir, self.user.pw_uid, self.user.pw_gid)
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.sockdir}",
                   "-c max_connections=200", "-c shared_buffers=32MB"]
        if not self.fsync:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run([str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.datadir),
                   "-l", str(self.root / "server.log"), "-o", " ".join(options)], "pg_ctl start")

    def stop(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run([str(self.bindir / "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", str(self.datadir)],
                          "pg_ctl stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser with the server's own ``psql``; return its unaligned output."""
        psql = self.bindir / "psql"
        result = subprocess.run(
            [str(psql if psql.exists() else "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise PostgresUnavailableError(f"psql {sql!r}: {result.stderr.strip()}")
        return result.stdout

    def create_database(self) -> str:
        """A new empty database; its name."""
        name = f"vw_test_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
