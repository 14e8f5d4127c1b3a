"""How calls end, in real pages: each page must show the right state afterwards.

Hang-up from either side, the clerk declining, the ring timing out (on the server's fake clock), the visitor
cancelling, and a dropped connection (the page closed) on either side.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import HarnessFactory
from tests.browser.pages import Contexts, add_clerk, add_kiosk, kiosk_and_clerk_in_call
from tests.server.conftest import Harness
from tests.waiting import until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_clerk_hangs_up(harness: Harness, contexts: Contexts) -> None:
    kiosk, clerk = await kiosk_and_clerk_in_call(harness, contexts)
    await clerk.click("hangup")
    await clerk.expect_wrap_up()
    await kiosk.expect_state("rating")  # an answered call that ended normally: the visitor may rate it
    assert await kiosk.open_peers() == 0
    assert await clerk.open_peers() == 0
    await clerk.shot("after-hanging-up")
    await kiosk.rate(None)
    await expect(kiosk.testid("thanks-text")).not_to_contain_text("interrupted")


async def test_clerk_declines(harness: Harness, contexts: Contexts) -> None:
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness))
    await kiosk.choose("tax")
    await clerk.expect_state("ringing")
    await kiosk.expect_state("ringing")

    await clerk.click("decline")
    # the clerk stays available and is not rung again for this call; the visitor waits first in line
    await clerk.expect_state("idle")
    await clerk.expect_status("available")
    await expect(clerk.testid("notice")).to_have_text("Call declined; it goes to the next clerk.")
    await kiosk.expect_state("queue")
    await expect(kiosk.testid("queue-position")).to_have_text("1")
    await clerk.shot("after-declining")
    await kiosk.shot("queue-after-decline")


async def test_ring_times_out(harness_factory: HarnessFactory, contexts: Contexts) -> None:
    harness = await harness_factory(ring_timeout_s=15)
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness))
    await kiosk.choose("tax")
    await clerk.expect_state("ringing")
    await kiosk.expect_state("ringing")
    await expect(clerk.testid("ring-countdown")).to_have_attribute("data-seconds", "15")

    await harness.advance(14)  # not yet
    await clerk.expect_state("ringing")
    await harness.advance(2)  # 16 s on the server's clock: the clerk missed the ring
    await clerk.expect_status("away")
    await clerk.expect_state("idle")
    await expect(clerk.testid("notice")).to_be_visible()
    await kiosk.expect_state("queue")
    await expect(kiosk.testid("queue-position")).to_have_text("1")
    await clerk.shot("after-ring-timeout")
    await kiosk.shot("queue-after-ring-timeout")

    # back from the coffee machine: the clerk goes available and the same visitor rings again
    await clerk.click("set-available")
    await clerk.expect_state("ringing")
    await kiosk.expect_state("ringing")


async def test_visitor_cancels_while_queued_and_while_ringing(harness: Harness, contexts: Contexts) -> None:
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness), available=False)

    await kiosk.choose("tax")
    await kiosk.expect_state("queue")
    await kiosk.click("cancel")
    await kiosk.expect_state("idle")
    await until(lambda: not harness.switch.engine.waiting_calls(), "the cancelled call left the queue")
    assert await kiosk.open_peers() == 0

    # the clerk goes available: nothing is left to ring them for
    await clerk.click("set-available")
    await clerk.expect_status("available")
    await clerk.expect_state("idle")
    await clerk.shot("idle-available")

    # the visitor tries again and gives up while the clerk is being rung
    await kiosk.choose("tax")
    await clerk.expect_state("ringing")
    await kiosk.expect_state("ringing")
    await kiosk.click("cancel")
    await kiosk.expect_state("idle")
    await clerk.expect_state("idle")
    await clerk.expect_status("available")
    await expect(clerk.testid("notice")).to_have_text("The visitor cancelled the call.")
    await clerk.shot("after-visitor-cancelled")


async def gone_past_grace(harness: Harness, role: str) -> None:
    """Once the server noticed the participant gone, let its grace period pass."""
    await until(lambda: any(p.role == role for p in harness.switch.absent), f"the server noticed the {role} gone")
    await harness.advance(harness.settings.reconnect_grace_s)


async def test_kiosk_page_closed_during_call(harness: Harness, contexts: Contexts) -> None:
    kiosk, clerk = await kiosk_and_clerk_in_call(harness, contexts)
    await kiosk.page.close()
    # a call in progress waits reconnect_grace_s for the kiosk to come back, then ends
    await gone_past_grace(harness, "kiosk")
    await clerk.expect_wrap_up()
    await expect(clerk.testid("wrapup-call")).to_contain_text("the visitor's connection was lost")
    assert await clerk.open_peers() == 0
    await clerk.shot("after-visitor-dropped")


async def test_kiosk_page_closed_while_ringing(harness: Harness, contexts: Contexts) -> None:
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness))
    await kiosk.choose("tax")
    await clerk.expect_state("ringing")
    await kiosk.page.close()
    await clerk.expect_state("idle")
    await clerk.expect_status("available")
    await expect(clerk.testid("notice")).to_have_text("The visitor left before the call was answered.")


async def test_clerk_console_closed_during_call(harness: Harness, contexts: Contexts) -> None:
    kiosk, clerk = await kiosk_and_clerk_in_call(harness, contexts)
    await clerk.page.close()
    await gone_past_grace(harness, "clerk")
    # the visitor is back at the front of the line, told why, and sees themselves again
    await kiosk.expect_state("queue")
    await expect(kiosk.testid("queue-note")).to_have_text(
        "The clerk's connection was lost. You are back at the front of the line; please wait."
    )
    await expect(kiosk.testid("queue-position")).to_have_text("1")
    assert await kiosk.open_peers() == 0
    await kiosk.video_playing("preview-video")
    await kiosk.shot("queue-after-clerk-dropped")

    # another clerk comes online and takes the call: media flows again on a new peer connection
    other = await contexts.clerk("clerk2")
    await other.start(harness.url, await add_clerk(harness, name="Zhao Min"))
    await other.expect_state("ringing")
    await kiosk.expect_state("ringing")
    await other.click("accept")
    await kiosk.expect_state("call")
    await expect(kiosk.testid("peer-name")).to_have_text("Zhao Min")
    stats = await kiosk.media()
    assert stats["peers"] == 2, stats
    await other.media()


async def test_reloaded_clerk_console_gets_its_wrap_up_back(harness: Harness, contexts: Contexts) -> None:
    kiosk, clerk = await kiosk_and_clerk_in_call(harness, contexts)
    await clerk.click("hangup")
    await clerk.expect_wrap_up()
    call_id = await clerk.testid("wrapup-form").get_attribute("data-call-id")
    assert call_id
    await kiosk.rate(None)
    await clerk.page.reload()  # the token stays in local storage; the page forgot the call
    await expect(clerk.testid("wrapup-form")).to_be_visible(timeout=15000)
    await expect(clerk.testid("wrapup-form")).to_have_attribute("data-call-id", call_id)
    await clerk.shot("wrap-up-after-reload")
