"""What the first trial found on the visitor's screen (issue 13), checked in the real kiosk page in Chinese,
English and Arabic, with screenshots of each changed state at 1920×1080 and 1080×1920
(test-artifacts/screenshots/kiosk-trial-*.png): the kiosk's and the center's names in the visitor's language,
the start screen's service hours and what each field handles, an honest wait screen with the callback offer
while every clerk is away, and the call screen's mute button and timer in a bar that covers nothing of the
clerk's picture."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import ViewportSize, expect

from tests.browser.pages import Contexts, KioskPage
from tests.server.conftest import Harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

KIOSK_NAME = "Demo window, New Town Science Park"  # its zh/ar forms are in config/names.toml
CENTER = "Shanghai city service center"
NAMES = {
    "en": (KIOSK_NAME, CENTER, "Tax consultation", "Nobody who handles Tax is available right now"),
    "zh": ("演示窗口 · 新城科技园", "上海市政务服务中心", "税务咨询", None),
    "ar": ("نافذة العرض التجريبي، مجمع المدينة الجديدة للعلوم", "مركز الخدمات الحكومية لمدينة شنغهاي",
           "استشارة ضريبية", None),
}
LANDSCAPE: ViewportSize = {"width": 1920, "height": 1080}
PORTRAIT: ViewportSize = {"width": 1080, "height": 1920}


async def shots(kiosk: KioskPage, name: str) -> None:
    """The page as it is, at both kiosk screen shapes."""
    for label, size in (("1920x1080", LANDSCAPE), ("1080x1920", PORTRAIT)):
        await kiosk.page.set_viewport_size(size)
        await kiosk.shot(f"trial-{name}-{label}")
    await kiosk.page.set_viewport_size(LANDSCAPE)


async def test_visitor_screens_after_the_first_trial(harness: Harness, contexts: Contexts) -> None:
    _, kiosk_token = await harness.identities.add_kiosk(KIOSK_NAME, "sh/jiading/xincheng/park-3")
    _, clerk_token = await harness.identities.add_clerk(
        "Chen Jing", ["tax"], ["sh/jiading"], ["zh", "en", "ar"], center=CENTER)
    kiosk = await contexts.kiosk()
    await kiosk.page.set_viewport_size(LANDSCAPE)
    await kiosk.start(harness.url, kiosk_token)
    clerk = await contexts.clerk()
    await clerk.start(harness.url, clerk_token, available=False)  # the only clerk for Tax is away

    for lang in ("zh", "ar", "en"):
        kiosk_name, _, matter, _ = NAMES[lang]
        await kiosk.language(lang)
        # the kiosk's name in the visitor's language; the start screen says when clerks answer and what each
        # field handles
        await expect(kiosk.testid("kiosk-name")).to_have_text(kiosk_name)
        await expect(kiosk.testid("service-hours")).to_be_visible()
        await expect(kiosk.testid("field-matters-tax")).to_contain_text(matter)
        await shots(kiosk, f"idle-{lang}")

        # every clerk who could take the call is away: no promised wait, and the callback on offer
        await kiosk.choose("tax")
        await kiosk.expect_state("queue")
        await expect(kiosk.testid("nobody-note")).to_be_visible()
        await expect(kiosk.testid("wait-callback")).to_be_visible()
        await expect(kiosk.testid("estimated-wait")).not_to_contain_text(re.compile("[0-9]"))
        assert await kiosk.testid("estimated-wait").get_attribute("data-seconds") == ""
        if NAMES[lang][3]:
            await expect(kiosk.testid("nobody-note")).to_contain_text(NAMES[lang][3])
            await expect(kiosk.testid("estimated-wait")).not_to_contain_text("minute")
        await shots(kiosk, f"queue-nobody-{lang}")
        if lang != "en":
            await kiosk.click("cancel")
            await kiosk.expect_state("idle")

    # the callback instead of waiting: the call leaves the queue, the keypad comes for the same field
    await kiosk.click("wait-callback")
    await kiosk.expect_state("callback")
    await expect(kiosk.testid("callback-field")).to_have_text("Tax")
    await kiosk.click("callback-cancel")
    await kiosk.expect_state("idle")

    # a clerk is there: once available, the wait is a real one again (and the call rings at once)
    await clerk.click("set-available")
    for lang in ("zh", "ar", "en"):
        _, center, _, _ = NAMES[lang]
        await kiosk.language(lang)
        await kiosk.choose("tax")
        await clerk.expect_state("ringing")
        await clerk.click("accept")
        await kiosk.expect_state("call")
        await kiosk.media()
        await expect(kiosk.testid("peer-name")).to_have_text("Chen Jing")  # no console hints in the name
        await expect(kiosk.testid("peer-center")).to_have_text(center)
        # the timer runs; the controls sit in a bar below the picture, covering nothing of it
        await expect(kiosk.testid("call-timer")).not_to_have_text("0:00", timeout=5000)
        video = await kiosk.testid("remote-video").bounding_box()
        bar = await kiosk.testid("call-controls").bounding_box()
        hangup = await kiosk.testid("hangup").bounding_box()
        assert video and bar and hangup
        assert video["y"] + video["height"] <= bar["y"] + 0.5 and hangup["y"] >= bar["y"], (video, bar, hangup)
        # the visitor's mute: the microphone's track is off while pressed
        await kiosk.click("mute")
        await expect(kiosk.testid("mute")).to_have_attribute("aria-pressed", "true")
        enabled = await kiosk.page.evaluate(
            "(window.__vwPeers || []).filter((pc) => pc.connectionState !== 'closed')"
            ".flatMap((pc) => pc.getSenders()).filter((s) => s.track && s.track.kind === 'audio')"
            ".map((s) => s.track.enabled)")
        assert enabled and not any(enabled), enabled
        await kiosk.video_playing("remote-video")
        await shots(kiosk, f"call-muted-{lang}")
        await kiosk.click("mute")
        await expect(kiosk.testid("mute")).to_have_attribute("aria-pressed", "false")
        await kiosk.click("hangup")
        await kiosk.rate(None)
        await clerk.expect_wrap_up()
        await clerk.page.get_by_test_id("wrapup-matter-type").select_option(index=1)
        await clerk.click("wrapup-submit")
        await clerk.expect_state("idle")
        await clerk.expect_status("available")
        await kiosk.click("back") if await kiosk.testid("back").is_visible() else None
        await kiosk.expect_state("idle", timeout=30_000)
