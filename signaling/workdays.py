"""Working days and follow-up deadlines on the Chinese public-holiday calendar.

The service centers promise: simple matters are handled at once, general ones within 3
working days, complex ones within 7. A working day is Monday to Friday, except the holidays
the State Council announces each year (国务院办公厅关于节假日安排的通知), plus the weekend
days it turns into make-up working days (调休上班). ``config/calendar.toml`` lists them per
year; :meth:`WorkCalendar.from_toml_dict` reads it.

Counting rule. A matter opened on day D with an allowance of n working days is due on the
n-th working day *after* D: D itself never counts, whatever the hour it was opened. With
n = 0 (a simple matter) it is due on D itself when D is a working day, else on the next
working day. Examples on the 2026 calendar: a general matter (n = 3) opened on Monday
2026-03-02 is due on Thursday 03-05; one opened on Friday 03-06 is due on Wednesday 03-11.

Only the calendar's years are known. Any question that needs a day outside them raises
:class:`YearNotCoveredError` rather than guessing: a deadline computed on a missing
arrangement could be days off. A year can be marked provisional (its arrangement is not
published yet); it is used, and :meth:`WorkCalendar.is_provisional` tells callers so.

Times: a naive ``datetime`` is taken as local time at the service center; an aware one is
converted to China Standard Time (UTC+8, no daylight saving) before its date is taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "CHINA_STANDARD_TIME",
    "DEADLINE_DAYS",
    "CalendarError",
    "FollowUpKind",
    "WorkCalendar",
    "YearNotCoveredError",
]

CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8), "CST")
_ONE_DAY: Final = timedelta(days=1)
_SATURDAY: Final = 5


class FollowUpKind(StrEnum):
    """The classes of follow-up ("yet-to-do") matters and their promised handling time."""

    SIMPLE = "simple"  # handled at once: due the same working day
    GENERAL = "general"  # within 3 working days
    COMPLEX = "complex"  # within 7 working days


# Working days allowed per follow-up class (see the module docstring for how they count).
DEADLINE_DAYS: Final[Mapping[str, int]] = MappingProxyType(
    {FollowUpKind.SIMPLE.value: 0, FollowUpKind.GENERAL.value: 3, FollowUpKind.COMPLEX.value: 7}
)


class CalendarError(ValueError):
    """Calendar data that does not make sense (bad date, date in the wrong year, ...)."""


class YearNotCoveredError(LookupError):
    """A question about a day in a year the calendar has no arrangement for."""

    def __init__(self, day: date, covered: Iterable[int]) -> None:
        self.day = day
        self.year = day.year
        self.covered = tuple(sorted(covered))
        years = ", ".join(str(y) for y in self.covered) or "no year"
        message = (
            f"the working-day calendar has no holiday arrangement for {day.year} (needed for {day.isoformat()});"
            f" it covers {years}. Add the State Council's {day.year} arrangement to config/calendar.toml"
        )
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _is_weekend(d: date) -> bool:
    return d.weekday() >= _SATURDAY


def _as_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.astimezone(CHINA_STANDARD_TIME).date()
        return value.date()
    return value


def _parse_day(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise CalendarError(f"{where}: {text!r} is not a date of the form YYYY-MM-DD") from None


def _expand(entries: object, year: int, where: str) -> Iterator[date]:
    """The days of a TOML list of dates and inclusive ranges "A..B"."""
    if not isinstance(entries, list):
        raise CalendarError(f"{where} must be a list of dates, got {type(entries).__name__}")
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if isinstance(entry, datetime):
            raise CalendarError(f"{at}: {entry!r} has a time of day; give a date")
        if isinstance(entry, date):
            first = last = entry
        elif isinstance(entry, str):
            if ".." in entry:
                left, _, right = entry.partition("..")
                first, last = _parse_day(left, at), _parse_day(right, at)
                if last < first:
                    raise CalendarError(f"{at}: range {entry!r} ends before it starts")
            else:
                first = last = _parse_day(entry, at)
        else:
            raise CalendarError(f"{at}: expected a date string, got {type(entry).__name__}")
        if first.year != year or last.year != year:
            raise CalendarError(f"{at}: {entry!r} is not in {year}")
        day = first
        while day <= last:
            yield day
            day += _ONE_DAY


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days, for the years the calendar covers.

    ``holidays`` are days off (weekend days among them change nothing), ``workdays`` are the
    make-up working days, which must fall on weekends.
    """

    years: frozenset[int]
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    provisional_years: frozenset[int] = field(default=frozenset())

    def __post_init__(self) -> None:
        for d in sorted(self.holidays | self.workdays):
            if d.year not in self.years:
                raise CalendarError(f"{d.isoformat()} is listed but the calendar does not cover {d.year}")
        both = sorted(self.holidays & self.workdays)
        if both:
            raise CalendarError(f"{both[0].isoformat()} is listed both as a holiday and as a make-up workday")
        for d in sorted(self.workdays):
            if not _is_weekend(d):
                raise CalendarError(
                    f"make-up workday {d.isoformat()} is a {d.strftime('%A')}; weekdays are working days anyway"
                )
        stray = sorted(self.provisional_years - self.years)
        if stray:
            raise CalendarError(f"provisional year {stray[0]} is not covered by the calendar")

    @classmethod
    def from_toml_dict(cls, data: Mapping[str, object]) -> WorkCalendar:
        """Build from the parsed ``config/calendar.toml`` (see its header for the format)."""
        years_table = data.get("years")
        if not isinstance(years_table, Mapping):
            raise CalendarError("the calendar needs a [years.YYYY] table for each year it covers")
        years: set[int] = set()
        provisional: set[int] = set()
        holidays: set[date] = set()
        workdays: set[date] = set()
        for key, table in years_table.items():
            where = f"years.{key}"
            try:
                year = int(key)
            except (TypeError, ValueError):
                raise CalendarError(f"{where}: the key must be a year such as 2026") from None
            if not 1900 <= year <= 9999:
                raise CalendarError(f"{where}: {year} is not a plausible year")
            if year in years:
                raise CalendarError(f"{where}: year {year} is given twice")
            if not isinstance(table, Mapping):
                raise CalendarError(f"{where} must be a table")
            unknown = sorted(set(table) - {"holidays", "workdays", "provisional", "source"})
            if unknown:
                raise CalendarError(f"{where}: unknown key {unknown[0]!r}")
            is_provisional = table.get("provisional", False)
            if not isinstance(is_provisional, bool):
                raise CalendarError(f"{where}.provisional must be true or false")
            years.add(year)
            if is_provisional:
                provisional.add(year)
            holidays.update(_expand(table.get("holidays", []), year, f"{where}.holidays"))
            workdays.update(_expand(table.get("workdays", []), year, f"{where}.workdays"))
        return cls(
            years=frozenset(years),
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            provisional_years=frozenset(provisional),
        )

    # -- questions about single days -------------------------------------------------

    def covers(self, year: int) -> bool:
        """Whether the calendar has an arrangement (possibly provisional) for ``year``."""
        return year in self.years

    def is_provisional(self, year: int) -> bool:
        """Whether ``year``'s arrangement is a placeholder awaiting the official one."""
        return year in self.provisional_years

    def _require(self, d: date) -> None:
        if d.year not in self.years:
            raise YearNotCoveredError(d, self.years)

    def is_workday(self, d: date | datetime) -> bool:
        """Mon-Fri unless a holiday; Sat/Sun only if a make-up workday."""
        day = _as_date(d)
        self._require(day)
        if _is_weekend(day):
            return day in self.workdays
        return day not in self.holidays

    # -- counting ----------------------------------------------------------------------

    def add_workdays(self, start: date | datetime, n: int) -> date:
        """The n-th working day after ``start`` (n = 0: ``start`` itself if a working day, else the next one)."""
        if n < 0:
            raise ValueError(f"the number of working days must be 0 or more, got {n}")
        day = _as_date(start)
        if n == 0:
            while not self.is_workday(day):
                day += _ONE_DAY
            return day
        remaining = n
        while remaining:
            day += _ONE_DAY
            if self.is_workday(day):
                remaining -= 1
        return day

    def workdays_between(self, a: date | datetime, b: date | datetime) -> int:
        """The number of working days d with a < d <= b (negative when b is before a).

        So ``workdays_between(d, add_workdays(d, n)) == n`` for every n >= 1, and a day is
        never counted twice when periods are chained.
        """
        first, last = _as_date(a), _as_date(b)
        if last < first:
            return -self.workdays_between(last, first)
        count = 0
        day = first + _ONE_DAY
        while day <= last:
            if self.is_workday(day):
                count += 1
            day += _ONE_DAY
        return count

    def deadline_for(self, kind: str, opened: date | datetime) -> date:
        """The day a follow-up of class ``kind`` (simple, general, complex) opened at ``opened`` is due."""
        try:
            days = DEADLINE_DAYS[kind]
        except KeyError:
            kinds = ", ".join(DEADLINE_DAYS)
            raise ValueError(f"unknown follow-up class {kind!r}; expected one of {kinds}") from None
        return self.add_workdays(opened, days)
