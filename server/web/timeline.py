"""A call's timeline for people: each logged event as one sentence in the page's language.

The event log keeps codes and raw data (``queued`` with ``estimated_wait_s: 243.478…``, ``rated`` with
``reason: waited_too_long``); the session page shows what they mean ("In the queue, place 1; estimated wait
4:03", "Rated: dissatisfied (waited too long)"), and keeps the raw event one click away for whoever audits
the log. Durations are m:ss as everywhere on the staff pages, names of fields, matter types, clerks and
kiosks are looked up, and an event this module does not know is still shown, by its code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from server.web.i18n import N_
from server.web.pages import END_REASONS, FOLLOWUP_KINDS, OUTCOMES, SCORES, Labels, fmt_duration

Gettext = Callable[[str], str]

# the kiosk's rating reasons (client/static/kiosk/rating.js), as the staff read them
RATING_REASONS = {"waited_too_long": N_("waited too long"), "problem_not_solved": N_("problem not solved"),
                  "hard_to_hear_or_see": N_("hard to hear or see"), "clerk_helpful": N_("clerk was helpful")}
ACTOR_ROLES = {"system": N_("the system"), "visitor": N_("the visitor"), "clerk": N_("the clerk")}
SIDES = {"visitor": N_("the visitor"), "clerk": N_("the clerk"), "kiosk": N_("the visitor")}
STAGES = {"jurisdiction": N_("clerks covering the kiosk's own area"), "district": N_("any clerk of the district"),
          "city": N_("any clerk of the city")}
RING_ENDS = {"cancelled": N_("the visitor gave up"), "clerk_disconnected": N_("the clerk's connection dropped"),
             "clerk_away": N_("the clerk went away")}


def _code(table: Mapping[str, str], value: Any, gettext: Gettext) -> str:
    text = str(value) if value is not None else ""
    return gettext(table[text]) if text in table else text


def describe(event: Mapping[str, Any], names: Labels, people: Mapping[str, str], gettext: Gettext) -> str:
    """One sentence for ``event`` (a row of the event log). ``people`` maps "clerk:<id>", "user:<id>" and
    "kiosk:<id>" to display names."""
    text = _sentence(event, names, people, gettext)
    return text[:1].upper() + text[1:]


def _sentence(event: Mapping[str, Any], names: Labels, people: Mapping[str, str], gettext: Gettext) -> str:
    kind = str(event["kind"])
    d: Mapping[str, Any] = event.get("data") or {}
    field = str(event.get("field") or "")
    _ = gettext

    def clerk(key: str = "clerk_id") -> str:
        ident = d.get(key)
        return people.get(f"clerk:{ident}", str(ident or _("a clerk")))

    def side() -> str:
        return _code(SIDES, d.get("side") or d.get("participant"), _)

    match kind:
        case "requested":
            text = _("The visitor asked for %(field)s.") % {"field": names.field(field)}
            rec = d.get("recording")
            if isinstance(rec, Mapping) and rec.get("recorded"):
                text += " " + _("The call is recorded.")
            return text
        case "queued":
            place = d.get("position")
            wait = d.get("estimated_wait_s")
            text = (_("In the queue, place %(n)s; estimated wait %(wait)s.") % {"n": place, "wait": fmt_duration(wait)}
                    if isinstance(wait, int | float) else
                    _("In the queue, place %(n)s; no clerk who could take the call was available.") % {"n": place})
            if d.get("reason") == "clerk_disconnected":
                text += " " + _("Back at the front: the clerk's connection dropped.")
            return text
        case "stage_widened":
            return _("Still waiting: now offered to %(who)s.") % {"who": _code(STAGES, d.get("name"), _)}
        case "rung":
            return _("%(clerk)s was rung.") % {"clerk": clerk()}
        case "missed":
            return _("%(clerk)s did not answer in time.") % {"clerk": clerk()}
        case "declined":
            return _("%(clerk)s declined.") % {"clerk": clerk()}
        case "ring_withdrawn":
            return _("The ring at %(clerk)s stopped: %(why)s.") % {"clerk": clerk(),
                                                                    "why": _code(RING_ENDS, d.get("reason"), _)}
        case "accepted":
            return _("%(clerk)s answered.") % {"clerk": clerk()}
        case "media_connected":
            return _("Picture and sound reached %(side)s.") % {"side": side()}
        case "media_restarted":
            return _("The connection was set up anew (attempt %(n)s).") % {"n": d.get("attempt")}
        case "connection_lost":
            return _("%(side)s lost the connection; the call waited up to %(grace)s.") % {
                "side": side(), "grace": fmt_duration(d.get("grace_s"))}
        case "reconnected":
            return _("%(side)s is back.") % {"side": side()}
        case "held":
            return _("The call is held for up to %(grace)s for the visitor to come back.") % {
                "grace": fmt_duration(d.get("grace_s"))}
        case "transferred":
            return _("Transferred to %(field)s.") % {"field": names.field(str(d.get("to_field") or ""))}
        case "ended":
            return _("The call ended: %(reason)s.") % {"reason": _code(END_REASONS, d.get("reason"), _)}
        case "rated":
            reasons = [_code(RATING_REASONS, r, _) for r in str(d.get("reason") or "").replace(";", ",").split(",")
                       if r.strip()]
            text = _("Rated: %(score)s.") % {"score": _code(SCORES, d.get("score"), _)}
            return f"{text} ({', '.join(reasons)})" if reasons else text
        case "matter_logged":
            what = names.matter(field, str(d.get("matter_type") or ""))
            entity = " ".join(str(x) for x in (d.get("entity_name"), d.get("credit_code")) if x)
            return _("Matter logged: %(what)s%(entity)s, %(outcome)s.") % {
                "what": what, "entity": f" — {entity}" if entity else "",
                "outcome": _code(OUTCOMES, d.get("outcome"), _)}
        case "followup_opened":
            return _("Follow-up #%(id)s opened (%(kind)s), due %(date)s.") % {
                "id": d.get("followup_id"), "kind": _code(FOLLOWUP_KINDS, d.get("kind"), _), "date": d.get("due_date")}
        case "followup_assigned":
            return _("Follow-up #%(id)s assigned to %(who)s.") % {"id": d.get("followup_id"),
                                                                  "who": d.get("assignee_name") or clerk("assignee")}
        case "followup_resolved":
            return (_("Follow-up #%(id)s resolved in time.") if d.get("on_time") else
                    _("Follow-up #%(id)s resolved late.")) % {"id": d.get("followup_id")}
        case "wrapped_up":
            return _("Wrap-up saved (%(n)s matters).") % {"n": d.get("matters")}
        case "callback_requested":
            return _("The visitor asked to be called back (follow-up #%(id)s, due %(date)s).") % {
                "id": d.get("followup_id"), "date": d.get("due_date")}
        case "viewed":
            return _("This page was opened.")
        case "recording_started":
            return _("Recording of %(side)s started.") % {"side": side()}
        case "recorded":
            return _("Recording of %(side)s stored (%(duration)s).") % {"side": side(),
                                                                        "duration": fmt_duration(d.get("duration_s"))}
        case "recording_failed" | "recording_interrupted":
            return _("Recording of %(side)s failed or stopped.") % {"side": side()}
        case "recording_played":
            return _("A recording was played.")
        case "recording_deleted":
            return _("A recording was deleted (retention).")
        case _other:
            return kind.replace("_", " ")


def people_in(timeline: Sequence[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """The user and kiosk ids a timeline names, as actors or in its data (clerk_id, assignee)."""
    users, kiosks = set(), set()
    for e in timeline:
        who, _, ident = str(e["actor"]).partition(":")
        if who in ("clerk", "user"):
            users.add(ident)
        elif who == "kiosk":
            kiosks.add(ident)
        data = e.get("data") or {}
        for key in ("clerk_id", "assignee"):
            if isinstance(data, Mapping) and isinstance(data.get(key), str):
                users.add(data[key])
    return users, kiosks
