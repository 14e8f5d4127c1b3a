"""Limits: an oversize field is refused and the connection stays; past the transport's limit the call survives;
rate limits per kiosk or clerk and event refuse floods early, and a repeated callback request is merged."""

from __future__ import annotations

import asyncio
import collections
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from server.live.limits import ANY_EVENT, CLERK_LIMITS, KIOSK_LIMITS, OTHER, Limit, RateLimiter
from server.live.transport import MAX_MESSAGE_BYTES
from signaling import messages
from signaling.errors import SignalingError
from tests.server.conftest import Harness, Peer, run_sql
from tests.server.rawsocket import RawSocket
from tests.server.test_signaling_server import connect_call
from tests.signaling.test_protocol_doc import code_spans, section_table
from tests.waiting import until


async def test_a_message_of_a_mebibyte_with_an_oversize_field_is_refused_and_the_connection_stays(
        harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    big = {"call_id": call_id, "description": {"type": "offer", "sdp": "v" * (1024 * 1024 - 200)}}
    ack = await kiosk.call("signal", big)
    assert ack["error"]["code"] == "invalid_payload" and "sdp" in ack["error"]["message"]
    assert kiosk.sio.connected
    offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await kiosk.ok("signal", offer))["relayed"] is True
    assert await clerk.next("signal") == offer
    ack = await kiosk.call("rate", {"call_id": call_id, "score": "neutral", "reason": "x" * 100_000})
    assert ack["error"]["code"] == "invalid_payload" and "reason" in ack["error"]["message"]


async def test_past_the_transport_limit_the_socket_closes_and_the_call_goes_on_after_reconnecting(
        harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    huge = {"call_id": call_id, "description": {"type": "offer", "sdp": "v" * (MAX_MESSAGE_BYTES + 1024)}}
    await kiosk.sio.emit("signal", huge, namespace="/kiosk")
    lost = await clerk.next("peer_connection")
    assert lost == {"call_id": call_id, "connected": False, "grace_s": harness.settings.reconnect_grace_s}
    await kiosk.close()
    # the kiosk comes back within the grace period: same call, signaling resumes
    again = Peer(harness.url, "/kiosk", kiosk.token)
    await again.connect()
    harness.peers.append(again)
    welcome = await again.next("welcome")
    assert welcome["call"]["call_id"] == call_id and welcome["call"]["state"] in ("connecting", "active")
    assert welcome["call"]["matched"]["role"] == "offerer"
    assert (await clerk.next("peer_connection"))["connected"] is True
    offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await again.ok("signal", offer))["relayed"] is True
    assert await clerk.next("signal") == offer
    await harness.advance(harness.settings.reconnect_grace_s + 1)  # the old grace passes: the call goes on
    await clerk.ok("hangup", {"call_id": call_id})
    assert (await again.next("call_ended"))["reason"] == "hangup"


# ---------------------------------------------------------------- rate limits


def _rows(harness: Harness, sql: str) -> Any:
    return run_sql(harness.settings.db_url, sql)


async def test_a_kiosk_flooding_callback_requests_leaves_one_follow_up(harness: Harness) -> None:
    kiosk = await harness.kiosk()
    request = {"field": "tax", "language": "en", "phone": "+86 21 1234567"}
    sent = KIOSK_LIMITS[ANY_EVENT].burst - 10  # at once (more would be read at the flood's pace: see below)
    acks = await asyncio.gather(*(kiosk.call("request_callback", request) for _ in range(sent)))
    taken = [a for a in acks if a["ok"]]
    limited = [a["error"] for a in acks if not a["ok"]]
    assert len(taken) == KIOSK_LIMITS["request_callback"].burst
    assert "merged" not in taken[0] and all(a["merged"] is True for a in taken[1:])
    assert {a["followup_id"] for a in taken} == {taken[0]["followup_id"]}
    assert len(limited) == sent - len(taken) and {e["code"] for e in limited} == {"rate_limited"}
    assert all(0 < e["retry_after_s"] <= 60 for e in limited) and "request_callback" in limited[0]["message"]
    assert await _rows(harness, "SELECT count(*) FROM followups") == [(1,)]
    # nothing new, nothing written: the one request is on record once
    assert await _rows(harness, "SELECT kind FROM events WHERE kind LIKE 'callback%'") == [("callback_requested",)]
    # the buckets are the kiosk's, not its connection's: connecting again does not refill them
    await kiosk.close()
    again = Peer(harness.url, "/kiosk", kiosk.token)
    await again.connect()
    harness.peers.append(again)
    ack = await again.call("request_callback", request)
    assert ack["error"]["code"] == "rate_limited"


async def test_request_and_cancel_cycles_stop_at_the_rate_limit(harness: Harness) -> None:
    await harness.clerk(available=False)  # someone serves tax, nobody takes the calls
    kiosk = await harness.kiosk()
    codes = []
    started = time.monotonic()
    for _ in range(1_000):
        ack = await kiosk.call("request_call", {"field": "tax", "language": "en"})
        codes.append(ack["ok"] or ack["error"]["code"])
        if ack["ok"]:
            await kiosk.ok("cancel_call", {"call_id": ack["call_id"]})
    limit = KIOSK_LIMITS["request_call"]
    most = limit.burst + math.ceil((time.monotonic() - started) * limit.per_s)  # the bucket refills meanwhile
    taken = codes.count(True)
    assert limit.burst <= taken <= most and codes.count("rate_limited") == 1_000 - taken
    assert await _rows(harness, "SELECT count(*) FROM calls") == [(taken,)]


