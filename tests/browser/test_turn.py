"""A kiosk page and a clerk console call each other through a real coturn, both forced to relay.

The server hands out a throwaway turnserver (tests/coturn.py) with credentials minted per call and, with
``turn_relay_only``, tells both pages ``ice_transport_policy: "relay"``; the pages pass it to their
RTCPeerConnection. getStats in each page shows that every local candidate is relayed, that the selected pair's
local and remote candidates are relayed, and that media arrived over it; coturn's log counts what it relayed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.pages import ClerkPage, Contexts, KioskPage, add_clerk, add_kiosk, kiosk_and_clerk_in_call
from tests.browser.rtc_scripts import install
from tests.coturn import TurnServer, turn_server
from tests.server.conftest import FakeClock, Harness
from tests.turn.relay import allocations, peer_usage
from tests.waiting import until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

__all__ = ["turn_server"]  # the fixture, for this module

# The call's own connection (not a send-only one to the recorder): its policy, the types of all its local
# candidates, and its selected pair with the bytes that pair received.
RELAY_STATS_JS = """
async () => {
  const open = (window.__vwPeers || []).filter((pc) => pc.connectionState !== 'closed');
  const calls = open.filter((pc) => !pc.getTransceivers().every((t) => t.direction === 'sendonly'));
  const pc = calls[calls.length - 1];
  if (!pc) return null;
  const byId = new Map();
  (await pc.getStats()).forEach((r) => byId.set(r.id, r));
  const out = { policy: pc.getConfiguration().iceTransportPolicy, connectionState: pc.connectionState,
                localTypes: [], pair: null };
  for (const r of byId.values()) {
    if (r.type === 'local-candidate') out.localTypes.push(r.candidateType);
    if (r.type !== 'transport' || !r.selectedCandidatePairId) continue;
    const pair = byId.get(r.selectedCandidatePairId);
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    out.pair = {
      state: pair ? pair.state : '', bytesReceived: pair ? pair.bytesReceived : 0,
      bytesSent: pair ? pair.bytesSent : 0,
      local: local ? { address: local.address, port: local.port, type: local.candidateType,
                       relayProtocol: local.relayProtocol, url: local.url } : null,
      remote: remote ? { address: remote.address, port: remote.port, type: remote.candidateType } : null,
    };
  }
  return out;
}
"""


async def relay_stats(page: KioskPage | ClerkPage) -> dict[str, Any]:
    stats = await page.page.evaluate(RELAY_STATS_JS)
    assert isinstance(stats, dict), f"{page.role}: no call connection"
    return stats


async def test_kiosk_and_console_talk_through_the_relay(harness_factory: Any, contexts: Contexts,
                                                         turn_server: TurnServer) -> None:
    harness: Harness = await harness_factory(ice_servers=turn_server.ice_servers(), turn_secret=turn_server.secret,
                                             turn_relay_only=True)
    started = time.monotonic()
    kiosk, clerk = await kiosk_and_clerk_in_call(harness, contexts)
    print(f"relay call: both pages decode each other {time.monotonic() - started:.2f} s after the kiosk opened")
    kiosk_stats, clerk_stats = await relay_stats(kiosk), await relay_stats(clerk)
    print(f"kiosk {kiosk_stats}\nclerk {clerk_stats}")
    for stats in (kiosk_stats, clerk_stats):
        assert stats["policy"] == "relay" and stats["connectionState"] == "connected", stats
        assert stats["localTypes"] and set(stats["localTypes"]) == {"relay"}, stats
        pair = stats["pair"]
        assert pair is not None and pair["state"] == "succeeded", stats
        assert pair["local"]["type"] == "relay" and pair["remote"]["type"] == "relay", stats
        assert pair["local"]["relayProtocol"] == "udp" and pair["local"]["url"] == turn_server.url, stats
        assert pair["bytesReceived"] > 0 and pair["bytesSent"] > 0, stats
    # each page's relayed address is the other's remote one
    k, c = kiosk_stats["pair"], clerk_stats["pair"]
    assert (k["local"]["address"], k["local"]["port"]) == (c["remote"]["address"], c["remote"]["port"])
    assert (c["local"]["address"], c["local"]["port"]) == (k["remote"]["address"], k["remote"]["port"])

    # the visitor hangs up: Chromium releases its allocations and coturn logs what it relayed for the call
    [call_id] = list(harness.switch.calls)
    await kiosk.click("hangup")
    await kiosk.expect_state("rating")

    def usage() -> Any:
        # coturn logs an allocation's usage when it is released; the two that carried the call are released when
        # the pages close their connections (unused ones may linger until their lifetime runs out)
        found = peer_usage(turn_server.log(), call_id)
        return found if sum(1 for u in found if u.received_bytes > 1_000 and u.sent_bytes > 1_000) >= 2 else None

    relayed = await until(usage, "coturn logs the usage of the call's two relays", timeout_s=30)
    print("coturn relayed:", relayed)
    # (Chromium allocates on more than one interface and keeps the unused relays until it hangs up)
    assert sum(1 for u in relayed if u.received_bytes > 1_000 and u.sent_bytes > 1_000) >= 2, relayed
    assert sum(u.received_bytes for u in relayed) > 50_000, relayed



# Before the page's scripts: every RTCPeerConnection keeps what ICE told it (composes with TRACK_PEERS_JS).
WATCH_ICE_JS = """
() => {
  const Base = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Base {
    constructor(...args) {
      super(...args);
      const log = (this.__vwIce = { errors: [], candidates: [], gathering: [], states: [] });
      this.addEventListener('icecandidateerror', (e) => log.errors.push({ code: e.errorCode, url: e.url }));
      this.addEventListener('icecandidate', (e) => {
        if (e.candidate && e.candidate.candidate) log.candidates.push(e.candidate.type);
      });
      this.addEventListener('icegatheringstatechange', () => log.gathering.push(this.iceGatheringState));
      this.addEventListener('connectionstatechange', () => log.states.push(this.connectionState));
    }
  };
}
"""

# True once the page's call connection has finished gathering after coturn refused it (error 401).
REFUSED_JS = """
() => (window.__vwPeers || []).some((pc) => pc.__vwIce && pc.iceGatheringState === 'complete'
                                            && pc.__vwIce.errors.some((e) => e.code === 401))
