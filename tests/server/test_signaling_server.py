"""Socket-level tests: python-socketio clients against the real app on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from typing import Any

import aiohttp
import pytest
import socketio

from server.keys import RECORDS
from server.live.liveboard import board_of
from signaling import messages
from tests.server.conftest import ENGLISH, EVENT_TIMEOUT, Harness, HarnessFactory, Peer, login_cookie

JIADING_PARK = "sh/jiading/xincheng/park-3"


async def place_call(kiosk: Peer, field: str = "tax", language: str = "en") -> str:
    request: dict[str, object] = {"field": field, "language": language}
    if field == "market":  # config/fields.toml records every market call: the visitor accepts the notice
        request["recording_consent"] = True
    ack = await kiosk.ok("request_call", request)
    return str(ack["call_id"])


async def connect_call(kiosk: Peer, clerk: Peer, field: str = "tax") -> str:
    call_id = await place_call(kiosk, field)
    ring = await clerk.next("ring")
    assert ring["call_id"] == call_id
    await clerk.ok("accept", {"call_id": call_id})
    assert (await kiosk.next("matched"))["role"] == "offerer"
    assert (await clerk.next("matched"))["role"] == "answerer"
    return call_id


async def test_refuses_missing_and_unknown_tokens(harness: Harness) -> None:
    for auth in (None, {}, {"token": 5}, {"token": "not-a-token"}):
        client = socketio.AsyncClient(reconnection=False)
        refusals: list[Any] = []
        client.on("connect_error", refusals.append, namespace="/kiosk")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(harness.url, namespaces=["/kiosk"], auth=auth, transports=["websocket"],
                                 wait_timeout=5)
        assert refusals and refusals[0]["data"]["code"] == "unauthorized", refusals
        assert "token" in refusals[0]["message"]
        await client.disconnect()


async def test_a_clerk_in_a_region_the_tree_lacks_is_refused_after_connecting(harness: Harness) -> None:
    _, token = await harness.identities.add_clerk("Lost", ["tax"], ["sh/nowhere"], ["en"])
    lost = Peer(harness.url, "/clerk", token)
    harness.peers.append(lost)
    await lost.connect()
    refused = messages.decode(messages.Refused, await lost.next("refused"))
    assert refused.code == "unknown_region" and "sh/nowhere" in refused.message
    for _ in range(50):  # then the server closes the connection
        if not lost.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not lost.sio.connected and lost.pending("welcome") == []


async def test_revoked_kiosk_cannot_connect(harness: Harness) -> None:
    kiosk, token = await harness.identities.add_kiosk("K", JIADING_PARK)
    assert await harness.identities.revoke(kiosk.id)
    peer = Peer(harness.url, "/kiosk", token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect()


async def test_welcome_names_kiosk_region_and_fields(harness: Harness) -> None:
    _, token = await harness.identities.add_kiosk("Science Park window", JIADING_PARK)
    peer = Peer(harness.url, "/kiosk", token)
    await peer.connect()
    welcome = await peer.next("welcome")
    harness.peers.append(peer)
    assert welcome["kiosk"]["name"] == "Science Park window"
    assert welcome["kiosk"]["region"] == JIADING_PARK
    assert {f["id"] for f in welcome["fields"]} == {"market", "tax", "social", "housing"}
    assert welcome["languages"] == ["zh", "en", "ar"]


async def test_routes_by_field_and_region(harness: Harness) -> None:
    putuo_tax = await harness.clerk(fields="tax", regions="sh/putuo", name="Putuo tax")
    jiading_market = await harness.clerk(fields="market", regions="sh/jiading", name="Jiading market")
    jiading_tax = await harness.clerk(fields="tax", regions="sh/jiading", name="Jiading tax")
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk, "tax")
    ring = await jiading_tax.next("ring")
    assert ring["call_id"] == call_id
    assert ring["field"] == "tax" and ring["region"] == JIADING_PARK and ring["ring"] == 0
    assert (await kiosk.next("ringing"))["call_id"] == call_id
    assert putuo_tax.pending("ring") == [] and jiading_market.pending("ring") == []


async def test_full_call_relays_signals_and_hangs_up(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0 offer"}}
    await kiosk.ok("signal", offer)
    assert await clerk.next("signal") == offer
    cand = {"call_id": call_id, "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                                              "sdpMid": "0", "sdpMLineIndex": 0}}
    await clerk.ok("signal", cand)
    assert await kiosk.next("signal") == cand
    await kiosk.ok("media_connected", {"call_id": call_id})
    await clerk.ok("media_connected", {"call_id": call_id})
    await clerk.ok("hangup", {"call_id": call_id})
    assert await kiosk.next("call_ended") == {"call_id": call_id, "reason": "hangup", "by": "clerk"}
    assert await clerk.next("call_ended") == {"call_id": call_id, "reason": "hangup", "by": "clerk", "wrap_up": True}
    await clerk.next_where("status", lambda s: s["status"] == "wrap_up")
    # the call is gone: signalling in it is refused
    bad = await kiosk.call("signal", offer)
    assert bad["error"]["code"] == "no_such_call"


async def test_matched_carries_peer_identity_and_ice(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(ice_servers=[{"urls": ["turn:127.0.0.1:3478"]}, {"urls": "stun:127.0.0.1:3478"}],
                                    turn_secret="s3cret", turn_ttl_s=600)
    clerk = await harness.clerk(name="Wang Li")
    kiosk = await harness.kiosk(name="Park 3 window")
    call_id = await place_call(kiosk)
    await clerk.next("ring")
    answered_at = harness.clock.now()
    await clerk.ok("accept", {"call_id": call_id})
    km, cm = await kiosk.next("matched"), await clerk.next("matched")
    assert km["peer"] == {"name": "Wang Li", "center": "Jiading center"}
    assert cm["peer"]["name"] == "Park 3 window" and cm["peer"]["language"] == "en"
    # coturn's REST API scheme (use-auth-secret): username "<expiry, Unix seconds>:<anything>", password
    # base64(HMAC-SHA1(static-auth-secret, username)); computed here, not with the server's own function
    turn, stun = km["ice_servers"]
    assert turn["urls"] == ["turn:127.0.0.1:3478"]
    expiry, _, who = turn["username"].partition(":")
    assert who == call_id and int(expiry) == int(answered_at + 600)
    digest = hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}  # a STUN server needs no credentials
    assert km["ice_servers"] == cm["ice_servers"]
    assert "ice_transport_policy" not in km and "ice_transport_policy" not in cm  # "all", the default, left out


async def test_stage_widening_with_controlled_clock(harness: Harness) -> None:
    anting = await harness.clerk(regions="sh/jiading/anting", name="Anting")  # same district, other town
    putuo = await harness.clerk(regions="sh/putuo", languages="zh", name="Putuo")  # other district, no English
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk, "tax", "en")
    queued = await kiosk.next("queued")
    assert queued["position"] == 1 and queued["stage"] == 0
    await harness.advance(119)
    assert anting.pending("ring") == []
    await harness.advance(1)  # 120 s: district stage
    ring = await anting.next("ring")
    assert ring["call_id"] == call_id and ring["ring"] == 1
    await anting.ok("decline", {"call_id": call_id})
    await kiosk.next_where("queued", lambda q: q["stage"] == 1)
    await harness.advance(180)  # 300 s: city stage, language relaxed
    ring = await putuo.next("ring")
    assert ring["call_id"] == call_id and ring["ring"] == 2
    assert anting.pending("ring") == []


async def test_ring_timeout_makes_clerk_away_and_requeues(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    await clerk.next("ring")
    await harness.advance(harness.settings.ring_timeout_s)
    assert await clerk.next("ring_ended") == {"call_id": call_id, "reason": "timeout"}
    await clerk.next_where("status", lambda s: s == {"status": "away", "reason": "ring_timeout"})
    queued = await kiosk.next("queued")
    assert queued["call_id"] == call_id and queued["position"] == 1
    # a second clerk coming online gets the call
    other = await harness.clerk(name="Other")
    assert (await other.next("ring"))["call_id"] == call_id


async def test_decline_offers_to_next_clerk_only(harness: Harness) -> None:
    first = await harness.clerk(name="First")
    second = await harness.clerk(name="Second")
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    await first.next("ring")  # longest idle first
    await first.ok("decline", {"call_id": call_id})
    assert await first.next("ring_ended") == {"call_id": call_id, "reason": "declined"}
    assert (await second.next("ring"))["call_id"] == call_id
    await second.ok("decline", {"call_id": call_id})
    await kiosk.next_where("queued", lambda q: q["call_id"] == call_id)
    assert first.pending("ring") == []


async def test_cancel_while_queued_and_while_ringing(harness: Harness) -> None:
    clerk = await harness.clerk(available=False)
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    await kiosk.ok("cancel_call", {"call_id": call_id})
    assert (await kiosk.next("call_ended"))["reason"] == "cancelled"
    await clerk.ok("set_status", {"status": "available"})
    assert clerk.pending("ring") == []
    call_id = await place_call(kiosk)
    await clerk.next("ring")
    await kiosk.ok("cancel_call", {"call_id": call_id})
    assert await clerk.next("ring_ended") == {"call_id": call_id, "reason": "cancelled"}
    await clerk.next_where("status", lambda s: s["status"] == "available")


async def test_cancel_after_answer_is_wrong_state(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    ack = await kiosk.call("cancel_call", {"call_id": call_id})
    assert ack["error"]["code"] == "wrong_state"
    await kiosk.ok("hangup", {"call_id": call_id})
    assert (await clerk.next("call_ended"))["by"] == "visitor"


async def test_visitor_disconnect_ends_call(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    await kiosk.close()
    # a call in progress waits reconnect_grace_s for the kiosk to come back (its media may still flow), then ends
    assert await clerk.next("peer_connection") == {"call_id": call_id, "connected": False,
                                                   "grace_s": harness.settings.reconnect_grace_s}
    await harness.advance(harness.settings.reconnect_grace_s)
    ended = await clerk.next("call_ended")
    assert ended == {"call_id": call_id, "reason": "visitor_disconnected", "by": "visitor", "wrap_up": True}
    await clerk.next_where("status", lambda s: s["status"] == "wrap_up")


async def test_clerk_disconnect_requeues_visitor_with_priority(harness: Harness) -> None:
    clerk = await harness.clerk(name="Dropping")
    waiting_kiosk = await harness.kiosk(name="Waiting")
    kiosk = await harness.kiosk(name="In call")
    call_id = await connect_call(kiosk, clerk)
    older_call = await place_call(waiting_kiosk)
    await clerk.close()
    assert (await kiosk.next("peer_connection"))["connected"] is False  # the clerk may come back until the grace ends
    await harness.advance(harness.settings.reconnect_grace_s)
    queued = await kiosk.next_where("queued", lambda q: q["reason"] == "clerk_disconnected")
    assert queued["call_id"] == call_id and queued["position"] == 1  # ahead of the older waiting call
    rescuer = await harness.clerk(name="Rescuer")
    assert (await rescuer.next("ring"))["call_id"] == call_id
    assert older_call != call_id


async def test_clerk_disconnect_while_ringing_reoffers(harness: Harness) -> None:
    first = await harness.clerk(name="First")
    second = await harness.clerk(name="Second", available=False)
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    await first.next("ring")
    await second.ok("set_status", {"status": "available"})
    await first.close()
    assert (await second.next("ring"))["call_id"] == call_id


async def test_relay_refused_to_non_participants(harness: Harness) -> None:
    clerk = await harness.clerk(name="In call")
    other_clerk = await harness.clerk(name="Other", available=False)
    kiosk = await harness.kiosk(name="Caller")
    intruder = await harness.kiosk(name="Intruder")
    call_id = await connect_call(kiosk, clerk)
    sig = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await intruder.call("signal", sig))["error"]["code"] == "not_participant"
    assert (await other_clerk.call("signal", sig))["error"]["code"] == "not_participant"
    assert (await other_clerk.call("hangup", {"call_id": call_id}))["error"]["code"] == "not_participant"
    assert (await intruder.call("hangup", {"call_id": call_id}))["error"]["code"] == "not_participant"
    unknown = {"call_id": "nope", "description": {"type": "offer", "sdp": "v=0"}}
    assert (await intruder.call("signal", unknown))["error"]["code"] == "no_such_call"
    assert clerk.pending("signal") == [] and kiosk.pending("signal") == []
    # and the real participants still talk
    await kiosk.ok("signal", sig)
    assert await clerk.next("signal") == sig


async def test_signal_before_answer_is_refused(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    await clerk.next("ring")
    sig = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await kiosk.call("signal", sig))["error"]["code"] == "wrong_state"
    assert (await clerk.call("signal", sig))["error"]["code"] == "wrong_state"
    assert (await clerk.call("accept", {"call_id": "missing"}))["error"]["code"] == "no_such_call"


KIOSK_BAD: list[tuple[str, Any, str]] = [
    ("request_call", None, "invalid_payload"),
    ("request_call", "tax", "invalid_payload"),
    ("request_call", [1, 2], "invalid_payload"),
    ("request_call", {"field": 7, "language": "en"}, "invalid_payload"),
    ("request_call", {"field": "tax"}, "invalid_payload"),
    ("request_call", {"field": "tax", "language": "en", "extra": 1}, "invalid_payload"),
    ("request_call", {"field": "x" * 500, "language": "en"}, "invalid_payload"),
    ("request_call", {"field": "astrology", "language": "en"}, "unknown_field"),
    ("request_call", {"field": "tax", "language": "fr"}, "unsupported_language"),
    ("cancel_call", {}, "invalid_payload"),
    ("cancel_call", {"call_id": ""}, "invalid_payload"),
    ("hangup", {"call_id": None}, "invalid_payload"),
    ("signal", {"call_id": "x"}, "invalid_payload"),
    ("signal", {"call_id": "x", "description": {"type": "pranswer", "sdp": "v"}}, "invalid_payload"),
    ("signal", {"call_id": "x", "description": {"type": "offer", "sdp": "v"}, "candidate": {"candidate": ""}},
     "invalid_payload"),
    ("signal", {"call_id": "x", "candidate": {"candidate": "c", "sdpMLineIndex": -1}}, "invalid_payload"),
    ("teleport", {}, "unknown_event"),
    ("set_status", {"status": "available"}, "unknown_event"),
]

CLERK_BAD: list[tuple[str, Any, str]] = [
    ("set_status", {"status": "asleep"}, "invalid_payload"),
    ("set_status", 42, "invalid_payload"),
    ("accept", {"call": "x"}, "invalid_payload"),
    ("decline", {"call_id": "nope"}, "no_such_call"),
    ("request_call", {"field": "tax", "language": "en"}, "unknown_event"),
]


async def test_every_malformed_payload_gets_an_error_and_server_keeps_serving(harness: Harness) -> None:
    kiosk = await harness.kiosk()
    clerk = await harness.clerk(available=False)
    for event, payload, code in KIOSK_BAD:
        ack = await kiosk.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
        assert ack["error"]["message"]
    for event, payload, code in CLERK_BAD:
        ack = await clerk.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
    # two arguments instead of one
    ack = await kiosk.sio.call("request_call", ({"field": "tax"}, 2), namespace="/kiosk", timeout=5)
    assert ack["error"]["code"] == "invalid_payload"
    # the server still serves everybody
    await clerk.ok("set_status", {"status": "available"})
    call_id = await connect_call(kiosk, clerk)
    await kiosk.ok("hangup", {"call_id": call_id})


async def test_request_errors_field_not_served_and_already_in_call(harness: Harness) -> None:
    await harness.clerk(fields="tax", regions="sh/jiading")
    kiosk = await harness.kiosk()
    ack = await kiosk.call("request_call", {"field": "housing", "language": "en"})
    assert ack["error"]["code"] == "field_not_served"
    await place_call(kiosk)
    ack = await kiosk.call("request_call", {"field": "tax", "language": "en"})
    assert ack["error"]["code"] == "already_in_call"


async def test_queue_positions_update_when_someone_leaves(harness: Harness) -> None:
    await harness.clerk(available=False)
    first, second = await harness.kiosk(name="A"), await harness.kiosk(name="B")
    a = await first.ok("request_call", {"field": "tax", "language": "en"})
    b = await second.ok("request_call", {"field": "tax", "language": "zh"})
    assert (a["position"], b["position"]) == (1, 2)
    assert a["estimated_wait_s"] is None  # the only clerk is away: no wait is promised
    await first.ok("cancel_call", {"call_id": a["call_id"]})
    moved = await second.next_where("queued", lambda q: q["position"] == 1)
    assert moved["call_id"] == b["call_id"]


async def test_estimated_wait_is_null_without_clerks_online(harness: Harness) -> None:
    _, token = await harness.identities.add_clerk("Offline", ["tax"], ["sh/jiading"], ["en"])
    kiosk = await harness.kiosk()
    ack = await kiosk.ok("request_call", {"field": "tax", "language": "en"})
    assert ack["state"] == "queued" and ack["estimated_wait_s"] is None
    clerk = Peer(harness.url, "/clerk", token)
    await clerk.connect()
    harness.peers.append(clerk)
    await clerk.ok("set_status", {"status": "available"})
    assert (await clerk.next("ring"))["call_id"] == ack["call_id"]


async def test_no_wait_is_promised_while_every_clerk_who_could_take_the_call_is_away(harness: Harness) -> None:
    clerk = await harness.clerk(available=True)
    first, second = await harness.kiosk(name="A"), await harness.kiosk(name="B")
    a = await first.ok("request_call", {"field": "tax", "language": "en"})
    assert (await clerk.next("ring"))["call_id"] == a["call_id"]
    await clerk.ok("accept", {"call_id": a["call_id"]})
    # the clerk is busy, not away: the next visitor is told a wait
    b = await second.ok("request_call", {"field": "tax", "language": "en"})
    assert b["state"] == "queued" and b["estimated_wait_s"] == harness.settings.default_handle_s
    await first.ok("hangup", {"call_id": a["call_id"]})
    await clerk.ok("set_status", {"status": "away"})  # wrap-up, then away: nobody is there any more
    told = await second.next_where("queued", lambda q: q["estimated_wait_s"] is None)
    assert told["call_id"] == b["call_id"] and told["position"] == 1
    # the live board flags it: a waiting call that no clerk who is there can take
    [queue] = board_of(harness.switch, harness.clock.now())["queues"]
    assert (queue["waiting"], queue["unserved"]) == (1, 1)
    await clerk.ok("set_status", {"status": "available"})  # back: the call rings at once
    assert (await clerk.next("ring"))["call_id"] == b["call_id"]


async def test_second_connection_of_a_clerk_replaces_the_first(harness: Harness) -> None:
    _, token = await harness.identities.add_clerk("Twice", ["tax"], ["sh/jiading"], ["en"])
    first = Peer(harness.url, "/clerk", token)
    dropped = asyncio.Event()
    first.sio.on("disconnect", lambda *_: dropped.set(), namespace="/clerk")
    await first.connect()
    await first.ok("set_status", {"status": "available"})
    second = Peer(harness.url, "/clerk", token)
    await second.connect()
    harness.peers += [first, second]
    welcome = await second.next("welcome")
    assert welcome["status"] == "away"
    await asyncio.wait_for(dropped.wait(), 5)
    await second.ok("set_status", {"status": "available"})
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    assert (await second.next("ring"))["call_id"] == call_id


async def test_going_away_during_a_call_is_refused(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    await connect_call(kiosk, clerk)
    ack = await clerk.call("set_status", {"status": "away"})
    assert ack["error"]["code"] == "wrong_state"


async def test_logged_in_clerk_connects_with_session_cookie_not_admin(harness: Harness) -> None:
    await harness.identities.add_clerk("Console clerk", ["tax"], ["sh/jiading"], ["en"], username="clerk1",
                                       password="correct horse battery")
    await harness.identities.add_user("Admin", "admin", username="boss", password="correct horse battery")
    cookie = await login_cookie(harness.url, "clerk1", "correct horse battery")
    client = socketio.AsyncClient(reconnection=False)
    welcomes: list[Any] = []
    client.on("welcome", welcomes.append, namespace="/clerk")
    await client.connect(harness.url, namespaces=["/clerk"], headers={"Cookie": f"vw_session={cookie}"},
                         transports=["websocket"], wait_timeout=5)
    ack = await client.call("set_status", {"status": "available"}, namespace="/clerk", timeout=5)
    assert ack == {"ok": True, "status": "available"}
    await client.disconnect()
    admin_cookie = await login_cookie(harness.url, "boss", "correct horse battery")
    refused = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(harness.url, namespaces=["/clerk"], headers={"Cookie": f"vw_session={admin_cookie}"},
                              transports=["websocket"], wait_timeout=5)
    await refused.disconnect()


async def test_kiosk_back_within_grace_period_gets_its_place(harness: Harness) -> None:
    await harness.clerk(available=False)
    _, token = await harness.identities.add_kiosk("Flaky", "sh/jiading/xincheng/park-3")
    first = await harness.kiosk(name="First in line")
    flaky = Peer(harness.url, "/kiosk", token)
    await flaky.connect()
    await flaky.next("welcome")
    first_call = await place_call(first)
    call_id = await place_call(flaky)
    assert (await flaky.next_where("queued", lambda q: q["call_id"] == call_id))["position"] == 2
    await flaky.close()
    # meanwhile the visitor ahead leaves, and the held call is offered to no clerk
    await first.ok("cancel_call", {"call_id": first_call})
    back = Peer(harness.url, "/kiosk", token)
    await back.connect()
    harness.peers.append(back)
    welcome = await back.next("welcome")
    assert welcome["call"] == {"call_id": call_id, "field": "tax", "language": "en"}
    queued = await back.next_where("queued", lambda q: q["call_id"] == call_id)
    assert queued["position"] == 1
    await back.ok("cancel_call", {"call_id": call_id})


async def test_kiosk_gone_past_grace_period_ends_its_call(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    assert (await clerk.next("ring"))["call_id"] == call_id
    await kiosk.close()
    ended = await clerk.next("ring_ended")
    assert ended == {"call_id": call_id, "reason": "visitor_disconnected"}
    await harness.advance(harness.settings.reconnect_grace_s)
    assert call_id not in harness.switch.engine.calls
    assert clerk.pending("call_ended") == []  # it never rang through to a call of theirs
    kinds = [e["kind"] for e in await harness.server.app[RECORDS].timeline(call_id)]
    assert kinds[-3:] == ["held", "ring_withdrawn", "ended"]


async def test_revoking_a_connected_clerk_or_kiosk_cuts_it_off(harness: Harness) -> None:
    password = "a long enough password"
    await harness.identities.add_user("Ada Admin", "admin", username="admin", password=password)
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await place_call(kiosk)
    await clerk.next("ring")
    await clerk.ok("accept", {"call_id": call_id})
    [clerk_id] = harness.switch.clerks
    [kiosk_id] = harness.switch.kiosks
    gone = {name: asyncio.Event() for name in ("clerk", "kiosk")}
    clerk.sio.on("disconnect", lambda *_: gone["clerk"].set(), namespace="/clerk")
    kiosk.sio.on("disconnect", lambda *_: gone["kiosk"].set(), namespace="/kiosk")
    cookie = await login_cookie(harness.url, "admin", password)
    async with aiohttp.ClientSession(harness.url, cookies={"vw_session": cookie}, headers=ENGLISH,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await (await http.get("/admin/clerks")).text()
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match is not None
        csrf = match.group(1)
        resp = await http.post(f"/admin/clerks/{clerk_id}/revoke", data={"csrf_token": csrf}, allow_redirects=False)
        assert resp.status == 303
        # the console is cut off at once; the visitor goes back to the front of the queue
        await asyncio.wait_for(gone["clerk"].wait(), EVENT_TIMEOUT)
        queued = await kiosk.next_where("queued", lambda q: q["reason"] == "clerk_disconnected")
        assert queued["call_id"] == call_id and not gone["kiosk"].is_set()
        resp = await http.post(f"/admin/kiosks/{kiosk_id}/revoke", data={"csrf_token": csrf}, allow_redirects=False)
        assert resp.status == 303
        await asyncio.wait_for(gone["kiosk"].wait(), EVENT_TIMEOUT)
    # and neither gets back in with its token
    for peer in (clerk, kiosk):
        again = Peer(harness.url, peer.namespace, peer.token)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await again.connect()
