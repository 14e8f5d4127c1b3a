"""Reconnect churn and reserved names: one kiosk token connecting again and again while a clerk takes its calls,
and a socket trying to become another kiosk with Socket.IO's own event names."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from typing import Any

import pytest

from tests.server.conftest import Harness, HarnessFactory, Peer, run_sql
from tests.server.rawsocket import RawSocket
from tests.waiting import until

PARK = "sh/jiading/xincheng/park-3"
RECONNECTS = 180
MATTERS = [{"matter_type": "tax-consultation", "outcome": "completed"}]


async def test_rapid_reconnects_of_one_kiosk_leave_no_traceback_and_a_well_ordered_log(
        harness_factory: HarnessFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    # no rate limits: the churn is to reach the core as fast as a client can make it
    # a short grace, so that letting it run out (the clock moved on) leaves rings (20 s) alone
    harness: Harness = await harness_factory(socket_rate_limits=False, reconnect_grace_s=5)
    clerk = await harness.clerk()
    _, token = await harness.identities.add_kiosk("Churning kiosk", PARK)
    acks: list[tuple[str, str, dict[str, Any]]] = []  # (who, event, ack)
    rng = random.Random(11)
    stop = asyncio.Event()

    async def call(peer: Peer, who: str, event: str, data: Any) -> dict[str, Any] | None:
        try:
            ack = await peer.call(event, data)
        except Exception:  # the socket was replaced or closed under it: no answer is owed
            return None
        acks.append((who, event, ack))
        return ack

    async def clerk_loop() -> None:
        while not stop.is_set():
            try:
                ring = await clerk.next("ring", timeout=0.2)
            except TimeoutError:
                continue
            call_id = ring["call_id"]
            ack = await call(clerk, "clerk", "accept", {"call_id": call_id})
            if ack is None or not ack["ok"]:
                continue
            await asyncio.sleep(rng.uniform(0, 0.02))  # let the kiosk churn mid-call, at varied moments
            hung = await call(clerk, "clerk", "hangup", {"call_id": call_id})
            if hung is not None and not hung["ok"]:  # ended by the kiosk meanwhile: wait for the news
                await clerk.next_where("call_ended", lambda e, c=call_id: e["call_id"] == c)
            await call(clerk, "clerk", "wrap_up", {"call_id": call_id, "matters": MATTERS})
            await call(clerk, "clerk", "set_status", {"status": "available"})

    peers: list[Peer] = []

    async def churn() -> None:
        call_id = None
        for i in range(RECONNECTS):
            peer = Peer(harness.url, "/kiosk", token)
            try:
                await peer.connect()
            except Exception:  # a connect that lost the race with the next one: fine
                continue
            peers.append(peer)
            action = rng.random()
            if action < 0.5:
                ack = await call(peer, "kiosk", "request_call", {"field": "tax", "language": "en"})
                if ack is not None and ack["ok"]:
                    call_id = ack["call_id"]
            elif action < 0.6 and call_id is not None:
                await call(peer, "kiosk", "hangup", {"call_id": call_id})
            elif action < 0.7 and call_id is not None:
                await call(peer, "kiosk", "signal", {"call_id": call_id, "candidate": {"candidate": ""}})
            if rng.random() < 0.3:  # closed on purpose now and then; otherwise the next connection replaces it
                await peer.close()
            if i % 20 == 0:
                await harness.advance(harness.settings.reconnect_grace_s + 1)  # graces run out now and then

    clerking = asyncio.create_task(clerk_loop())
    try:
        await churn()
    finally:
        stop.set()
        await clerking
        for p in peers:
            with contextlib.suppress(Exception):
                await p.close()
    await harness.advance(harness.settings.reconnect_grace_s + 1)
    await until(lambda: not harness.switch.kiosks, "the last connection is gone")

    assert len(peers) >= RECONNECTS * 0.9
    assert [a for a in acks if not a[2]["ok"] and a[2]["error"]["code"] == "internal_error"] == []
    assert sum(1 for who, event, a in acks if event == "accept" and a["ok"]) >= 5, "the clerk took calls"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    rows = await run_sql(harness.settings.db_url, "SELECT call_id, kind FROM events WHERE call_id IS NOT NULL "
                                                  "ORDER BY id")
    kinds: dict[str, list[str]] = defaultdict(list)
    for call_id, kind in rows:
        kinds[call_id].append(kind)
    assert len(kinds) >= 10
    for call_id, log in kinds.items():
        assert log[0] == "requested" and log.count("ended") == 1, (call_id, log)
        ended = log.index("ended")
        if "accepted" in log:
            assert log.count("accepted") == 1 and log.index("accepted") < ended, (call_id, log)
        assert all(k in ("wrapped_up", "matter_logged", "rated") for k in log[ended + 1:]), (call_id, log)


async def test_a_reserved_event_name_cannot_switch_a_socket_to_another_kiosk(harness: Harness) -> None:
    await harness.clerk(available=False)  # tax is served
    _, token_a = await harness.identities.add_kiosk("Kiosk A", PARK)
    kiosk_b = await harness.kiosk(name="Kiosk B")
    raw = RawSocket(harness.url, "/kiosk")
    try:
        assert (await raw.connect({"token": token_a})).startswith("40/kiosk,")
        await until(lambda: raw.events["welcome"], "A's welcome")
        await raw.emit(1, "request_call", {"field": "tax", "language": "en"})
        call_a = (await raw.ack(1))["call_id"]
        ids = iter(range(2, 100))
        for frame in (
            raw.event_frame(next(ids), "connect", {}, {"token": kiosk_b.token}),
            raw.event_frame(next(ids), "connect", {"token": kiosk_b.token}),
            raw.event_frame(next(ids), "disconnect", "client namespace disconnect"),
            raw.event_frame(next(ids), "connect_error", {}),
            raw.event_frame(next(ids), "message", {"token": kiosk_b.token}),
            raw.event_frame(None, "connect", {}, {"token": kiosk_b.token}),  # without an ack id
            f'40/kiosk,{{"token":"{kiosk_b.token}"}}',  # a second CONNECT of the namespace
            f'451-/kiosk,{next(ids)}["connect",{{"_placeholder":true,"num":0}},{{"token":"{kiosk_b.token}"}}]',
        ):
            await raw.send(frame)
        await raw.emit(50, "hangup", {"call_id": "nothing"})  # answered after all of the above
        assert (await raw.ack(50))["error"]["code"] == "no_such_call"
        answered = [raw.acks[i] for i in range(2, 8)]
        assert [a["error"]["code"] for a in answered[:5]] == ["unknown_event"] * 5
        assert answered[5]["error"]["code"] == "invalid_payload"  # the binary one
        # still kiosk A: its own call is its to cancel, and kiosk B's connection is untouched
        assert kiosk_b.sio.connected and kiosk_b.pending("welcome") == []
        assert (await kiosk_b.call("hangup", {"call_id": call_a}))["error"]["code"] == "not_participant"
        await raw.emit(51, "cancel_call", {"call_id": call_a})
        assert (await raw.ack(51)) == {"ok": True}
        kiosk_ids = {card.name: kid for kid, (_, card) in harness.switch.kiosks.items()}
        assert set(kiosk_ids) == {"Kiosk A", "Kiosk B"}
        assert len(raw.events["welcome"]) == 1
    finally:
        await raw.close()
