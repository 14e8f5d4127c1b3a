"""Statistics against the service promise, per district and service field, for a period.

Definitions (all times in seconds; the period is a range of local calendar days, both
ends included, in the service center's time zone):

* a call belongs to the period when it was *requested* in it;
* **answered**: the call has ``answered_at``; **abandoned**: it ended without being
  answered (the visitor gave up or went away). A call neither answered nor ended is
  still waiting and counts only in ``calls``;
* **wait** = ``answered_at - requested_at``, over answered calls only (an abandoned call
  has no wait; it is counted in ``abandoned``);
* **average wait**: the arithmetic mean of the waits;
* **90th percentile wait**: the *nearest-rank* percentile: with the n waits sorted
  ascending, the value at 1-based rank ``ceil(0.9 * n)``. It is always one of the
  observed waits (no interpolation): at least 90 % of the answered calls waited no
  longer than it. For n = 1 it is that wait; for n = 10 the 9th; for n = 11 the 10th;
* **within target**: answered calls whose wait is at most :data:`TARGET_WAIT_S`
  (15 minutes, the centers' promise), and their share of the answered calls;
* **handling time** = ``ended_at - answered_at`` over answered calls that have ended;
* **follow-ups due**: follow-ups whose ``due_date`` falls in the period, whatever their
  status; **resolved within deadline**: those resolved on or before their due date
  (the local date of ``resolved_at`` <= ``due_date``); **resolution rate** = resolved
  within deadline / due. A follow-up due today and still open counts as not (yet)
  resolved;
* **ratings** of the period's calls: counts per score; **satisfaction share** =
  satisfied / rated calls.

A share or mean over nothing is ``None`` (shown as "–"), never 0.

The functions here take plain rows (:class:`CallFacts`, :class:`FollowupFacts`) so the
figures can be checked against numbers worked out by hand; :func:`load_stats` reads them
from the database. The charts are small SVG documents generated here, with every piece
of text escaped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.records.db import calls, followups, ratings

TARGET_WAIT_S = 15 * 60
DEFAULT_PERIOD_DAYS = 28
PERCENTILE = 90
SCORES = ("satisfied", "neutral", "dissatisfied")


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """Local calendar days ``start`` to ``end``, both included."""

    start: dt.date
    end: dt.date

    def bounds(self, tz: ZoneInfo) -> tuple[float, float]:
        """Epoch seconds of local midnight starting ``start`` and local midnight after ``end``."""
        lo = dt.datetime.combine(self.start, dt.time(), tz).timestamp()
        hi = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tz).timestamp()
        return lo, hi

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def label(self) -> str:
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


# The dates a period may start or end on: a default period counts back from its end and a period's bounds run
# to the midnight after it, which must stay within Python's dates (9999-12-31 or 0001-01-01 gave a 500).
FIRST_DATE = dt.date(1970, 1, 1)
LAST_DATE = dt.date(9998, 12, 31)


def parse_date(text: str | None) -> dt.date | None:
    """An ISO date (YYYY-MM-DD) from :data:`FIRST_DATE` to :data:`LAST_DATE`, or None for empty text;
    ValueError, saying why, for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a date of the form YYYY-MM-DD") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"{text!r} is outside the dates the records can hold "
                         f"({FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()})")
    return day


def parse_period(start: str | None, end: str | None, today: dt.date,
                 default_days: int = DEFAULT_PERIOD_DAYS) -> tuple[Period, list[str]]:
    """The period from form fields; defaults to the ``default_days`` days ending today.

    Returns the period and a list of problems found (a bad field falls back to its default).
    """
    problems: list[str] = []
    try:
        hi = parse_date(end) or today
    except ValueError as exc:
        problems.append(f"to: {exc}")
        hi = today
    try:
        lo = parse_date(start) or hi - dt.timedelta(days=default_days - 1)
    except ValueError as exc:
        problems.append(f"from: {exc}")
        lo = hi - dt.timedelta(days=default_days - 1)
    if lo > hi:
        problems.append("the period starts after it ends; the two dates were swapped")
        lo, hi = hi, lo
    return Period(lo, hi), problems


