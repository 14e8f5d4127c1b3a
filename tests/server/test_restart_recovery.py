"""A call live when the server is killed with SIGKILL: the next start closes it as ``server_restarted`` and offers
its clerk the wrap-up; the records then verify intact, sealed rows and signed checkpoints included."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from server.settings import load_settings
from tests.conftest import NewDatabase
from tests.server.conftest import Peer, run_sql
from tests.server.test_durability import cli, cli_run, free_port, serving

pytestmark = pytest.mark.databases


async def test_a_call_live_at_sigkill_is_closed_at_restart_and_its_clerk_offered_the_wrap_up(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    database_url = new_database()
    kiosk_token = cli(tmp_path, "kiosk", "add", "--name", "K", "--region", "sh/jiading/xincheng/park-3",
                      database_url=database_url)
    clerk_token = cli(tmp_path, "clerk", "add", "--name", "C", "--fields", "tax", "--regions", "sh/jiading",
                      "--languages", "en", database_url=database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with serving(tmp_path, port, database_url) as proc:
        kiosk, clerk = Peer(url, "/kiosk", kiosk_token), Peer(url, "/clerk", clerk_token)
        await kiosk.connect()
        await clerk.connect()
        await clerk.ok("set_status", {"status": "available"})
        call_id = (await kiosk.ok("request_call", {"field": "tax", "language": "en"}))["call_id"]
        await clerk.next("ring")
        await clerk.ok("accept", {"call_id": call_id})
        await kiosk.next("matched")
        os.killpg(proc.pid, signal.SIGKILL)  # mid-call
        await asyncio.wait_for(proc.wait(), 10)
        for peer in (kiosk, clerk):
            await peer.close()
    db_url = load_settings(data_dir=tmp_path, database_url=database_url).db_url
    assert await run_sql(db_url, "SELECT ended_at FROM calls WHERE id = :c", c=call_id) == [(None,)]

    async with serving(tmp_path, port, database_url) as proc:
        assert await run_sql(db_url, "SELECT end_reason, ended_by FROM calls WHERE id = :c", c=call_id) == \
            [("server_restarted", "system")]
        (kind, data), = await run_sql(db_url, "SELECT kind, data FROM events WHERE call_id = :c ORDER BY id DESC "
                                      "LIMIT 1", c=call_id)
        assert kind == "ended" and "server_restarted" in str(data)
        clerk = Peer(url, "/clerk", clerk_token)
        await clerk.connect()
        welcome = await clerk.next("welcome")
        assert [w["call_id"] for w in welcome["pending_wrapups"]] == [call_id], welcome
        done = await clerk.ok("wrap_up", {"call_id": call_id, "matters": [
            {"matter_type": "tax-consultation", "outcome": "completed"}]})
        assert len(done["matters"]) == 1
        await clerk.close()
        proc.send_signal(signal.SIGTERM)  # a clean stop signs the head it leaves
        await asyncio.wait_for(proc.wait(), 30)
    assert await run_sql(db_url, "SELECT wrapped_up_at IS NOT NULL FROM calls WHERE id = :c", c=call_id) == [(True,)]
    verify = cli_run(tmp_path, "records", "verify", database_url=database_url, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "rows intact" in verify.stdout and "checkpoints intact" in verify.stdout
    assert "not signed yet" not in verify.stdout, verify.stdout
