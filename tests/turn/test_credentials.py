"""The per-call TURN credentials against a real coturn, one TURN Allocate at a time (aioice's TURN client), and
the settings that hand TURN out.

The credentials are made by the server's own minting function (``signaling.turn.ice_servers_for_call``): coturn
with ``use-auth-secret`` grants a relay to fresh ones and answers ``401 Unauthorized`` to expired ones, to ones
made with another secret and to a username changed after minting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aioice import stun, turn

from server.settings import SettingsError, load_settings
from signaling.turn import has_turn, ice_servers_for_call, transport_policy, turn_credential
from tests.coturn import TurnServer


class Sink(asyncio.DatagramProtocol):
    """What a relayed socket hands its datagrams to (nothing is sent here)."""


async def allocate(server: TurnServer, username: str, password: str) -> tuple[str, int]:
    """Allocate a relay on ``server`` with these credentials; its relayed (host, port). Raises if refused."""
    transport, _ = await asyncio.wait_for(
        turn.create_turn_endpoint(Sink, server_addr=(server.host, server.port), username=username,
                                  password=password), 10)
    try:
        host, port = transport.get_extra_info("sockname")
        return str(host), int(port)
    finally:
        transport.close()


def minted(server: TurnServer, call_id: str, *, now: float | None = None, secret: str | None = None,
           ttl_s: int = 3600) -> dict[str, Any]:
    """The TURN entry the signaling server would hand out for ``call_id``."""
    servers = ice_servers_for_call(server.ice_servers(), call_id, time.time() if now is None else now,
                                   server.secret if secret is None else secret, ttl_s)
    assert len(servers) == 1 and servers[0]["urls"] == [server.url]
    return servers[0]


async def refused(server: TurnServer, username: str, password: str) -> int:
    """The STUN error code coturn answers an Allocate with these credentials."""
    with pytest.raises(stun.TransactionFailed) as failed:
        await allocate(server, username, password)
    code, _ = failed.value.response.attributes["ERROR-CODE"]
    return int(code)


async def test_coturn_grants_a_relay_to_fresh_credentials(turn_server: TurnServer) -> None:
    entry = minted(turn_server, "call-fresh")
    host, port = await allocate(turn_server, entry["username"], entry["credential"])
    assert host == "127.0.0.1" and port > 0
    assert f"user <{entry['username']}>: incoming packet ALLOCATE processed, success" in turn_server.log()


async def test_coturn_refuses_expired_credentials(turn_server: TurnServer) -> None:
    entry = minted(turn_server, "call-expired", now=time.time() - 7200)  # minted two hours ago, valid for one
    assert int(entry["username"].split(":")[0]) < time.time()
    assert await refused(turn_server, entry["username"], entry["credential"]) == 401


async def test_coturn_refuses_credentials_of_another_secret(turn_server: TurnServer) -> None:
    entry = minted(turn_server, "call-other", secret="another deployment's secret")
    assert await refused(turn_server, entry["username"], entry["credential"]) == 401


async def test_coturn_refuses_a_username_changed_after_minting(turn_server: TurnServer) -> None:
    entry = minted(turn_server, "call-a")
    expiry, _, _ = entry["username"].partition(":")
    longer = f"{int(expiry) + 86400}:call-a"  # a later expiry with the same credential
    assert await refused(turn_server, longer, entry["credential"]) == 401
    # while the same username with its own credential is granted
    await allocate(turn_server, longer, turn_credential(turn_server.secret, longer))


def test_the_minted_entries() -> None:
    servers: list[dict[str, Any]] = [{"urls": "turn:turn.example.org:3478"}, {"urls": ["stun:stun.example.org:3478"]},
               {"urls": ["turns:turn.example.org:443?transport=tcp"], "username": "static", "credential": "x"}]
    turn_entry, stun_entry, turns_entry = ice_servers_for_call(servers, "c1", 1000.0, "s", 60)
    assert turn_entry == {"urls": ["turn:turn.example.org:3478"], "username": "1060:c1",
                          "credential": turn_credential("s", "1060:c1")}
    assert stun_entry == {"urls": ["stun:stun.example.org:3478"]}
    assert turns_entry["username"] == "1060:c1"  # minted: a configured username gives way to the secret
    # without a secret, a configured username and credential are handed out as they are
    _, _, static = ice_servers_for_call(servers, "c1", 1000.0, "", 60)
    assert static == {"urls": ["turns:turn.example.org:443?transport=tcp"], "username": "static", "credential": "x"}
    assert has_turn(servers) and has_turn(servers[2:]) and not has_turn(servers[1:2]) and not has_turn([])
    assert transport_policy(True) == "relay" and transport_policy(False) == "all"


def test_relay_only_needs_a_turn_server() -> None:
    with pytest.raises(SettingsError, match="turn_relay_only"):
        load_settings(env={}, turn_relay_only=True, ice_servers=[{"urls": ["stun:stun.example.org:3478"]}])
    settings = load_settings(env={"VWINDOW_TURN_RELAY_ONLY": "1", "VWINDOW_TURN_SECRET": "s"},
                             ice_servers=[{"urls": ["turn:turn.example.org:3478"]}])
    assert settings.turn_relay_only and settings.policy().turn_relay_only
    assert not load_settings(env={}).turn_relay_only
    with pytest.raises(SettingsError, match="turn_ttl_s"):
        load_settings(env={}, turn_ttl_s=0)


async def test_an_allocation_outlives_its_credentials(turn_server: TurnServer) -> None:
    """coturn checks the expiry when a relay is allocated, not on the allocation's later requests: a call longer
    than ``turn_ttl_s`` keeps its relay (only a new allocation, e.g. a media restart, needs fresh credentials)."""
    entry = minted(turn_server, "call-long", ttl_s=2)
    received: asyncio.Queue[bytes] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    class Peer(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            received.put_nowait(data)

    relay, _ = await turn.create_turn_endpoint(Sink, server_addr=(turn_server.host, turn_server.port),
                                               username=entry["username"], password=entry["credential"])
    peer, _ = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        expiry = int(entry["username"].split(":")[0])
        await asyncio.sleep(max(0.0, expiry + 1 - time.time()))
        assert time.time() > expiry
        # a new peer after the expiry: a CreatePermission / ChannelBind under the expired username, granted
        relay.sendto(b"after expiry", peer.get_extra_info("sockname"))
        assert await asyncio.wait_for(received.get(), 5) == b"after expiry"
        assert await refused(turn_server, entry["username"], entry["credential"]) == 401  # while a new relay is not
    finally:
        relay.close()
        peer.close()
