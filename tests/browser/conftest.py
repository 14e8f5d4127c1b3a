"""Real-browser fixtures: Debian's Chromium driven by Playwright, against the real app on loopback.

One headless Chromium for the whole session (fake camera and microphone, ICE allowed on loopback); each
test gets its own browser contexts (separate storage, so separate kiosk and clerk tokens) and its own server.
Everything runs in one event loop, the session's: Playwright's driver connection, the aiohttp test server and
the aiortc bots.

Playwright's own browser download is not used (it is not reachable here): Chromium comes from Debian
(``apt-get install chromium``, which ``scripts/test`` does when it is missing) and is launched with
``executable_path``. ``VW_CHROMIUM`` names another binary. A missing browser fails the tests, it never
skips them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from rtc.loopback import LoopbackPatch, only_loopback_candidates
from tests.browser.pages import SCREENSHOT_DIR, Contexts
from tests.server.conftest import Harness, start_harness

CHROMIUM = os.environ.get("VW_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    # media: a fake camera (test pattern) and microphone (beeps), no permission prompt
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # ICE: gather 127.0.0.1 as well, so calls connect on a host whose only interface is loopback
    "--allow-loopback-in-peer-connection",
    # a container without user namespaces, no GPU, a closed network: keep Chromium quiet and fast
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The Chromium binary, or a loud failure that says how to get one."""
    found = shutil.which(CHROMIUM)
    if found is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM!r}. The browser tests need Debian's Chromium: run scripts/test "
            "(it installs it), or `apt-get install -y chromium`, or set VW_CHROMIUM to a Chromium binary. "
            "(`playwright install` cannot download its own browser here.)",
            pytrace=False,
        )
    return found


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    # screenshots of an earlier run go (only once there is a browser to take new ones)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOT_DIR.glob("*.png"):
        old.unlink()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so that fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest_asyncio.fixture(loop_scope="session")
async def harness_factory(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Like tests/server's: the real app on 127.0.0.1 with a FakeClock, in the session's event loop."""
    made: list[Harness] = []

    async def make(**overrides: Any) -> Harness:
        harness = await start_harness(tmp_path / f"data{len(made)}", **overrides)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def harness(harness_factory: HarnessFactory) -> Harness:
    return await harness_factory()


@pytest_asyncio.fixture(loop_scope="session")
async def contexts(
    browser: Browser, harness_factory: HarnessFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Contexts]:
    # (harness_factory: the pages are closed before the servers they talk to)
    ctx = Contexts(browser)
    yield ctx
    report = getattr(request.node, "rep_call", None)
    failed = report is not None and report.failed
    if failed:
        # what every page showed when the test failed, and what the pages logged
        for name, page in ctx.pages.items():
            if not page.is_closed():
                await page.screenshot(path=SCREENSHOT_DIR / f"FAILED-{request.node.name}-{name}.png")
        print("\n".join(["--- browser console ---", *ctx.console[-200:]]))
    await ctx.close()
    if ctx.page_errors and not failed:
        pytest.fail("uncaught errors in the pages:\n" + "\n".join(ctx.page_errors), pytrace=False)


@pytest.fixture
def bots_on_loopback_only() -> Iterator[LoopbackPatch]:
    """aioice gathers 127.0.0.1 and nothing else during the test: the bot's end of a call is on loopback, as on
    a host whose only interface is loopback."""
    with only_loopback_candidates() as patch:
        yield patch
