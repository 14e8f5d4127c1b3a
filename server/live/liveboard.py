"""The live board's picture of one node: queues, clerks online and calls in progress, read from the switchboard."""

from __future__ import annotations

from typing import Any

from server.live.switchboard import Switchboard
from signaling.calls import CallState


def snapshot(sb: Switchboard) -> dict[str, Any]:
    """Live state for the administrator's board: queues, clerks, calls in progress."""
    now = sb.clock.now()
    regions = sb.settings.regions
    queues: dict[tuple[str, str], dict[str, Any]] = {}
    in_progress = []
    for call in sb.engine.calls.values():
        info = sb.calls.get(call.id)
        if info is None:
            continue
        waited = round(now - call.requested_at, 1)
        if call.state in (CallState.QUEUED, CallState.RINGING):
            district = sb.engine.district_of(call.region)
            q = queues.setdefault((call.field, district), {
                "field": call.field, "district": district, "district_name": regions.get(district).name("en"),
                "waiting": 0, "ringing": 0, "longest_wait_s": 0.0})
            q["waiting" if call.state is CallState.QUEUED else "ringing"] += 1
            q["longest_wait_s"] = max(q["longest_wait_s"], waited)
        else:
            in_progress.append({
                "call_id": call.id, "case_id": info.case_id, "field": call.field, "region": call.region,
                "kiosk": info.kiosk.name, "clerk": info.clerk.name if info.clerk else None,
                "state": call.state.value,
                "since_s": round(now - (call.accepted_at or call.requested_at), 1),
            })
    clerks = []
    for sid, clerk in sb.sid_clerks.items():
        state = sb.engine.clerks.get(clerk.id)
        if state is None or sb.clerk_sids.get(clerk.id) != sid:
            continue
        clerks.append({"id": clerk.id, "name": clerk.name, "center": clerk.center, "fields": list(clerk.fields),
                       "regions": list(clerk.regions), "status": state.status.value, "call_id": state.call_id})
    return {
        "queues": sorted(queues.values(), key=lambda q: -q["longest_wait_s"]),
        "clerks": sorted(clerks, key=lambda c: c["name"]),
        "calls": in_progress,
        "kiosks_online": len(sb.kiosk_sids),
    }
