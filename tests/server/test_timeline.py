"""The session page's timeline in sentences (server/web/timeline.py): codes and raw data become what they mean."""

from __future__ import annotations

from typing import Any

from server.settings import load_settings
from server.web.pages import Labels
from server.web.timeline import describe, people_in

NAMES = Labels(load_settings(), "en")
PEOPLE = {"clerk:c-1": "Wang Li", "kiosk:k-1": "Park 3 window"}


def say(kind: str, field: str = "tax", **data: Any) -> str:
    return describe({"kind": kind, "field": field, "actor": "system", "data": data}, NAMES, PEOPLE, lambda s: s)


def test_events_read_as_sentences() -> None:
    assert say("requested", language="en", kiosk="K", recording={"recorded": True}) == (
        "The visitor asked for Tax. The call is recorded.")
    assert say("queued", position=1, estimated_wait_s=243.478379103, reason="") == (
        "In the queue, place 1; estimated wait 4:03.")
    assert say("queued", position=2, estimated_wait_s=None, reason="clerk_disconnected") == (
        "In the queue, place 2; no clerk who could take the call was available. "
        "Back at the front: the clerk's connection dropped.")
    assert say("stage_widened", stage=1, name="district") == "Still waiting: now offered to any clerk of the district."
    assert say("rung", clerk_id="c-1", ring=1) == "Wang Li was rung."
    assert say("accepted", clerk_id="c-1") == "Wang Li answered."
    assert say("ended", reason="cancelled", clerk_id=None) == "The call ended: gave up waiting."
    assert say("rated", score="dissatisfied", reason="waited_too_long,problem_not_solved") == (
        "Rated: dissatisfied. (waited too long, problem not solved)")
    assert say("matter_logged", matter_type="invoice", entity_name="Acme", credit_code="91350100M000100Y43",
               outcome="yet_to_do") == "Matter logged: Invoices — Acme 91350100M000100Y43, yet to do."
    assert say("connection_lost", side="visitor", grace_s=30) == (
        "The visitor lost the connection; the call waited up to 0:30.")
    assert say("something_new", x=1) == "Something new"  # unknown kinds still show, by their code


def test_people_in_a_timeline_include_clerks_named_in_the_data() -> None:
    timeline = [{"actor": "system", "data": {"clerk_id": "c-2"}}, {"actor": "kiosk:k-1", "data": {}},
                {"actor": "user:u-1", "data": {"assignee": "c-3"}}]
    assert people_in(timeline) == ({"c-2", "u-1", "c-3"}, {"k-1"})
