"""The live board's picture: queues, clerks online and calls in progress, read from the core's state."""

from __future__ import annotations

from typing import Any, Protocol

from signaling.calls import WAITING, CallState
from signaling.switch import Switch


class HasBoard(Protocol):
    def board(self) -> dict[str, Any]: ...


def snapshot(router: HasBoard) -> dict[str, Any]:
    """Live state for the administrator's board, from whichever node runs the core."""
    return router.board()


def board_of(sw: Switch, now: float) -> dict[str, Any]:
    """Live state for the administrator's board: queues, clerks, calls in progress."""
    regions = sw.policy.regions
    queues: dict[tuple[str, str], dict[str, Any]] = {}
    in_progress = []
    for call in sw.engine.calls.values():
        live = sw.calls.get(call.id)
        if live is None:
            continue
        waited = round(now - call.requested_at, 1)
        if call.state in WAITING:
            district = live.case.district
            q = queues.setdefault((call.field, district), {
                "field": call.field, "district": district, "district_name": regions.get(district).name("en"),
                "waiting": 0, "ringing": 0, "longest_wait_s": 0.0, "unserved": 0})
            q["waiting" if call.state is CallState.QUEUED else "ringing"] += 1
            if call.state is CallState.QUEUED and sw.told_wait(call.id, 0.0) is None:
                q["unserved"] += 1  # nobody who could take it is there: every such clerk is away or offline
            q["longest_wait_s"] = max(q["longest_wait_s"], waited)
        elif call.state is not CallState.HELD:
            in_progress.append({
                "call_id": call.id, "case_id": live.case.case_id, "field": call.field, "region": call.region,
                "kiosk": live.kiosk.name, "clerk": live.clerk.name if live.clerk else None,
                "state": call.state.value,
                "since_s": round(now - (call.accepted_at or call.requested_at), 1),
            })
    clerks = []
    for clerk_id, (_, card) in sw.clerks.items():
        state = sw.engine.clerks.get(clerk_id)
        if state is None:
            continue
        clerks.append({"id": card.id, "name": card.name, "center": card.center, "fields": list(card.fields),
                       "regions": list(card.regions), "status": state.status.value, "call_id": state.call_id})
    return {
        "queues": sorted(queues.values(), key=lambda q: -q["longest_wait_s"]),
        "clerks": sorted(clerks, key=lambda c: c["name"]),
        "calls": in_progress,
        "kiosks_online": len(sw.kiosks),
    }
