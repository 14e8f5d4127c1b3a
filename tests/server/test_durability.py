"""A record acknowledged to the client survives the server being killed with SIGKILL right after the ack."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.settings import load_settings
from tests.conftest import NewDatabase
from tests.server.conftest import Peer, run_sql

pytestmark = pytest.mark.databases

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(new_database: NewDatabase) -> str:
    """The server's and the command line's ``database_url`` ("" for SQLite in the data directory)."""
    return new_database()


def cli_run(data_dir: Path, *args: str, database_url: str = "",
            check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli.main", "--data-dir", str(data_dir), *args], cwd=REPO,
                          check=check, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "VWINDOW_DATABASE_URL": database_url})


def cli(data_dir: Path, *args: str, database_url: str = "") -> str:
    return cli_run(data_dir, *args, database_url=database_url).stdout.strip().splitlines()[-1]


@contextlib.asynccontextmanager
async def serving(data_dir: Path, port: int, database_url: str = "") -> AsyncIterator[asyncio.subprocess.Process]:
    """``vwindow serve`` in a process group of its own (so a kill can take its recorder workers too)."""
    env = {**os.environ, "VWINDOW_RECORDING_WORKERS": "1", "VWINDOW_DATABASE_URL": database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli.main", "--data-dir", str(data_dir), "serve", "--port", str(port), cwd=REPO,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    try:
        assert proc.stdout is not None

        async def started() -> None:
            while b"serving on" not in await proc.stdout.readline():  # type: ignore[union-attr]
                pass
        await asyncio.wait_for(started(), 60)
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_acknowledged_wrap_up_survives_sigkill(tmp_path: Path, database_url: str) -> None:
    kiosk_token = cli(tmp_path, "kiosk", "add", "--name", "K", "--region", "sh/jiading/xincheng/park-3",
                      database_url=database_url)
    clerk_token = cli(tmp_path, "clerk", "add", "--name", "C", "--fields", "market", "--regions", "sh/jiading",
                      "--languages", "en", database_url=database_url)
    port = free_port()
    async with serving(tmp_path, port, database_url) as proc:
        url = f"http://127.0.0.1:{port}"
        kiosk, clerk = Peer(url, "/kiosk", kiosk_token), Peer(url, "/clerk", clerk_token)
        await kiosk.connect()
        await clerk.connect()
        await clerk.ok("set_status", {"status": "available"})
        request = {"field": "market", "language": "en", "recording_consent": True}  # market records every call
        call_id = (await kiosk.ok("request_call", request))["call_id"]
        await clerk.next("ring")
        await clerk.ok("accept", {"call_id": call_id})
        await clerk.ok("hangup", {"call_id": call_id})
        await clerk.ok("wrap_up", {"call_id": call_id, "matters": [
            {"matter_type": "joint-cancellation", "outcome": "completed", "credit_code": "92141127MA0KD1Y64A"}]})
        os.kill(proc.pid, signal.SIGKILL)  # right after the ack
        await asyncio.wait_for(proc.wait(), 10)
        for peer in (kiosk, clerk):
            await peer.close()
    assert proc.returncode == -signal.SIGKILL
    url = load_settings(data_dir=tmp_path, database_url=database_url).db_url
    saved = await run_sql(url, "SELECT credit_code, outcome FROM matters WHERE call_id = :c", c=call_id)
    kinds = [r[0] for r in await run_sql(url, "SELECT kind FROM events WHERE call_id = :c ORDER BY id", c=call_id)]
    assert saved == [("92141127MA0KD1Y64A", "completed")]
    assert kinds[-2:] == ["matter_logged", "wrapped_up"]
    verify = cli_run(tmp_path, "records", "verify", database_url=database_url, check=False)
    assert verify.returncode == 0 and "intact" in verify.stdout


async def test_records_verify_cli_names_the_tampered_event(tmp_path: Path, database_url: str) -> None:
    cli(tmp_path, "kiosk", "add", "--name", "K", "--region", "sh/jiading/xincheng/park-3", database_url=database_url)
    # an admin action is not logged by the CLI; write two events through the library instead
    from server.records import db
    from server.records.chain import Records

    url = load_settings(data_dir=tmp_path, database_url=database_url).db_url
    engine = db.make_engine(url)
    records = Records(engine)
    first = await records.log("admin_action", actor="test", data={"n": 1})
    await records.log("admin_action", actor="test", data={"n": 2})
    await engine.dispose()
    await run_sql(url, "UPDATE events SET data = :d WHERE id = :id", d='{"n": 7}', id=first)
    verify = cli_run(tmp_path, "records", "verify", database_url=database_url, check=False)
    assert verify.returncode == 1
    assert f"BROKEN at event {first}" in verify.stdout and "altered" in verify.stdout