# ---------------------------------------------------------------- input rows


@dataclass(frozen=True)
class CallFacts:
    id: str
    district: str
    field: str
    requested_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    rating: str | None = None  # satisfied | neutral | dissatisfied

    @property
    def wait_s(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.requested_at

    @property
    def handling_s(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at

    @property
    def abandoned(self) -> bool:
        return self.answered_at is None and self.ended_at is not None


@dataclass(frozen=True)
class FollowupFacts:
    id: int
    district: str
    field: str
    due_date: dt.date
    status: str  # open | resolved
    resolved_at: float | None = None


# ---------------------------------------------------------------- results


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Iterable[float], p: float = PERCENTILE) -> float | None:
    """Nearest-rank percentile: the value at 1-based rank ceil(p/100 * n) of the sorted values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class GroupStats:
    """Figures for one group of calls (a district and field, a district, a field, or everything)."""

    district: str  # "" when the group spans districts
    field: str  # "" when the group spans fields
    calls: int
    answered: int
    abandoned: int
    avg_wait_s: float | None
    p90_wait_s: float | None
    max_wait_s: float | None
    within_target: int
    within_target_share: float | None
    avg_handling_s: float | None
    followups_due: int
    followups_resolved_in_time: int
    resolution_rate: float | None
    rated: int
    satisfied: int
    neutral: int
    dissatisfied: int
    satisfaction_share: float | None

    @property
    def avg_wait_ok(self) -> bool | None:
        return None if self.avg_wait_s is None else self.avg_wait_s <= TARGET_WAIT_S


def resolved_in_time(f: FollowupFacts, tz: ZoneInfo) -> bool:
    if f.status != "resolved" or f.resolved_at is None:
        return False
    return dt.datetime.fromtimestamp(f.resolved_at, tz).date() <= f.due_date


def group_stats(district: str, field_id: str, group_calls: Sequence[CallFacts],
                group_followups: Sequence[FollowupFacts], tz: ZoneInfo,
                target_s: float = TARGET_WAIT_S) -> GroupStats:
    waits = [c.wait_s for c in group_calls if c.wait_s is not None]
    handling = [c.handling_s for c in group_calls if c.handling_s is not None]
    within = sum(1 for w in waits if w <= target_s)
    in_time = sum(1 for f in group_followups if resolved_in_time(f, tz))
    scores = [c.rating for c in group_calls if c.rating in SCORES]
    satisfied = scores.count("satisfied")
    return GroupStats(
        district=district, field=field_id, calls=len(group_calls), answered=len(waits),
        abandoned=sum(1 for c in group_calls if c.abandoned),
        avg_wait_s=mean(waits), p90_wait_s=percentile(waits), max_wait_s=max(waits) if waits else None,
        within_target=within, within_target_share=share(within, len(waits)), avg_handling_s=mean(handling),
        followups_due=len(group_followups), followups_resolved_in_time=in_time,
        resolution_rate=share(in_time, len(group_followups)),
        rated=len(scores), satisfied=satisfied, neutral=scores.count("neutral"),
        dissatisfied=scores.count("dissatisfied"), satisfaction_share=share(satisfied, len(scores)),
    )


@dataclass(frozen=True)
class StatsReport:
    period: Period
    target_s: float
    rows: list[GroupStats]  # one per (district, field) that has calls or follow-ups due
    by_district: list[GroupStats]
    by_field: list[GroupStats]
    total: GroupStats
    notes: list[str] = field(default_factory=list)


def compute_stats(period: Period, call_rows: Iterable[CallFacts], followup_rows: Iterable[FollowupFacts],
                  tz: ZoneInfo, target_s: float = TARGET_WAIT_S) -> StatsReport:
    """Group the period's calls and follow-ups and compute every figure.

    ``call_rows`` must already be the calls requested in the period and ``followup_rows``
    the follow-ups due in it (:func:`load_stats` selects them so).
    """
    cs = list(call_rows)
    fs = list(followup_rows)

    def build(key: Callable[[CallFacts | FollowupFacts], tuple[str, str]]) -> list[GroupStats]:
        keys = sorted({key(c) for c in cs} | {key(f) for f in fs})
        return [group_stats(k[0], k[1], [c for c in cs if key(c) == k], [f for f in fs if key(f) == k], tz,
                            target_s) for k in keys]

    return StatsReport(
        period=period, target_s=target_s,
        rows=build(lambda r: (r.district, r.field)),
        by_district=build(lambda r: (r.district, "")),
        by_field=build(lambda r: ("", r.field)),
        total=group_stats("", "", cs, fs, tz, target_s),
    )


# ---------------------------------------------------------------- from the database


async def load_call_facts(engine: AsyncEngine, period: Period, tz: ZoneInfo) -> list[CallFacts]:
    lo, hi = period.bounds(tz)
    q = (sa.select(calls.c.id, calls.c.district, calls.c.field, calls.c.requested_at, calls.c.answered_at,
                   calls.c.ended_at, ratings.c.score)
         .select_from(calls.outerjoin(ratings, ratings.c.call_id == calls.c.id))
         .where(calls.c.requested_at >= lo, calls.c.requested_at < hi)
         .order_by(calls.c.requested_at))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [CallFacts(r.id, r.district, r.field, r.requested_at, r.answered_at, r.ended_at, r.score) for r in rows]


async def load_followup_facts(engine: AsyncEngine, period: Period) -> list[FollowupFacts]:
    q = (sa.select(followups.c.id, followups.c.district, followups.c.field, followups.c.due_date,
                   followups.c.status, followups.c.resolved_at)
         .where(followups.c.due_date >= period.start.isoformat(), followups.c.due_date <= period.end.isoformat())
         .order_by(followups.c.id))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [FollowupFacts(r.id, r.district, r.field, dt.date.fromisoformat(r.due_date), r.status, r.resolved_at)
            for r in rows]


async def load_stats(engine: AsyncEngine, period: Period, tz: ZoneInfo,
                     target_s: float = TARGET_WAIT_S) -> StatsReport:
    return compute_stats(period, await load_call_facts(engine, period, tz), await load_followup_facts(engine, period),
                         tz, target_s)


# ---------------------------------------------------------------- charts (SVG)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, cls: str, anchor: str = "start") -> str:
    return (f'<text x="{_num(x)}" y="{_num(y)}" class={quoteattr(cls)} text-anchor="{anchor}">'
            f"{escape(content)}</text>")


def _nice_max(value: float) -> float:
    """A round number at least ``value`` for the end of an axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _untranslated(message: str) -> str:
    return message


def _mmss(minutes: float) -> str:
    """Minutes as m:ss, as the tables show durations (13.6 -> "13:36")."""
    m, sec = divmod(max(0, round(minutes * 60)), 60)
    return f"{m}:{sec:02d}"


def wait_chart_svg(groups: Sequence[GroupStats], label: Callable[[GroupStats], str],
                   target_s: float = TARGET_WAIT_S, title: str = "Wait per district (m:ss)",
                   gettext: Callable[[str], str] = _untranslated) -> str:
    """Grouped vertical bars: average and 90th-percentile wait per group, a dashed line at the target.
    ``gettext`` translates the chart's own words (the staff catalog's)."""
    width, height = 640, 300
    left, right, top, bottom = 48, 16, 40, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    shown = [g for g in groups if g.avg_wait_s is not None]
    peak = max([target_s / 60] + [(g.p90_wait_s or 0) / 60 for g in shown])
    y_max = _nice_max(peak * 1.1)

    def y(minutes: float) -> float:
        return top + plot_h - minutes / y_max * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="vw-chart" '
             f'role="img" aria-label={quoteattr(title)}>', f"<title>{escape(title)}</title>",
             _text(left, 20, title, "vw-chart-title")]
    for i in range(5):
        v = y_max * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y(v))}" y2="{_num(y(v))}" '
                     'class="vw-chart-grid"/>')
        parts.append(_text(left - 6, y(v) + 4, _mmss(v), "vw-chart-axis", "end"))
    if not shown:
        parts.append(_text(left + plot_w / 2, top + plot_h / 2, gettext("no answered calls in this period"),
                           "vw-chart-empty", "middle"))
    slot = plot_w / max(1, len(shown))
    bar = min(36.0, slot / 3)
    for i, g in enumerate(shown):
        x0 = left + i * slot + slot / 2 - bar
        bars = (((g.avg_wait_s or 0) / 60, "vw-bar-avg", gettext("average")),
                ((g.p90_wait_s or 0) / 60, "vw-bar-p90", gettext("90th percentile")))
        tip = gettext("%(label)s: %(name)s %(duration)s")
        for j, (value, cls, name) in enumerate(bars):
            bx = x0 + j * bar
            parts.append(f'<rect x="{_num(bx)}" y="{_num(y(value))}" width="{_num(bar - 2)}" '
                         f'height="{_num(top + plot_h - y(value))}" class="{cls}">'
                         f"<title>{escape(tip % {'label': label(g), 'name': name, 'duration': _mmss(value)})}"
                         "</title></rect>")
            parts.append(_text(bx + (bar - 2) / 2, y(value) - 4, _mmss(value), "vw-chart-value", "middle"))
        parts.append(_text(left + i * slot + slot / 2, top + plot_h + 18, label(g), "vw-chart-label", "middle"))
    ty = y(target_s / 60)
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(ty)}" y2="{_num(ty)}" class="vw-chart-target"/>')
    parts.append(_text(width - right, ty - 6, gettext("target %(duration)s") % {"duration": _mmss(target_s / 60)},
                       "vw-chart-target-label", "end"))
    lx = left
    for cls, name in (("vw-bar-avg", gettext("average")), ("vw-bar-p90", gettext("90th percentile"))):
        parts.append(f'<rect x="{lx}" y="{height - 22}" width="12" height="12" class="{cls}"/>')
        parts.append(_text(lx + 18, height - 12, name, "vw-chart-legend"))
        lx += 220
    parts.append("</svg>")
    return "".join(parts)


