"""The one writer, through the real app: commands whole or not at all, in order, with the real timer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from server.keys import RECORDS
from signaling.effects import CallEvent, Record
from tests.server.conftest import EVENT_TIMEOUT, Harness, HarnessFactory
from tests.server.test_signaling_server import place_call
from tests.waiting import until


class GatedCommit:
    """Holds the transaction of the first commit whose records include ``kind`` open until released."""

    def __init__(self, harness: Harness, kind: str) -> None:
        self.files = harness.router.writer.files
        self.commit = self.files.commit
        self.kind = kind
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.used = False

    async def __call__(self, records: Sequence[Record], fence: Any = None) -> dict[str, Any]:
        if not self.used and any(isinstance(r, CallEvent) and r.kind == self.kind for r in records):
            self.used = True
            self.held.set()
            await self.release.wait()
        return await self.commit(records, fence)


@pytest.mark.parametrize("visitor", ["hangs up", "drops"])
async def test_what_others_do_during_an_open_transaction_waits_its_turn(harness: Harness, monkeypatch: Any,
                                                                         visitor: str) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk(name="Caller")
    other = await harness.kiosk(name="Other")
    call_id = await place_call(kiosk)
    await clerk.next("ring")
    waiting = await place_call(other)
    gate = GatedCommit(harness, "accepted")
    monkeypatch.setattr(harness.router.writer.files, "commit", gate)

    accept = asyncio.create_task(clerk.call("accept", {"call_id": call_id}))
    await asyncio.wait_for(gate.held.wait(), EVENT_TIMEOUT)
    # while the accept's transaction is open: the visitor hangs up or drops, and another visitor cancels
    hangup = asyncio.create_task(kiosk.call("hangup", {"call_id": call_id})) if visitor == "hangs up" else None
    if hangup is None:
        await kiosk.close()
    cancel = asyncio.create_task(other.call("cancel_call", {"call_id": waiting}))
    # they reach the server and wait behind the accept: they do not act in the middle of it
    await until(lambda: harness.router.writer.waiting == 2, "the visitor's and the other's commands queued")
    assert not cancel.done() and (hangup is None or not hangup.done())
    assert clerk.pending("matched") == []  # nothing is told before its records are committed
    gate.release.set()

    assert (await accept)["ok"] is True  # whole: nobody is told internal_error
    assert (await cancel)["ok"] is True
    assert (await clerk.next("matched"))["call_id"] == call_id
    if hangup is not None:
        assert (await hangup)["ok"] is True
        assert (await kiosk.next("matched"))["call_id"] == call_id
    else:  # the call waits for the visitor to come back, then ends
        assert (await clerk.next("peer_connection"))["connected"] is False
        await harness.advance(harness.settings.reconnect_grace_s)
    assert (await clerk.next("call_ended"))["reason"] == ("hangup" if hangup else "visitor_disconnected")
    kinds = [e["kind"] for e in await harness.server.app[RECORDS].timeline(call_id)]
    assert kinds == ["requested", "rung", "accepted", *([] if hangup else ["connection_lost"]), "ended"]
    # and the next timer still fires: the wrap-up time runs out
    await harness.advance(harness.settings.wrapup_timeout_s)
    status = await clerk.next_where("status", lambda s: s["reason"] == "wrapup_timeout")
    assert status["status"] == "available"


async def test_a_command_whose_records_cannot_be_written_has_no_effect(harness: Harness, monkeypatch: Any) -> None:
    clerk = await harness.clerk(available=False)
    kiosk = await harness.kiosk()
    files = harness.router.writer.files
    real = files.commit
    failures = iter([True])

    async def flaky(records: Sequence[Record], fence: Any = None) -> dict[str, Any]:
        if next(failures, False):
            raise OSError("disk full")
        return await real(records, fence)

    monkeypatch.setattr(files, "commit", flaky)
    ack = await kiosk.call("request_call", {"field": "tax", "language": "en"})
    assert ack["error"]["code"] == "records_unavailable"
    assert harness.switch.calls == {} and harness.switch.kiosk_calls == {}  # as if it never came
    assert kiosk.pending("queued") == []
    ack = await kiosk.ok("request_call", {"field": "tax", "language": "en"})  # and it works again
    await clerk.ok("set_status", {"status": "available"})
    assert (await clerk.next("ring"))["call_id"] == ack["call_id"]
    assert harness.switch.clerks.keys() == {next(iter(harness.switch.clerks))}  # the clerk stayed connected


async def test_ring_timeout_and_queue_updates_on_the_real_clock(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(real_time=True, ring_timeout_s=0.5)
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    queued_kiosk = await harness.kiosk(name="Second")
    call_id = await place_call(kiosk)
    second = await place_call(queued_kiosk)
    assert (await clerk.next("ring"))["call_id"] == call_id
    # nobody answers: the writer's own timer ends the ring after half a second
    assert await clerk.next("ring_ended", timeout=5) == {"call_id": call_id, "reason": "timeout"}
    await clerk.next_where("status", lambda s: s == {"status": "away", "reason": "ring_timeout"})
    await kiosk.ok("cancel_call", {"call_id": call_id})
    # the batched position update (its own timer) tells the second visitor they moved up
    moved = await queued_kiosk.next_where("queued", lambda q: q["position"] == 1, timeout=5)
    assert moved["call_id"] == second


@pytest.mark.parametrize("reserved", ["connect", "disconnect", "connect_error", "message"])
async def test_events_named_like_socketio_own_change_nothing(harness: Harness, reserved: str) -> None:
    kiosk = await harness.kiosk(name="A")
    _, other_token = await harness.identities.add_kiosk("B", "sh/jiading/xincheng/park-3")
    ack = await kiosk.sio.call(reserved, ({}, {"token": other_token}), namespace="/kiosk", timeout=EVENT_TIMEOUT)
    assert ack["ok"] is False and ack["error"]["code"] == "unknown_event"
    # still kiosk A, still connected and served
    assert sorted(harness.switch.kiosks) == [next(iter(harness.switch.kiosks))]
    [(_, card)] = harness.switch.kiosks.values()
    assert card.name == "A"
    await kiosk.ok("request_callback", {"field": "tax", "language": "en", "phone": "021-12345678"})
