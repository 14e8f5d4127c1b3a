"""Schemas of every message a kiosk or clerk sends, validated with msgspec.

``parse(Type, payload)`` returns a typed struct or raises a
:class:`~signaling.errors.SignalingError` with code ``invalid_payload`` and a
message naming the offending field. Unknown fields are refused, so a typo is
reported instead of silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from signaling import errors

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]

MAX_ATTEMPT = 1
"""A call's media gets one restart: attempt 0 is the first peer connection, attempt 1 the one that replaces it."""
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class _Message(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class RequestCall(_Message):
    field: Short
    language: Short
    # the visitor's answer to the recording notice (fields whose policy is "always" or "ask")
    recording_consent: bool | None = None


class CallRef(_Message):
    call_id: Id


class SessionDescription(_Message):
    type: Literal["offer", "answer"]
    sdp: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]


class IceCandidate(_Message):
    candidate: Annotated[str, msgspec.Meta(max_length=2_000)]  # "" marks the end of candidates
    sdpMid: Annotated[str, msgspec.Meta(max_length=64)] | None = None  # noqa: N815 (browser's name)
    sdpMLineIndex: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None  # noqa: N815
    usernameFragment: Annotated[str, msgspec.Meta(max_length=256)] | None = None  # noqa: N815


class Signal(_Message):
    call_id: Id
    description: SessionDescription | None = None
    candidate: IceCandidate | None = None
    attempt: Annotated[int, msgspec.Meta(ge=0, le=255)] = 0  # the peer connection it belongs to (0: the first)

    def __post_init__(self) -> None:
        if (self.description is None) == (self.candidate is None):
            raise ValueError("a signal carries exactly one of `description` or `candidate`")


class RecorderOffer(_Message):
    """A participant's offer for its send-only connection to the server's recorder (a complete, non-trickled SDP)."""

    call_id: Id
    sdp: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]


class SetStatus(_Message):
    status: Literal["available", "away"]


Outcome = Literal["completed", "referred", "yet_to_do"]
FollowUpKind = Literal["simple", "general", "complex"]


class MatterIn(_Message):
    matter_type: Short
    outcome: Outcome
    credit_code: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    entity_name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    notes: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    followup: FollowUpKind | None = None

    def __post_init__(self) -> None:
        if self.outcome == "yet_to_do" and self.followup is None:
            raise ValueError("a yet-to-do matter needs `followup`: simple, general or complex")
        if self.outcome != "yet_to_do" and self.followup is not None:
            raise ValueError("only a yet-to-do matter takes `followup`")


class WrapUp(_Message):
    call_id: Id
    matters: Annotated[list[MatterIn], msgspec.Meta(min_length=1, max_length=20)]


class Transfer(_Message):
    call_id: Id
    field: Short


class Rate(_Message):
    call_id: Id
    score: Literal["satisfied", "neutral", "dissatisfied"]
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9][0-9 \-]{4,19}$")]


class CallbackRequest(_Message):
    field: Short
    language: Short
    phone: Phone
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


T = TypeVar("T", bound=_Message)


def parse(kind: type[T], payload: Any) -> T:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise errors.SignalingError(
            errors.INVALID_PAYLOAD, f"payload must be a JSON object, got {type(payload).__name__}"
        )
    try:
        msg = msgspec.convert(payload, kind)
    except msgspec.ValidationError as exc:
        raise errors.SignalingError(errors.INVALID_PAYLOAD, str(exc)) from None
    problem = unstorable_text(payload)
    if problem:
        raise errors.SignalingError(errors.INVALID_PAYLOAD, problem)
    return msg


def unstorable_text(value: Any, path: str = "$") -> str | None:
    """What makes text in ``value`` (nested dicts and lists) unfit for the records, or None.

    PostgreSQL stores no NUL character (U+0000) in text, and neither database takes a lone surrogate
    (which JSON's ``\\ud800`` escapes can carry): such text is refused up front, with the field named,
    rather than failing in the database after the command has begun.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path}: text must not contain the NUL character (U+0000)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path}: text must be valid Unicode (it holds a lone surrogate)"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            problem = unstorable_text(k, path) or unstorable_text(v, f"{path}.{k}")
            if problem:
                return problem
    elif isinstance(value, list):
        for i, v in enumerate(value):
            problem = unstorable_text(v, f"{path}[{i}]")
            if problem:
                return problem
    return None


def to_builtins(msg: msgspec.Struct) -> Any:
    """A struct as plain JSON-ready values, leaving out unset optional fields."""
    return msgspec.to_builtins(msg)
