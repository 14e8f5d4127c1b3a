"""Two pages call each other on a host whose only network interface is loopback.

Chromium runs with ``--allow-loopback-in-peer-connection`` (tests/browser/conftest.py) so that it gathers
127.0.0.1 and ::1; on this machine it also has other addresses, and the page-to-page call of test_call.py
connects over one of those. Filtering the pages' candidates to loopback ones is not enough to prove loopback:
Linux delivers packets from a socket bound to the host's own address to 127.0.0.1 or ::1, so Chrome pairs its
non-loopback local candidates with the other page's loopback ones (and the other side learns them as
peer-reflexive). So this test starts its own Chromium in a network namespace of its own (``unshare --net``)
whose only interface is ``lo``: the pages reach the test server through a Unix socket forwarded to
127.0.0.1:<port> in there (tests/browser/loopback_host.py), and ICE has nothing but loopback. getStats then
shows the pair on loopback on both ends, and both pages decode the other's video.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, expect

from tests.browser.conftest import CHROMIUM_ARGS, chromium_path
from tests.browser.pages import Contexts, add_clerk, add_kiosk
from tests.browser.rtc_scripts import SELECTED_PAIR_JS
from tests.server.conftest import Harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LOOPBACK = ("127.0.0.1", "::1")
HOST_SCRIPT = Path(__file__).with_name("loopback_host.py")


def unshare_command() -> list[str]:
    """``unshare`` into a new network namespace (with a user namespace when not root), or a loud failure."""
    unshare = shutil.which("unshare")
    command = [unshare, "--net"] if unshare else []
    if unshare and os.geteuid() != 0:
        command.append("--map-root-user")
    probe = subprocess.run([*command, "true"], capture_output=True, text=True) if command else None
    if probe is None or probe.returncode != 0:
        pytest.fail(
            "the loopback-only browser test runs Chromium in a network namespace of its own and cannot create one "
            f"({probe.stderr.strip() if probe else 'unshare (util-linux) is not installed'}); it needs unshare "
            "and either root or unprivileged user namespaces",
            pytrace=False,
        )
    return command


@pytest_asyncio.fixture(loop_scope="session")
async def loopback_browser(browser: Browser, harness: Harness) -> AsyncIterator[Browser]:
    """A Chromium whose only network interface is loopback, talking to ``harness``'s server through a Unix socket."""
    folder = Path(tempfile.mkdtemp(prefix="vw-lo-"))  # short: a Unix socket path has at most 107 bytes
    socket_path = folder / "server.sock"
    assert harness.server.runner is not None and harness.server.port is not None
    site = web.UnixSite(harness.server.runner, str(socket_path))
    await site.start()
    wrapper = folder / "chromium-on-loopback"
    command = [*unshare_command(), sys.executable, str(HOST_SCRIPT), str(harness.server.port), str(socket_path),
               chromium_path()]
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
    wrapper.chmod(0o755)
    isolated = await browser.browser_type.launch(
        executable_path=str(wrapper), headless=True, args=CHROMIUM_ARGS, timeout=60_000
    )
    try:
        yield isolated
    finally:
        await isolated.close()
        await site.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def test_pages_call_each_other_on_a_loopback_only_host(harness: Harness, loopback_browser: Browser) -> None:
    contexts = Contexts(loopback_browser)
    try:
        kiosk = await contexts.kiosk()
        clerk = await contexts.clerk()
        await kiosk.start(harness.url, await add_kiosk(harness))
        await clerk.start(harness.url, await add_clerk(harness))
        await kiosk.choose("tax")
        await clerk.expect_state("ringing")
        await clerk.click("accept")
        await kiosk.expect_state("call")
        await clerk.expect_state("call")

        # video frames are decoded on both sides (and audio received)
        kiosk_in = await kiosk.media()
        clerk_in = await clerk.media()
        for stats in (kiosk_in, clerk_in):
            assert stats["connectionState"] == "connected" and stats["framesDecoded"] >= 10, stats
            assert stats["frameWidth"] > 0 and stats["frameHeight"] > 0, stats
        await kiosk.video_playing("remote-video")
        await clerk.video_playing("remote-video")
        await expect(kiosk.testid("call-note")).to_be_hidden()

        # over a candidate pair on loopback at both ends
        for page in (kiosk, clerk):
            pair = await page.page.evaluate(SELECTED_PAIR_JS)
            print(f"{page.role}: selected pair {pair}")
            assert pair is not None and pair["state"] == "succeeded" and pair["nominated"], pair
            assert pair["local"]["address"] in LOOPBACK and pair["remote"]["address"] in LOOPBACK, pair
        await kiosk.shot("call-on-loopback-only-host")

        await kiosk.click("hangup")
        await clerk.expect_wrap_up()
        await kiosk.rate(None)
        assert not contexts.page_errors, contexts.page_errors
    finally:
        await contexts.close()
