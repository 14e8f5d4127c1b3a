"""One real WebRTC call end to end: a bot kiosk and a bot clerk (aiortc) through the running server on loopback."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from client.bot import ClerkBot, KioskBot
from rtc.loopback import LoopbackPatch, only_loopback_candidates
from server.keys import RECORDS
from server.records.db import events, matters
from tests.server.conftest import Harness


async def run_call(harness: Harness, seconds: float = 1.5) -> None:
    _, kiosk_token = await harness.identities.add_kiosk("Bot kiosk", "sh/jiading/xincheng/park-3")
    _, clerk_token = await harness.identities.add_clerk("Bot clerk", ["tax"], ["sh/jiading"], ["en"],
                                                       center="Jiading center")
    clerk = ClerkBot(harness.url, clerk_token, auto_accept=True)
    stop = asyncio.Event()
    clerk_task = asyncio.create_task(clerk.run(stop=stop))
    try:
        await asyncio.wait_for(clerk.ready.wait(), 10)
        result = await KioskBot(harness.url, kiosk_token, field="tax", language="en").run(seconds, timeout_s=30)
        assert result.ok, result.summary()
        assert result.video_frames > 5 and result.audio_frames > 20, result.summary()
        assert result.video_size == (640, 480)
        assert result.video_packets >= result.video_frames and result.audio_packets >= result.audio_frames
        assert result.clerk_name == "Bot clerk"
        stats = await clerk.wait_ended(result.call_id, timeout_s=10)
        assert stats.video_frames > 5 and stats.audio_frames > 20, stats
        assert stats.media_connected
        # the bot wraps up: its matter and the call's events are on record
        await clerk.wait_for(lambda: stats if stats.wrapped_up else None, timeout_s=10)
        async with harness.server.app[RECORDS].engine.connect() as conn:
            kinds = [r.kind for r in await conn.execute(
                sa.select(events.c.kind).where(events.c.call_id == result.call_id).order_by(events.c.id))]
            logged = (await conn.execute(sa.select(sa.func.count()).select_from(matters)
                                         .where(matters.c.call_id == result.call_id))).scalar()
        assert kinds[:3] == ["requested", "rung", "accepted"] and "media_connected" in kinds and "ended" in kinds
        assert logged == 1
    finally:
        stop.set()
        await asyncio.wait_for(clerk_task, 10)


async def test_bot_kiosk_and_bot_clerk_see_and_hear_each_other(harness: Harness) -> None:
    await run_call(harness)


async def test_call_connects_on_a_loopback_only_host(harness: Harness) -> None:
    """aioice leaves out 127.0.0.1; the loopback fixture makes the call work where it is the only interface."""
    patch: LoopbackPatch
    with only_loopback_candidates() as patch:
        assert patch is not None
        await run_call(harness, seconds=0.5)
