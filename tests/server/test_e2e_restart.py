"""A call whose first peer connection fails: the bots (aiortc) restart the media once on a new connection, through
the running server; when that fails too, the call ends with ``media_failed`` for both.

The failure is real ICE failure: the ``break_attempts`` fixture (tests/sabotage.py) makes the chosen attempts'
peer connections keep their ICE candidates to themselves and ignore the other side's (their descriptions still
say end-of-candidates), so neither side has a candidate pair to check and aioice gives up at once. Later
attempts are untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa

from client.bot import ClerkBot, KioskBot
from rtc.loopback import allow_loopback_candidates
from server.keys import RECORDS
from server.records.db import calls
from tests.conftest import BreakAttempts
from tests.server.conftest import Harness


@asynccontextmanager
async def clerk_bot(harness: Harness) -> AsyncIterator[tuple[ClerkBot, str]]:
    """A bot clerk serving tax calls, and the token of a kiosk that can reach it."""
    _, kiosk_token = await harness.identities.add_kiosk("Bot kiosk", "sh/jiading/xincheng/park-3")
    _, clerk_token = await harness.identities.add_clerk("Bot clerk", ["tax"], ["sh/jiading"], ["en"],
                                                       center="Jiading center")
    clerk = ClerkBot(harness.url, clerk_token, auto_accept=True)
    stop = asyncio.Event()
    task = asyncio.create_task(clerk.run(stop=stop))
    try:
        with allow_loopback_candidates():  # 127.0.0.1 too, as on a loopback-only host
            await asyncio.wait_for(clerk.ready.wait(), 10)
            yield clerk, kiosk_token
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def media_events(harness: Harness, call_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    timeline = await harness.server.app[RECORDS].timeline(call_id)
    return [(e["kind"], e["actor"].split(":")[0], e["data"]) for e in timeline
            if e["kind"].startswith("media_") or e["kind"] == "ended"]


async def test_first_connection_fails_the_restart_connects_and_media_flows(
    harness: Harness, break_attempts: BreakAttempts
) -> None:
    break_attempts({0})
    async with clerk_bot(harness) as (clerk, kiosk_token):
        result = await KioskBot(harness.url, kiosk_token, field="tax", language="en").run(0.5, timeout_s=30)
        assert result.ok, result.summary()
        assert result.restarts == 1, result.summary()
        # counted on the new connection only: the first never carried a packet
        assert result.video_frames > 5 and result.audio_frames > 20, result.summary()
        assert result.video_size == (640, 480)
        stats = await clerk.wait_ended(result.call_id, timeout_s=10)
        assert stats.restarts == 1 and stats.media_connected, stats
        assert stats.video_frames > 5 and stats.audio_frames > 20, stats
        assert (stats.ended_reason, stats.ended_by) == ("hangup", "visitor")

    events = await media_events(harness, str(result.call_id))
    assert events[0] == ("media_restarted", "kiosk", {"attempt": 1}), events
    # both sides reported the new connection, and only it: the first never connected
    connected = sorted((e[2]["side"], e[2]["attempt"]) for e in events if e[0] == "media_connected")
    assert connected == [("clerk", 1), ("visitor", 1)], events
    assert events[-1][0] == "ended" and events[-1][2]["reason"] == "hangup", events
    assert (await harness.server.app[RECORDS].verify()).ok


async def test_both_connections_fail_the_call_ends_with_media_failed_for_both(
    harness: Harness, break_attempts: BreakAttempts
) -> None:
    break_attempts({0, 1})
    async with clerk_bot(harness) as (clerk, kiosk_token):
        result = await KioskBot(harness.url, kiosk_token, field="tax", language="en").run(0.5, timeout_s=30)
        assert not result.ok and result.ended_reason == "media_failed", result.summary()
        assert result.restarts == 1 and result.video_frames == 0, result.summary()
        stats = await clerk.wait_ended(result.call_id, timeout_s=10)
        assert stats.ended_reason == "media_failed" and stats.restarts == 1 and not stats.media_connected, stats
        assert stats.ended_by in ("visitor", "clerk")  # whichever side gave up first
        # the clerk is put in wrap-up as after any answered call (the bot logs its matter at once)
        await clerk.wait_for(lambda: stats if stats.wrapped_up else None, timeout_s=10)

        events = await media_events(harness, str(result.call_id))
        assert [e[0] for e in events] == ["media_restarted", "ended"], events
        assert events[1][2]["reason"] == "media_failed", events
        records = harness.server.app[RECORDS]
        async with records.engine.connect() as conn:
            row = (await conn.execute(sa.select(calls.c.end_reason, calls.c.ended_by)
                                      .where(calls.c.id == result.call_id))).one()
        assert (row.end_reason, row.ended_by) == ("media_failed", stats.ended_by)
        assert (await records.verify()).ok

        # the server goes on serving: the next call (on a network that works again) connects
        break_attempts(set())
        await clerk.wait_for(lambda: stats if clerk.status == "available" else None, timeout_s=10)
        again = await KioskBot(harness.url, kiosk_token, field="tax", language="en").run(0.3, timeout_s=30)
        assert again.ok and again.restarts == 0, again.summary()
