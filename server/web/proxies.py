"""Where a request came from, believing ``X-Forwarded-*`` headers only from the configured reverse proxies.

``trusted_proxies`` lists the addresses (or networks) of the proxies in front of the server. A request whose
peer is one of them may say, in ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host``, who the
client is, whether it came over TLS and which host it asked for; from anyone else those headers are ignored,
since any client can send them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _last(value: str | None) -> str:
    """The value the nearest proxy set: the last of a comma-separated header."""
    return (value or "").rsplit(",", 1)[-1].strip()


@dataclass(frozen=True)
class Proxies:
    networks: tuple[Network, ...] = ()

    def trusted(self, peer: str | None) -> bool:
        addr = _address(peer or "")
        return addr is not None and any(addr in net for net in self.networks)

    def client_address(self, request: web.BaseRequest) -> str:
        """The client's address: the peer, or behind trusted proxies the last address in X-Forwarded-For that is
        not itself a trusted proxy (the nearest hop a client could not have written)."""
        peer = request.remote or ""
        if not self.trusted(peer):
            return peer
        hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
        for hop in reversed(hops):
            if _address(hop) is None:
                return peer  # a hop that is no address: do not guess past it
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer

    def scheme(self, request: web.BaseRequest) -> str:
        """``https`` when the client's connection was TLS (to this server, or to a trusted proxy that says so)."""
        if request.secure:
            return "https"
        if self.trusted(request.remote):
            proto = _last(request.headers.get("X-Forwarded-Proto")).lower()
            if proto in ("http", "https"):
                return proto
        return "http"

    def is_https(self, request: web.BaseRequest) -> bool:
        return self.scheme(request) == "https"

    def host(self, request: web.BaseRequest) -> str:
        """The host (and port) the client asked for."""
        if self.trusted(request.remote):
            forwarded = _last(request.headers.get("X-Forwarded-Host"))
            if forwarded:
                return forwarded
        return request.host

    def origin(self, request: web.BaseRequest) -> str:
        """This site's origin as the client sees it, e.g. ``https://windows.example.gov.cn``."""
        return f"{self.scheme(request)}://{self.host(request)}".lower()


def same_origin_check(proxies: Proxies, allowed: Sequence[str]) -> Any:
    """The Socket.IO server's origin check (python-engineio's ``cors_allowed_origins`` as a callable): a
    browser's handshake is accepted from this site's own origin and from ``allowed``; python-engineio does not
    call it for requests without an Origin header (bots, the headless client)."""
    extra = frozenset(o.strip().rstrip("/").lower() for o in allowed if o.strip())

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in extra:
            return True
        request = environ.get("aiohttp.request")
        return isinstance(request, web.BaseRequest) and origin == proxies.origin(request)

    return check
