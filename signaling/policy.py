"""The rules a call is run by, as one value: catalog, regions, routing stages, timeouts, hours, calendar.

The server builds a :class:`CallPolicy` from its settings once; the core
(:mod:`signaling.switch`) reads nothing else. Times are wall-clock epoch
seconds, so a deadline means the same on every node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from signaling import errors
from signaling.catalog import Catalog
from signaling.errors import SignalingError
from signaling.regions import RegionTree
from signaling.stages import Stage
from signaling.workdays import WorkCalendar, YearNotCoveredError


def parse_hours(text: str) -> tuple[dt.time, dt.time] | None:
    """``"08:30-17:30"`` as (start, end) local times; ``""`` (always open) as None."""
    if not text:
        return None
    start, _, end = text.partition("-")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


@dataclass(frozen=True)
class CallPolicy:
    regions: RegionTree
    stages: tuple[Stage, ...]
    catalog: Catalog
    languages: tuple[str, ...]
    calendar: WorkCalendar
    timezone: str = "Asia/Shanghai"
    service_hours: str = ""  # "HH:MM-HH:MM" on working days; "" is always open
    ring_timeout_s: float = 20.0
    default_handle_s: float = 300.0
    wrapup_timeout_s: float = 180.0
    reconnect_grace_s: float = 30.0  # how long a dropped kiosk or clerk keeps its place, status or call
    queue_update_interval_s: float = 1.0  # position updates of a queue are sent at most this often
    recording_retention_days: int = 180
    ice_servers: Sequence[Mapping[str, Any]] = ()
    turn_secret: str = field(default="", repr=False)
    turn_ttl_s: int = 3600
    turn_relay_only: bool = False  # both sides of every call relay all media through TURN

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def open_hours(self) -> tuple[dt.time, dt.time] | None:
        return parse_hours(self.service_hours)

    def local(self, at: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(at, self.tz)

    def is_open(self, at: float) -> bool:
        """Whether the epoch time ``at`` falls in service hours on a working day."""
        hours = self.open_hours()
        if hours is None:
            return True
        local = self.local(at)
        if self.calendar.covers(local.year) and not self.calendar.is_workday(local.date()):
            return False
        return hours[0] <= local.time() < hours[1]

    def due_date(self, kind: str, opened: float | dt.datetime) -> dt.date:
        """A follow-up's deadline in working days; one opened after closing time counts from the next working day."""
        local = (self.local(opened) if isinstance(opened, float | int) else opened.astimezone(self.tz))
        hours = self.open_hours()
        try:
            if hours is not None and local.time() >= hours[1]:
                start = self.calendar.add_workdays(local.date(), 1)
                return self.calendar.deadline_for(kind, start)
            return self.calendar.deadline_for(kind, local)
        except YearNotCoveredError as exc:
            raise SignalingError(errors.CALENDAR_NOT_COVERED,
                                 f"{exc}; an administrator must update config/calendar.toml") from None

    def district_depth(self) -> int:
        return min(2, len(self.regions.levels))

    def district_of(self, region: str) -> str:
        return self.regions.ancestor_at(region, self.district_depth())
