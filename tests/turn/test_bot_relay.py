"""Bot to bot through a real coturn: a kiosk bot and a clerk bot (aiortc) placed in a call by the real server, both
told ``ice_transport_policy: "relay"`` with the credentials the server minted for the call.

Proof that the media went through the relay, from both ends: each side gathered relayed candidates only, each
nominated a relay-to-relay pair (its own relayed address against the other's), frames arrived, and coturn's own
log counts the bytes it relayed for the call's username. With credentials that coturn refuses (expired, or made
with another secret) no relayed candidate is gathered, nothing connects and the call ends ``media_failed``.
"""

from __future__ import annotations

import time

import pytest

from client.peerlink import RestartTiming
from tests.coturn import TurnServer
from tests.server.conftest import FakeClock
from tests.turn.conftest import HarnessFactory
from tests.turn.relay import PeerUsage, WatchedPeerLink, allocations, bot_call, peer_usage, refusals
from tests.waiting import until

# a refused call is given up after its first connection and the one restart each fail to connect in this time
FAST_GIVE_UP = RestartTiming(connect_timeout_s=3.0, restart_wait_s=6.0)


async def test_bots_talk_through_the_relay(harness_factory: HarnessFactory, turn_server: TurnServer,
                                           watched: list[WatchedPeerLink]) -> None:
    harness = await harness_factory(turn_server)
    started = time.monotonic()
    result = await bot_call(harness, seconds=1.5)
    print(f"relay call: {result.summary()}; whole call {time.monotonic() - started:.2f} s")
    assert result.ok, result.summary()
    assert result.video_frames > 5 and result.audio_frames > 20, result.summary()
    assert result.restarts == 0

    # one connection a side, each offering relayed candidates only, each connected relay to relay
    assert len(watched) == 2, [w.states for w in watched]
    for link in watched:
        assert link.local_types and set(link.local_types) == {"relay"}, link.local_types
        assert "connected" in link.states, link.states
        assert link.pair is not None
        local, remote = link.pair
        assert (local.type, remote.type) == ("relay", "relay"), link.pair
    (kiosk_local, kiosk_remote), (clerk_local, clerk_remote) = (w.pair for w in watched if w.pair)
    assert (kiosk_local.host, kiosk_local.port) == (clerk_remote.host, clerk_remote.port)
    assert (clerk_local.host, clerk_local.port) == (kiosk_remote.host, kiosk_remote.port)

    # coturn's side: every allocation of this call's username has ended (coturn logs its usage then); the two
    # the media used relayed it both ways. (The kiosk's offer also allocates for a second transport, audio and
    # video before BUNDLE is agreed; the answer drops it, unused.)
    assert result.call_id is not None
    call_id = result.call_id

    def all_ended() -> list[PeerUsage]:
        log = turn_server.log()
        usage = peer_usage(log, call_id)
        return usage if len(usage) == len(allocations(log, call_id)) else []

    usage = await until(all_ended, "coturn logs the usage of every allocation of the call", timeout_s=15)
    print("coturn relayed:", usage)
    used = [u for u in usage if u.received_bytes or u.sent_bytes]
    assert len(used) == 2, usage
    for side in used:
        assert side.received_bytes > 20_000 and side.sent_bytes > 20_000, side  # video, not just ICE checks
    assert refusals(turn_server.log(), call_id) == []


@pytest.mark.parametrize("refused", ["expired", "other_secret"])
async def test_a_call_whose_credentials_coturn_refuses_fails(
    harness_factory: HarnessFactory, turn_server: TurnServer, watched: list[WatchedPeerLink], refused: str,
) -> None:
    if refused == "expired":
        harness = await harness_factory(turn_server, turn_ttl_s=60)
        assert isinstance(harness.clock, FakeClock)
        harness.clock.t -= 3600  # the server mints at its time: an hour ago, valid for a minute
    else:
        harness = await harness_factory(turn_server, turn_secret="not the secret coturn has")
    started = time.monotonic()
    result = await bot_call(harness, seconds=0.5, timing=FAST_GIVE_UP, timeout_s=30)
    took = time.monotonic() - started
    print(f"refused ({refused}): {result.summary()}; ended after {took:.2f} s")
    assert not result.ok and result.video_frames == 0 and result.audio_frames == 0, result.summary()
    assert result.ended_reason == "media_failed", result.summary()
    # both sides, first connection and restart alike: no relayed candidate (coturn refused the allocation), so
    # aiortc never starts ICE and never connects (it stays "new": the connect timeout is what notices)
    assert len(watched) == 4, [w.states for w in watched]
    for link in watched:
        assert link.local_types == [], link.local_types
        assert "connected" not in link.states, link.states
    assert result.call_id is not None
    log = turn_server.log()
    assert len(refusals(log, result.call_id)) >= 4, turn_server.log_tail()  # each allocation asked with the secret
    assert allocations(log, result.call_id) == []
