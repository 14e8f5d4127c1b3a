"""An administrator plays a call's two recordings side by side in Chromium: one control, kept in sync.

The recordings are real WebM files (VP8 and Opus, made with PyAV), stored through the app's RecordingStore
for a call made through the real records; the clerk's recorder started 1.5 s after the visitor's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.async_api import Page, expect

from server.keys import EVIDENCE, RECORDS
from tests.browser.pages import CLERK_VIEWPORT, SCREENSHOT_DIR, Contexts
from tests.browser.test_accessibility import assert_accessible
from tests.server.conftest import Harness
from tests.server.recording_media import make_recording
from tests.server.test_admin import JIADING, JIADING_PARK, add_call
from tests.waiting import until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ADMIN = ("admin", "correct horse battery staple")
CLERK_OFFSET_S = 1.5
SYNC_TOLERANCE_S = 0.5  # playback.js corrects a drift above 0.3 s on its next 100 ms tick
PLAY_TIMEOUT_MS = 30_000

# Where each video is on the shared timeline (its own position plus its offset), read in one go.
POSITIONS_JS = """
() => {
  const v = document.querySelector('[data-testid="video-visitor"]');
  const c = document.querySelector('[data-testid="video-clerk"]');
  return {
    visitor: v.currentTime, clerk: c.currentTime,
    visitorAt: v.currentTime + parseFloat(v.dataset.offset), clerkAt: c.currentTime + parseFloat(c.dataset.offset),
    clerkOffset: parseFloat(c.dataset.offset), visitorOffset: parseFloat(v.dataset.offset),
    visitorPaused: v.paused, clerkPaused: c.paused, visitorReady: v.readyState, clerkReady: c.readyState,
  };
}
"""

BOTH_PLAYING_JS = """
([visitorMin, clerkMin]) => {
  const v = document.querySelector('[data-testid="video-visitor"]');
  const c = document.querySelector('[data-testid="video-clerk"]');
  return !v.paused && !c.paused && v.currentTime > visitorMin && c.currentTime > clerkMin && c.videoWidth > 0;
}
"""

IN_SYNC_JS = """
(tolerance) => {
  const v = document.querySelector('[data-testid="video-visitor"]');
  const c = document.querySelector('[data-testid="video-clerk"]');
  const delta = (v.currentTime + parseFloat(v.dataset.offset)) - (c.currentTime + parseFloat(c.dataset.offset));
  return !c.seeking && Math.abs(delta) < tolerance;
}
"""


async def positions(page: Page) -> dict[str, Any]:
    found = await page.evaluate(POSITIONS_JS)
    assert isinstance(found, dict)
    return found


async def test_admin_plays_both_recordings_in_sync(harness: Harness, contexts: Contexts) -> None:
    app = harness.server.app
    admin, _ = await harness.identities.add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    clerk, _ = await harness.identities.add_user("Wang Li", "clerk", fields=["market"], regions=[JIADING],
                                                 languages=["zh"])
    base = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    call_id = await add_call(app, region=JIADING_PARK, field_id="market", clerk=clerk,
                             requested_at=(base - dt.timedelta(seconds=40)).timestamp(), wait_s=30)
    root = harness.settings.recordings_root
    visitor = make_recording(root, call_id=call_id, participant="visitor", started_at=base, seconds=8)
    clerk_rec = make_recording(root, call_id=call_id, participant="clerk", shade=110, seconds=6,
                               started_at=base + dt.timedelta(seconds=CLERK_OFFSET_S))
    ids = [await app[EVIDENCE].add(visitor), await app[EVIDENCE].add(clerk_rec)]

    page = await contexts.new_page("admin", CLERK_VIEWPORT)
    await page.goto(f"{harness.url.rstrip('/')}/login?next=/sessions/{call_id}")
    await page.fill("#username", ADMIN[0])
    await page.fill("#password", ADMIN[1])
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"**/sessions/{call_id}")
    await expect(page.get_by_test_id("video-visitor")).to_be_visible()
    await expect(page.get_by_test_id("video-clerk")).to_be_visible()
    start = await positions(page)
    assert start["visitorOffset"] == 0 and abs(start["clerkOffset"] - (clerk_rec.started_at - visitor.started_at)
                                                .total_seconds()) < 0.01
    assert abs(start["clerkOffset"] - CLERK_OFFSET_S) < 0.05
    assert start["visitorReady"] == 0 and start["clerkReady"] == 0  # nothing loaded before Play
    await assert_accessible(page, "session detail with recordings")

    # Play from the keyboard: both advance, the clerk's video 1.5 s behind on its own clock, aligned on the timeline
    await page.get_by_test_id("play").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("play")).to_have_text("Pause")
    await page.wait_for_function(BOTH_PLAYING_JS, arg=[CLERK_OFFSET_S + 1.0, 1.0], polling=50,
                                 timeout=PLAY_TIMEOUT_MS)
    now = await positions(page)
    assert abs(now["visitorAt"] - now["clerkAt"]) < SYNC_TOLERANCE_S, now
    assert now["visitor"] > now["clerk"] + CLERK_OFFSET_S - SYNC_TOLERANCE_S, now
    await page.screenshot(path=SCREENSHOT_DIR / "admin-playback.png")

    # a drift (here: the clerk's video pushed 2 s ahead) is corrected
    await page.evaluate("document.querySelector('[data-testid=\"video-clerk\"]').currentTime += 2")
    await page.wait_for_function(IN_SYNC_JS, arg=0.35, polling=50, timeout=5_000)

    # one control pauses both
    await page.get_by_test_id("play").click()
    await expect(page.get_by_test_id("play")).to_have_text("Play")
    paused = await positions(page)
    assert paused["visitorPaused"] and paused["clerkPaused"], paused

    # each recording's playback is logged once, with who played it
    async def played() -> list[dict[str, Any]]:
        return [e for e in await app[RECORDS].timeline(call_id) if e["kind"] == "recording_played"]

    events = await until(lambda: _both(played(), ids), "both playbacks are in the event log")
    assert all(e["actor"] == f"user:{admin.id}" and e["data"]["name"] == "Ada Admin" for e in events), events
    assert (await app[RECORDS].verify()).ok

    # a narrow screen stacks the videos
    await page.set_viewport_size({"width": 420, "height": 900})
    top = await page.get_by_test_id("video-visitor").bounding_box()
    below = await page.get_by_test_id("video-clerk").bounding_box()
    assert top is not None and below is not None
    assert below["y"] >= top["y"] + top["height"], (top, below)
    await page.get_by_test_id("player").scroll_into_view_if_needed()
    await page.screenshot(path=SCREENSHOT_DIR / "admin-playback-narrow.png")

    # seeking and the drift correction asked for other ranges: still one playback logged per recording
    assert sorted(e["data"]["recording_id"] for e in await played()) == sorted(ids), await played()


async def _both(events: Any, ids: list[int | None]) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] = await events
    return found if {e["data"]["recording_id"] for e in found} == set(ids) else None
