"""Unit tests of :class:`signaling.routing.RoutingEngine`: events in, decisions out, no I/O, no clock."""

from __future__ import annotations

import tomllib
from typing import TypeVar

import pytest

from signaling import errors
from signaling.calls import CallState
from signaling.decisions import (
    CallEnded,
    ClerkStatus,
    ClerkStatusChanged,
    Decision,
    EndReason,
    Matched,
    QueueChanged,
    Queued,
    Ring,
    RingEnded,
    RingEndReason,
    StageWidened,
)
from signaling.regions import RegionError, RegionTree
from signaling.routing import ClerkProfile, RoutingEngine, Stage, eligible, validate_stages

from .conftest import CONFIG_DIR, CONFIG_STAGES

JD_PARK = "sh/jiading/xincheng/park-3"
JD_PARK4 = "sh/jiading/xincheng/park-4"
JD_TOWN = "sh/jiading/xincheng"
ANTING = "sh/jiading/anting"
JIADING = "sh/jiading"
PT_PARK = "sh/putuo/changshou/park-1"
PUTUO = "sh/putuo"
CITY = "sh"

D = TypeVar("D")


def clerk(
    cid: str, *regions: str, fields: tuple[str, ...] = ("tax",), languages: tuple[str, ...] = ("zh",)
) -> ClerkProfile:
    return ClerkProfile(cid, frozenset(fields), frozenset(languages), regions)


def of(out: list[Decision], kind: type[D]) -> list[D]:
    return [d for d in out if isinstance(d, kind)]


def rings(out: list[Decision]) -> list[tuple[str, str, int]]:
    return [(r.call_id, r.clerk_id, r.ring) for r in of(out, Ring)]


@pytest.fixture
def engine(sample_tree: RegionTree, stages: tuple[Stage, ...]) -> RoutingEngine:
    return RoutingEngine(sample_tree, stages, ring_timeout_s=20.0, default_handle_s=300.0)


def online(engine: RoutingEngine, profile: ClerkProfile, now: float, available: bool = True) -> list[Decision]:
    return engine.clerk_online(profile, now, available=available)


def connect(engine: RoutingEngine, clerk_id: str, call_id: str, now: float) -> None:
    """Accept a call that rings for ``clerk_id`` and bring its media up."""
    out = engine.accept(clerk_id, call_id, now)
    assert of(out, Matched) == [Matched(call_id, clerk_id)]
    engine.media_connected(call_id, now)
    assert engine.calls[call_id].state is CallState.ACTIVE


# ---------------------------------------------------------------- configuration


def test_config_routing_toml_matches_the_stages_used_here(sample_tree: RegionTree) -> None:
    with (CONFIG_DIR / "routing.toml").open("rb") as fh:
        data = tomllib.load(fh)
    loaded = tuple(
        Stage(
            s["name"],
            float(s["after_s"]),
            sample_tree.level_index(s["level"]) if "level" in s else None,
            bool(s.get("require_language", True)),
        )
        for s in data["stage"]
    )
    assert validate_stages(loaded) == CONFIG_STAGES


