"""The messages between :class:`~recordings.workers.RecorderPool` and a worker process: JSON lines.

The pool writes one request per line to the worker's stdin; the worker
writes one reply per line to its stdout, with the request's ``id`` (replies
may come in any order: requests run concurrently). The worker announces
itself with :class:`Ready` (``id`` 0) once it can take requests.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Request(msgspec.Struct, tag_field="op", forbid_unknown_fields=True):
    id: int


class AnswerRequest(_Request, tag="answer"):
    """Create the recorder peer of ``participant`` in ``call_id`` for this offer."""

    call_id: str
    participant: str
    offer_sdp: str


class StopCallRequest(_Request, tag="stop_call"):
    """Close the call's recorder peers and finalize their recordings."""

    call_id: str


class StatsRequest(_Request, tag="stats"):
    """How loaded the worker is."""


class ShutdownRequest(_Request, tag="shutdown"):
    """Stop every call (finalizing), reply, and exit."""


Request = AnswerRequest | StopCallRequest | StatsRequest | ShutdownRequest


class _Reply(msgspec.Struct, tag_field="type", forbid_unknown_fields=True):
    id: int


class Ready(_Reply, tag="ready"):
    pid: int


class Answered(_Reply, tag="answered"):
    answer_sdp: str


class Stopped(_Reply, tag="stopped"):
    """The recordings finished by a stop_call or shutdown (``RecordingInfo.to_dict()`` each)."""

    recordings: list[dict[str, Any]]


class WorkerStats(_Reply, tag="stats"):
    participants: int  # recorder peers open
    calls: list[str]
    cpu_s: float  # user + system CPU time of the worker process so far


class Failed(_Reply, tag="failed"):
    """The request failed: ``error_type`` is the exception's class name, ``error`` its message."""

    error_type: str
    error: str


Reply = Ready | Answered | Stopped | WorkerStats | Failed

_encoder = msgspec.json.Encoder()
_request_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_reply_decoder: msgspec.json.Decoder[Reply] = msgspec.json.Decoder(Reply)


def encode(message: Request | Reply) -> bytes:
    """One message as a JSON line (newline included)."""
    return _encoder.encode(message) + b"\n"


def decode_request(line: bytes) -> Request:
    """A request from a line; ``msgspec.ValidationError`` / ``DecodeError`` if it is not one."""
    return _request_decoder.decode(line)


def decode_reply(line: bytes) -> Reply:
    """A reply from a line; ``msgspec.ValidationError`` / ``DecodeError`` if it is not one."""
    return _reply_decoder.decode(line)
