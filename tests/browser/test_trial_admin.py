"""What the first trial found on the administrator's pages (issue 13), in the real pages on three weeks of
sample history, in Chinese and English, with screenshots at 1920×1080 and 1080×1920
(test-artifacts/screenshots/admin-trial-*.png) and axe on each: the live board's flag for a call nobody
there can take, the session timeline in sentences, a compact follow-up list whose "what" names the matter,
and the statistics (chart in m:ss, "By district and field" whole at 1600 px)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, ViewportSize, expect

from server.cli.seed import seed_history
from server.keys import DB, SETTINGS
from server.records.db import calls, ratings
from tests.browser.pages import SCREENSHOT_DIR, Contexts, add_clerk, add_kiosk
from tests.browser.test_accessibility import ADMIN, assert_accessible
from tests.server.conftest import Harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LANDSCAPE: ViewportSize = {"width": 1920, "height": 1080}
PORTRAIT: ViewportSize = {"width": 1080, "height": 1920}


async def shots(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for label, size in (("1920x1080", LANDSCAPE), ("1080x1920", PORTRAIT)):
        await page.set_viewport_size(size)
        await page.screenshot(path=SCREENSHOT_DIR / f"admin-trial-{name}-{label}.png")
    await page.set_viewport_size(LANDSCAPE)


async def test_admin_pages_after_the_first_trial(harness: Harness, contexts: Contexts) -> None:
    app = harness.server.app
    assert await seed_history(app, app[SETTINGS], harness.identities, days=21, seed=5) > 40
    async with app[DB].connect() as conn:  # a sample call answered, wrapped up and rated
        answered = (await conn.execute(
            sa.select(calls.c.id).where(calls.c.answered_at.is_not(None), calls.c.end_reason == "hangup")
            .join(ratings, ratings.c.call_id == calls.c.id).limit(1))).scalar_one()
    await harness.identities.add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    # a visitor waits for Tax while the only clerk for it is away
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness, name="Away Clerk"), available=False)
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    await kiosk.request("tax", lang="en")

    page = await contexts.new_page("admin", LANDSCAPE)
    base = harness.url.rstrip("/")
    await page.goto(f"{base}/login?next=/admin")
    await page.fill("#username", ADMIN[0])
    await page.fill("#password", ADMIN[1])
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url("**/admin")

    for lang in ("en", "zh"):
        await page.goto(f"{base}/lang/{lang}?next=/admin")
        await page.wait_for_url("**/admin")
        # the live board flags the waiting call that nobody there can take
        flag = page.get_by_test_id("queue-unserved")
        await expect(flag).to_be_visible()
        if lang == "en":
            await expect(flag).to_have_text("1 call: no clerk who can take it is available")
        await assert_accessible(page, f"admin board ({lang})")
        await shots(page, f"board-{lang}")

        # follow-ups: actions folded into a menu, the matter named; many rows fit a screen
        await page.goto(f"{base}/followups?tab=all")
        rows = page.locator('[data-testid="followups"] tbody tr')
        assert await rows.count() >= 10
        visible = await page.evaluate(
            "[...document.querySelectorAll('[data-testid=followups] tbody tr')]"
            ".filter((r) => r.getBoundingClientRect().bottom <= innerHeight).length")
        assert visible >= 8, f"only {visible} follow-up rows fit 1080 px"
        await expect(page.get_by_test_id("followup-matter").first).to_be_visible()
        await expect(page.get_by_test_id("followup-entity").first).to_contain_text(re.compile("[0-9A-Z]{18}"))
        menu = page.get_by_test_id("followup-actions").first
        await expect(menu.locator("textarea")).to_be_hidden()
        await menu.locator("summary").click()
        await expect(menu.locator("textarea")).to_be_visible()
        await assert_accessible(page, f"follow-ups ({lang})")
        await shots(page, f"followups-{lang}")

        # a session's timeline: sentences, no raw codes or raw numbers on show
        await page.goto(f"{base}/sessions/{answered}")
        sentences = page.get_by_test_id("timeline-sentence")
        assert await sentences.count() >= 5
        shown = await page.get_by_test_id("timeline").evaluate("(t) => t.innerText")
        assert "estimated_wait_s" not in shown and "media_connected" not in shown, shown
        assert not re.search(r"\d+\.\d{4,}", shown), shown
        if lang == "en":
            await expect(sentences.first).to_have_text(re.compile(r"^The visitor asked for .+\."))
        else:
            await expect(sentences.first).to_have_text(re.compile(r"^访客"))
        await assert_accessible(page, f"session detail ({lang})")
        await shots(page, f"session-{lang}")

        # statistics: the chart in m:ss; the widest table whole at 1600 px
        await page.set_viewport_size({"width": 1600, "height": 1000})
        await page.goto(f"{base}/stats")
        axis = await page.locator("svg.vw-chart .vw-chart-axis").all_text_contents()
        assert axis and all(re.fullmatch(r"\d+:\d\d", a) for a in axis), axis
        wrap = page.get_by_test_id("stats-rows").locator("xpath=..")
        widths = await wrap.evaluate("(w) => [w.scrollWidth, w.clientWidth]")
        assert widths[0] <= widths[1], f"'By district and field' is cut off at 1600 px: {widths}"
        await assert_accessible(page, f"statistics ({lang})")
        await shots(page, f"stats-{lang}")
