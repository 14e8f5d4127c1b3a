"""The Socket.IO handshake checks the browser's Origin (issue 11: ``cors_allowed_origins=[]`` had turned it off)."""

from __future__ import annotations

import pytest
import socketio

from tests.server.conftest import HarnessFactory


async def _connect(url: str, token: str, origin: str | None, transport: str = "websocket") -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    headers = {"Origin": origin} if origin else {}
    await client.connect(url, namespaces=["/kiosk"], auth={"token": token}, headers=headers,
                         transports=[transport], wait_timeout=5)
    return client


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_handshake_from_another_site_is_refused(harness_factory: HarnessFactory, transport: str) -> None:
    harness = await harness_factory()
    _, token = await harness.identities.add_kiosk("K", "sh/jiading/xincheng/park-3")
    own = harness.url.rstrip("/")
    for evil in ("http://evil.example", own.replace("127.0.0.1", "localhost"), "null", own + ".evil.example"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await _connect(harness.url, token, evil, transport)
    for fine in (own, None):  # the page's own origin; a client that sends none (bots, the headless client)
        client = await _connect(harness.url, token, fine, transport)
        assert client.connected
        await client.disconnect()


async def test_allowed_origins_and_a_trusted_proxys_host(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(allowed_origins="https://windows.example.gov.cn, https://other.example")
    _, token = await harness.identities.add_kiosk("K", "sh/jiading/xincheng/park-3")
    client = await _connect(harness.url, token, "https://windows.example.gov.cn")
    await client.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await _connect(harness.url, token, "https://evil.example")

    proxied = await harness_factory(trusted_proxies="127.0.0.1")  # the proxy says which host and scheme
    _, token = await proxied.identities.add_kiosk("K", "sh/jiading/xincheng/park-3")
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(proxied.url, namespaces=["/kiosk"], auth={"token": token}, transports=["websocket"],
                         headers={"Origin": "https://windows.example.gov.cn", "X-Forwarded-Proto": "https",
                                  "X-Forwarded-Host": "windows.example.gov.cn"}, wait_timeout=5)
    await client.disconnect()
