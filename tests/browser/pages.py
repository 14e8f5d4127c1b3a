"""Drivers for the kiosk page and the clerk console, by their data-testid attributes and ``<body data-state>``.

The pages keep their RTCPeerConnection private (inside ``CallPeer``, client/static/shared/peer.js), so each
browser context runs :data:`TRACK_PEERS_JS` before any page script: it subclasses ``window.RTCPeerConnection``
to remember every instance in ``window.__vwPeers``. The pages themselves are not changed; the tests read
``getStats()`` of those connections.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, expect

from server.settings import load_settings
from signaling.catalog import RecordingPolicy

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

KIOSK_VIEWPORT: ViewportSize = {"width": 1280, "height": 800}  # a landscape kiosk screen
CLERK_VIEWPORT: ViewportSize = {"width": 1366, "height": 768}  # a clerk's laptop

STATE_TIMEOUT_MS = 20_000
RECORDING_POLICY = {f.id: f.recording for f in load_settings().catalog}  # as config/fields.toml says
MEDIA_TIMEOUT_MS = 30_000

TRACK_PEERS_JS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native || Native.__vwTracked) return;
  const peers = (window.__vwPeers = []);
  class TrackedPeerConnection extends Native {
    constructor(...args) {
      super(...args);
      peers.push(this);
    }
  }
  TrackedPeerConnection.__vwTracked = true;
  window.RTCPeerConnection = TrackedPeerConnection;
})();
"""

# Polls getStats() of the newest open peer connection of the call, inside the page, until its inbound media passes the
# thresholds or the time is up; resolves to {ok, stats} (the last counters seen, for the failure message).
MEDIA_STATS_JS = """
async ({minFrames, minPackets, timeoutMs}) => {
  const read = async () => {
    const open = (window.__vwPeers || []).filter((pc) => pc.connectionState !== 'closed');
    // the call's own connection, not a send-only one to the server's recorder
    const calls = open.filter((pc) => !pc.getTransceivers().every((t) => t.direction === 'sendonly'));
    const pc = calls[calls.length - 1];
    const out = {
      peers: (window.__vwPeers || []).length, openPeers: open.length,
      connectionState: pc ? pc.connectionState : 'none',
      framesDecoded: 0, frameWidth: 0, frameHeight: 0, videoPackets: 0,
      audioPackets: 0, totalSamplesReceived: 0, localCandidate: '', remoteCandidate: '',
    };
    if (!pc) return out;
    const byId = new Map();
    const stats = await pc.getStats();
    stats.forEach((r) => byId.set(r.id, r));
    stats.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        out.framesDecoded += r.framesDecoded || 0;
        out.frameWidth = Math.max(out.frameWidth, r.frameWidth || 0);
        out.frameHeight = Math.max(out.frameHeight, r.frameHeight || 0);
        out.videoPackets += r.packetsReceived || 0;
      } else if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        out.audioPackets += r.packetsReceived || 0;
        out.totalSamplesReceived += r.totalSamplesReceived || 0;
      } else if (r.type === 'transport' && r.selectedCandidatePairId) {
        const pair = byId.get(r.selectedCandidatePairId);
        const local = pair && byId.get(pair.localCandidateId);
        const remote = pair && byId.get(pair.remoteCandidateId);
        if (local) out.localCandidate = `${local.address || local.ip}:${local.port} ${local.candidateType}`;
        if (remote) out.remoteCandidate = `${remote.address || remote.ip}:${remote.port} ${remote.candidateType}`;
      }
    });
    return out;
  };
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = await read();
    if (stats.framesDecoded >= minFrames && stats.audioPackets >= minPackets && stats.totalSamplesReceived > 0) {
      return { ok: true, stats };
    }
    if (performance.now() > deadline) return { ok: false, stats };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
"""

# True once a <video> shows moving frames (so that a screenshot catches a picture, not a black box).
VIDEO_PLAYING_JS = """
(testid) => {
  const v = document.querySelector(`[data-testid="${testid}"]`);
  return !!v && !v.hidden && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0.2;
}
"""


