"""Error codes shared by the core, the server and the protocol document."""

from __future__ import annotations


class SignalingError(Exception):
    """An error with a stable machine-readable code and a human message."""

    def __init__(self, code: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s  # rate_limited: when the same event may be sent again

    def as_dict(self) -> dict[str, str | float]:
        out: dict[str, str | float] = {"code": self.code, "message": self.message}
        if self.retry_after_s is not None:
            out["retry_after_s"] = self.retry_after_s
        return out


# codes (documented in docs/protocol.md)
INVALID_PAYLOAD = "invalid_payload"
UNKNOWN_EVENT = "unknown_event"
UNAUTHORIZED = "unauthorized"
UNKNOWN_FIELD = "unknown_field"
UNSUPPORTED_LANGUAGE = "unsupported_language"
NO_SUCH_CALL = "no_such_call"
NOT_PARTICIPANT = "not_participant"
WRONG_STATE = "wrong_state"
ALREADY_IN_CALL = "already_in_call"
FIELD_NOT_SERVED = "field_not_served"
OUTSIDE_SERVICE_HOURS = "outside_service_hours"
INVALID_CREDIT_CODE = "invalid_credit_code"
UNKNOWN_MATTER_TYPE = "unknown_matter_type"
ALREADY_DONE = "already_done"
CONSENT_REQUIRED = "consent_required"
NOT_RECORDED = "not_recorded"
RECORDER_UNAVAILABLE = "recorder_unavailable"
UNKNOWN_REGION = "unknown_region"
CALENDAR_NOT_COVERED = "calendar_not_covered"
RECORDS_UNAVAILABLE = "records_unavailable"
REPLACED = "replaced"
UNAVAILABLE = "unavailable"
RATE_LIMITED = "rate_limited"
INTERNAL = "internal_error"
