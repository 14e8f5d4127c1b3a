"""ICE servers for one call, with TURN credentials minted per call.

Credentials follow the TURN REST API convention that coturn implements with
``use-auth-secret``: username ``<expiry>:<call id>``, credential
``base64(HMAC-SHA1(secret, username))``. coturn checks both: a username whose expiry
(Unix seconds) has passed, or a credential made with another secret, gets ``401 Unauthorized`` and no
relay (tests/turn runs a real coturn to hold this).

With ``relay_only`` (the ``turn_relay_only`` setting) both sides are told
``ice_transport_policy: "relay"``: they offer only relayed candidates, so all media goes through the TURN
server and neither side learns the other's address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, Literal

TransportPolicy = Literal["all", "relay"]
TURN_SCHEMES = ("turn:", "turns:")


def turn_credential(secret: str, username: str) -> str:
    """coturn's ``use-auth-secret`` password of ``username``: ``base64(HMAC-SHA1(secret, username))``."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def server_urls(server: Mapping[str, Any]) -> list[str]:
    """The ``urls`` of one ``RTCIceServer`` (a string or a list), as a list."""
    urls = server.get("urls", [])
    return [urls] if isinstance(urls, str) else list(urls)


def has_turn(servers: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any of ``servers`` is a TURN server (``turn:`` or ``turns:``)."""
    return any(u.startswith(TURN_SCHEMES) for server in servers for u in server_urls(server))


def transport_policy(relay_only: bool) -> TransportPolicy:
    """The ``iceTransportPolicy`` both sides of a call are told to use."""
    return "relay" if relay_only else "all"


def ice_servers_for_call(
    servers: Sequence[Mapping[str, Any]], call_id: str, now: float, secret: str, ttl_s: int
) -> list[dict[str, Any]]:
    """The ``ice_servers`` of call ``call_id`` at ``now``: each TURN entry with a username that expires ``ttl_s``
    after ``now`` and its credential under ``secret`` (no secret: the configured username, if any)."""
    out: list[dict[str, Any]] = []
    for server in servers:
        urls = server_urls(server)
        entry: dict[str, Any] = {"urls": urls}
        if secret and any(u.startswith(TURN_SCHEMES) for u in urls):
            username = f"{int(now + ttl_s)}:{call_id}"
            entry["username"] = username
            entry["credential"] = turn_credential(secret, username)
        elif "username" in server:
            entry["username"] = server["username"]
            entry["credential"] = server.get("credential", "")
        out.append(entry)
    return out
