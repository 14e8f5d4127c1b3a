"""Unit tests of :mod:`signaling.workdays`: working days and follow-up deadlines.

The 2026 dates come from 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04). Every
deadline below is worked out by hand in its comment; the same results were cross-checked
with the chinese-calendar package (1.11.0, ``find_workday``).
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.workdays import (
    DEADLINE_DAYS,
    CalendarError,
    FollowUpKind,
    WorkCalendar,
    YearNotCoveredError,
)

from .conftest import CONFIG_DIR


def load_calendar_data() -> dict[str, Any]:
    with (CONFIG_DIR / "calendar.toml").open("rb") as fh:
        return tomllib.load(fh)


CALENDAR = WorkCalendar.from_toml_dict(load_calendar_data())


@pytest.fixture
def cal() -> WorkCalendar:
    return CALENDAR


def d(text: str) -> date:
    return date.fromisoformat(text)


def days(first: str, last: str) -> set[date]:
    start, end = d(first), d(last)
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


# -- the shipped calendar ---------------------------------------------------------------

# The State Council's 2026 notice, spelled out.
OFFICIAL_2026_HOLIDAYS = (
    days("2026-01-01", "2026-01-03")  # 元旦
    | days("2026-02-15", "2026-02-23")  # 春节
    | days("2026-04-04", "2026-04-06")  # 清明节
    | days("2026-05-01", "2026-05-05")  # 劳动节
    | days("2026-06-19", "2026-06-21")  # 端午节
    | days("2026-09-25", "2026-09-27")  # 中秋节
    | days("2026-10-01", "2026-10-07")  # 国庆节
)
OFFICIAL_2026_WORKDAYS = {
    d(x) for x in ("2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10")
}


def test_2026_matches_the_state_council_notice(cal: WorkCalendar) -> None:
    assert {h for h in cal.holidays if h.year == 2026} == OFFICIAL_2026_HOLIDAYS
    assert {w for w in cal.workdays if w.year == 2026} == OFFICIAL_2026_WORKDAYS
    for day in OFFICIAL_2026_HOLIDAYS:
        assert not cal.is_workday(day)
    for day in OFFICIAL_2026_WORKDAYS:
        assert day.weekday() >= 5
        assert cal.is_workday(day)


def test_2026_has_248_working_days(cal: WorkCalendar) -> None:
    # 261 weekdays - 19 weekday holidays + 6 make-up weekend days.
    assert cal.workdays_between(d("2025-12-31"), d("2026-12-31")) == 248


def test_years_covered(cal: WorkCalendar) -> None:
    assert cal.covers(2026)
    assert cal.covers(2027)
    assert not cal.covers(2025)
    assert not cal.covers(2028)
    assert not cal.is_provisional(2026)
    assert cal.is_provisional(2027)


def test_2027_is_provisional_with_the_statutory_days(cal: WorkCalendar) -> None:
    statutory = [
        "2027-01-01",  # 元旦
        "2027-02-05",  # 除夕
        "2027-02-08",  # 初三 (初一 and 初二 fall on Sat/Sun)
        "2027-04-05",  # 清明
        "2027-06-09",  # 端午
        "2027-09-15",  # 中秋
        "2027-10-01",  # 国庆
    ]
    for text in statutory:
        assert not cal.is_workday(d(text)), text
    # Days off in lieu of statutory days that fall on a weekend.
    for text in ["2027-02-09", "2027-02-10", "2027-05-03", "2027-05-04", "2027-10-04", "2027-10-05"]:
        assert not cal.is_workday(d(text)), text
    assert {w for w in cal.workdays if w.year == 2027} == set()
    assert cal.is_workday(d("2027-02-11"))


# -- single days ----------------------------------------------------------------------------


def test_ordinary_days(cal: WorkCalendar) -> None:
    assert cal.is_workday(d("2026-03-02"))  # Monday
    assert cal.is_workday(d("2026-03-06"))  # Friday
    assert not cal.is_workday(d("2026-03-07"))  # Saturday
    assert not cal.is_workday(d("2026-03-08"))  # Sunday


def test_weekend_make_up_days_are_working_days(cal: WorkCalendar) -> None:
    assert cal.is_workday(d("2026-01-04"))  # Sunday after New Year
    assert cal.is_workday(d("2026-02-14"))  # Saturday before the Spring Festival
    assert cal.is_workday(d("2026-09-20"))  # Sunday before National Day
    assert not cal.is_workday(d("2026-09-19"))  # the Saturday before it is not
    assert cal.is_workday(datetime(2026, 10, 10, 9, 30))  # datetimes work too


# -- deadlines ----------------------------------------------------------------------------


def test_deadline_days() -> None:
    assert DEADLINE_DAYS == {"simple": 0, "general": 3, "complex": 7}
    assert DEADLINE_DAYS[FollowUpKind.GENERAL] == 3


def test_ordinary_week(cal: WorkCalendar) -> None:
    # Mon 03-02 + 3: Tue 3 (1), Wed 4 (2), Thu 5 (3).
    assert cal.deadline_for("general", datetime(2026, 3, 2, 10, 0)) == d("2026-03-05")
    # Fri 03-06 + 3: Sat 7, Sun 8 off; Mon 9 (1), Tue 10 (2), Wed 11 (3).
    assert cal.deadline_for("general", datetime(2026, 3, 6, 17, 45)) == d("2026-03-11")
    # Fri 03-06 + 7: Mon 9 .. Fri 13 (1-5), Mon 16 (6), Tue 17 (7).
    assert cal.deadline_for("complex", datetime(2026, 3, 6, 9, 0)) == d("2026-03-17")


def test_general_matter_across_mid_autumn(cal: WorkCalendar) -> None:
    # Opened Thu 2026-09-24. Fri 25 is Mid-Autumn, Sat 26 and Sun 27 are part of the same
    # holiday. Mon 28 (1), Tue 29 (2), Wed 30 (3): due Wednesday 2026-09-30.
    assert cal.deadline_for("general", datetime(2026, 9, 24, 15, 0)) == d("2026-09-30")


def test_complex_matter_across_mid_autumn_and_national_day(cal: WorkCalendar) -> None:
    # Opened Thu 2026-09-24. Mon 28 (1), Tue 29 (2), Wed 30 (3); Oct 1-7 National Day;
    # Thu Oct 8 (4), Fri 9 (5), Sat 10 is a make-up working day (6), Sun 11 off, Mon 12 (7).
    assert cal.deadline_for("complex", datetime(2026, 9, 24, 15, 0)) == d("2026-10-12")


def test_general_matter_across_the_spring_festival(cal: WorkCalendar) -> None:
    # Opened Thu 2026-02-12. Fri 13 (1), Sat 14 is a make-up working day (2); Feb 15-23 is
    # the Spring Festival; Tue 24 (3): due Tuesday 2026-02-24.
    assert cal.deadline_for("general", datetime(2026, 2, 12, 11, 0)) == d("2026-02-24")


def test_complex_matter_due_on_a_make_up_saturday(cal: WorkCalendar) -> None:
    # Opened Thu 2026-02-12. Fri 13 (1), Sat 14 (2), holiday Feb 15-23, Tue 24 (3), Wed 25 (4),
    # Thu 26 (5), Fri 27 (6), Sat 28 is a make-up working day (7): due Saturday 2026-02-28.
    due = cal.deadline_for("complex", datetime(2026, 2, 12, 11, 0))
    assert due == d("2026-02-28")
    assert due.weekday() == 5


def test_general_matter_counts_the_sunday_make_up_day_before_national_day(cal: WorkCalendar) -> None:
    # Opened Fri 2026-09-18. Sat 19 off, Sun 20 is a make-up working day (1), Mon 21 (2),
    # Tue 22 (3): due Tuesday 2026-09-22 (it would be Wednesday 23 without the make-up day).
    assert cal.deadline_for("general", datetime(2026, 9, 18, 16, 0)) == d("2026-09-22")


def test_general_matter_opened_on_the_eve_of_national_day(cal: WorkCalendar) -> None:
    # Opened Wed 2026-09-30. Oct 1-7 off; Thu 8 (1), Fri 9 (2), Sat 10 make-up day (3).
    assert cal.deadline_for("general", datetime(2026, 9, 30, 16, 0)) == d("2026-10-10")


def test_simple_matter_is_due_the_same_working_day(cal: WorkCalendar) -> None:
    assert cal.deadline_for("simple", datetime(2026, 3, 2, 16, 59)) == d("2026-03-02")
    # Opened on a make-up Sunday: that is a working day.
    assert cal.deadline_for("simple", datetime(2026, 1, 4, 10, 0)) == d("2026-01-04")
    # Opened during National Day (say at a self-service kiosk): the next working day, Thu Oct 8.
    assert cal.deadline_for("simple", datetime(2026, 10, 3, 10, 0)) == d("2026-10-08")
    # Opened on an ordinary Saturday: Monday.
    assert cal.deadline_for("simple", date(2026, 3, 7)) == d("2026-03-09")


def test_opened_on_a_day_off_counts_from_the_next_days(cal: WorkCalendar) -> None:
    # Opened Sat 2026-03-07 (not a working day, and the opening day never counts anyway):
    # Mon 9 (1), Tue 10 (2), Wed 11 (3).
    assert cal.deadline_for("general", date(2026, 3, 7)) == d("2026-03-11")


def test_aware_datetimes_are_taken_in_china_standard_time(cal: WorkCalendar) -> None:
    # 2026-09-23 17:00 UTC is 2026-09-24 01:00 in Beijing: opened on Thursday the 24th.
    opened = datetime(2026, 9, 23, 17, 0, tzinfo=UTC)
    assert cal.deadline_for("general", opened) == d("2026-09-30")
    # The same instant as a naive time would be read as Wednesday the 23rd:
    # Thu 24 (1), Mon 28 (2), Tue 29 (3).
    assert cal.deadline_for("general", datetime(2026, 9, 23, 17, 0)) == d("2026-09-29")


def test_deadline_into_the_next_covered_year(cal: WorkCalendar) -> None:
    # Opened Mon 2026-12-28: Tue 29 .. Thu 31 (1-3); 2027-01-01 is New Year (provisional
    # calendar); Mon Jan 4 (4) .. Thu Jan 7 (7).
    assert cal.deadline_for("complex", date(2026, 12, 28)) == d("2027-01-07")


def test_unknown_kind_and_negative_counts(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="unknown follow-up class 'urgent'; expected one of simple, general, complex"):
        cal.deadline_for("urgent", date(2026, 3, 2))
    with pytest.raises(ValueError, match="0 or more"):
        cal.add_workdays(date(2026, 3, 2), -1)


# -- counting ---------------------------------------------------------------------------


def test_add_workdays_zero(cal: WorkCalendar) -> None:
    assert cal.add_workdays(d("2026-03-04"), 0) == d("2026-03-04")
    assert cal.add_workdays(d("2026-02-15"), 0) == d("2026-02-24")


def test_workdays_between(cal: WorkCalendar) -> None:
    assert cal.workdays_between(d("2026-09-24"), d("2026-09-30")) == 3
    assert cal.workdays_between(d("2026-09-30"), d("2026-09-24")) == -3
    assert cal.workdays_between(d("2026-09-24"), d("2026-09-24")) == 0
    # Sep 24 (Thu) - Oct 12 (Mon): Sep 28, 29, 30, Oct 8, 9, 10, 12.
    assert cal.workdays_between(datetime(2026, 9, 24, 8, 0), datetime(2026, 10, 12, 18, 0)) == 7


@given(st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 10, 31)), st.integers(min_value=1, max_value=25))
def test_add_and_between_agree(start: date, n: int) -> None:
    due = CALENDAR.add_workdays(start, n)
    assert CALENDAR.is_workday(due)
    assert CALENDAR.workdays_between(start, due) == n
    assert CALENDAR.workdays_between(start, due - timedelta(days=1)) == n - 1


# -- years not covered ------------------------------------------------------------------


def test_a_year_not_covered_raises(cal: WorkCalendar) -> None:
    with pytest.raises(YearNotCoveredError) as info:
        cal.is_workday(d("2025-12-31"))
    err = info.value
    assert err.year == 2025
    assert err.covered == (2026, 2027)
    assert str(err) == (
        "the working-day calendar has no holiday arrangement for 2025 (needed for 2025-12-31); it covers 2026, 2027."
        " Add the State Council's 2025 arrangement to config/calendar.toml"
    )
    with pytest.raises(YearNotCoveredError, match="for 2028"):
        cal.deadline_for("general", date(2028, 3, 1))


def test_a_deadline_running_past_the_calendar_raises(cal: WorkCalendar) -> None:
    # Opened Tue 2027-12-28: Wed 29, Thu 30, Fri 31 (1-3), then 2028 is unknown.
    assert cal.deadline_for("general", date(2027, 12, 28)) == d("2027-12-31")
    with pytest.raises(YearNotCoveredError, match=r"needed for 2028-01-01"):
        cal.deadline_for("complex", date(2027, 12, 28))
    with pytest.raises(YearNotCoveredError):
        cal.workdays_between(d("2027-12-01"), d("2028-01-15"))


# -- reading the TOML -----------------------------------------------------------------------


def test_native_toml_dates_and_ranges() -> None:
    data = tomllib.loads(
        """
        [years.2030]
        holidays = [2030-01-01, "2030-02-02..2030-02-08"]
        workdays = ["2030-01-26"]
        """
    )
    cal = WorkCalendar.from_toml_dict(data)
    assert cal.covers(2030)
    assert not cal.is_provisional(2030)
    assert not cal.is_workday(d("2030-01-01"))
    assert not cal.is_workday(d("2030-02-04"))
    assert cal.is_workday(d("2030-01-26"))  # a Saturday


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[other]\nx = 1", r"needs a \[years.YYYY\] table"),
        ('[years.next]\nholidays = ["2030-01-01"]', "the key must be a year"),
        ('[years.2030]\nholidays = ["2031-01-01"]', r"years.2030.holidays\[0\]: '2031-01-01' is not in 2030"),
        ('[years.2030]\nholidays = ["2030-02-30"]', "is not a date of the form YYYY-MM-DD"),
        ('[years.2030]\nholidays = ["2030-02-08..2030-02-02"]', "ends before it starts"),
        ('[years.2030]\nholidays = "2030-01-01"', "must be a list of dates"),
        ("[years.2030]\nholidays = [1]", "expected a date string"),
        ('[years.2030]\nworkdays = ["2030-01-02"]', "make-up workday 2030-01-02 is a Wednesday"),
        ('[years.2030]\nholidays = ["2030-01-26"]\nworkdays = ["2030-01-26"]', "both as a holiday and as a make-up"),
        ('[years.2030]\nholiday = ["2030-01-01"]', "unknown key 'holiday'"),
        ('[years.2030]\nprovisional = "yes"', "provisional must be true or false"),
    ],
)
def test_bad_calendar_data(toml: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        WorkCalendar.from_toml_dict(tomllib.loads(toml))