"""

ICE_LOGS_JS = """
() => (window.__vwPeers || []).filter((pc) => pc.__vwIce)
  .map((pc) => Object.assign({ connectionState: pc.connectionState }, pc.__vwIce))
"""


@pytest.mark.parametrize("refused", ["expired", "other_secret"])
async def test_credentials_coturn_refuses_leave_the_pages_without_a_relay(
    harness_factory: Any, contexts: Contexts, turn_server: TurnServer, refused: str,
) -> None:
    settings: dict[str, Any] = {"turn_secret": turn_server.secret, "turn_ttl_s": 60}
    if refused == "other_secret":
        settings["turn_secret"] = "not the secret coturn has"
    harness: Harness = await harness_factory(ice_servers=turn_server.ice_servers(), turn_relay_only=True, **settings)
    if refused == "expired":
        assert isinstance(harness.clock, FakeClock)
        harness.clock.t -= 3600  # the server mints at its time: an hour ago, valid for a minute
    kiosk, clerk = await contexts.kiosk(), await contexts.clerk()
    for page in (kiosk, clerk):
        await install(page.page, WATCH_ICE_JS)
    await kiosk.start(harness.url, await add_kiosk(harness))
    await clerk.start(harness.url, await add_clerk(harness))
    await kiosk.choose("tax")
    await clerk.expect_state("ringing")
    await clerk.click("accept")
    for page in (kiosk, clerk):
        # a bounded wait for the event: coturn's 401 as an icecandidateerror, and gathering over
        await page.page.wait_for_function(REFUSED_JS, polling=100, timeout=15_000)
    for page in (kiosk, clerk):
        logs = await page.page.evaluate(ICE_LOGS_JS)
        print(page.role, logs)
        assert len(logs) == 1, logs  # the first attempt; its restart comes only after the 20 s connect timeout
        [log] = logs
        assert log["candidates"] == [], log  # no relayed candidate, and relay is the only kind allowed
        assert log["errors"] and all(e["code"] == 401 and e["url"] == turn_server.url for e in log["errors"]), log
        # nothing to check, so ICE never even starts: the connection stays "new" (the page's connect timeout is
        # what gives up on it, then on its restart, and reports media_failed: tests/turn shows that end with bots)
        assert log["connectionState"] == "new" and "connected" not in log["states"], log
    assert allocations(turn_server.log(), next(iter(harness.switch.calls))) == []
