"""Fuzzing the running server: every incoming event's schema and raw packets, against a call going on beside.

One server for the module, on a loop of its own in a thread, so that hypothesis (which runs examples one
after the other, synchronously) can send each example over a real socket and wait for its answer. Payloads
are drawn from each event's struct in :mod:`signaling.messages` (``KIOSK_IN``, ``CLERK_IN``): valid ones, at
and past the limits, with a field missing, of the wrong type, unknown, or nested absurdly; raw frames from the
packet variants of ``test_raw_packets``. For every message that has an acknowledgement id: an answer; for
the whole run: no error in the server's log, no ``internal_error``, and an honest kiosk and clerk placing and
finishing calls all along, every one of them completed.

The fuzzing kiosk and clerk are in Putuo, the honest pair in Jiading, so fuzzed calls ring only the fuzzing
clerk. Rate limits are off here (every example reaches the parser and the core: they have tests of their own).
Derandomized with a fixed budget: the same examples every run, about half a minute in all (300 examples each).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import inspect

from signaling import messages
from tests.server.conftest import Harness, start_harness
from tests.server.rawsocket import RawSocket
from tests.server.test_signaling_server import connect_call

EXAMPLES = 300  # per namespace; and as many raw frame lists
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HONEST_REGION = "sh/jiading/xincheng/park-3"
FUZZ_REGION = "sh/putuo/changshou/park-1"


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Rig:
    """The server and its clients, all on the thread's loop; ``run`` waits for a coroutine there."""

    loop: asyncio.AbstractEventLoop
    harness: Harness
    kiosk: RawSocket
    clerk: RawSocket
    errors: _Errors
    honest_calls: list[str] = field(default_factory=list)
    honest_failures: list[BaseException] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))
    codes: dict[str, int] = field(default_factory=dict)

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def socket(self, namespace: str) -> RawSocket:
        return self.kiosk if namespace == "/kiosk" else self.clerk

    def count(self, ack: Any) -> None:
        code = "ok" if isinstance(ack, dict) and ack.get("ok") else (
            ack["error"]["code"] if isinstance(ack, dict) and isinstance(ack.get("error"), dict) else repr(ack))
        self.codes[code] = self.codes.get(code, 0) + 1


async def _honest_calls(rig: Rig, stop: asyncio.Event) -> None:
    h = rig.harness
    clerk = await h.clerk(regions="sh/jiading", name="Honest clerk")
    kiosk = await h.kiosk(HONEST_REGION, name="Honest kiosk")
    try:
        while not stop.is_set():
            call_id = await connect_call(kiosk, clerk)
            offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
            assert (await kiosk.ok("signal", offer))["relayed"] is True
            assert await clerk.next("signal") == offer
            await clerk.ok("hangup", {"call_id": call_id})
            assert (await kiosk.next("call_ended"))["call_id"] == call_id
            await clerk.ok("wrap_up", {"call_id": call_id, "matters": [{"matter_type": "tax-consultation",
                                                                         "outcome": "completed"}]})
            await kiosk.ok("rate", {"call_id": call_id, "score": "satisfied"})
            await clerk.next_where("status", lambda s: s["status"] == "available")
            rig.honest_calls.append(call_id)
    except BaseException as exc:
        rig.honest_failures.append(exc)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-server", daemon=True)
    thread.start()
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    stop = asyncio.Event()

    async def start() -> tuple[Rig, asyncio.Task[None]]:
        h = await start_harness(tmp_path_factory.mktemp("fuzz"), socket_rate_limits=False)
        _, kiosk_token = await h.identities.add_kiosk("Fuzzing kiosk", FUZZ_REGION)
        _, clerk_token = await h.identities.add_clerk("Fuzzing clerk", ["tax", "market", "social", "housing"],
                                                      ["sh/putuo"], ["zh", "en", "ar"])
        kiosk, clerk = RawSocket(h.url, "/kiosk"), RawSocket(h.url, "/clerk")
        assert (await kiosk.connect({"token": kiosk_token})).startswith("40/kiosk,")
        assert (await clerk.connect({"token": clerk_token})).startswith("40/clerk,")
        made = Rig(loop, h, kiosk, clerk, errors)
        await made.clerk.emit(0, "set_status", {"status": "available"})
        await made.clerk.ack(0)
        return made, asyncio.create_task(_honest_calls(made, stop))

    made, honest = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    try:
        yield made
    finally:
        async def finish() -> None:
            stop.set()
            await asyncio.wait_for(honest, 30)
            for sock in (made.kiosk, made.clerk):
                await sock.close()
            for p in made.harness.peers:
                await p.close()
            await made.harness.server.close()

        asyncio.run_coroutine_threadsafe(finish(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        logging.getLogger().removeHandler(errors)


# ---------------------------------------------------------------- payloads from the schemas

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=20))
ANY_JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)
NASTY_TEXT = st.sampled_from(["", "\x00", "\ud800", "a\udfffb", "x\n[FORGED] line", "\u202e", "💥" * 70,
                              "../../etc/passwd", "'; DROP TABLE calls; --", "{{7*7}}", "<script>"])


