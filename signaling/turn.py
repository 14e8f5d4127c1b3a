"""ICE servers for one call, with TURN credentials minted per call.

Credentials follow the TURN REST API convention that coturn implements with
``use-auth-secret``: username ``<expiry>:<call id>``, credential
``base64(HMAC-SHA1(secret, username))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any


def turn_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_servers_for_call(
    servers: Sequence[Mapping[str, Any]], call_id: str, now: float, secret: str, ttl_s: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for server in servers:
        urls = server.get("urls", [])
        urls = [urls] if isinstance(urls, str) else list(urls)
        entry: dict[str, Any] = {"urls": urls}
        if secret and any(u.startswith(("turn:", "turns:")) for u in urls):
            username = f"{int(now + ttl_s)}:{call_id}"
            entry["username"] = username
            entry["credential"] = turn_credential(secret, username)
        elif "username" in server:
            entry["username"] = server["username"]
            entry["credential"] = server.get("credential", "")
        out.append(entry)
    return out