def calls_chart_svg(groups: Sequence[GroupStats], label: Callable[[GroupStats], str],
                    title: str = "Calls per service field", gettext: Callable[[str], str] = _untranslated) -> str:
    """Horizontal bars: answered and abandoned calls per group, stacked."""
    row_h, left, right, top = 30, 190, 60, 36
    width = 640
    height = top + row_h * max(1, len(groups)) + 34
    plot_w = width - left - right
    x_max = _nice_max(max([1] + [g.calls for g in groups]))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="vw-chart" '
             f'role="img" aria-label={quoteattr(title)}>', f"<title>{escape(title)}</title>",
             _text(8, 20, title, "vw-chart-title")]
    if not groups:
        parts.append(_text(width / 2, top + row_h / 2, gettext("no calls in this period"), "vw-chart-empty", "middle"))
    for i, g in enumerate(groups):
        yy = top + i * row_h
        parts.append(_text(left - 8, yy + row_h / 2 + 4, label(g), "vw-chart-label", "end"))
        x = float(left)
        other = g.calls - g.answered - g.abandoned
        tip = gettext("%(label)s: %(count)s %(name)s")
        for value, cls, name in ((g.answered, "vw-bar-answered", gettext("answered")),
                                 (g.abandoned, "vw-bar-abandoned", gettext("abandoned")),
                                 (other, "vw-bar-other", gettext("waiting"))):
            if value <= 0:
                continue
            w = value / x_max * plot_w
            parts.append(f'<rect x="{_num(x)}" y="{yy + 5}" width="{_num(w)}" height="{row_h - 10}" class="{cls}">'
                         f"<title>{escape(tip % {'label': label(g), 'count': value, 'name': name})}</title></rect>")
            x += w
        parts.append(_text(x + 6, yy + row_h / 2 + 4, str(g.calls), "vw-chart-value"))
    lx = float(left)
    for cls, name in (("vw-bar-answered", gettext("answered")), ("vw-bar-abandoned", gettext("abandoned"))):
        parts.append(f'<rect x="{_num(lx)}" y="{height - 22}" width="12" height="12" class="{cls}"/>')
        parts.append(_text(lx + 18, height - 12, name, "vw-chart-legend"))
        lx += 170
    parts.append("</svg>")
    return "".join(parts)
