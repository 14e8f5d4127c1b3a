"""What the first trial found on the clerk console (issue 13), each checked in the real page: the status pair
says what the README says, regions by name, times in the center's time zone (labelled, whatever the browser's),
the records links from a token-opened console, the credit code checked as typed, a transfer confirmed before it
happens (its menu not stretching the video), and a referred outcome after it."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from tests.browser.pages import ClerkPage, Contexts, add_clerk, add_kiosk, answer_and_connect
from tests.browser.test_accessibility import assert_accessible
from tests.server.conftest import Harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHANGHAI = ZoneInfo("Asia/Shanghai")
SIZES = (("1920x1080", {"width": 1920, "height": 1080}), ("1080x1920", {"width": 1080, "height": 1920}))


async def shots(clerk: ClerkPage, name: str) -> None:
    """The console as it is, on a landscape and a portrait screen (and back to the laptop's size)."""
    size = clerk.page.viewport_size
    for label, viewport in SIZES:
        await clerk.page.set_viewport_size(viewport)  # type: ignore[arg-type]
        await clerk.shot(f"{name}-{label}")
    if size is not None:
        await clerk.page.set_viewport_size(size)


async def test_console_after_the_first_trial(harness: Harness, contexts: Contexts) -> None:
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    # a browser on New York time: the console still shows the center's time, as the administrator's pages do
    clerk = await contexts.clerk(timezone="America/New_York")
    await clerk.start(harness.url, await add_clerk(harness, fields=("tax", "social")), available=False)

    # the status pair: "Available" as the README says; the current state is marked, not filled like an action
    await expect(clerk.testid("set-available")).to_have_text("Available")
    await expect(clerk.testid("set-away")).to_have_attribute("aria-pressed", "true")
    pressed_bg = await clerk.testid("set-away").evaluate("(b) => getComputedStyle(b).backgroundColor")
    assert pressed_bg in ("rgba(0, 0, 0, 0)", "transparent"), pressed_bg
    await expect(clerk.testid("idle-text")).to_contain_text("Press “Available”")
    # region names, not ids
    await expect(clerk.testid("clerk-regions")).to_have_text("Jiading District")
    # a console opened with its link: the records go through the login page, and the console says why
    await expect(clerk.testid("link-sessions")).to_have_attribute("href", "/login?next=/sessions")
    await expect(clerk.testid("records-note")).to_contain_text("opened with its link")
    await expect(clerk.testid("timezone-note")).to_have_text("Times in Asia/Shanghai")
    await shots(clerk, "trial-idle-away-en")

    await clerk.click("set-available")
    await kiosk.choose("tax")
    await answer_and_connect(kiosk, clerk)

    # the transfer menu opens beside the video without stretching it; picking a field only asks
    video = clerk.page.locator(".vw-clerk-videos")
    before = await video.bounding_box()
    await clerk.click("transfer")
    await expect(clerk.testid("transfer-menu")).to_be_visible()
    after = await video.bounding_box()
    assert before is not None and after is not None and abs(after["height"] - before["height"]) < 1, (before, after)
    await clerk.click("transfer-to-social")
    await expect(clerk.testid("transfer-confirm-text")).to_have_text(
        "Put the visitor through to Social insurance? Your part of the call ends.")
    await shots(clerk, "trial-transfer-confirm-en")
    await clerk.click("transfer-confirm-no")  # nothing happened
    await expect(clerk.testid("transfer-confirm")).to_be_hidden()
    await clerk.expect_state("call")
    await kiosk.expect_state("call")
    await clerk.click("transfer-to-social")
    await clerk.click("transfer-confirm-yes")
    await clerk.expect_wrap_up()
    await kiosk.expect_state("queue")
    ended = dt.datetime.now(SHANGHAI)

    # after a transfer the matter was referred, not completed
    await expect(clerk.testid("wrapup-outcome-referred")).to_be_checked()
    await expect(clerk.testid("wrapup-outcome-completed")).not_to_be_checked()

    # the credit code is checked as typed: a wrong check character is named, never green
    code = clerk.testid("wrapup-credit-code")
    count, check = clerk.testid("wrapup-credit-code-count"), clerk.testid("wrapup-credit-code-check")
    await code.fill("91350100M000100Y44")
    await expect(count).to_have_text("18/18")
    await expect(count).not_to_have_class(re.compile("vw-code-count-full"))
    await expect(check).to_have_text("check character should be 3: a character is probably mistyped")
    await expect(code).to_have_attribute("aria-invalid", "true")
    await shots(clerk, "trial-wrapup-bad-code-en")
    await code.fill("91I")
    await expect(check).to_have_text("“I” (position 3) cannot be in a credit code")
    # full-width, lower case: as a Chinese input method types it
    await code.fill("９１３５０１００ｍ０００１００ｙ４３")
    await expect(check).to_have_text("check character correct")
    await expect(count).to_have_class(re.compile("vw-code-count-full"))
    await expect(code).to_have_attribute("aria-invalid", "false")

    # the recent call's time is the center's (Shanghai), not the browser's (New York)
    summary = await clerk.testid("call-summary").text_content()
    assert summary is not None
    shown = re.match(r"(\d\d):(\d\d)", summary)
    assert shown is not None, summary
    minutes = int(shown[1]) * 60 + int(shown[2])
    expected = ended.hour * 60 + ended.minute
    assert min(abs(minutes - expected), 1440 - abs(minutes - expected)) <= 1, (summary, ended)


async def test_console_in_chinese_after_the_first_trial(harness: Harness, contexts: Contexts) -> None:
    clerk = await contexts.clerk(locale="zh-CN")
    await clerk.start(harness.url, await add_clerk(harness, fields=("tax", "social")), available=False)
    await expect(clerk.testid("set-available")).to_have_text("空闲")
    await expect(clerk.testid("clerk-regions")).to_have_text("嘉定区")
    await expect(clerk.testid("timezone-note")).to_have_text("时间为 Asia/Shanghai 时区")
    await expect(clerk.testid("records-note")).to_contain_text("通过链接打开")
    await assert_accessible(clerk.page, "clerk console idle (zh)")
    await shots(clerk, "trial-idle-away-zh")
    await clerk.click("set-available")
    await clerk.expect_status("available")
    await expect(clerk.testid("set-available")).to_have_attribute("aria-pressed", "true")
    await shots(clerk, "trial-idle-available-zh")
