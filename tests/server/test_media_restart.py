"""Socket level: a call's media restart (a new peer connection, ``attempt: 1``) and ``media_failed``."""

from __future__ import annotations

from typing import Any

import pytest

from server.keys import RECORDS
from tests.server.conftest import Harness
from tests.server.test_signaling_server import connect_call, place_call

TAX_MATTER = {"matter_type": "tax-consultation", "outcome": "completed"}


def offer(call_id: str, attempt: int | None = None) -> dict[str, Any]:
    sig: dict[str, Any] = {"call_id": call_id, "description": {"type": "offer", "sdp": f"v=0 offer {attempt}"}}
    if attempt is not None:
        sig["attempt"] = attempt
    return sig


def candidate(call_id: str, attempt: int, port: int) -> dict[str, Any]:
    return {"call_id": call_id, "attempt": attempt,
            "candidate": {"candidate": f"candidate:1 1 udp 1 127.0.0.1 {port} typ host", "sdpMid": "0"}}


async def kinds(harness: Harness, call_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e["kind"], e["actor"], e["data"]) for e in await harness.server.app[RECORDS].timeline(call_id)]


async def test_the_restart_offer_is_relayed_and_logged_and_signals_of_the_old_connection_dropped(
    harness: Harness,
) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    first = offer(call_id)
    assert (await kiosk.ok("signal", first))["relayed"] is True
    assert await clerk.next("signal") == first  # attempt 0 is the default and is left out
    await kiosk.ok("media_connected", {"call_id": call_id})

    # the kiosk replaces its failed connection: a new offer, attempt 1
    restart = offer(call_id, 1)
    assert (await kiosk.ok("signal", restart))["relayed"] is True
    assert await clerk.next("signal") == restart
    # a candidate of the old connection that was on its way: dropped, not an error
    assert (await clerk.ok("signal", candidate(call_id, 0, 1000)))["relayed"] is False
    assert (await kiosk.ok("signal", candidate(call_id, 0, 1001)))["relayed"] is False
    # those of the new one go through (and nothing older came before them)
    assert (await clerk.ok("signal", candidate(call_id, 1, 2000)))["relayed"] is True
    assert await kiosk.next("signal") == candidate(call_id, 1, 2000)
    assert (await kiosk.ok("signal", candidate(call_id, 1, 2001)))["relayed"] is True
    assert await clerk.next("signal") == candidate(call_id, 1, 2001)
    await kiosk.ok("media_connected", {"call_id": call_id})
    await clerk.ok("media_connected", {"call_id": call_id})

    # one restart per call
    again = await kiosk.call("signal", offer(call_id, 2))
    assert again["error"]["code"] == "wrong_state" and "at most 1" in again["error"]["message"], again
    assert clerk.pending("signal") == []

    events = await kinds(harness, call_id)
    assert ("media_restarted", kiosk_actor(events), {"attempt": 1}) in events
    media = [(k, data) for k, _, data in events if k.startswith("media_")]
    assert media == [
        ("media_connected", {"side": "visitor", "attempt": 0}),
        ("media_restarted", {"attempt": 1}),
        ("media_connected", {"side": "visitor", "attempt": 1}),
        ("media_connected", {"side": "clerk", "attempt": 1}),
    ]
    assert (await harness.server.app[RECORDS].verify()).ok


def kiosk_actor(events: list[tuple[str, str, dict[str, Any]]]) -> str:
    return next(actor for kind, actor, _ in events if kind == "requested")


@pytest.mark.parametrize(("event", "payload", "says"), [
    ("signal", {"attempt": 1}, "starts with the kiosk's offer"),  # only the kiosk restarts
    ("signal", {"attempt": 1, "description": {"type": "answer", "sdp": "v=0"}}, "attempt 1 has not started"),
])
async def test_the_clerk_cannot_start_a_restart(harness: Harness, event: str, payload: dict[str, Any],
                                                 says: str) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    sig = {**offer(call_id), **payload}
    ack = await clerk.call(event, sig)
    assert ack["ok"] is False and ack["error"]["code"] == "wrong_state" and says in ack["error"]["message"], ack
    assert kiosk.pending("signal") == []
    assert "media_restarted" not in [k for k, _, _ in await kinds(harness, call_id)]


@pytest.mark.parametrize("reporter", ["kiosk", "clerk"])
async def test_media_failed_ends_the_call_for_both_and_the_clerk_wraps_up(harness: Harness, reporter: str) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    await kiosk.ok("signal", offer(call_id))
    await kiosk.ok("signal", offer(call_id, 1))
    side, other = (kiosk, clerk) if reporter == "kiosk" else (clerk, kiosk)
    by = "visitor" if reporter == "kiosk" else "clerk"

    assert await side.ok("media_failed", {"call_id": call_id}) == {"ok": True}
    assert await kiosk.next("call_ended") == {"call_id": call_id, "reason": "media_failed", "by": by}
    assert await clerk.next("call_ended") == {"call_id": call_id, "reason": "media_failed", "by": by,
                                              "wrap_up": True}
    await clerk.next_where("status", lambda s: s["status"] == "wrap_up")
    # the other side saw the same failure a moment later: the call is already over
    late = await other.call("media_failed", {"call_id": call_id})
    assert late["error"]["code"] == "no_such_call", late

    records = harness.server.app[RECORDS]
    row = await records.call(call_id)
    assert row is not None and (row["end_reason"], row["ended_by"]) == ("media_failed", by)
    ended = [data for kind, _, data in await kinds(harness, call_id) if kind == "ended"]
    assert [d["reason"] for d in ended] == ["media_failed"]
    assert (await records.verify()).ok

    # the clerk logs the matters of the call as after any other ending
    wrap = await clerk.ok("wrap_up", {"call_id": call_id, "matters": [TAX_MATTER]})
    assert wrap["matters"]
    await clerk.next_where("status", lambda s: s["status"] == "available")


async def test_media_failed_is_validated_and_the_server_keeps_serving(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk(name="Caller")
    intruder = await harness.kiosk(name="Intruder")
    # not yet answered: nothing to fail
    call_id = await place_call(kiosk)
    await clerk.next("ring")
    for peer, event_payload, code in [
        (kiosk, {"call_id": call_id}, "wrong_state"),
        (kiosk, {}, "invalid_payload"),
        (kiosk, {"call_id": call_id, "reason": "ice"}, "invalid_payload"),
        (kiosk, "call", "invalid_payload"),
        (kiosk, {"call_id": "nope"}, "no_such_call"),
        (intruder, {"call_id": call_id}, "not_participant"),
        (clerk, {"call_id": call_id}, "wrong_state"),  # rung, not yet accepted
    ]:
        ack = await peer.call("media_failed", event_payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event_payload, ack)
        assert ack["error"]["message"]
    assert kiosk.pending("call_ended") == [] and clerk.pending("call_ended") == []

    # the call goes on normally after all those refusals
    await clerk.ok("accept", {"call_id": call_id})
    await kiosk.next("matched")
    await kiosk.ok("media_failed", {"call_id": call_id})
    assert (await clerk.next("call_ended"))["reason"] == "media_failed"
    await clerk.ok("wrap_up", {"call_id": call_id, "matters": [TAX_MATTER]})
    # and the next visitor is served
    second = await connect_call(intruder, clerk)
    await intruder.ok("signal", offer(second))
    assert await clerk.next("signal") == offer(second)
