"""Three ``vwindow serve`` processes on a real redis-server and PostgreSQL: calls across nodes, and nodes dying.

Targets: a new leader routes within 5 s of the old one's SIGKILL (a 3 s lease plus the takeover); nothing
acknowledged before a kill or a Redis restart is missing from the records afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from client.bot import ClerkBot, KioskBot
from rtc.loopback import LoopbackPatch
from server.records import db
from server.records.identities import IdentityStore
from tests.cluster.nodes import Cluster, start_cluster
from tests.pg import PostgresServer
from tests.redis_server import RedisServer
from tests.server.conftest import Peer
from tests.waiting import until

PARK = "sh/jiading/xincheng/park-3"
FAILOVER_TARGET_S = 5.0


ClusterFactory = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def cluster_factory(tmp_path: Path, redis_server: RedisServer,
                          postgres: PostgresServer) -> AsyncIterator[ClusterFactory]:
    """Three nodes on an emptied Redis and a new PostgreSQL database; settings as ``VWINDOW_...`` overrides."""
    made: list[tuple[Cluster, str]] = []

    async def make(**settings: str) -> Cluster:
        client = aioredis.from_url(redis_server.url)
        await client.flushall()
        await client.aclose()
        name = postgres.create_database()
        url = postgres.url(name)
        await asyncio.to_thread(db.upgrade, url)
        cluster = await start_cluster(tmp_path, redis_server.url, url, **settings)
        made.append((cluster, name))
        return cluster

    yield make
    for cluster, name in made:
        await cluster.close()
        postgres.drop_database(name)


@pytest.fixture
async def cluster(cluster_factory: ClusterFactory) -> Cluster:
    return await cluster_factory()


async def identities(cluster: Cluster) -> tuple[IdentityStore, Any]:
    engine = db.make_engine(cluster.database_url)
    return IdentityStore(engine), engine


async def kinds(cluster: Cluster, call_id: str) -> list[str]:
    engine = db.make_engine(cluster.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.select(db.events.c.kind).where(db.events.c.call_id == call_id)
                                      .order_by(db.events.c.id))
            return [r.kind for r in rows]
    finally:
        await engine.dispose()


async def _has(found: Awaitable[list[str]], kind: str) -> bool:
    return kind in await found


async def peer(url: str, namespace: str, token: str) -> Peer:
    p = Peer(url, namespace, token)
    await p.connect()
    await p.next("welcome")
    return p


async def test_a_call_from_a_kiosk_on_one_node_to_a_clerk_on_another(cluster: Cluster,
                                                                      loopback_ice: LoopbackPatch) -> None:
    store, engine = await identities(cluster)
    _, kiosk_token = await store.add_kiosk("Park 3", PARK)
    _, intruder_token = await store.add_kiosk("Intruder", PARK)
    _, clerk_token = await store.add_clerk("Wang Li", ["tax"], ["sh/jiading"], ["zh", "en"], center="Jiading")
    a, b, c = cluster.nodes
    clerk = ClerkBot(b.url, clerk_token, auto_accept=True)
    stop = asyncio.Event()
    clerk_run = asyncio.create_task(clerk.run(stop))
    intruder = await peer(c.url, "/kiosk", intruder_token)
    try:
        await asyncio.wait_for(clerk.ready.wait(), 20)  # a clerk added after the nodes started serves once online
        kiosk = KioskBot(a.url, kiosk_token, field="tax")
        kiosk_run = asyncio.create_task(kiosk.run(seconds=1.5, timeout_s=40))
        stats = await clerk.wait_media(timeout_s=40)
        # a kiosk on a third node cannot signal into the call
        refused = await intruder.call("signal", {"call_id": stats.call_id,
                                                 "description": {"type": "offer", "sdp": "v=0"}})
        assert refused["error"]["code"] == "not_participant"
        result = await kiosk_run
        assert result.ok, result.summary()
        assert result.clerk_name == "Wang Li" and result.video_frames > 0 and result.audio_frames > 0
        await clerk.wait_ended(stats.call_id, timeout_s=20)
        await until(lambda: _has(kinds(cluster, stats.call_id), "wrapped_up"), "the bot clerk wrapped up", 20)
        assert (await kinds(cluster, stats.call_id))[:3] == ["requested", "rung", "accepted"]
    finally:
        stop.set()
        await intruder.close()
        await asyncio.wait_for(clerk_run, 20)
        await engine.dispose()


async def test_the_leader_killed_while_calls_wait_and_a_clerk_is_rung(cluster: Cluster) -> None:
    store, engine = await identities(cluster)
    tokens = [(await store.add_kiosk(f"K{i}", PARK))[1] for i in range(3)]
    _, clerk_token = await store.add_clerk("C", ["tax"], ["sh/jiading"], ["zh", "en"])
    await engine.dispose()
    leader = await cluster.leader()
    follower, other = await cluster.followers()
    clerk = await peer(follower.url, "/clerk", clerk_token)
    await clerk.ok("set_status", {"status": "available"})
    kiosks = [await peer((follower if i % 2 else other).url, "/kiosk", t) for i, t in enumerate(tokens)]
    rung = (await kiosks[0].ok("request_call", {"field": "tax", "language": "en"}))["call_id"]
    assert (await clerk.next("ring"))["call_id"] == rung
    waiting = [(await k.ok("request_call", {"field": "tax", "language": "en"}))["call_id"] for k in kiosks[1:]]

    leader.kill()
    killed = time.monotonic()
    accept = await clerk.call("accept", {"call_id": rung})  # held up by the failover, then routed
    routed = time.monotonic() - killed
    assert accept["ok"] is True, accept
    assert routed < FAILOVER_TARGET_S, f"the next routing decision came {routed:.1f} s after the kill"
    assert (await kiosks[0].next("matched"))["call_id"] == rung
    # the waiting visitors kept their places: when the clerk is free, the first in line is rung first
    await clerk.ok("hangup", {"call_id": rung})
    await clerk.next("call_ended")
    await clerk.ok("wrap_up", {"call_id": rung, "matters": [{"matter_type": "tax-consultation",
                                                               "outcome": "completed"}]})
    assert (await clerk.next("ring"))["call_id"] == waiting[0]
    for k, call_id in zip(kiosks[1:], waiting, strict=True):
        assert (await kinds(cluster, call_id))[0] == "requested"  # acknowledged before the kill: on record
        await k.close()
    assert await kinds(cluster, rung) == ["requested", "rung", "accepted", "ended", "matter_logged", "wrapped_up"]
    await kiosks[0].close()
    await clerk.close()


async def test_a_follower_killed_its_kiosk_and_clerk_come_back_through_another_node(cluster: Cluster) -> None:
    store, engine = await identities(cluster)
    _, kiosk_token = await store.add_kiosk("In call", PARK)
    _, waiting_token = await store.add_kiosk("Waiting", PARK)
    _, clerk_token = await store.add_clerk("C", ["tax"], ["sh/jiading"], ["zh", "en"])
    await engine.dispose()
    doomed, survivor = await cluster.followers()
    clerk = await peer(doomed.url, "/clerk", clerk_token)
    await clerk.ok("set_status", {"status": "available"})
    kiosk = await peer(doomed.url, "/kiosk", kiosk_token)
    call_id = (await kiosk.ok("request_call", {"field": "tax", "language": "en"}))["call_id"]
    await clerk.next("ring")
    await clerk.ok("accept", {"call_id": call_id})
    await kiosk.next("matched")
    waiting = await peer(doomed.url, "/kiosk", waiting_token)
    waiting_call = (await waiting.ok("request_call", {"field": "tax", "language": "en"}))["call_id"]

    doomed.kill()
    # all three come back through the surviving follower, within the grace period
    clerk2 = await peer(survivor.url, "/clerk", clerk_token)
    kiosk2 = Peer(survivor.url, "/kiosk", kiosk_token)
    await kiosk2.connect()
    welcome = await kiosk2.next("welcome")
    assert welcome["call"]["call_id"] == call_id and welcome["call"]["matched"]["role"] == "offerer"
    waiting2 = Peer(survivor.url, "/kiosk", waiting_token)
    await waiting2.connect()
    assert (await waiting2.next("welcome"))["call"]["call_id"] == waiting_call
    # signaling resumes between the two
    offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await kiosk2.ok("signal", offer))["relayed"] is True
    assert await clerk2.next_where("signal", lambda s: s["call_id"] == call_id) == offer
    await clerk2.ok("hangup", {"call_id": call_id})
    await clerk2.next("call_ended")
    for p in (clerk2, kiosk2, waiting2):
        await p.close()


async def test_bots_given_every_node_carry_their_call_on_when_their_node_dies(cluster: Cluster,
                                                                             loopback_ice: LoopbackPatch) -> None:
    """The headless clients as a deployment would run them: every node's address; the node of both is killed in
    the middle of the call; both connect again through another node by themselves and the call goes on (its media
    never stopped: peer to peer), then ends and is wrapped up as usual."""
    store, engine = await identities(cluster)
    _, kiosk_token = await store.add_kiosk("Park 3", PARK)
    _, clerk_token = await store.add_clerk("Wang Li", ["tax"], ["sh/jiading"], ["zh", "en"], center="Jiading")
    doomed, survivor = await cluster.followers()
    leader = await cluster.leader()
    urls = [doomed.url, survivor.url, leader.url]  # the doomed node first: both start on it
    clerk = ClerkBot(urls, clerk_token, auto_accept=True)
    stop = asyncio.Event()
    clerk_run = asyncio.create_task(clerk.run(stop))
    try:
        await asyncio.wait_for(clerk.ready.wait(), 20)
        kiosk = KioskBot(urls, kiosk_token, field="tax")
        kiosk_run = asyncio.create_task(kiosk.run(seconds=6, timeout_s=40))
        stats = await clerk.wait_media(timeout_s=40)
        frames_at_kill = stats.video_frames
        doomed.kill()
        await until(lambda: clerk.ready.is_set() and clerk._channel is not None
                    and clerk._channel.url != doomed.url, "the clerk connected again through another node", 20)
        await until(lambda: stats.video_frames > frames_at_kill + 30, "video went on arriving after the kill", 20)
        result = await kiosk_run
        assert result.ok, result.summary()
        assert result.ended_reason is None, result.summary()  # the visitor hung up: nothing ended it early
        assert result.restarts == 0, "the media should not have needed a restart"
        await clerk.wait_ended(stats.call_id, timeout_s=20)
        await until(lambda: _has(kinds(cluster, stats.call_id), "wrapped_up"), "the bot clerk wrapped up", 20)
        events = await kinds(cluster, stats.call_id)
        assert events[:3] == ["requested", "rung", "accepted"] and "ended" in events, events
    finally:
        stop.set()
        await asyncio.wait_for(clerk_run, 20)
        await engine.dispose()


async def test_redis_restarted_the_cluster_recovers_and_loses_no_acknowledged_event(
        cluster: Cluster, redis_server: RedisServer) -> None:
    store, engine = await identities(cluster)
    _, kiosk_token = await store.add_kiosk("K", PARK)
    _, clerk_token = await store.add_clerk("C", ["tax"], ["sh/jiading"], ["zh", "en"])
    await engine.dispose()
    a, b, _ = cluster.nodes
    clerk = await peer(b.url, "/clerk", clerk_token)
    await clerk.ok("set_status", {"status": "available"})
    kiosk = await peer(a.url, "/kiosk", kiosk_token)
    before = (await kiosk.ok("request_call", {"field": "tax", "language": "en"}))["call_id"]
    await clerk.next("ring")
    await kiosk.ok("cancel_call", {"call_id": before})

    redis_server.kill()
    redis_server.start()
    # without anyone's help, the cluster routes again
    async with asyncio.timeout(30):
        while True:
            ack = await kiosk.call("request_call", {"field": "tax", "language": "en"})
            if ack["ok"]:
                break
            assert ack["error"]["code"] in ("unavailable", "already_in_call"), ack
            await asyncio.sleep(0.5)
    after = ack["call_id"]
    assert (await clerk.next_where("ring", lambda r: r["call_id"] == after, timeout=30))["call_id"] == after
    assert (await kinds(cluster, before))[0] == "requested" and "ended" in await kinds(cluster, before)
    await kiosk.close()
    await clerk.close()


async def test_a_recorded_call_with_kiosk_clerk_and_recorders_on_different_nodes(
        cluster_factory: ClusterFactory, loopback_ice: LoopbackPatch, tmp_path: Path) -> None:
    shared = tmp_path / "shared-recordings"  # the storage all nodes share (a path given in the settings)
    cluster = await cluster_factory(recording_workers="1", recordings_dir=str(shared))
    store, engine = await identities(cluster)
    _, kiosk_token = await store.add_kiosk("Park 3", PARK)
    _, clerk_token = await store.add_clerk("Li", ["market"], ["sh/jiading"], ["zh", "en"])
    a, b, _ = cluster.nodes
    clerk = ClerkBot(b.url, clerk_token, auto_accept=True)
    stop = asyncio.Event()
    clerk_run = asyncio.create_task(clerk.run(stop))
    try:
        await asyncio.wait_for(clerk.ready.wait(), 20)  # a clerk added after the nodes started serves once online
        kiosk = KioskBot(a.url, kiosk_token, field="market", recording_consent=True)
        result = await kiosk.run(seconds=2.0, timeout_s=40)
        assert result.ok, result.summary()
        async def both_stored() -> list[Any] | None:  # each node's recorder stores its file once the call ends
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.select(db.recordings.c.participant, db.recordings.c.path)
                                           .where(db.recordings.c.call_id == result.call_id))).all()
            return list(rows) if {r.participant for r in rows} == {"visitor", "clerk"} else None

        rows = await until(both_stored, "both recordings stored", 30)
        for r in rows:  # both files on the storage all nodes share
            assert (shared / r.path).stat().st_size > 0
    finally:
        stop.set()
        await asyncio.wait_for(clerk_run, 20)
        await engine.dispose()
