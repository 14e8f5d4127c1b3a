"""A kiosk page and a clerk console, each in its own browser context, place and complete a real call."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import expect

from server.keys import RECORDS
from server.records.db import ratings
from tests.browser.pages import Contexts, add_clerk, add_kiosk
from tests.server.conftest import Harness
from tests.waiting import until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_kiosk_page_and_clerk_console_call_each_other(harness: Harness, contexts: Contexts) -> None:
    kiosk_token, clerk_token = await add_kiosk(harness), await add_clerk(harness, name="Wang Li")
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, kiosk_token)
    await expect(kiosk.testid("kiosk-name")).to_have_text("Xincheng Park 3 window")

    # the start screen in each language (Arabic mirrors the page)
    for lang, direction, welcome in (("zh", "ltr", "欢迎"), ("ar", "rtl", "مرحب"), ("en", "ltr", "Welcome")):
        await kiosk.language(lang)
        await expect(kiosk.page.locator("html")).to_have_attribute("dir", direction)
        await expect(kiosk.page.locator("h1.vw-welcome").first).to_contain_text(welcome)
        await kiosk.shot(f"idle-{lang}")

    clerk = await contexts.clerk()
    await clerk.start(harness.url, clerk_token, available=False)
    await expect(clerk.testid("clerk-name")).to_have_text("Wang Li")
    await clerk.shot("idle-away")

    # no clerk available yet: the visitor waits first in line, seeing themselves in the preview
    await kiosk.request("tax")
    await kiosk.expect_state("queue")
    await expect(kiosk.testid("queue-position")).to_have_text("1")
    await kiosk.video_playing("preview-video")
    await kiosk.shot("queue")

    # the clerk goes available and is rung at once
    await clerk.click("set-available")
    await clerk.expect_state("ringing")
    await clerk.expect_status("ringing")
    await kiosk.expect_state("ringing")
    await expect(clerk.testid("ring-kiosk")).to_have_text("Xincheng Park 3 window")
    await kiosk.shot("ringing")
    await clerk.shot("ringing")

    await clerk.click("accept")
    await kiosk.expect_state("call")
    await clerk.expect_state("call")
    await clerk.expect_status("busy")
    await expect(kiosk.testid("peer-name")).to_have_text("Wang Li")
    await expect(clerk.testid("peer-name")).to_have_text("Xincheng Park 3 window")

    # media flows both ways: each page decodes the other's video and receives its audio
    kiosk_in = await kiosk.media()
    clerk_in = await clerk.media()
    print(f"kiosk receives {kiosk_in}\nclerk receives {clerk_in}")
    for stats in (kiosk_in, clerk_in):
        assert stats["connectionState"] == "connected", stats
        assert stats["frameWidth"] > 0 and stats["frameHeight"] > 0, stats
    await kiosk.video_playing("remote-video")
    await clerk.video_playing("remote-video")
    await expect(kiosk.testid("call-note")).to_be_hidden()
    await expect(clerk.testid("call-note")).to_be_hidden()
    await kiosk.shot("call")
    await clerk.shot("call")

    # the visitor hangs up and rates the call
    await kiosk.click("hangup")
    await kiosk.expect_state("rating")
    await clerk.expect_wrap_up()
    assert await kiosk.open_peers() == 0
    assert await clerk.open_peers() == 0
    await kiosk.shot("rating")
    await clerk.shot("wrap-up")
    await kiosk.rate("satisfied")
    await kiosk.shot("thanks")
    rating = await until(lambda: saved_rating(harness), "the visitor's rating is on record")
    assert rating.score == "satisfied"


async def saved_rating(harness: Harness) -> Any:
    async with harness.server.app[RECORDS].engine.connect() as conn:
        return (await conn.execute(sa.select(ratings))).first()
