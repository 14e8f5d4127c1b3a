"""Schemas of every message between the server and kiosks or clerks, both ways, as msgspec structs.

Incoming: ``parse(Type, payload)`` returns a typed struct or raises a
:class:`~signaling.errors.SignalingError` with code ``invalid_payload`` and a
message naming the offending field. Unknown fields are refused, so a typo is
reported instead of silently ignored.

Outgoing: every server-to-client event is a struct whose ``EVENT`` names it,
and every acknowledgement a struct too. The server encodes them with
:func:`to_builtins`; the headless client decodes them with :func:`decode`.
The tables at the end (:data:`KIOSK_IN`, :data:`KIOSK_OUT`, ...) are the
protocol: the namespaces are built from them and a test holds
``docs/protocol.md`` against them.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar

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
    EVENT: ClassVar[str] = "signal"  # relayed to the other participant as it came
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
    except UnicodeEncodeError:  # msgspec cannot name a field whose name holds a lone surrogate
        raise errors.SignalingError(errors.INVALID_PAYLOAD, unstorable_text(payload) or "text must be valid "
                                    "Unicode") from None
    problem = unstorable_text(payload)
    if problem:
        raise errors.SignalingError(errors.INVALID_PAYLOAD, problem)
    return msg


MAX_DEPTH = 32  # no message of the protocol nests half as deep


def unstorable_text(value: Any, path: str = "$", depth: int = 0) -> str | None:
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
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return f"{path}: nested too deep"
    if isinstance(value, dict):
        for k, v in value.items():
            problem = unstorable_text(k, path) or unstorable_text(v, f"{path}.{k}", depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for i, v in enumerate(value):
            problem = unstorable_text(v, f"{path}[{i}]", depth + 1)
            if problem:
                return problem
    return None


def to_builtins(msg: msgspec.Struct) -> Any:
    """A struct as plain JSON-ready values, leaving out unset optional fields."""
    return msgspec.to_builtins(msg)


class _Out(msgspec.Struct, omit_defaults=True):
    """A message from the server. Fields without a default are always sent (``null`` included)."""

    EVENT: ClassVar[str] = ""


class _Ack(msgspec.Struct, omit_defaults=True):
    """What an acknowledgement carries besides ``ok: true``."""


# -- shared parts -------------------------------------------------------------------------------------------------

Names = dict[str, str]  # language -> name


class MatterInfo(_Out):
    id: str
    names: Names


class FieldInfo(_Out):
    id: str
    icon: str
    recording: Literal["always", "ask", "never"]
    names: Names
    matters: list[MatterInfo]


IceServer = dict[str, Any]  # an RTCIceServer: urls, optional username and credential


# -- server to kiosk ----------------------------------------------------------------------------------------------


class KioskInfo(_Out):
    id: str
    name: str
    region: str
    region_names: Names


class ClerkPeer(_Out):
    name: str
    center: str


class KioskMatched(_Out):
    EVENT = "matched"
    call_id: str
    role: Literal["offerer"]
    ice_servers: list[IceServer]
    field: str
    recording: bool
    peer: ClerkPeer
    ice_transport_policy: Literal["all", "relay"] = "all"  # "relay": offer only relayed candidates


class KioskCall(_Out):
    """``welcome.call``: the kiosk's call that survived its dropped connection."""

    call_id: str
    field: str
    language: str
    state: Literal["queued", "connecting", "active"] = "queued"
    matched: KioskMatched | None = None  # a call in progress: what ``matched`` said (its media may still flow)


class KioskWelcome(_Out):
    EVENT = "welcome"
    kiosk: KioskInfo
    fields: list[FieldInfo]
    languages: list[str]
    recording_retention_days: int
    call: KioskCall | None


class QueuedMsg(_Out):
    EVENT = "queued"
    call_id: str
    position: int  # 1-based, among the waiting calls of the same field and district (ringing calls left out)
    estimated_wait_s: int | None  # whole seconds; null while no clerk who could take the call is online and not away
    stage: int
    reason: str


class Ringing(_Out):
    EVENT = "ringing"
    call_id: str


class RecorderLost(_Out):
    EVENT = "recorder_lost"
    call_id: str


class TransferredTo(_Out):
    call_id: str
    field: str


class KioskCallEnded(_Out):
    EVENT = "call_ended"
    call_id: str
    reason: str
    by: str
    transferred_to: TransferredTo | None = None


class PeerConnection(_Out):
    """The other participant of the call lost its connection (the call waits ``grace_s`` for it), or is back."""

    EVENT = "peer_connection"
    call_id: str
    connected: bool
    grace_s: float  # 0 when connected


class Refused(_Out):
    """The server took the connection but the core refused it (say ``unknown_region``); the server then closes it."""

    EVENT = "refused"
    code: str
    message: str


# -- server to clerk ----------------------------------------------------------------------------------------------


class ClerkInfo(_Out):
    id: str
    name: str
    center: str
    fields: list[str]
    regions: list[str]
    region_names: dict[str, Names]  # region path -> its names
    languages: list[str]