class Contexts:
    """The browser contexts of one test: each a separate profile (storage, token) with camera and mic granted."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.pages: dict[str, Page] = {}
        self.page_errors: list[str] = []
        self.console: list[str] = []

    async def new_page(
        self, name: str, viewport: ViewportSize, locale: str = "en-US", timezone: str = "Asia/Shanghai"
    ) -> Page:
        """A page in a new context; ``locale`` is the browser's language (its Accept-Language), ``timezone`` the
        browser's time zone."""
        context = await self.browser.new_context(
            permissions=["camera", "microphone"], viewport=viewport, locale=locale, timezone_id=timezone
        )
        await context.add_init_script(TRACK_PEERS_JS)
        self.contexts.append(context)
        page = await context.new_page()
        self.pages[name] = page

        def on_console(message: ConsoleMessage) -> None:
            self.console.append(f"[{name}] {message.type}: {message.text}")

        def on_error(error: Exception) -> None:
            self.page_errors.append(f"[{name}] {error}")

        page.on("console", on_console)
        page.on("pageerror", on_error)
        return page

    async def kiosk(self, name: str = "kiosk") -> KioskPage:
        return KioskPage(await self.new_page(name, KIOSK_VIEWPORT))

    async def clerk(
        self, name: str = "clerk", locale: str = "en-US", timezone: str = "Asia/Shanghai",
        viewport: ViewportSize = CLERK_VIEWPORT,
    ) -> ClerkPage:
        return ClerkPage(await self.new_page(name, viewport, locale, timezone))

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()
        self.contexts.clear()


class AppPage:
    """What the kiosk page and the clerk console have in common."""

    path = ""

    def __init__(self, page: Page, role: str) -> None:
        self.page = page
        self.role = role

    def testid(self, testid: str) -> Any:
        return self.page.get_by_test_id(testid)

    async def open(self, base_url: str, token: str) -> None:
        await self.page.goto(f"{base_url.rstrip('/')}/{self.path}#token={token}")

    async def expect_state(self, state: str, timeout: float = STATE_TIMEOUT_MS) -> None:
        await expect(self.page.locator("body")).to_have_attribute("data-state", state, timeout=timeout)
        await expect(self.testid("state")).to_have_text(state, timeout=timeout)

    async def click(self, testid: str) -> None:
        await self.testid(testid).click(timeout=STATE_TIMEOUT_MS)

    async def media(self, min_frames: int = 10, min_packets: int = 20) -> dict[str, Any]:
        """Wait until the page's peer connection has decoded ``min_frames`` video frames and received audio
        (``min_packets`` RTP packets, with samples); return its inbound counters."""
        result = await self.page.evaluate(
            MEDIA_STATS_JS, {"minFrames": min_frames, "minPackets": min_packets, "timeoutMs": MEDIA_TIMEOUT_MS}
        )
        assert result["ok"], f"{self.role} page: no media within {MEDIA_TIMEOUT_MS} ms: {result['stats']}"
        stats = result["stats"]
        assert isinstance(stats, dict)
        return stats

    async def video_playing(self, testid: str = "remote-video") -> None:
        await self.page.wait_for_function(VIDEO_PLAYING_JS, arg=testid, polling=100, timeout=MEDIA_TIMEOUT_MS)

    async def open_peers(self) -> int:
        """How many of the page's peer connections are not closed."""
        count = await self.page.evaluate(
            "(window.__vwPeers || []).filter((pc) => pc.connectionState !== 'closed').length"
        )
        assert isinstance(count, int)
        return count

    async def shot(self, name: str) -> Path:
        """Save a screenshot as test-artifacts/screenshots/<role>-<name>.png."""
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{self.role}-{name}.png"
        await self.page.screenshot(path=path)
        return path