async def test_a_flood_of_one_socket_is_refused_while_an_honest_call_goes_through(harness: Harness) -> None:
    _, token = await harness.identities.add_kiosk("Flooder", "sh/jiading/xincheng/park-3")
    flooder = RawSocket(harness.url, "/kiosk")
    assert (await flooder.connect({"token": token})).startswith("40/kiosk,")
    clerk, kiosk = await harness.clerk(), await harness.kiosk()
    n = 50_000
    frames = [flooder.event_frame(i, "hangup", {"call_id": f"c{i}"}) for i in range(n)]

    async def flood() -> None:  # as fast as the socket takes them (a pause now and then: the loop is shared)
        for i, frame in enumerate(frames):
            await flooder.send(frame)
            if i % 100 == 0:
                await asyncio.sleep(0)

    async def honest_call() -> None:
        call_id = await connect_call(kiosk, clerk)
        offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
        assert (await kiosk.ok("signal", offer))["relayed"] is True
        assert await clerk.next("signal") == offer
        await clerk.ok("hangup", {"call_id": call_id})
        assert (await kiosk.next("call_ended"))["reason"] == "hangup"
        await clerk.ok("wrap_up", {"call_id": call_id, "matters": [{"matter_type": "tax-consultation",
                                                                     "outcome": "completed"}]})

    flooding = asyncio.create_task(flood())
    try:
        await until(lambda: any(not a["ok"] and a["error"]["code"] == "rate_limited" for a in flooder.acks.values()),
                    "the flood is refused", timeout_s=30)
        await honest_call()
        codes = collections.Counter(a["error"]["code"] for a in flooder.acks.values())
        assert set(codes) == {"rate_limited", "no_such_call"}, codes
        # the first few hundred taken, the rest refused, and at most the bucket's pace of them answered at all:
        # the flooder's socket is read no faster than that, its packets waiting in its own buffers
        assert codes["no_such_call"] <= KIOSK_LIMITS["*"].burst + 60 * 60
        assert len(flooder.acks) < n // 2
    finally:
        flooding.cancel()
        await flooder.close()


def test_token_buckets_refill_at_their_rate_and_say_when_to_retry() -> None:
    now = [100.0]
    limiter = RateLimiter({ANY_EVENT: Limit(4, 2.0), "ring": Limit(2, 0.5), OTHER: Limit(1, 1.0)}, lambda: now[0])
    limiter.take("a", "ring")
    limiter.take("a", "ring")
    with pytest.raises(SignalingError) as refused:
        limiter.take("a", "ring")
    assert refused.value.code == "rate_limited" and refused.value.retry_after_s == 2.0
    assert "'ring' events: 2 at once, then 1 every 2 s" in refused.value.message
    limiter.take("b", "ring")  # another identity has buckets of its own
    limiter.take("a", "nonsense")  # events without limits of their own share one bucket
    with pytest.raises(SignalingError):
        limiter.take("a", "other nonsense")
    for _ in range(4):
        limiter.take("a", ANY_EVENT)
    with pytest.raises(SignalingError) as refused:
        limiter.take("a", ANY_EVENT)
    assert refused.value.retry_after_s == 0.5
    now[0] += 2.0
    limiter.take("a", "ring")  # one token back after 1 / 0.5 s
    with pytest.raises(SignalingError) as refused:
        limiter.take("a", "ring")
    assert refused.value.retry_after_s == 2.0
    now[0] += 100
    limiter.forget_idle("a")
    limiter.forget_idle("b")
    assert len(limiter) == 0  # full buckets are forgotten


def _limits_in_doc() -> dict[tuple[str, str], tuple[int, float]]:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    found: dict[tuple[str, str], tuple[int, float]] = {}
    for row in section_table(doc, "Rate limits"):
        rate = float(re.match(r"[\d.]+|one a minute", row["a second"]).group(0).replace("one a minute", str(1 / 60)))
        names = code_spans(row["event"]) or {"all events together": [ANY_EVENT],
                                             "an event the namespace does not know": [OTHER]}[row["event"]]
        spaces = ["/kiosk", "/clerk"] if row["namespace"] == "both" else code_spans(row["namespace"])
        for ns in spaces:
            for name in names:
                found[(ns, name)] = (int(row["at once"]), rate)
    return found


def test_the_rate_limits_are_those_of_the_protocol_document() -> None:
    code = {(ns, name): (limit.burst, round(limit.per_s, 6))
            for ns, table in (("/kiosk", KIOSK_LIMITS), ("/clerk", CLERK_LIMITS)) for name, limit in table.items()}
    assert {k: (burst, round(rate, 6)) for k, (burst, rate) in _limits_in_doc().items()} == code
    assert set(KIOSK_LIMITS) == {*messages.KIOSK_IN, ANY_EVENT, OTHER}
    assert set(CLERK_LIMITS) == {*messages.CLERK_IN, ANY_EVENT, OTHER}
