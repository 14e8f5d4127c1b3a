"""Size limits: an oversize field is refused and the connection stays; past the transport's limit the call survives."""

from __future__ import annotations

from server.live.transport import MAX_MESSAGE_BYTES
from tests.server.conftest import Harness, Peer
from tests.server.test_signaling_server import connect_call


async def test_a_message_of_a_mebibyte_with_an_oversize_field_is_refused_and_the_connection_stays(
        harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    big = {"call_id": call_id, "description": {"type": "offer", "sdp": "v" * (1024 * 1024 - 200)}}
    ack = await kiosk.call("signal", big)
    assert ack["error"]["code"] == "invalid_payload" and "sdp" in ack["error"]["message"]
    assert kiosk.sio.connected
    offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await kiosk.ok("signal", offer))["relayed"] is True
    assert await clerk.next("signal") == offer
    ack = await kiosk.call("rate", {"call_id": call_id, "score": "neutral", "reason": "x" * 100_000})
    assert ack["error"]["code"] == "invalid_payload" and "reason" in ack["error"]["message"]


async def test_past_the_transport_limit_the_socket_closes_and_the_call_goes_on_after_reconnecting(
        harness: Harness) -> None:
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    call_id = await connect_call(kiosk, clerk)
    huge = {"call_id": call_id, "description": {"type": "offer", "sdp": "v" * (MAX_MESSAGE_BYTES + 1024)}}
    await kiosk.sio.emit("signal", huge, namespace="/kiosk")
    lost = await clerk.next("peer_connection")
    assert lost == {"call_id": call_id, "connected": False, "grace_s": harness.settings.reconnect_grace_s}
    await kiosk.close()
    # the kiosk comes back within the grace period: same call, signaling resumes
    again = Peer(harness.url, "/kiosk", kiosk.token)
    await again.connect()
    harness.peers.append(again)
    welcome = await again.next("welcome")
    assert welcome["call"]["call_id"] == call_id and welcome["call"]["state"] in ("connecting", "active")
    assert welcome["call"]["matched"]["role"] == "offerer"
    assert (await clerk.next("peer_connection"))["connected"] is True
    offer = {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await again.ok("signal", offer))["relayed"] is True
    assert await clerk.next("signal") == offer
    await harness.advance(harness.settings.reconnect_grace_s + 1)  # the old grace passes: the call goes on
    await clerk.ok("hangup", {"call_id": call_id})
    assert (await again.next("call_ended"))["reason"] == "hangup"
