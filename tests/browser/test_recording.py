"""Recording in the browser: the notice before the call, the consent, the pages' connections to the recorder."""

from __future__ import annotations

import av
import pytest
from playwright.async_api import expect

from server.keys import EVIDENCE
from server.live.recording_desk import RecordingDesk
from tests.browser.pages import Contexts, answer_and_connect, kiosk_and_console
from tests.browser.test_accessibility import assert_accessible
from tests.server.conftest import Harness, HarnessFactory
from tests.server.test_recording_calls import kinds_of

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

RECORDED_S = 60.0  # at most, until the recordings of a call are stored
RECORDED_FRAMES = 90  # video frames each page sends to the recorder before the test hangs up (3 s at 30 fps)

# Polls, inside the page, until its send-only connection (the recorder's) is connected and has encoded
# `minFrames` video frames, or `timeoutMs` pass; resolves to the frames encoded so far.
RECORDER_SENT_JS = """
async ({minFrames, timeoutMs}) => {
  const encoded = async () => {
    let frames = 0;
    for (const pc of window.__vwPeers || []) {
      if (pc.connectionState !== 'connected') continue;
      if (!pc.getTransceivers().every((t) => t.direction === 'sendonly')) continue;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') frames = Math.max(frames, s.framesEncoded || 0);
      }
    }
    return frames;
  };
  const until = Date.now() + timeoutMs;
  let frames = await encoded();
  while (frames < minFrames && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    frames = await encoded();
  }
  return frames;
}
"""


async def recording_harness(harness_factory: HarnessFactory) -> tuple[Harness, RecordingDesk]:
    harness = await harness_factory(recording_workers=1)
    desk = harness.desk
    assert desk is not None
    await desk.start()
    return harness, desk


async def test_the_visitor_accepts_the_notice_and_both_pages_are_recorded(
    harness_factory: HarnessFactory, contexts: Contexts
) -> None:
    harness, desk = await recording_harness(harness_factory)
    kiosk, clerk = await kiosk_and_console(harness, contexts, fields=("market",))

    # the notice comes before the camera starts, in the visitor's language
    for lang in ("zh", "ar", "en"):
        await kiosk.language(lang)
        await kiosk.click("field-market")
        await kiosk.expect_state("consent")
        await expect(kiosk.testid("consent-text")).to_contain_text("180")  # how long the recording is kept
        await expect(kiosk.testid("consent-no")).to_be_hidden()  # market records every call: accept or go back
        await kiosk.shot(f"consent-always-{lang}")
        if lang == "en":
            await assert_accessible(kiosk.page, "kiosk recording notice")
            break
        await kiosk.click("consent-back")
        await kiosk.expect_state("idle")
    await expect(kiosk.testid("consent-title")).to_have_text("This video call is recorded")
    await kiosk.click("consent-yes")
    await answer_and_connect(kiosk, clerk)
    await expect(kiosk.testid("recording")).to_be_visible()
    await expect(clerk.testid("recording")).to_be_visible()
    call_id = next(iter(harness.switch.calls))
    # both pages' recorder connections carry seconds of video before the call ends
    assert desk.recording(call_id)
    for page in (kiosk, clerk):
        sent = await page.page.evaluate(RECORDER_SENT_JS, {"minFrames": RECORDED_FRAMES, "timeoutMs": 30_000})
        assert sent >= RECORDED_FRAMES, f"{page.role} page: {sent} video frames sent to the recorder"
    await kiosk.shot("call-recorded")
    await clerk.shot("call-recorded")
    await kiosk.click("hangup")
    await clerk.expect_wrap_up()

    stored = await desk.wait_finished(call_id, RECORDED_S)
    assert len(stored) == 2
    rows = await harness.server.app[EVIDENCE].for_call(call_id)
    assert sorted(r["participant"] for r in rows) == ["clerk", "visitor"]
    for row in rows:
        path = harness.settings.recordings_root / row["path"]
        with av.open(str(path)) as container:
            assert [s.codec_context.name for s in container.streams.video] == ["vp8"]  # Chromium sent VP8
            assert [s.codec_context.name for s in container.streams.audio] == ["opus"]
            pictures = sum(1 for _ in container.decode(video=0))
        assert pictures >= 20, (row["participant"], pictures)
        assert row["duration_s"] >= 1.5, (row["participant"], row["duration_s"], pictures)
    log = await kinds_of(harness, call_id)
    assert log[0][1]["recording"] == {"policy": "always", "consent": True, "recorded": True}


async def test_the_visitor_declines_and_the_call_goes_on_unrecorded(
    harness_factory: HarnessFactory, contexts: Contexts
) -> None:
    harness, desk = await recording_harness(harness_factory)
    kiosk, clerk = await kiosk_and_console(harness, contexts)
    await kiosk.click("field-tax")
    await kiosk.expect_state("consent")
    await expect(kiosk.testid("consent-title")).to_have_text("May we record this call?")
    await kiosk.shot("consent-ask-en")
    await kiosk.click("consent-no")
    await answer_and_connect(kiosk, clerk)
    await expect(kiosk.testid("recording")).to_be_hidden()
    await expect(clerk.testid("recording")).to_be_hidden()
    assert await kiosk.open_peers() == 1 and await clerk.open_peers() == 1  # no recorder connection
    call_id = next(iter(harness.switch.calls))
    assert not desk.recording(call_id)
    await clerk.click("hangup")
    await clerk.expect_wrap_up()
    log = await kinds_of(harness, call_id)
    assert log[0][1]["recording"] == {"policy": "ask", "consent": False, "recorded": False}
    assert not any(kind.startswith("record") for kind, _ in log)
    assert await harness.server.app[EVIDENCE].for_call(call_id) == []