def test_validate_stages_accepts_widening_stages() -> None:
    assert validate_stages(list(CONFIG_STAGES)) == CONFIG_STAGES
    only_relax = [Stage("a", 0), Stage("b", 60, None, False)]
    assert validate_stages(only_relax) == tuple(only_relax)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "at least one"),
        ([Stage("a", 10)], "after_s = 0"),
        ([Stage("a", 0), Stage("b", 0, 2)], "must start after"),
        ([Stage("a", 0), Stage("b", 120, 2), Stage("c", 100, 1)], "must start after"),
        ([Stage("a", 0), Stage("b", 120, 2), Stage("c", 300, 3)], "must not narrow"),
        ([Stage("a", 0), Stage("b", 120, 2), Stage("c", 300, None)], "must not narrow"),
        ([Stage("a", 0, 1), Stage("b", 120, 2)], "must not narrow"),
        ([Stage("a", 0), Stage("b", 120, 2, False), Stage("c", 300, 1, True)], "requires the language again"),
    ],
)
def test_validate_stages_rejects_stages_that_do_not_widen(stages: list[Stage], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_stages(stages)


def test_engine_refuses_narrowing_stages(sample_tree: RegionTree) -> None:
    with pytest.raises(ValueError, match="must not narrow"):
        RoutingEngine(sample_tree, (Stage("a", 0), Stage("b", 120, 1), Stage("c", 300, 2)))


# ---------------------------------------------------------------- matching by field, region, language


def test_call_rings_the_clerk_of_its_jurisdiction(engine: RoutingEngine) -> None:
    online(engine, clerk("putuo", PUTUO), 0)
    online(engine, clerk("jiading", JIADING), 1)
    out = engine.request_call("c1", "tax", "zh", JD_PARK, now=10)
    assert of(out, Ring) == [Ring("c1", "jiading", 30.0, 0)]
    assert ClerkStatusChanged("jiading", ClerkStatus.RINGING) in out
    assert of(out, Queued) == []
    assert engine.calls["c1"].state is CallState.RINGING
    assert engine.clerks["jiading"].status is ClerkStatus.RINGING
    assert engine.clerks["putuo"].status is ClerkStatus.AVAILABLE

    out = engine.request_call("c2", "tax", "zh", PT_PARK, now=11)
    assert rings(out) == [("c2", "putuo", 0)]


def test_clerk_of_another_district_is_not_rung_at_stage_0(engine: RoutingEngine) -> None:
    online(engine, clerk("putuo", PUTUO), 0)
    out = engine.request_call("c1", "tax", "zh", JD_PARK, now=10)
    assert rings(out) == []
    assert of(out, Queued) == [Queued("c1", 1, None, 0, "")]
    assert engine.calls["c1"].state is CallState.QUEUED
    assert engine.clerks["putuo"].idle


def test_a_freed_jurisdiction_clerk_takes_only_calls_of_its_jurisdiction(engine: RoutingEngine) -> None:
    engine.request_call("putuo-call", "tax", "zh", PT_PARK, now=0)
    engine.request_call("jd-call", "tax", "zh", JD_PARK4, now=5)
    out = online(engine, clerk("jiading", JIADING), 6)
    assert rings(out) == [("jd-call", "jiading", 0)]
    assert engine.calls["putuo-call"].state is CallState.QUEUED


def test_clerk_covering_a_town_serves_its_parks_and_the_city_clerk_serves_all(engine: RoutingEngine) -> None:
    online(engine, clerk("town", JD_TOWN), 0)
    online(engine, clerk("city", CITY), 1)
    assert rings(engine.request_call("c1", "tax", "zh", JD_PARK, now=2)) == [("c1", "town", 0)]
    assert rings(engine.request_call("c2", "tax", "zh", "sh/jiading/anting/park-1", now=3)) == [("c2", "city", 0)]


def test_field_is_required_at_every_stage(engine: RoutingEngine) -> None:
    online(engine, clerk("market", CITY, fields=("market", "social")), 0)
    out = engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    assert rings(out) == []
    out = engine.tick(1000)
    assert [(w.stage, w.name) for w in of(out, StageWidened)] == [(1, "district"), (2, "city")]
    assert rings(out) == []
    assert engine.calls["c1"].state is CallState.QUEUED
    # a second field of the same clerk is served
    assert rings(engine.request_call("c2", "social", "zh", JD_PARK, now=1001)) == [("c2", "market", 0)]


def test_language_is_required_until_the_city_stage(engine: RoutingEngine) -> None:
    online(engine, clerk("zh-only", JIADING, languages=("zh",)), 0)
    out = engine.request_call("c1", "tax", "ar", JD_PARK, now=0)
    assert rings(out) == []
    assert of(out, Queued)[0].stage == 0

    out = engine.tick(120)
    assert of(out, StageWidened) == [StageWidened("c1", 1, "district")]
    assert rings(out) == []  # the district stage still requires the language

    out = engine.tick(300)
    assert of(out, StageWidened) == [StageWidened("c1", 2, "city")]
    assert of(out, Ring) == [Ring("c1", "zh-only", 320.0, 2)]


def test_a_clerk_speaking_the_language_is_rung_at_once(engine: RoutingEngine) -> None:
    online(engine, clerk("zh", JIADING, languages=("zh",)), 0)
    online(engine, clerk("ar", JIADING, languages=("zh", "ar")), 1)
    out = engine.request_call("c1", "tax", "ar", JD_PARK, now=5)
    assert rings(out) == [("c1", "ar", 0)]


# ---------------------------------------------------------------- stages widen with time


def test_district_stage_after_120_s_rings_a_clerk_of_the_same_district(engine: RoutingEngine) -> None:
    online(engine, clerk("anting", ANTING), 0)
    online(engine, clerk("putuo", PUTUO), 0)
    out = engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    assert rings(out) == []
    assert engine.next_deadline() == 120.0
    assert engine.tick(119.9) == []
    out = engine.tick(120)
    assert out.index(StageWidened("c1", 1, "district")) < out.index(Ring("c1", "anting", 140.0, 1))
    assert rings(out) == [("c1", "anting", 1)]
    assert engine.calls["c1"].stage == 1


def test_city_stage_after_300_s_rings_a_clerk_of_another_district(engine: RoutingEngine) -> None:
    online(engine, clerk("putuo", PUTUO), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    out = engine.tick(120)
    assert of(out, StageWidened) == [StageWidened("c1", 1, "district")]
    assert rings(out) == []
    assert engine.next_deadline() == 300.0
    assert engine.tick(299) == []
    out = engine.tick(300)
    assert of(out, StageWidened) == [StageWidened("c1", 2, "city")]
    assert of(out, Ring) == [Ring("c1", "putuo", 320.0, 2)]


def test_a_late_tick_applies_every_due_stage_in_order(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    out = engine.tick(500)
    assert of(out, StageWidened) == [StageWidened("c1", 1, "district"), StageWidened("c1", 2, "city")]
    assert engine.next_deadline() is None
    out = online(engine, clerk("putuo", PUTUO), 501)
    assert rings(out) == [("c1", "putuo", 2)]


def test_a_clerk_coming_online_after_widening_is_rung_with_the_stage_that_admits_it(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.tick(150)
    out = online(engine, clerk("anting", ANTING), 151)
    assert of(out, Ring) == [Ring("c1", "anting", 171.0, 1)]


# ---------------------------------------------------------------- who is rung


def test_nearest_ring_first_over_a_longer_idle_district_clerk(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.tick(120)
    assert engine.calls["c1"].stage == 1
    out = online(engine, clerk("first", JIADING), 121)
    assert rings(out) == [("c1", "first", 0)]
    # while c1 rings, a district clerk becomes idle first, a jurisdiction clerk later
    assert rings(online(engine, clerk("anting", ANTING), 125)) == []
    assert rings(online(engine, clerk("town", JD_TOWN), 130)) == []
    out = engine.decline("first", "c1", now=131)
    assert rings(out) == [("c1", "town", 0)]
    assert engine.clerks["anting"].idle


def test_district_clerk_is_rung_when_no_jurisdiction_clerk_is_idle(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.tick(120)
    online(engine, clerk("first", JIADING), 121)
    online(engine, clerk("putuo", PUTUO), 124)
    online(engine, clerk("anting", ANTING), 125)
    out = engine.decline("first", "c1", now=131)
    assert rings(out) == [("c1", "anting", 1)]


def test_longest_idle_among_equally_near_clerks(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0, available=False)
    online(engine, clerk("b", JD_TOWN), 0, available=False)
    online(engine, clerk("c", CITY), 0, available=False)
    engine.set_available("a", 5)
    engine.set_available("c", 3)
    engine.set_available("b", 1)
    assert rings(engine.request_call("c1", "tax", "zh", JD_PARK, now=10)) == [("c1", "b", 0)]
    assert rings(engine.request_call("c2", "tax", "zh", JD_PARK, now=11)) == [("c2", "c", 0)]
    assert rings(engine.request_call("c3", "tax", "zh", JD_PARK, now=12)) == [("c3", "a", 0)]


def test_a_declining_clerk_goes_to_the_back_of_the_idle_line(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    online(engine, clerk("b", JIADING), 5)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=10)  # rings a
    engine.decline("a", "c1", now=11)  # c1 goes on to b; a is idle again since 11
    engine.end_call("c1", 12, EndReason.CANCELLED, "visitor")  # b is idle since 12
    assert rings(engine.request_call("c2", "tax", "zh", JD_PARK, now=13)) == [("c2", "a", 0)]


def test_freed_clerk_takes_highest_priority_then_longest_waiting(engine: RoutingEngine) -> None:
    online(engine, clerk("j", JIADING), 0)
    engine.request_call("busy", "tax", "zh", JD_PARK, now=0)
    connect(engine, "j", "busy", 1)
    engine.request_call("old", "tax", "zh", JD_PARK, now=10)
    engine.request_call("young", "tax", "zh", JD_PARK4, now=20)
    engine.request_call("prio", "tax", "zh", JD_PARK, now=30, priority=1)
    engine.request_call("other-field", "market", "zh", JD_PARK, now=5)
    assert engine.position("prio")[0] == 1
    assert engine.position("old")[0] == 2
    assert engine.position("young")[0] == 3

    out = engine.end_call("busy", 40, EndReason.HANGUP, "clerk")
    assert rings(out) == [("prio", "j", 0)]
    connect(engine, "j", "prio", 41)
    out = engine.end_call("prio", 50, EndReason.HANGUP, "clerk")
    assert rings(out) == [("old", "j", 0)]
    connect(engine, "j", "old", 51)
    out = engine.end_call("old", 60, EndReason.HANGUP, "clerk")
    assert rings(out) == [("young", "j", 0)]
    assert engine.calls["other-field"].state is CallState.QUEUED


def test_freed_clerk_takes_the_longest_waiting_call_across_its_fields_and_regions(engine: RoutingEngine) -> None:
    online(engine, clerk("j", JD_TOWN, PUTUO, fields=("tax", "market")), 0, available=False)
    engine.request_call("jd-tax", "tax", "zh", JD_PARK, now=30)
    engine.request_call("pt-market", "market", "zh", PT_PARK, now=10)
    engine.request_call("jd-market", "market", "zh", JD_PARK4, now=20)
    assert rings(engine.set_available("j", 40)) == [("pt-market", "j", 0)]


def test_freed_clerk_takes_a_call_that_widened_to_it(engine: RoutingEngine) -> None:
    online(engine, clerk("putuo", PUTUO), 0, available=False)
    engine.request_call("jd", "tax", "en", JD_PARK, now=0)  # reaches putuo at the city stage
    engine.request_call("pt", "tax", "zh", PT_PARK, now=100)
    engine.tick(300)
    assert engine.calls["jd"].stage == 2
    out = engine.set_available("putuo", 301)
    assert of(out, Ring) == [Ring("jd", "putuo", 321.0, 2)]


# ---------------------------------------------------------------- ring timeout, decline, away


def test_ring_timeout_makes_the_clerk_away_and_the_call_keeps_its_place(engine: RoutingEngine) -> None:
    online(engine, clerk("j", JIADING), 0)
    out = engine.request_call("first", "tax", "zh", JD_PARK, now=1)
    assert of(out, Ring) == [Ring("first", "j", 21.0, 0)]
    engine.request_call("second", "tax", "zh", JD_PARK4, now=5)
    assert engine.position("second")[0] == 1
    assert engine.next_deadline() == 21.0
    assert engine.tick(20.9) == []

    out = engine.tick(21)
    assert ClerkStatusChanged("j", ClerkStatus.AWAY, "ring_timeout") in out
    assert RingEnded("first", "j", RingEndReason.TIMEOUT) in out
    queued = of(out, Queued)
    assert [(q.call_id, q.position, q.reason) for q in queued] == [("first", 1, "")]
    assert engine.clerks["j"].status is ClerkStatus.AWAY
    assert engine.clerks["j"].call_id is None
    assert engine.calls["first"].state is CallState.QUEUED
    assert engine.calls["first"].clerk_id is None
    assert engine.position("first")[0] == 1
    assert engine.position("second")[0] == 2
    assert engine.next_deadline() == 121.0  # the ring deadline is gone; first's district stage is next

    # re-offered: the next clerk takes the call at its old place, before "second"
    out = online(engine, clerk("k", JD_TOWN), 22)
    assert rings(out) == [("first", "k", 0)]


def test_ring_timeout_reoffers_at_once_to_another_idle_clerk(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    online(engine, clerk("b", JIADING), 1)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=2)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=3)
    assert engine.clerks["a"].call_id == "c1"
    assert engine.clerks["b"].call_id == "c2"
    engine.accept("b", "c2", 4)
    engine.end_call("c2", 10, EndReason.HANGUP, "clerk")  # b idle since 10
    out = engine.tick(22)
    assert out.index(RingEnded("c1", "a", RingEndReason.TIMEOUT)) < out.index(Ring("c1", "b", 42.0, 0))
    assert of(out, Queued) == []


def test_a_timed_out_clerk_who_comes_back_may_be_offered_the_call_again(engine: RoutingEngine) -> None:
    online(engine, clerk("j", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.tick(20)
    assert engine.clerks["j"].status is ClerkStatus.AWAY
    out = engine.set_available("j", 30)
    assert rings(out) == [("c1", "j", 0)]


def test_decline_reoffers_to_the_next_clerk_and_never_again_to_the_decliner(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    online(engine, clerk("b", JD_TOWN), 1)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=2)
    assert engine.clerks["a"].call_id == "c1"

    out = engine.decline("a", "c1", now=3)
    assert out[0] == RingEnded("c1", "a", RingEndReason.DECLINED)
    assert rings(out) == [("c1", "b", 0)]
    assert ClerkStatusChanged("a", ClerkStatus.AVAILABLE) in out
    assert engine.clerks["a"].idle

    out = engine.decline("b", "c1", now=4)
    assert rings(out) == []  # a is idle but declined c1
    assert [(q.call_id, q.position) for q in of(out, Queued)] == [("c1", 1)]
    assert engine.clerks["a"].idle and engine.clerks["b"].idle
    out = engine.tick(400)  # widening changes nothing for those who declined
    assert rings(out) == []
    assert engine.calls["c1"].declined_by == {"a", "b"}

    # the decliners still get other calls, and a new clerk gets c1
    assert rings(engine.request_call("c2", "tax", "zh", JD_PARK, now=401)) == [("c2", "a", 0)]
    assert rings(online(engine, clerk("c", ANTING), 402)) == [("c1", "c", 1)]


def test_a_decliner_freed_later_skips_the_declined_call(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=2)
    out = engine.decline("a", "c1", now=3)
    assert rings(out) == [("c2", "a", 0)]  # the older c1 was declined by a
    assert engine.calls["c1"].state is CallState.QUEUED
    connect(engine, "a", "c2", 4)
    out = engine.end_call("c2", 10, EndReason.HANGUP, "clerk")
    assert rings(out) == []
    assert engine.clerks["a"].idle


def test_set_away_while_ringing_is_a_decline_and_stops_offers(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    out = engine.set_away("a", 2)
    assert ClerkStatusChanged("a", ClerkStatus.AWAY) in out
    assert RingEnded("c1", "a", RingEndReason.DECLINED) in out
    assert [(q.call_id, q.position) for q in of(out, Queued)] == [("c1", 1)]
    assert engine.clerks["a"].status is ClerkStatus.AWAY
    assert engine.clerks["a"].call_id is None
    assert engine.calls["c1"].state is CallState.QUEUED
    assert engine.next_deadline() == 121.0  # no ring deadline left
    # coming back does not bring c1 back, but new calls ring again
    out = engine.set_available("a", 3)
    assert rings(out) == []
    assert engine.clerks["a"].idle
    assert rings(engine.request_call("c2", "tax", "zh", JD_PARK, now=4)) == [("c2", "a", 0)]


def test_set_away_while_ringing_reoffers_to_another_clerk(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    online(engine, clerk("b", JIADING), 1)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=2)
    out = engine.set_away("a", 3)
    assert rings(out) == [("c1", "b", 0)]


def test_set_away_while_available_and_while_busy(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    out = engine.set_away("a", 1)
    assert out == [ClerkStatusChanged("a", ClerkStatus.AWAY)]
    assert engine.set_away("a", 2) == []  # already away
    assert rings(engine.request_call("c1", "tax", "zh", JD_PARK, now=3)) == []
    assert rings(engine.set_available("a", 4)) == [("c1", "a", 0)]
    engine.accept("a", "c1", 5)
    with pytest.raises(errors.SignalingError) as exc:
        engine.set_away("a", 6)
    assert exc.value.code == errors.WRONG_STATE
    assert engine.clerks["a"].status is ClerkStatus.BUSY


# ---------------------------------------------------------------- accept and end_call


def test_accept_makes_the_clerk_busy_and_clears_the_ring_deadline(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    out = engine.accept("a", "c1", 2)
    assert out == [Matched("c1", "a"), ClerkStatusChanged("a", ClerkStatus.BUSY)]
    assert engine.calls["c1"].state is CallState.CONNECTING
    assert engine.calls["c1"].accepted_at == 2
    # the ring would have timed out at 21: nothing happens then
    out = engine.tick(21)
    assert of(out, RingEnded) == []
    assert engine.clerks["a"].status is ClerkStatus.BUSY


def test_end_call_while_queued(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=1)
    out = engine.end_call("c1", 5, EndReason.CANCELLED, "visitor")
    assert out == [QueueChanged("tax", JIADING), CallEnded("c1", None, EndReason.CANCELLED, "visitor")]
    assert "c1" not in engine.calls
    assert engine.position("c2")[0] == 1
    assert [c.id for c in engine.waiting_calls()] == ["c2"]
    assert rings(online(engine, clerk("a", JIADING), 6)) == [("c2", "a", 0)]
    with pytest.raises(errors.SignalingError) as exc:
        engine.position("c1")
    assert exc.value.code == errors.NO_SUCH_CALL


def test_a_cancelled_call_leaves_no_deadline_behind(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.end_call("c1", 5, EndReason.CANCELLED, "visitor")
    assert engine.next_deadline() is None
    assert engine.tick(1000) == []


@pytest.mark.parametrize(
    ("reason", "ring_reason"),
    [
        (EndReason.CANCELLED, RingEndReason.CANCELLED),
        (EndReason.VISITOR_DISCONNECTED, RingEndReason.VISITOR_DISCONNECTED),
    ],
)
def test_end_call_while_ringing(engine: RoutingEngine, reason: EndReason, ring_reason: RingEndReason) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=2)
    out = engine.end_call("c1", 3, reason, "visitor")
    # a ring is not a call: the ended call names no clerk
    assert out[:2] == [RingEnded("c1", "a", ring_reason), CallEnded("c1", None, reason, "visitor")]
    assert ClerkStatusChanged("a", ClerkStatus.AVAILABLE) in out
    assert of(out, Ring) == [Ring("c2", "a", 23.0, 0)]
    assert engine.handle_time("tax") == 300.0  # never accepted: no handling time measured
    assert engine.next_deadline() == 23.0


@pytest.mark.parametrize("media", [False, True], ids=["connecting", "active"])
def test_end_call_while_connecting_or_active(engine: RoutingEngine, media: bool) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.accept("a", "c1", 10)
    if media:
        engine.media_connected("c1", 11)
    assert engine.calls["c1"].state is (CallState.ACTIVE if media else CallState.CONNECTING)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=20)
    out = engine.end_call("c1", 110, EndReason.HANGUP, "clerk")
    assert of(out, RingEnded) == []
    assert out[0] == CallEnded("c1", "a", EndReason.HANGUP, "clerk")
    assert out.index(ClerkStatusChanged("a", ClerkStatus.AVAILABLE)) < out.index(Ring("c2", "a", 130.0, 0))
    assert "c1" not in engine.calls
    assert engine.clerks["a"].call_id == "c2"
    assert engine.handle_time("tax") == pytest.approx(0.8 * 300 + 0.2 * 100)


def test_end_call_frees_the_clerk_to_idle_when_nothing_waits(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    connect(engine, "a", "c1", 1)
    out = engine.end_call("c1", 50, EndReason.VISITOR_DISCONNECTED, "system")
    assert out == [
        CallEnded("c1", "a", EndReason.VISITOR_DISCONNECTED, "system"),
        ClerkStatusChanged("a", ClerkStatus.AVAILABLE),
    ]
    assert engine.clerks["a"].idle
    assert engine.clerks["a"].idle_since == 50


# ---------------------------------------------------------------- clerks going offline


def test_clerk_offline_while_ringing_reoffers_the_call(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    online(engine, clerk("b", JD_TOWN), 1)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=2)
    out = engine.clerk_offline("a", 3)
    assert out[0] == RingEnded("c1", "a", RingEndReason.CLERK_DISCONNECTED)
    assert of(out, Ring) == [Ring("c1", "b", 23.0, 0)]
    assert "a" not in engine.clerks
    assert engine.calls["c1"].clerk_id == "b"


def test_clerk_offline_while_ringing_with_nobody_else_queues_the_call(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=2)
    out = engine.clerk_offline("a", 3)
    assert [(q.call_id, q.position, q.estimated_wait_s, q.reason) for q in of(out, Queued)] == [("c1", 1, None, "")]
    assert engine.calls["c1"].priority == 0
    assert engine.next_deadline() == 122.0


def test_clerk_offline_while_busy_requeues_the_call_first_in_line(engine: RoutingEngine) -> None:
    # two older calls in Arabic wait in the same queue (tax, Jiading): clerk a does not speak Arabic
    engine.request_call("oldest", "tax", "ar", JD_PARK4, now=0)
    engine.request_call("older", "tax", "ar", JD_PARK, now=1)
    online(engine, clerk("a", JIADING), 2)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=3)
    connect(engine, "a", "c1", 4)
    assert engine.position("oldest")[0] == 1
    assert engine.position("older")[0] == 2

    out = engine.clerk_offline("a", 50)
    assert of(out, RingEnded) == []
    assert of(out, CallEnded) == []
    queued = of(out, Queued)
    assert [(q.call_id, q.position, q.reason) for q in queued] == [("c1", 1, "clerk_disconnected")]
    call = engine.calls["c1"]
    assert call.state is CallState.QUEUED
    assert call.priority == 1
    assert call.accepted_at is None
    assert call.clerk_id is None
    assert engine.position("c1")[0] == 1
    assert engine.position("oldest")[0] == 2
    assert engine.position("older")[0] == 3
    assert "a" not in engine.clerks

    # a clerk who could take all three gets the dropped call first, then the older ones in order
    out = online(engine, clerk("b", JIADING, languages=("zh", "ar")), 51)
    assert rings(out) == [("c1", "b", 0)]
    connect(engine, "b", "c1", 52)
    out = engine.end_call("c1", 60, EndReason.HANGUP, "clerk")
    assert rings(out) == [("oldest", "b", 0)]
    # handling time is measured from the second acceptance, not the first
    assert engine.handle_time("tax") == pytest.approx(0.8 * 300 + 0.2 * 8)


def test_clerk_offline_while_busy_reoffers_at_once_to_an_idle_clerk(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    connect(engine, "a", "c1", 2)
    online(engine, clerk("b", JIADING), 3)
    out = engine.clerk_offline("a", 10)
    assert of(out, Ring) == [Ring("c1", "b", 30.0, 0)]
    assert of(out, Queued) == []
    assert engine.calls["c1"].priority == 1


def test_a_call_back_from_a_long_conversation_announces_each_stage_its_wait_passed(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    connect(engine, "a", "c1", 1)
    assert of(engine.tick(400), StageWidened) == []  # in conversation: no widening
    out = engine.clerk_offline("a", 400)
    assert of(out, StageWidened) == [StageWidened("c1", 1, "district"), StageWidened("c1", 2, "city")]
    assert of(out, Queued)[0].stage == 2
    assert engine.next_deadline() is None


def test_a_call_back_from_a_conversation_at_the_very_instant_of_a_stage_reaches_it(engine: RoutingEngine) -> None:
    # 148.63... + 120 rounds to 268.63...24, but 268.63...24 - 148.63... is just under 120: the stage must count
    # as reached by the same sum its deadline is set by, or the call is queued with a deadline already due
    asked = 148.63052612758227
    now = asked + 120.0
    assert now - asked < 120.0
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=asked)
    connect(engine, "a", "c1", asked + 1)
    out = engine.clerk_offline("a", now)
    assert of(out, StageWidened) == [StageWidened("c1", 1, "district")]
    deadline = engine.next_deadline()
    assert deadline is not None and deadline > now


def test_clerk_offline_while_idle_or_away(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    online(engine, clerk("b", JIADING), 0, available=False)
    assert engine.clerk_offline("a", 1) == []
    assert engine.clerk_offline("b", 1) == []
    assert engine.clerks == {}
    out = engine.request_call("c1", "tax", "zh", JD_PARK, now=2)
    assert rings(out) == []
    assert of(out, Queued)[0].estimated_wait_s is None
    # an id can come back online
    assert rings(online(engine, clerk("a", JIADING), 3)) == [("c1", "a", 0)]


# ---------------------------------------------------------------- position and estimated wait


def test_estimated_wait_is_none_while_no_clerk_of_the_field_is_online(engine: RoutingEngine) -> None:
    online(engine, clerk("m", JIADING, fields=("market",)), 0)
    out = engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    assert of(out, Queued) == [Queued("c1", 1, None, 0, "")]
    assert engine.position("c1") == (1, None)


def test_estimated_wait_uses_the_default_handling_time_and_clerks_online(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0, available=False)  # away clerks count: they are online
    out = engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    assert of(out, Queued) == [Queued("c1", 1, 300.0, 0, "")]
    engine.request_call("c2", "tax", "zh", JD_PARK4, now=2)
    assert engine.position("c2") == (2, 600.0)
    online(engine, clerk("b", "sh/jiading/anting/park-1"), 3, available=False)  # inside the district
    assert engine.position("c1") == (1, 300.0)
    assert engine.position("c2") == (2, 300.0)
    engine.request_call("c3", "tax", "zh", JD_PARK, now=4)
    assert engine.position("c3") == (3, 600.0)
    assert engine.waiting_in("tax", JIADING) == [("c1", 1, 300.0), ("c2", 2, 300.0), ("c3", 3, 600.0)]
    # queues are per field and district
    engine.request_call("p1", "tax", "zh", PT_PARK, now=5)
    assert engine.position("p1") == (1, None)
    engine.request_call("m1", "market", "zh", JD_PARK, now=6)
    assert engine.position("m1") == (1, None)


def test_estimated_wait_follows_the_moving_average_of_handling_times(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    connect(engine, "a", "c1", 100)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=110)
    assert engine.position("c2") == (1, 300.0)
    out = engine.end_call("c1", 200, EndReason.HANGUP, "clerk")  # handled in 100 s
    assert rings(out) == [("c2", "a", 0)]
    assert engine.handle_time("tax") == pytest.approx(260.0)
    engine.request_call("c3", "tax", "zh", JD_PARK, now=201)
    assert engine.position("c3") == (1, pytest.approx(260.0))
    assert engine.handle_time("market") == 300.0  # per field

    connect(engine, "a", "c2", 210)
    engine.end_call("c2", 230, EndReason.HANGUP, "clerk")  # 20 s
    assert engine.handle_time("tax") == pytest.approx(0.8 * 260 + 0.2 * 20)


def test_position_of_a_call_that_is_not_waiting(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    assert engine.position("c1") == (0, 0.0)


def test_request_call_reports_position_and_stage(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0, available=False)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    out = engine.request_call("c2", "tax", "zh", JD_PARK, now=1)
    assert out == [QueueChanged("tax", JIADING), Queued("c2", 2, 600.0, 0, "")]


# ---------------------------------------------------------------- next_deadline


def test_next_deadline(engine: RoutingEngine) -> None:
    assert engine.next_deadline() is None
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    assert engine.next_deadline() == 120.0
    online(engine, clerk("a", JIADING), 10)  # rings until 30
    assert engine.next_deadline() == 30.0
    engine.decline("a", "c1", 15)
    assert engine.next_deadline() == 120.0
    engine.tick(120)
    assert engine.next_deadline() == 300.0
    engine.tick(300)
    assert engine.next_deadline() is None
    engine.end_call("c1", 301, EndReason.CANCELLED, "visitor")
    assert engine.next_deadline() is None


def test_tick_handles_ring_timeouts_and_widenings_in_time_order(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    online(engine, clerk("a", JIADING), 110)  # rings c1 until 130
    online(engine, clerk("b", ANTING), 111)  # district clerk: idle
    out = engine.tick(200)
    # stage 1 (at 120) comes before the timeout (at 130): the call is ringing, so it just widens
    assert out.index(StageWidened("c1", 1, "district")) < out.index(RingEnded("c1", "a", RingEndReason.TIMEOUT))
    assert rings(out) == [("c1", "b", 1)]  # re-offered at 130 to the district clerk, who is now admitted
    assert of(out, Ring)[0].deadline == 220.0  # rung at tick time 200


# ---------------------------------------------------------------- errors


def test_errors_for_calls_not_ringing_for_you(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    online(engine, clerk("b", JIADING), 1)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=2)  # rings a
    engine.request_call("c2", "tax", "zh", JD_PARK, now=3)  # rings b
    engine.set_away("b", 4)  # c2 back in the queue, declined by b
    assert engine.calls["c2"].state is CallState.QUEUED

    cases = [
        (lambda: engine.accept("b", "c1", 5), errors.WRONG_STATE),  # ringing for a
        (lambda: engine.decline("b", "c1", 5), errors.WRONG_STATE),
        (lambda: engine.accept("a", "c2", 5), errors.WRONG_STATE),  # queued
        (lambda: engine.decline("a", "c2", 5), errors.WRONG_STATE),
        (lambda: engine.accept("a", "nope", 5), errors.NO_SUCH_CALL),
        (lambda: engine.decline("a", "nope", 5), errors.NO_SUCH_CALL),
        (lambda: engine.end_call("nope", 5, EndReason.HANGUP, "clerk"), errors.NO_SUCH_CALL),
        (lambda: engine.media_connected("nope", 5), errors.NO_SUCH_CALL),
        (lambda: engine.position("nope"), errors.NO_SUCH_CALL),
        (lambda: engine.accept("ghost", "c1", 5), errors.WRONG_STATE),
        (lambda: engine.set_available("ghost", 5), errors.WRONG_STATE),
        (lambda: engine.set_away("ghost", 5), errors.WRONG_STATE),
        (lambda: engine.clerk_offline("ghost", 5), errors.WRONG_STATE),
        (lambda: engine.set_available("a", 5), errors.WRONG_STATE),  # ringing
        (lambda: engine.request_call("c1", "tax", "zh", JD_PARK, now=5), errors.WRONG_STATE),  # duplicate id
        (lambda: engine.clerk_online(clerk("a", JIADING), 5), errors.WRONG_STATE),  # already online
    ]
    for action, code in cases:
        with pytest.raises(errors.SignalingError) as exc:
            action()
        assert exc.value.code == code
    # nothing moved
    assert engine.calls["c1"].state is CallState.RINGING
    assert engine.calls["c1"].clerk_id == "a"
    assert engine.clerks["a"].status is ClerkStatus.RINGING
    assert engine.calls["c2"].state is CallState.QUEUED
    assert engine.position("c2")[0] == 1
    assert engine.accept("a", "c1", 6) == [Matched("c1", "a"), ClerkStatusChanged("a", ClerkStatus.BUSY)]
    with pytest.raises(errors.SignalingError) as exc:
        engine.accept("a", "c1", 7)  # already accepted
    assert exc.value.code == errors.WRONG_STATE
    with pytest.raises(errors.SignalingError) as exc:
        engine.set_available("a", 7)  # busy
    assert exc.value.code == errors.WRONG_STATE


def test_ended_call_is_gone(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.end_call("c1", 1, EndReason.CANCELLED, "visitor")
    with pytest.raises(errors.SignalingError) as exc:
        engine.end_call("c1", 2, EndReason.CANCELLED, "visitor")
    assert exc.value.code == errors.NO_SUCH_CALL


def test_unknown_regions_are_refused_without_side_effects(engine: RoutingEngine) -> None:
    with pytest.raises(RegionError):
        engine.request_call("c1", "tax", "zh", "sh/nowhere", now=0)
    assert "c1" not in engine.calls
    assert engine.next_deadline() is None
    with pytest.raises(RegionError):
        engine.clerk_online(clerk("a", "sh/nowhere"), 0)
    assert "a" not in engine.clerks


# ---------------------------------------------------------------- the plain definition


def test_eligible_follows_the_stages(sample_tree: RegionTree, stages: tuple[Stage, ...]) -> None:
    engine = RoutingEngine(sample_tree, stages)
    engine.request_call("c", "tax", "ar", JD_PARK, now=0)
    call = engine.calls["c"]

    def at(profile: ClerkProfile) -> list[bool]:
        return [eligible(sample_tree, stages, profile, call, k) for k in range(3)]

    assert at(clerk("j", JIADING, languages=("ar",))) == [True, True, True]
    assert at(clerk("j", JIADING, languages=("zh",))) == [False, False, True]
    assert at(clerk("t", ANTING, languages=("ar",))) == [False, True, True]
    assert at(clerk("p", JD_PARK4, languages=("ar",))) == [False, True, True]
    assert at(clerk("p", PUTUO, languages=("ar",))) == [False, False, True]
    assert at(clerk("p", PUTUO, languages=("zh",))) == [False, False, True]
    assert at(clerk("m", CITY, fields=("market",), languages=("ar",))) == [False, False, False]


# ---------------------------------------------------------------- wrap-up after an answered call


@pytest.fixture
def wrapping(sample_tree: RegionTree, stages: tuple[Stage, ...]) -> RoutingEngine:
    return RoutingEngine(sample_tree, stages, ring_timeout_s=20.0, default_handle_s=300.0, wrapup_s=60.0)


def answered_and_ended(engine: RoutingEngine) -> list[Decision]:
    """Clerk a answers c1 at 1 and hangs up at 100 while c2 (requested at 90) waits."""
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    connect(engine, "a", "c1", 1)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=90)
    return engine.end_call("c1", 100, EndReason.HANGUP, "clerk")


def test_after_an_answered_call_the_clerk_wraps_up_and_is_not_offered_calls(wrapping: RoutingEngine) -> None:
    out = answered_and_ended(wrapping)
    assert out == [CallEnded("c1", "a", EndReason.HANGUP, "clerk"), ClerkStatusChanged("a", ClerkStatus.WRAP_UP)]
    assert wrapping.clerks["a"].wrapup_until == 160.0
    assert not wrapping.clerks["a"].idle
    assert rings(wrapping.request_call("c3", "tax", "zh", JD_PARK, now=101)) == []
    with pytest.raises(errors.SignalingError) as exc:
        wrapping.set_available("a", 102)
    assert exc.value.code == errors.WRONG_STATE
    assert wrapping.clerks["a"].status is ClerkStatus.WRAP_UP
    assert wrapping.next_deadline() == 160.0
    assert wrapping.tick(159) == []


def test_wrapup_times_out_and_the_clerk_takes_the_next_call(wrapping: RoutingEngine) -> None:
    answered_and_ended(wrapping)
    out = wrapping.tick(160)
    assert out == [
        ClerkStatusChanged("a", ClerkStatus.AVAILABLE, "wrapup_timeout"),
        QueueChanged("tax", JIADING),
        ClerkStatusChanged("a", ClerkStatus.RINGING),
        Ring("c2", "a", 180.0, 0),
    ]
    assert wrapping.clerks["a"].wrapup_until is None


def test_finishing_the_wrapup_early_offers_calls_again(wrapping: RoutingEngine) -> None:
    answered_and_ended(wrapping)
    out = wrapping.finish_wrapup("a", 120)
    assert out[0] == ClerkStatusChanged("a", ClerkStatus.AVAILABLE)
    assert of(out, Ring) == [Ring("c2", "a", 140.0, 0)]
    assert wrapping.finish_wrapup("a", 121) == []  # not wrapping up: nothing to do
    wrapping.accept("a", "c2", 125)
    out = wrapping.tick(160)  # the old wrap-up deadline is void
    assert of(out, ClerkStatusChanged) == []
    assert wrapping.clerks["a"].status is ClerkStatus.BUSY


def test_going_away_during_the_wrapup(wrapping: RoutingEngine) -> None:
    answered_and_ended(wrapping)
    assert wrapping.set_away("a", 110) == [ClerkStatusChanged("a", ClerkStatus.AWAY)]
    assert wrapping.tick(170) == []
    assert wrapping.clerks["a"].status is ClerkStatus.AWAY
    assert rings(wrapping.set_available("a", 171)) == [("c2", "a", 0)]


def test_no_wrapup_after_a_ring_that_was_not_answered(wrapping: RoutingEngine) -> None:
    online(wrapping, clerk("a", JIADING), 0)
    wrapping.request_call("c1", "tax", "zh", JD_PARK, now=0)
    out = wrapping.end_call("c1", 5, EndReason.CANCELLED, "visitor")
    assert ClerkStatusChanged("a", ClerkStatus.AVAILABLE) in out
    assert wrapping.clerks["a"].idle


# ---------------------------------------------------------------- a kiosk that drops while waiting


def test_a_held_call_keeps_its_place_and_is_offered_to_nobody(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=1)
    engine.request_call("c3", "tax", "zh", JD_PARK, now=2)
    out = engine.hold("c1", 10, until=70)
    assert out == [QueueChanged("tax", JIADING)]
    assert engine.calls["c1"].state is CallState.HELD
    assert engine.position("c1") == (0, 0.0)
    assert engine.position("c2")[0] == 1
    assert engine.next_deadline() == 70.0
    online(engine, clerk("a", JIADING), 11)
    assert engine.clerks["a"].call_id == "c2"
    out = engine.resume("c1", 20)
    assert [(q.call_id, q.position) for q in of(out, Queued)] == [("c1", 1)]
    assert engine.position("c3")[0] == 2
    assert engine.next_deadline() == 31.0  # a's ring; the hold deadline is void
    engine.decline("a", "c2", 25)
    assert engine.clerks["a"].call_id == "c1"


def test_a_held_call_ends_when_the_grace_period_runs_out(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.hold("c1", 10, until=70)
    assert engine.tick(69) == []
    out = engine.tick(70)
    assert out == [CallEnded("c1", None, EndReason.VISITOR_DISCONNECTED, "visitor")]
    assert "c1" not in engine.calls


def test_holding_a_ringing_call_frees_the_clerk(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=1)
    engine.request_call("c2", "tax", "zh", JD_PARK, now=2)
    out = engine.hold("c1", 3, until=60)
    assert out[0] == RingEnded("c1", "a", RingEndReason.VISITOR_DISCONNECTED)
    assert rings(out) == [("c2", "a", 0)]
    assert engine.calls["c1"].clerk_id is None
    engine.end_call("c2", 4, EndReason.CANCELLED, "visitor")
    assert engine.clerks["a"].idle
    # the clerk did not decline c1: it is offered to them when the kiosk is back
    assert rings(engine.resume("c1", 5)) == [("c1", "a", 0)]


def test_a_held_call_widens_while_held(engine: RoutingEngine) -> None:
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.hold("c1", 10, until=500)
    online(engine, clerk("anting", ANTING), 11)
    out = engine.tick(130)
    assert of(out, StageWidened) == [StageWidened("c1", 1, "district")]
    assert rings(out) == []
    assert rings(engine.resume("c1", 140)) == [("c1", "anting", 1)]


def test_only_waiting_or_ringing_calls_can_be_held(engine: RoutingEngine) -> None:
    online(engine, clerk("a", JIADING), 0)
    engine.request_call("c1", "tax", "zh", JD_PARK, now=0)
    engine.accept("a", "c1", 1)
    with pytest.raises(errors.SignalingError) as exc:
        engine.hold("c1", 2, until=60)
    assert exc.value.code == errors.WRONG_STATE
    with pytest.raises(errors.SignalingError) as exc:
        engine.resume("c1", 2)
    assert exc.value.code == errors.WRONG_STATE
    assert engine.calls["c1"].state is CallState.CONNECTING


def test_a_stage_may_relax_the_language_without_widening_the_region(sample_tree: RegionTree) -> None:
    stages = (Stage("jurisdiction", 0), Stage("any-language", 60, None, False))
    engine = RoutingEngine(sample_tree, stages)
    online(engine, clerk("jd", JIADING, languages=("zh",)), 0, available=False)
    online(engine, clerk("pt", PUTUO, languages=("zh", "ar")), 0)
    engine.request_call("c1", "tax", "ar", JD_PARK, now=0)
    out = engine.tick(60)
    assert of(out, StageWidened) == [StageWidened("c1", 1, "any-language")]
    assert rings(out) == []  # the region did not widen: Putuo is still out
    assert rings(engine.set_available("jd", 61)) == [("c1", "jd", 1)]
