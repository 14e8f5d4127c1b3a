"""Lost media in real pages: a failed first connection is replaced by a new one (attempt 1) and the call goes on;
when the media cannot be restored, both pages say that the connection was lost and the clerk wraps up.

The failures are real ICE failures, made by the tests only: in the pages by :data:`BREAK_FIRST_PEERS_JS` (remote
candidates moved to a UDP black hole), in the bots by ``break_attempts`` (tests/sabotage.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import expect

from client.bot import ClerkBot, KioskBot
from server.keys import RECORDS
from tests.browser.pages import Contexts, add_clerk, add_kiosk, kiosk_and_clerk_in_call
from tests.browser.rtc_scripts import BREAK_FIRST_PEERS_JS, install
from tests.conftest import BreakAttempts
from tests.sabotage import black_hole_socket
from tests.server.conftest import Harness
from tests.waiting import until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Chrome gives up on a connection whose checks go unanswered after about 15 s; the pages' own limit is 20 s
FAILURE_S = 45.0


async def timeline(harness: Harness, call_id: str) -> list[dict[str, Any]]:
    return await harness.server.app[RECORDS].timeline(call_id)


async def the_call_id(harness: Harness) -> str:
    calls = list(harness.switch.calls)
    assert len(calls) == 1, calls
    return calls[0]


async def test_pages_replace_a_failed_connection_and_talk_again(harness: Harness, contexts: Contexts) -> None:
    with black_hole_socket() as port:
        kiosk = await contexts.kiosk()
        clerk = await contexts.clerk()
        for page in (kiosk.page, clerk.page):  # the first connection on each side fails
            await install(page, BREAK_FIRST_PEERS_JS, {"port": port, "broken": 1})
        await kiosk.start(harness.url, await add_kiosk(harness))
        await clerk.start(harness.url, await add_clerk(harness))
        await kiosk.choose("tax")
        await clerk.expect_state("ringing")
        await clerk.click("accept")
        await kiosk.expect_state("call")
        await clerk.expect_state("call")
        call_id = await the_call_id(harness)

        # the kiosk notices the failure and offers a new connection; the server logs the restart
        async def restarted() -> bool:
            return any(e["kind"] == "media_restarted" for e in await timeline(harness, call_id))

        await until(restarted, "the kiosk restarts the media", timeout_s=FAILURE_S)
        # media flows both ways on the new connections, and the call is still on
        kiosk_in = await kiosk.media()
        clerk_in = await clerk.media()
        print(f"after the restart: kiosk receives {kiosk_in}\nclerk receives {clerk_in}")
        for stats in (kiosk_in, clerk_in):
            assert stats["connectionState"] == "connected" and stats["frameWidth"] > 0, stats
        await kiosk.video_playing("remote-video")
        await clerk.video_playing("remote-video")
        for page in (kiosk, clerk):
            broken = await page.page.evaluate("window.__vwBroken")
            print(f"{page.role}: the broken first connection went {broken}")
            assert len(broken) == 1 and "connected" not in broken[0], broken  # it never carried media
            assert await page.page.evaluate("window.__vwPeers.length") == 2  # the first, and its replacement
            assert await page.open_peers() == 1  # the first one is closed
            await page.expect_state("call")
            await expect(page.testid("call-note")).to_be_hidden()
        await kiosk.shot("call-after-restart")
        await clerk.shot("call-after-restart")

    events = await timeline(harness, call_id)
    media = [(e["kind"], e["data"]) for e in events if e["kind"].startswith("media_")]
    assert media[0] == ("media_restarted", {"attempt": 1}), media
    assert sorted((d["side"], d["attempt"]) for k, d in media if k == "media_connected") == [("clerk", 1),
                                                                                             ("visitor", 1)]
    # and it ends as any call does
    await kiosk.click("hangup")
    await clerk.expect_wrap_up()
    await kiosk.rate("satisfied")


async def test_console_says_the_connection_was_lost_and_opens_the_wrap_up(
    harness: Harness, contexts: Contexts, break_attempts: BreakAttempts
) -> None:
    break_attempts({0, 1})  # the bot kiosk's first connection and its replacement both fail
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness))
    bot = KioskBot(harness.url, await add_kiosk(harness, name="Bot kiosk"), field="tax", language="en")
    bot_task = asyncio.create_task(bot.run(seconds=60, timeout_s=40))
    try:
        await clerk.expect_state("ringing")
        await clerk.click("accept")
        result = await asyncio.wait_for(bot_task, 40)
    finally:
        if not bot_task.done():
            bot_task.cancel()
    assert result.ended_reason == "media_failed" and result.restarts == 1, result.summary()

    await clerk.expect_wrap_up()
    await expect(clerk.testid("notice")).to_contain_text("The connection was lost")
    await expect(clerk.testid("wrapup-call")).to_contain_text("the connection was lost")
    assert await clerk.open_peers() == 0
    await clerk.shot("media-failed-wrap-up")
    assert result.call_id is not None
    ended = [e["data"] for e in await timeline(harness, result.call_id) if e["kind"] == "ended"]
    assert [d["reason"] for d in ended] == ["media_failed"], ended


async def test_kiosk_page_says_the_connection_was_lost(
    harness: Harness, contexts: Contexts, break_attempts: BreakAttempts
) -> None:
    with black_hole_socket() as port:
        # the bot clerk only ever offers the black hole: the page checks it in vain, twice
        break_attempts({0, 1}, black_hole=port)
        bot = ClerkBot(harness.url, await add_clerk(harness, name="Bot clerk"), auto_accept=True)
        stop = asyncio.Event()
        bot_task = asyncio.create_task(bot.run(stop=stop))
        try:
            await asyncio.wait_for(bot.ready.wait(), 10)
            kiosk = await contexts.kiosk()
            await kiosk.start(harness.url, await add_kiosk(harness))
            await kiosk.choose("tax")
            await kiosk.expect_state("call")
            await kiosk.expect_state("error", timeout=FAILURE_S * 1000)
            await expect(kiosk.testid("error-message")).to_have_text(
                "The video connection was lost and could not be restored. Please choose the service again.")
            assert await kiosk.open_peers() == 0
            await kiosk.shot("media-failed")
            await kiosk.language("zh")
            await expect(kiosk.testid("error-message")).to_contain_text("视频连接已中断")
            ended = await bot.wait_ended(timeout_s=10)
            assert ended.ended_reason == "media_failed" and ended.restarts == 1, ended
            await kiosk.click("back")
            await kiosk.expect_state("idle")
        finally:
            stop.set()
            await asyncio.wait_for(bot_task, 10)


async def test_a_kiosk_page_reloaded_during_a_call_takes_it_up_again(harness: Harness, contexts: Contexts) -> None:
    """The server holds the call for the reconnect grace period; the reloaded page finds it in ``welcome.call`` and
    opens the restart's connection (attempt 1), which the console takes in place of the one the reload cut."""
    kiosk, clerk = await kiosk_and_clerk_in_call(harness, contexts)
    call_id = await the_call_id(harness)
    await kiosk.page.reload()
    await kiosk.expect_state("call")
    kiosk_in, clerk_in = await kiosk.media(), await clerk.media()
    for stats in (kiosk_in, clerk_in):
        assert stats["connectionState"] == "connected" and stats["frameWidth"] > 0, stats
    await clerk.expect_state("call")
    assert await clerk.open_peers() == 1  # the cut connection was replaced, not kept beside the new one
    await kiosk.shot("call-after-reload")
    kinds = [e["kind"] for e in await timeline(harness, call_id)]
    assert "ended" not in kinds and "media_restarted" in kinds, kinds
    await kiosk.click("hangup")
    await clerk.expect_wrap_up()


async def test_a_console_reloaded_during_a_call_takes_it_up_again(harness: Harness, contexts: Contexts) -> None:
    """The clerk's page reloads: the console finds its call in ``welcome.call`` and waits as the answerer; the kiosk
    notices its connection is gone and restarts the media, and the call goes on."""
    kiosk, clerk = await kiosk_and_clerk_in_call(harness, contexts)
    call_id = await the_call_id(harness)
    await clerk.page.reload()
    await clerk.expect_state("call")

    async def restarted() -> bool:
        return any(e["kind"] == "media_restarted" for e in await timeline(harness, call_id))

    await until(restarted, "the kiosk restarts the media", timeout_s=FAILURE_S)
    kiosk_in, clerk_in = await kiosk.media(), await clerk.media()
    for stats in (kiosk_in, clerk_in):
        assert stats["connectionState"] == "connected" and stats["frameWidth"] > 0, stats
    await kiosk.expect_state("call")
    await clerk.shot("call-after-reload")
    assert "ended" not in [e["kind"] for e in await timeline(harness, call_id)]
    await clerk.click("hangup")
    await clerk.expect_wrap_up()
