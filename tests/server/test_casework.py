"""Wrap-up, follow-ups, transfer within a case, rating, callback requests and the hash chain, through the real app."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from server.keys import RECORDS
from server.records.db import calls, events, followups, matters, ratings
from tests.server.conftest import Harness, HarnessFactory, Peer
from tests.server.test_signaling_server import connect_call, place_call

pytestmark = pytest.mark.databases

VALID_CODE = "91350100M000100Y43"
INDIVIDUAL_BUSINESS_CODE = "92141127MA0KD1Y64A"


async def rows(h: Harness, table: sa.Table, **where: Any) -> list[dict[str, Any]]:
    q = table.select()
    for k, v in where.items():
        q = q.where(table.c[k] == v)
    async with h.server.app[RECORDS].engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q)]


async def finished_call(kiosk: Peer, clerk: Peer) -> str:
    call_id = await connect_call(kiosk, clerk)
    await clerk.ok("hangup", {"call_id": call_id})
    await clerk.next("call_ended")
    await clerk.next_where("status", lambda s: s["status"] == "wrap_up")
    return call_id


async def test_wrap_up_logs_matters_and_follow_up_then_frees_the_clerk(harness: Harness) -> None:
    clerk = await harness.clerk(fields="market", name="Market desk")
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk, "market")
    await kiosk.ok("hangup", {"call_id": call_id})
    assert (await clerk.next("call_ended"))["wrap_up"] is True
    # while wrapping up the clerk is not offered the next caller
    other = await harness.kiosk(name="Next visitor")
    waiting = await place_call(other, "market")
    assert (await other.next("queued"))["call_id"] == waiting
    assert clerk.pending("ring") == []
    assert (await clerk.call("set_status", {"status": "available"}))["error"]["code"] == "wrong_state"

    bad = await clerk.call("wrap_up", {"call_id": call_id, "matters": [
        {"matter_type": "joint-cancellation", "outcome": "completed", "credit_code": VALID_CODE[:-1] + "4"}]})
    assert bad["error"]["code"] == "invalid_credit_code"
    assert "matters[0].credit_code" in bad["error"]["message"] and "expected '3'" in bad["error"]["message"]
    bad = await clerk.call("wrap_up", {"call_id": call_id, "matters": [
        {"matter_type": "tax-consultation", "outcome": "completed"}]})
    assert bad["error"]["code"] == "unknown_matter_type"
    assert await rows(harness, matters) == []  # nothing half-written

    ack = await clerk.ok("wrap_up", {"call_id": call_id, "matters": [
        {"matter_type": "joint-cancellation", "outcome": "completed", "credit_code": INDIVIDUAL_BUSINESS_CODE.lower(),
         "entity_name": "Li's noodle shop"},
        {"matter_type": "business-change", "outcome": "yet_to_do", "followup": "general", "notes": "needs lease"},
    ]})
    assert len(ack["matters"]) == 2
    [fu] = ack["followups"]
    today = dt.datetime.now(harness.settings.tz).date()
    assert fu["due_date"] == harness.settings.calendar.add_workdays(today, 3).isoformat()
    saved = await rows(harness, matters, call_id=call_id)
    assert {m["credit_code"] for m in saved} == {INDIVIDUAL_BUSINESS_CODE, None}
    [opened] = await rows(harness, followups, call_id=call_id)
    assert opened["status"] == "open" and opened["kind"] == "general" and opened["assignee"] is not None
    kinds = [e["kind"] for e in await rows(harness, events, call_id=call_id)]
    assert kinds[-4:] == ["matter_logged", "matter_logged", "followup_opened", "wrapped_up"]
    # done: the clerk is available again and takes the waiting visitor
    await clerk.next_where("status", lambda s: s["status"] == "available")
    assert (await clerk.next("ring"))["call_id"] == waiting
    again = await clerk.call("wrap_up", {"call_id": call_id, "matters": [
        {"matter_type": "business-change", "outcome": "completed"}]})
    assert again["error"]["code"] == "already_done"


async def test_wrap_up_time_runs_out_and_can_still_be_filed_later(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await finished_call(kiosk, clerk)
    await harness.advance(harness.settings.wrapup_timeout_s)
    status = await clerk.next_where("status", lambda s: s["status"] == "available")
    assert status["reason"] == "wrapup_timeout"
    await clerk.ok("wrap_up", {"call_id": call_id, "matters": [{"matter_type": "tax-consultation",
                                                                  "outcome": "completed"}]})
    [call] = await rows(harness, calls, id=call_id)
    assert call["wrapped_up_at"] is not None


async def test_wrap_up_refused_for_someone_elses_or_live_call(harness: Harness) -> None:
    clerk = await harness.clerk(name="Mine")
    other = await harness.clerk(name="Other", available=False)
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    matter = {"matter_type": "tax-consultation", "outcome": "completed"}
    assert (await clerk.call("wrap_up", {"call_id": call_id, "matters": [matter]}))["error"]["code"] == "wrong_state"
    assert (await other.call("wrap_up", {"call_id": call_id, "matters": [matter]}))["error"]["code"] == \
        "not_participant"
    bad = await clerk.call("wrap_up", {"call_id": call_id, "matters": [{"matter_type": "x", "outcome": "yet_to_do"}]})
    assert bad["error"]["code"] == "invalid_payload" and "followup" in bad["error"]["message"]


async def test_transfer_keeps_one_case_and_puts_visitor_first(harness: Harness) -> None:
    market = await harness.clerk(fields="market", name="Market")
    tax = await harness.clerk(fields="tax", name="Tax", available=False)
    kiosk = await harness.kiosk(name="Visitor")
    early = await harness.kiosk(name="Earlier tax visitor")
    early_call = await place_call(early, "tax")
    call_id = await place_call(kiosk, "market")
    await market.next("ring")
    await market.ok("accept", {"call_id": call_id})
    await kiosk.next("matched")
    ack = await market.ok("transfer", {"call_id": call_id, "field": "tax"})
    new_id = ack["new_call_id"]
    ended = await kiosk.next("call_ended")
    assert ended["reason"] == "transferred" and ended["transferred_to"] == {"call_id": new_id, "field": "tax"}
    assert (await market.next("call_ended"))["wrap_up"] is True
    await tax.ok("set_status", {"status": "available"})
    ring = await tax.next("ring")
    assert ring["call_id"] == new_id and ring["call_id"] != early_call  # the transferred visitor goes first
    await tax.ok("accept", {"call_id": new_id})
    assert (await kiosk.next("matched"))["peer"]["name"] == "Tax"
    await tax.ok("hangup", {"call_id": new_id})
    parts = await rows(harness, calls, case_id=call_id)
    assert {p["field"] for p in parts} == {"market", "tax"}
    [second] = [p for p in parts if p["id"] == new_id]
    assert second["transferred_from"] == call_id
    kinds = [e["kind"] for e in await rows(harness, events, call_id=call_id)]
    assert "transferred" in kinds and kinds[-1] == "ended"
    bad = await tax.call("transfer", {"call_id": new_id, "field": "tax"})
    assert bad["error"]["code"] in ("no_such_call", "wrong_state")


async def test_rating_once_by_the_visitor_of_an_answered_call(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    stranger = await harness.kiosk(name="Stranger")
    call_id = await finished_call(kiosk, clerk)
    assert (await stranger.call("rate", {"call_id": call_id, "score": "dissatisfied"}))["error"]["code"] == \
        "not_participant"
    await kiosk.ok("rate", {"call_id": call_id, "score": "satisfied", "reason": "quick"})
    assert (await kiosk.call("rate", {"call_id": call_id, "score": "neutral"}))["error"]["code"] == "already_done"
    assert (await kiosk.call("rate", {"call_id": call_id, "score": "great"}))["error"]["code"] == "invalid_payload"
    [r] = await rows(harness, ratings, call_id=call_id)
    assert (r["score"], r["reason"]) == ("satisfied", "quick")
    # a cancelled call cannot be rated
    cancelled = await place_call(kiosk)
    await clerk.ok("set_status", {"status": "away"})
    await kiosk.ok("cancel_call", {"call_id": cancelled})
    assert (await kiosk.call("rate", {"call_id": cancelled, "score": "satisfied"}))["error"]["code"] == "wrong_state"


async def test_text_the_records_cannot_store_is_refused_naming_the_field(harness: Harness) -> None:
    """A NUL character (PostgreSQL stores none in text) or a lone surrogate: a clear error on both databases,
    nothing written, and the same filing without it goes through."""
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await finished_call(kiosk, clerk)
    matter = {"matter_type": "tax-consultation", "outcome": "completed"}
    bad = await clerk.call("wrap_up", {"call_id": call_id, "matters": [{**matter, "notes": "a\x00b"}]})
    assert bad["error"]["code"] == "invalid_payload" and "$.matters[0].notes" in bad["error"]["message"]
    assert "NUL" in bad["error"]["message"]
    bad = await kiosk.call("rate", {"call_id": call_id, "score": "satisfied", "reason": "\ud800"})
    assert bad["error"]["code"] == "invalid_payload" and "$.reason" in bad["error"]["message"]
    bad = await kiosk.call("request_callback", {"field": "tax", "language": "en", "phone": "021-12345678",
                                                "description": "\x00"})
    assert bad["error"]["code"] == "invalid_payload" and "$.description" in bad["error"]["message"]
    assert await rows(harness, matters) == [] and await rows(harness, ratings) == [] \
        and await rows(harness, followups) == []
    await clerk.ok("wrap_up", {"call_id": call_id, "matters": [{**matter, "notes": "ab"}]})
    await kiosk.ok("rate", {"call_id": call_id, "score": "satisfied", "reason": "ok"})


async def test_callback_request_becomes_a_follow_up(harness: Harness) -> None:
    kiosk = await harness.kiosk()
    bad = await kiosk.call("request_callback", {"field": "tax", "language": "en", "phone": "call me"})
    assert bad["error"]["code"] == "invalid_payload" and "phone" in bad["error"]["message"]
    ack = await kiosk.ok("request_callback", {"field": "housing", "language": "zh", "phone": "+86 138 0013 8000",
                                              "description": "withdrawal for rent"})
    [fu] = await rows(harness, followups, id=ack["followup_id"])
    assert fu["source"] == "callback" and fu["phone"] == "+86 138 0013 8000" and fu["district"] == "sh/jiading"
    assert fu["due_date"] == ack["due_date"]
    [ev] = [e for e in await rows(harness, events) if e["kind"] == "callback_requested"]
    assert "138" not in str(ev["data"])  # the phone number stays out of the permanent log


async def test_outside_service_hours_offers_callback(harness_factory: HarnessFactory) -> None:
    local = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    start = (local + dt.timedelta(hours=2)).strftime("%H:%M")
    end = (local + dt.timedelta(hours=3)).strftime("%H:%M")
    if start > end:  # the window would wrap midnight: use the hour before instead
        start = (local - dt.timedelta(hours=3)).strftime("%H:%M")
        end = (local - dt.timedelta(hours=2)).strftime("%H:%M")
    harness = await harness_factory(service_hours=f"{start}-{end}")
    await harness.clerk()
    kiosk = await harness.kiosk()
    ack = await kiosk.call("request_call", {"field": "tax", "language": "en"})
    assert ack["error"]["code"] == "outside_service_hours" and f"{start}-{end}" in ack["error"]["message"]
    await kiosk.ok("request_callback", {"field": "tax", "language": "en", "phone": "021-12345678"})


async def test_hash_chain_verifies_and_names_a_tampered_event(harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await finished_call(kiosk, clerk)
    records = harness.server.app[RECORDS]
    status = await records.verify()
    assert status.ok and status.checked >= 4  # requested, rung, accepted, ended
    assert (await records.verify_call(call_id)).ok
    evs = await rows(harness, events, call_id=call_id)
    target = evs[2]["id"]
    async with records.engine.begin() as conn:  # someone edits the log behind the application's back
        await conn.execute(events.update().where(events.c.id == target).values(actor="clerk:forged"))
    status = await records.verify()
    assert not status.ok and status.first_bad_id == target and "altered" in status.problem
    call_status = await records.verify_call(call_id)
    assert not call_status.ok and call_status.first_bad_id == target


@pytest.mark.databases("sqlite")  # calendar arithmetic only
async def test_follow_up_after_closing_time_counts_from_next_working_day(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(service_hours="08:30-17:30")
    work = harness.switch.policy
    tz = harness.settings.tz
    # Thursday 2026-09-24, the day before the Mid-Autumn holiday (Fri 25 - Sun 27)
    before = dt.datetime(2026, 9, 24, 16, 0, tzinfo=tz)
    after = dt.datetime(2026, 9, 24, 17, 50, tzinfo=tz)
    assert work.due_date("simple", before) == dt.date(2026, 9, 24)
    assert work.due_date("simple", after) == dt.date(2026, 9, 28)  # next working day, Monday
    assert work.due_date("general", before) == dt.date(2026, 9, 30)  # Mon 28, Tue 29, Wed 30
    assert work.due_date("general", after) == dt.date(2026, 10, 8)  # from Mon 28: Tue 29, Wed 30, Thu 8 Oct


async def test_reconnecting_clerk_is_told_of_calls_awaiting_wrap_up(harness: Harness) -> None:
    _, token = await harness.identities.add_clerk("Reloading", ["tax"], ["sh/jiading"], ["en"])
    clerk = Peer(harness.url, "/clerk", token)
    await clerk.connect()
    assert (await clerk.next("welcome"))["pending_wrapups"] == []
    await clerk.ok("set_status", {"status": "available"})
    kiosk = await harness.kiosk()
    call_id = await finished_call(kiosk, clerk)
    await clerk.close()
    again = Peer(harness.url, "/clerk", token)
    await again.connect()
    harness.peers.append(again)
    [pending] = (await again.next("welcome"))["pending_wrapups"]
    assert (pending["call_id"], pending["field"]) == (call_id, "tax")
    await again.ok("wrap_up", {"call_id": call_id, "matters": [{"matter_type": "tax-consultation",
                                                                  "outcome": "completed"}]})