def _text(t: inspect.StrType) -> st.SearchStrategy[str]:
    lo, hi = t.min_length or 0, t.max_length if t.max_length is not None else 200
    sized = st.text(min_size=lo, max_size=min(hi, 300))
    edges = [st.just("x" * n) for n in {lo, max(lo - 1, 0), hi, hi + 1} if n <= 110_000]
    if t.pattern is not None:
        sized = st.from_regex(t.pattern, fullmatch=True)
    return st.one_of(sized, *edges, NASTY_TEXT)


def _value(t: inspect.Type) -> st.SearchStrategy[Any]:
    match t:
        case inspect.StrType():
            return _text(t)
        case inspect.IntType():
            lo = t.ge if t.ge is not None else -1000
            hi = t.le if t.le is not None else 1000
            return st.one_of(st.integers(lo, hi), st.sampled_from([lo - 1, hi + 1, 2**63, -2**63]))
        case inspect.BoolType():
            return st.booleans()
        case inspect.NoneType():
            return st.none()
        case inspect.LiteralType():
            return st.one_of(st.sampled_from(t.values), NASTY_TEXT)
        case inspect.UnionType():
            return st.one_of(*(_value(x) for x in t.types))
        case inspect.ListType():
            lo, hi = t.min_length or 0, min(t.max_length if t.max_length is not None else 5, 25)
            return st.lists(_value(t.item_type), min_size=lo, max_size=hi + 1)
        case inspect.StructType():
            return _struct(t.cls)
        case _:
            return ANY_JSON


# values the server knows, so that examples get past "unknown field" into the core
KNOWN = {"field": st.sampled_from(["tax", "market", "social", "housing"]),
         "language": st.sampled_from(["zh", "en", "ar"]),
         "matter_type": st.sampled_from(["tax-consultation", "invoice", "joint-cancellation"]),
         "call_id": st.sampled_from(["use-real", "nope"]),
         "sdp": st.just("v=0\r\n")}


def _field(name: str, t: inspect.Type) -> st.SearchStrategy[Any]:
    drawn = _value(t)
    return st.one_of(KNOWN[name], KNOWN[name], drawn) if name in KNOWN else drawn


