"""Languages in the browser: the kiosk's plural forms through Intl.PluralRules, the visitor's language carried
into the call, and the clerk console in the language the browser asks for or the one picked on the page."""

from __future__ import annotations

from typing import Any

import pytest
from babel.messages.pofile import read_po
from playwright.async_api import expect

from server.web import i18n
from tests.browser.pages import Contexts, add_clerk, add_kiosk
from tests.server.conftest import Harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PLURAL_JS = """
([lang, counts]) => {
  const { tn } = VW.translator(VW.readData('vw-i18n'), () => lang);
  return counts.map((n) => tn('{n} person ahead of you', '{n} people ahead of you', n));
}
"""


async def test_kiosk_plural_forms_follow_each_languages_rule(harness: Harness, contexts: Contexts) -> None:
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    with (i18n.LOCALE_DIR / "ar" / "LC_MESSAGES" / "kiosk.po").open("rb") as fp:
        ar = read_po(fp, locale="ar")
    message = ar.get(("{n} person ahead of you", "{n} people ahead of you"))
    assert message is not None
    forms = [str(f) for f in message.string]
    # one count per Arabic form, read in Chromium from the page's own catalog: zero, one, two, few, many, other
    counts = [0, 1, 2, 3, 11, 100]
    shown: list[Any] = await kiosk.page.evaluate(PLURAL_JS, ["ar", counts])
    by_index = {i18n.plural_categories(ar)[i]: form for i, form in enumerate(forms)}
    expected = [by_index[c].replace("{n}", str(n)) for c, n in zip(
        ["zero", "one", "two", "few", "many", "other"], counts, strict=True)]
    assert shown == expected and len(set(shown)) == 6
    assert await kiosk.page.evaluate(PLURAL_JS, ["en", [1, 2]]) == ["1 person ahead of you", "2 people ahead of you"]
    assert await kiosk.page.evaluate(PLURAL_JS, ["zh", [1, 5]]) == ["您前面还有 1 位", "您前面还有 5 位"]


async def test_the_visitors_language_is_carried_into_the_call(harness: Harness, contexts: Contexts) -> None:
    clerk = await contexts.clerk(locale="zh-CN")
    await clerk.start(harness.url, await add_clerk(harness), available=False)
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    await kiosk.request("tax", lang="ar")
    await expect(kiosk.page.locator("html")).to_have_attribute("dir", "rtl")
    # the only clerk is away: the honest notice, in Arabic
    await expect(kiosk.testid("wait-title")).to_have_text("لا يوجد موظف متاح الآن")
    await expect(kiosk.testid("queue-position-text")).to_have_text("أنت التالي")
    await clerk.click("set-available")
    await clerk.expect_state("ringing")
    await expect(clerk.testid("ring-language")).to_have_text("阿拉伯语")  # the visitor's language, in Chinese


async def test_clerk_console_speaks_the_browsers_language_and_switches(harness: Harness, contexts: Contexts) -> None:
    clerk = await contexts.clerk(locale="zh-CN")
    await clerk.start(harness.url, await add_clerk(harness), available=False)
    page = clerk.page
    await expect(page.locator("html")).to_have_attribute("lang", "zh")
    await expect(page.locator("h1")).to_have_text("虚拟窗口 · 坐席工作台")
    await expect(clerk.testid("status")).to_have_text("离开")  # drawn by clerk.js from the catalog
    await expect(clerk.testid("set-available")).to_have_text("空闲")

    await clerk.click("lang-switch-en")
    await clerk.expect_state("idle")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(clerk.testid("status")).to_have_text("Away")
    await expect(clerk.testid("set-available")).to_have_text("Available")  # as the README says: press **Available**
    # the choice is kept in a cookie, over the browser's Chinese
    await page.reload()
    await clerk.expect_state("idle")
    await expect(page.locator("h1")).to_have_text("Virtual Windows · clerk console")