class PendingWrapUp(_Out):
    call_id: str
    field: str
    ended_at: float  # epoch seconds


class KioskPeer(_Out):
    name: str
    region: str
    region_names: Names
    language: str


class ClerkMatched(_Out):
    EVENT = "matched"
    call_id: str
    role: Literal["answerer"]
    ice_servers: list[IceServer]
    field: str
    recording: bool
    peer: KioskPeer
    ice_transport_policy: Literal["all", "relay"] = "all"  # "relay": offer only relayed candidates


class ClerkCall(_Out):
    """``welcome.call``: the clerk's call in progress that survived the dropped connection."""

    call_id: str
    state: Literal["connecting", "active"]
    matched: ClerkMatched


class ClerkWelcome(_Out):
    EVENT = "welcome"
    clerk: ClerkInfo
    status: str
    ring_timeout_s: float
    wrapup_timeout_s: float
    fields: list[FieldInfo]
    pending_wrapups: list[PendingWrapUp]
    call: ClerkCall | None


class StatusMsg(_Out):
    EVENT = "status"
    status: Literal["away", "available", "ringing", "busy", "wrap_up"]
    reason: str


class KioskName(_Out):
    name: str


class RingMsg(_Out):
    EVENT = "ring"
    call_id: str
    field: str
    language: str
    region: str
    region_names: Names
    kiosk: KioskName
    waited_s: float
    timeout_s: float
    ring: int


class RingEndedMsg(_Out):
    EVENT = "ring_ended"
    call_id: str
    reason: str


class ClerkCallEnded(_Out):
    EVENT = "call_ended"
    call_id: str
    reason: str
    by: str
    wrap_up: bool


# -- acknowledgements ---------------------------------------------------------------------------------------------


class Done(_Ack):
    pass


class CallRequested(_Ack):
    call_id: str
    state: Literal["queued", "ringing"]
    position: int
    estimated_wait_s: int | None


class Relayed(_Ack):
    relayed: bool


class RecorderAnswer(_Ack):
    sdp: str


class CallbackFiled(_Ack):
    followup_id: int
    due_date: str
    merged: bool = False  # the same kiosk already asked for this callback: the earlier request stands


class StatusNow(_Ack):
    status: str


class Accepted(_Ack):
    call_id: str


class FollowUpRef(_Ack):
    id: int
    kind: str
    due_date: str


class WrappedUp(_Ack):
    matters: list[int]
    followups: list[FollowUpRef]


class TransferDone(_Ack):
    new_call_id: str
    case_id: str


# -- the protocol, event by event ---------------------------------------------------------------------------------

Incoming = RequestCall | CallRef | Signal | RecorderOffer | Rate | CallbackRequest | SetStatus | WrapUp | Transfer

KIOSK_IN: dict[str, tuple[type[_Message], type[_Ack]]] = {
    "request_call": (RequestCall, CallRequested),
    "cancel_call": (CallRef, Done),
    "hangup": (CallRef, Done),
    "signal": (Signal, Relayed),
    "media_connected": (CallRef, Done),
    "media_failed": (CallRef, Done),
    "recorder_offer": (RecorderOffer, RecorderAnswer),
    "rate": (Rate, Done),
    "request_callback": (CallbackRequest, CallbackFiled),
}
CLERK_IN: dict[str, tuple[type[_Message], type[_Ack]]] = {
    "set_status": (SetStatus, StatusNow),
    "accept": (CallRef, Accepted),
    "decline": (CallRef, Done),
    "hangup": (CallRef, Done),
    "signal": (Signal, Relayed),
    "media_connected": (CallRef, Done),
    "media_failed": (CallRef, Done),
    "recorder_offer": (RecorderOffer, RecorderAnswer),
    "wrap_up": (WrapUp, WrappedUp),
    "transfer": (Transfer, TransferDone),
}
KIOSK_OUT: dict[str, type[msgspec.Struct]] = {
    "welcome": KioskWelcome, "queued": QueuedMsg, "ringing": Ringing, "matched": KioskMatched,
    "recorder_lost": RecorderLost, "signal": Signal, "peer_connection": PeerConnection, "call_ended": KioskCallEnded,
    "refused": Refused,
}
CLERK_OUT: dict[str, type[msgspec.Struct]] = {
    "welcome": ClerkWelcome, "status": StatusMsg, "ring": RingMsg, "ring_ended": RingEndedMsg,
    "matched": ClerkMatched, "recorder_lost": RecorderLost, "signal": Signal, "peer_connection": PeerConnection,
    "call_ended": ClerkCallEnded, "refused": Refused,
}
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "message"})
"""Names that Socket.IO gives a meaning of its own: a client event so named is refused as ``unknown_event``."""

S = TypeVar("S", bound=msgspec.Struct)


def decode(kind: type[S], payload: Any) -> S:
    """A server message as its struct (the headless client's side); ``msgspec.ValidationError`` if it is not one."""
    return msgspec.convert(payload, kind)
