"""The browser and the aiortc bots interoperate both ways: a kiosk page with a bot clerk, a bot kiosk with the
clerk console. The bots gather 127.0.0.1 as their only ICE candidate, as on a host whose only interface is
loopback."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from client.bot import ClerkBot, KioskBot
from rtc.loopback import LoopbackPatch
from tests.browser.pages import Contexts, add_clerk, add_kiosk
from tests.server.conftest import Harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_kiosk_page_calls_a_bot_clerk(
    harness: Harness, contexts: Contexts, bots_on_loopback_only: LoopbackPatch
) -> None:
    bot = ClerkBot(harness.url, await add_clerk(harness, name="Bot clerk"), auto_accept=True)
    stop = asyncio.Event()
    bot_task = asyncio.create_task(bot.run(stop=stop))
    try:
        await asyncio.wait_for(bot.ready.wait(), 10)
        kiosk = await contexts.kiosk()
        await kiosk.start(harness.url, await add_kiosk(harness))
        await kiosk.choose("tax")
        await kiosk.expect_state("call")
        await expect(kiosk.testid("peer-name")).to_have_text("Bot clerk")

        # the page decodes aiortc's video and receives its audio, over loopback
        stats = await kiosk.media()
        assert stats["remoteCandidate"].startswith("127.0.0.1:"), stats  # the bot's only address
        assert (stats["frameWidth"], stats["frameHeight"]) == (640, 480), stats
        # and the bot decodes Chromium's fake camera and microphone
        call = await bot.wait_media(timeout_s=20)
        await kiosk.video_playing("remote-video")
        await kiosk.shot("call-with-bot-clerk")

        await kiosk.click("hangup")
        ended = await bot.wait_ended(call.call_id, timeout_s=10)
        assert (ended.ended_reason, ended.ended_by) == ("hangup", "visitor")
        assert ended.media_connected
        assert ended.video_frames > 5 and ended.audio_frames > 20, ended
        assert ended.video_size is not None and ended.video_size[0] > 0, ended
        await kiosk.rate("neutral")
    finally:
        stop.set()
        await asyncio.wait_for(bot_task, 10)


async def test_bot_kiosk_calls_the_clerk_console(
    harness: Harness, contexts: Contexts, bots_on_loopback_only: LoopbackPatch
) -> None:
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness, name="Wang Li"))
    bot = KioskBot(harness.url, await add_kiosk(harness, name="Bot kiosk"), field="tax", language="en")
    bot_task = asyncio.create_task(bot.run(seconds=60, timeout_s=30))
    try:
        await clerk.expect_state("ringing")
        await expect(clerk.testid("ring-kiosk")).to_have_text("Bot kiosk")
        await clerk.click("accept")
        await clerk.expect_state("call")

        stats = await clerk.media()
        assert stats["remoteCandidate"].startswith("127.0.0.1:"), stats  # the bot's only address
        assert (stats["frameWidth"], stats["frameHeight"]) == (640, 480), stats
        await clerk.video_playing("remote-video")
        await clerk.shot("call-with-bot-kiosk")

        # the clerk hangs up; the bot kiosk had received the console's video and audio
        await clerk.click("hangup")
        result = await asyncio.wait_for(bot_task, 20)
    finally:
        if not bot_task.done():
            bot_task.cancel()
    assert result.ok, result.summary()
    assert result.reason == "ended early: hangup by clerk", result.summary()
    assert result.clerk_name == "Wang Li"
    assert result.video_frames > 5 and result.audio_frames > 20, result.summary()
    assert result.video_size == (640, 480), result.summary()
    await clerk.expect_wrap_up()