def _struct(cls: type[msgspec.Struct]) -> st.SearchStrategy[dict[str, Any]]:
    info = inspect.type_info(cls)
    assert isinstance(info, inspect.StructType)
    required = {f.encode_name: _field(f.encode_name, f.type) for f in info.fields if f.required}
    optional = {f.encode_name: _field(f.encode_name, f.type) for f in info.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


def _mutated(base: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """The payload as the schema has it, or broken: a field dropped, replaced by any JSON, or one added."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        payload = draw(base)
        how = draw(st.sampled_from(["as is"] * 4 + ["drop", "replace", "add", "not an object", "deep"]))
        if how == "drop" and payload:
            payload.pop(draw(st.sampled_from(sorted(payload))))
        elif how == "replace" and payload:
            payload[draw(st.sampled_from(sorted(payload)))] = draw(ANY_JSON)
        elif how == "add":
            payload[draw(st.text(max_size=10) | NASTY_TEXT)] = draw(ANY_JSON)
        elif how == "not an object":
            return draw(ANY_JSON)
        elif how == "deep" and payload:
            nested: list[Any] = []
            for _ in range(draw(st.integers(30, 600))):
                nested = [nested]
            payload[draw(st.sampled_from(sorted(payload)))] = nested
        return payload

    return mutate()


def _messages(table: dict[str, tuple[type[Any], type[Any]]]) -> st.SearchStrategy[tuple[str, Any]]:
    known = sorted(table)
    per_event = [st.tuples(st.just(name), _mutated(_struct(table[name][0]))) for name in known]
    other = st.tuples(st.sampled_from(["connect", "disconnect", "message", "", "request_call\n", "__proto__"])
                      | NASTY_TEXT, ANY_JSON)
    return st.one_of(*per_event, other)


def _send(rig: Rig, namespace: Literal["/kiosk", "/clerk"], event: str, payload: Any, call_ids: list[str]) -> Any:
    if isinstance(payload, dict) and payload.get("call_id") == "use-real":
        # a call id the server knows: the honest call's (not the fuzzer's to touch) or the fuzzer's own
        own = rig.kiosk.events["ringing"] + rig.clerk.events["ring"]
        known = call_ids[-1:] if call_ids else [c["call_id"] for c in own[-1:]]
        payload["call_id"] = known[0] if known else "nope"
    sock = rig.socket(namespace)
    ack_id = next(rig.ids)

    async def go() -> Any:
        await sock.emit(ack_id, event, payload)
        return await sock.ack(ack_id, timeout=20)

    ack = rig.run(go())
    rig.count(ack)
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if not ack["ok"]:
        assert ack["error"]["code"] != "internal_error", (event, payload, ack)
    return ack


@FUZZ
@given(msg=_messages(messages.KIOSK_IN), real=st.booleans())
def test_kiosk_events_from_their_schemas(rig: Rig, msg: tuple[str, Any], real: bool) -> None:
    event, payload = msg
    _send(rig, "/kiosk", event, payload, rig.honest_calls if real else [])


@FUZZ
@given(msg=_messages(messages.CLERK_IN), real=st.booleans())
def test_clerk_events_from_their_schemas(rig: Rig, msg: tuple[str, Any], real: bool) -> None:
    event, payload = msg
    _send(rig, "/clerk", event, payload, rig.honest_calls if real else [])


# ---------------------------------------------------------------- raw frames

HEADS = ["42/kiosk,{id}", "452-/kiosk,{id}", "451-/kiosk,{id}", "45/kiosk,{id}", "42/kiosk,", "43/kiosk,{id}",
         "46-/kiosk,{id}", "44/kiosk,", "4", "", "9", "49", "4x", "42{id}", "42/nowhere,{id}", "40/kiosk,",
         "40/nowhere,", "42/kiosk,{id}9999999999999999999999"]
BODIES = st.one_of(
    ANY_JSON.map(lambda v: msgspec.json.encode(v).decode()),
    st.tuples(st.sampled_from(sorted(messages.KIOSK_IN)), ANY_JSON).map(lambda v: msgspec.json.encode(list(v))
                                                                        .decode()),
    st.integers(1, 3_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3_000).map(lambda n: '["rate",' + '{"a":' * n + "1" + "}" * n + "]"),
    st.sampled_from(['["rate",{"call_id":"\\ud800"}]', '["\\udc00",{}]', '["rate",{"\\ud800":1}]',
                     '["rate",' + "9" * 5000 + "]", '["rate",NaN]', '["rate",1e999]', '["rate",{nope',
                     '["rate",{"_placeholder":true,"num":0}]', '["rate",{"_placeholder":true,"num":"x"}]',
                     "", "[", "]]]", '"str"', "null"]),
    st.text(max_size=40),
)
ANSWERED = ["42/kiosk,{id}", "452-/kiosk,{id}", "451-/kiosk,{id}", "45/kiosk,{id}"]  # events of the namespace


def _keeps_the_socket(frame: str | bytes) -> bool:
    """Not an Engine.IO CLOSE or the namespace's DISCONNECT (tested on their own): the fuzzing goes on."""
    return not (isinstance(frame, str) and (frame.startswith("1") or frame.startswith("41")))


FRAME = st.one_of(
    st.tuples(st.sampled_from(HEADS), BODIES).map(lambda hb: hb[0] + hb[1]),
    st.binary(max_size=40),
).filter(_keeps_the_socket)


@FUZZ
@given(frames=st.lists(FRAME, min_size=1, max_size=3))
def test_raw_frames_are_answered_or_dropped(rig: Rig, frames: list[str | bytes]) -> None:
    sock = rig.kiosk
    numbered: list[tuple[int | None, str | bytes]] = []
    for frame in frames:
        if isinstance(frame, str) and "{id}" in frame:
            ack_id = next(rig.ids)
            numbered.append((ack_id, frame.replace("{id}", str(ack_id))))
        else:
            numbered.append((None, frame))
    sentinel = next(rig.ids)

    async def go() -> None:
        for _, frame in numbered:
            await sock.send(frame)
        await sock.emit(sentinel, "hangup", {"call_id": "sentinel"})  # answered after everything before it
        assert (await sock.ack(sentinel, timeout=20))["error"]["code"] == "no_such_call"

    rig.run(go())
    for ack_id, frame in numbered:
        if ack_id is None or not isinstance(frame, str):
            continue
        head = next((h.format(id=ack_id) for h in ANSWERED if frame.startswith(h.format(id=ack_id))), None)
        if head is None or frame[len(head):len(head) + 1].isdigit():  # a digit after it makes another id
            continue
        assert ack_id in sock.acks, f"no answer to {frame[:120]!r}"
        ack = sock.acks[ack_id]
        rig.count(ack)
        assert ack["ok"] is True or ack["error"]["code"] != "internal_error", (frame[:120], ack)
    assert not sock.closed.is_set()


# ---------------------------------------------------------------- the whole run


def test_the_run_left_no_error_and_the_honest_calls_went_through(rig: Rig) -> None:
    """Last in the module: what the fuzzing above did to everyone else."""
    assert rig.honest_failures == []
    assert len(rig.honest_calls) >= 3, rig.honest_calls
    assert [r.getMessage() for r in rig.errors.records] == []
    assert rig.codes.get("internal_error", 0) == 0
    # the examples reached deep enough to be refused for all sorts of reasons, and some were taken
    assert {"ok", "invalid_payload", "unknown_event", "no_such_call"} <= set(rig.codes), rig.codes
