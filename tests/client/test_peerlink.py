"""CallLink alone (no server): when a lost connection is replaced, when the bot gives up, which signals it drops."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from client.channel import Incoming, Message
from client.peerlink import CallLink, RestartTiming, after_loss
from signaling import messages as m
from signaling.messages import MAX_ATTEMPT

TIMEOUT = 10.0


def test_after_loss_the_offerer_restarts_once_and_the_answerer_waits() -> None:
    assert MAX_ATTEMPT == 1
    assert after_loss("offerer", 0) == "restart"
    assert after_loss("answerer", 0) == "await_restart"
    assert after_loss("offerer", 1) == "give_up"
    assert after_loss("answerer", 1) == "give_up"


def signal(attempt: int = 0, *, candidate: str | None = None, answer: str | None = None) -> m.Signal:
    """A relayed ``signal`` of call-1, as the bot gets it from its channel."""
    payload: dict[str, Any] = {"call_id": "call-1", "attempt": attempt}
    if candidate is not None:
        payload["candidate"] = {"candidate": candidate}
    if answer is not None:
        payload["description"] = {"type": "answer", "sdp": answer}
    return m.decode(m.Signal, payload)


def test_a_signal_without_attempt_belongs_to_the_first_connection() -> None:
    assert m.decode(m.Signal, {"call_id": "c", "candidate": {"candidate": ""}}).attempt == 0


class Wire:
    """What a CallLink sends (acked ok) and the events it posts, for the test to take one by one."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, msgspec.Struct]] = []
        self.posted: asyncio.Queue[Incoming] = asyncio.Queue()

    async def send(self, event: str, message: msgspec.Struct) -> Message:
        self.sent.append((event, message))
        return m.Relayed(True) if event == "signal" else m.Done()

    def signals(self) -> list[m.Signal]:
        return [s for _, s in self.sent if isinstance(s, m.Signal)]

    def kinds(self) -> list[tuple[str, Any]]:
        return [(event, p.attempt if isinstance(p, m.Signal) else None) for event, p in self.sent]

    async def next_timer(self, link: CallLink) -> Incoming:
        """The next ``_media_timer`` of the link's current peer (state events are skipped)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                item = await self.posted.get()
                if item.event == "_media_timer" and item.source is link.peer:
                    return item


def make_link(wire: Wire, role: str, timing: RestartTiming) -> CallLink:
    return CallLink("call-1", role, [], ["test"], wire.posted.put_nowait, wire.send, timing=timing)  # type: ignore[arg-type]


async def test_an_offerer_that_never_connects_restarts_once_then_reports_media_failed() -> None:
    wire = Wire()
    link = make_link(wire, "offerer", RestartTiming(connect_timeout_s=0.05, restart_wait_s=60))
    try:
        await link.start()
        assert wire.kinds() == [("signal", 0)]
        await link.on_timer((await wire.next_timer(link)).payload)  # nobody answered in time: a new connection
        assert link.attempt == 1 and link.restarts == 1
        assert wire.kinds() == [("signal", 0), ("signal", 1)]
        assert [s.description.type for s in wire.signals() if s.description] == ["offer", "offer"]
        await link.on_timer((await wire.next_timer(link)).payload)  # that one too: give up
        assert wire.kinds() == [("signal", 0), ("signal", 1), ("media_failed", None)]
        assert link.gave_up and link.restarts == 1
        await link.on_state("failed")  # nothing more happens once given up
        assert len(wire.sent) == 3
    finally:
        await link.close()


async def test_an_answerer_waits_for_the_restart_offer_and_gives_up_when_none_comes() -> None:
    wire = Wire()
    link = make_link(wire, "answerer", RestartTiming(connect_timeout_s=60, restart_wait_s=0.05))
    try:
        await link.on_state("failed")  # the first connection failed: wait for the kiosk's new offer
        assert wire.sent == []
        timer = await wire.next_timer(link)
        assert timer.payload == {"kind": "restart_wait", "attempt": 0}
        await link.on_timer(timer.payload)
        assert wire.kinds() == [("media_failed", None)] and link.restarts == 0
    finally:
        await link.close()


@pytest.mark.parametrize("role", ["offerer", "answerer"])
async def test_signals_of_another_attempt_are_dropped(role: str) -> None:
    wire = Wire()
    link = make_link(wire, role, RestartTiming())
    added: list[Any] = []

    async def add_candidate(data: Any) -> None:
        added.append(data)

    try:
        first = link.peer
        first.add_candidate = add_candidate  # type: ignore[method-assign]
        # a candidate of an attempt that has not started, and an answer to an offer never made: ignored
        await link.on_signal(signal(1, candidate="candidate:x"))
        await link.on_signal(signal(1, answer="v=0"))
        assert link.peer is first and added == [] and wire.sent == []
        await link.on_signal(signal(candidate="candidate:y"))
        assert added == [m.IceCandidate("candidate:y")]
    finally:
        await link.close()


async def test_the_answerer_replaces_its_connection_on_the_restart_offer_and_drops_the_old_ones_signals() -> None:
    wire = Wire()
    link = make_link(wire, "answerer", RestartTiming())
    kiosk = CallLink("call-1", "offerer", [], ["kiosk"], lambda item: None, Wire().send)
    try:
        first = link.peer
        offer = await kiosk.peer.offer()
        await link.on_signal(m.Signal("call-1", description=offer, attempt=1))
        assert link.peer is not first and first.closed and link.attempt == 1 and link.restarts == 1
        [(event, answer)] = wire.sent
        assert isinstance(answer, m.Signal) and answer.description is not None
        assert event == "signal" and answer.attempt == 1 and answer.description.type == "answer"
        added: list[Any] = []

        async def add_candidate(data: Any) -> None:
            added.append(data)

        link.peer.add_candidate = add_candidate  # type: ignore[method-assign]
        await link.on_signal(signal(candidate="candidate:old"))  # attempt 0
        await link.on_signal(signal(1, candidate="candidate:new"))
        assert added == [m.IceCandidate("candidate:new")]
    finally:
        await link.close()
        await kiosk.close()
