"""Accessibility of the real pages: axe-core (vendored) finds no moderate, serious or critical violation, the
kiosk's touch targets are big enough for a finger, and Arabic mirrors the kiosk page.

axe is injected into the page under test from ``client/static/vendor/axe.min.js`` (nothing from the internet)
and run on the whole document as it is shown: the kiosk idle screen in English and Arabic, the kiosk queue
screen, the clerk console (idle), the login page and the administrator's board.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.pages import CLERK_VIEWPORT, Contexts, KioskPage, add_clerk, add_kiosk
from tests.server.conftest import Harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

AXE_JS = Path(__file__).resolve().parents[2] / "client" / "static" / "vendor" / "axe.min.js"
AXE_URL = "/static/vendor/axe.min.js"
BLOCKING_IMPACTS = ("moderate", "serious", "critical")
MIN_TARGET_PX = 48  # the kiosk's minimum touch target, in CSS pixels

ADMIN = ("admin", "correct horse battery staple")

# Every visible control that a finger can tap: its test id (or tag) and its bounding box.
TOUCH_TARGETS_JS = """
() => [...document.querySelectorAll('button, a[href], [role="button"], input:not([type="hidden"]), textarea')]
  .filter((el) => {
    const style = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
  })
  .map((el) => {
    const r = el.getBoundingClientRect();
    return { target: el.dataset.testid || el.id || el.tagName.toLowerCase(), width: r.width, height: r.height };
  })
"""


async def axe_violations(page: Page, where: str) -> list[dict[str, Any]]:
    """Run axe on the page as it is; return its moderate, serious and critical violations, printing them."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        # the pages' CSP (script-src 'self') refuses an inline script, so not path=: the app serves the same
        # vendored file from its own origin
        assert AXE_JS.is_file(), f"{AXE_JS} is missing (see client/static/vendor/README.md)"
        await page.add_script_tag(url=AXE_URL)
    results = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    blocking = [v for v in results["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    for violation in blocking:
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
        print(f"[{where}] {violation['impact']} {violation['id']}: {violation['help']} -> {targets}")
        for node in violation["nodes"][:3]:
            print(f"    {node.get('failureSummary', '')}".replace("\n", "\n    "))
    return blocking


async def assert_accessible(page: Page, where: str) -> None:
    blocking = await axe_violations(page, where)
    assert not blocking, f"{where}: axe found moderate/serious/critical violations: " + "; ".join(
        f"{v['id']} ({v['help']}) at {[' '.join(map(str, n['target'])) for n in v['nodes']]}" for v in blocking
    )


async def assert_touch_targets(page: Page, where: str) -> None:
    targets = await page.evaluate(TOUCH_TARGETS_JS)
    assert targets, f"{where}: no visible controls found"
    small = [t for t in targets if t["width"] < MIN_TARGET_PX or t["height"] < MIN_TARGET_PX]
    assert not small, f"{where}: touch targets smaller than {MIN_TARGET_PX}x{MIN_TARGET_PX} px: {small}"


async def box(page: Page, testid: str) -> dict[str, float]:
    found = await page.get_by_test_id(testid).bounding_box()
    assert found is not None, f"{testid} is not shown"
    return {"x": found["x"], "y": found["y"], "width": found["width"], "height": found["height"]}


async def test_kiosk_idle_and_queue_are_accessible(harness: Harness, contexts: Contexts) -> None:
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    await kiosk.language("en")
    await assert_accessible(kiosk.page, "kiosk idle (en)")
    await kiosk.language("ar")
    await assert_accessible(kiosk.page, "kiosk idle (ar)")

    # a clerk for Tax who is away: the visitor waits in the queue
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness), available=False)
    await kiosk.request("tax", lang="en")
    await kiosk.expect_state("queue")
    await expect(kiosk.testid("queue-position")).to_have_text("1")
    await assert_accessible(kiosk.page, "kiosk queue")
    await assert_accessible(clerk.page, "clerk console idle")


async def test_kiosk_touch_targets_are_finger_sized(harness: Harness, contexts: Contexts) -> None:
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    for lang in ("en", "ar"):
        await kiosk.language(lang)
        await assert_touch_targets(kiosk.page, f"kiosk idle ({lang})")

    # no clerk serves Tax at all: the kiosk offers a call back, whose screen has the phone keypad
    await kiosk.language("en")
    await kiosk.choose("tax")
    await kiosk.expect_state("error")
    await expect(kiosk.testid("callback-offer")).to_be_visible()
    await assert_touch_targets(kiosk.page, "kiosk no-clerk notice")
    await kiosk.click("callback-offer")
    await kiosk.expect_state("callback")
    await expect(kiosk.testid("keypad")).to_be_visible()
    await assert_touch_targets(kiosk.page, "kiosk callback keypad")
    await assert_accessible(kiosk.page, "kiosk callback keypad")


async def test_arabic_mirrors_the_kiosk_page(harness: Harness, contexts: Contexts) -> None:
    kiosk: KioskPage = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    await kiosk.language("en")
    assert await kiosk.page.evaluate("document.documentElement.dir") == "ltr"
    name_en, langs_en = await box(kiosk.page, "kiosk-name"), await box(kiosk.page, "languages")
    assert name_en["x"] + name_en["width"] <= langs_en["x"], "en: the kiosk name is left of the language buttons"

    await kiosk.language("ar")
    assert await kiosk.page.evaluate("document.documentElement.dir") == "rtl"
    name_ar, langs_ar = await box(kiosk.page, "kiosk-name"), await box(kiosk.page, "languages")
    assert langs_ar["x"] + langs_ar["width"] <= name_ar["x"], "ar: the kiosk name is right of the language buttons"
    # the header is mirrored, not just reordered: each block moves to the other edge
    assert name_ar["x"] > name_en["x"]
    assert langs_ar["x"] < langs_en["x"]
    assert await kiosk.page.evaluate("getComputedStyle(document.body).direction") == "rtl"


async def test_login_and_admin_board_are_accessible(harness: Harness, contexts: Contexts) -> None:
    await harness.identities.add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    page = await contexts.new_page("admin", CLERK_VIEWPORT)
    await page.goto(f"{harness.url.rstrip('/')}/login?next=/admin")
    await expect(page.get_by_test_id("login-submit")).to_be_visible()
    await assert_accessible(page, "login page")

    await page.fill("#username", ADMIN[0])
    await page.fill("#password", ADMIN[1])
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url("**/admin")
    await expect(page.locator("main")).to_be_visible()
    await assert_accessible(page, "admin board")