class KioskPage(AppPage):
    path = "kiosk"

    def __init__(self, page: Page) -> None:
        super().__init__(page, "kiosk")

    async def start(self, base_url: str, token: str) -> None:
        await self.open(base_url, token)
        await self.expect_state("idle")

    async def language(self, lang: str) -> None:
        await self.click(f"lang-{lang}")
        await expect(self.page.locator("html")).to_have_attribute("lang", lang)

    async def choose(self, field: str, consent: bool = False) -> None:
        """Tap ``field``; where its calls are recorded, answer the recording notice (``always``: accept it;
        ``ask``: ``consent``)."""
        await self.click(f"field-{field}")
        policy = RECORDING_POLICY[field]
        if policy is not RecordingPolicy.NEVER:
            await self.expect_state("consent")
            agree = consent or policy is RecordingPolicy.ALWAYS
            await self.click("consent-yes" if agree else "consent-no")

    async def request(self, field: str = "tax", lang: str | None = None) -> None:
        """Pick a language (optionally) and a field; wait until the call is in the queue or ringing."""
        if lang is not None:
            await self.language(lang)
        await self.choose(field)
        await expect(self.page.locator("body")).to_have_attribute(
            "data-state", _one_of("queue", "ringing"), timeout=STATE_TIMEOUT_MS
        )

    async def rate(self, score: str | None) -> None:
        """On the rating screen after an answered call: tap a score and send it, or skip."""
        await self.expect_state("rating")
        if score is None:
            await self.click("rate-skip")
        else:
            await self.click(f"rate-{score}")
            await self.click("rate-send")
        await self.expect_state("thanks")


class ClerkPage(AppPage):
    path = "clerk"

    def __init__(self, page: Page) -> None:
        super().__init__(page, "clerk")

    async def start(self, base_url: str, token: str, available: bool = True) -> None:
        await self.open(base_url, token)
        await self.expect_state("idle")
        await self.expect_status("away")
        if available:
            await self.click("set-available")
            await self.expect_status(_one_of("available", "ringing"))  # a waiting call rings at once

    async def expect_wrap_up(self) -> None:
        """After an answered call: the server puts the clerk in wrap-up and the console shows its form."""
        await self.expect_state("wrap_up")
        await self.expect_status("wrap_up")
        await expect(self.testid("wrapup-form")).to_be_visible()

    async def expect_status(self, status: str | re.Pattern[str], timeout: float = STATE_TIMEOUT_MS) -> None:
        await expect(self.testid("status")).to_have_attribute("data-status", status, timeout=timeout)


def _one_of(*values: str) -> re.Pattern[str]:
    return re.compile("^(" + "|".join(re.escape(v) for v in values) + ")$")


KIOSK_REGION = "sh/jiading/xincheng/park-3"


async def add_kiosk(harness: Any, name: str = "Xincheng Park 3 window") -> str:
    """A kiosk in the Jiading sample region; returns its device token."""
    _, token = await harness.identities.add_kiosk(name, KIOSK_REGION)
    assert isinstance(token, str)
    return token


async def add_clerk(harness: Any, name: str = "Wang Li", fields: tuple[str, ...] = ("tax",)) -> str:
    """A Jiading clerk for ``fields`` who speaks all three kiosk languages; returns the clerk token."""
    _, token = await harness.identities.add_clerk(
        name, list(fields), ["sh/jiading"], ["zh", "en", "ar"], center="Jiading center"
    )
    assert isinstance(token, str)
    return token


async def kiosk_and_console(
    harness: Any, contexts: Contexts, fields: tuple[str, ...] = ("tax",)
) -> tuple[KioskPage, ClerkPage]:
    """A kiosk page on its start screen and an available clerk console for ``fields``."""
    kiosk = await contexts.kiosk()
    await kiosk.start(harness.url, await add_kiosk(harness))
    clerk = await contexts.clerk()
    await clerk.start(harness.url, await add_clerk(harness, fields=fields))
    return kiosk, clerk


async def kiosk_and_clerk_in_call(harness: Any, contexts: Contexts) -> tuple[KioskPage, ClerkPage]:
    """A kiosk page and an available clerk console; the visitor picks Tax, the clerk accepts, media flows."""
    kiosk, clerk = await kiosk_and_console(harness, contexts)
    await kiosk.choose("tax")
    await answer_and_connect(kiosk, clerk)
    return kiosk, clerk


async def answer_and_connect(kiosk: KioskPage, clerk: ClerkPage) -> None:
    """The visitor's call rings at the console; the clerk accepts; both pages get each other's media."""
    await clerk.expect_state("ringing")
    await kiosk.expect_state("ringing")
    await clerk.click("accept")
    await kiosk.expect_state("call")
    await clerk.expect_state("call")
    await kiosk.media()
    await clerk.media()
