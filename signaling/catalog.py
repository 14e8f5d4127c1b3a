"""Service fields a visitor can pick, and the matter types each offers."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from signaling import errors
from signaling.errors import SignalingError


class CatalogError(ValueError):
    """A catalog entry that is missing or malformed."""


def pick_name(names: Mapping[str, str], language: str, fallback: str) -> str:
    return names.get(language) or names.get("en") or fallback


@dataclass(frozen=True)
class MatterType:
    id: str
    names: Mapping[str, str]

    def name(self, language: str) -> str:
        return pick_name(self.names, language, self.id)


class RecordingPolicy(enum.StrEnum):
    """Whether a field's calls are recorded: every call, if the visitor agrees, or never."""

    ALWAYS = "always"
    ASK = "ask"
    NEVER = "never"

    def records(self, consent: bool | None) -> bool:
        """Whether a call is recorded, given the visitor's answer to the recording notice (only on a yes)."""
        return self is not RecordingPolicy.NEVER and consent is True

    def require_consent(self, consent: bool | None) -> None:
        """``ALWAYS`` fields take calls only from a visitor who accepted the notice (shown before the call)."""
        if self is RecordingPolicy.ALWAYS and consent is not True:
            raise SignalingError(errors.CONSENT_REQUIRED, "calls in this service field are recorded; the visitor "
                                 "must accept the recording notice first (send recording_consent: true)")


@dataclass(frozen=True)
class ServiceField:
    id: str
    names: Mapping[str, str]
    matters: tuple[MatterType, ...]
    icon: str = ""
    recording: RecordingPolicy = RecordingPolicy.NEVER

    def name(self, language: str) -> str:
        return pick_name(self.names, language, self.id)


class Catalog:
    def __init__(self, fields: Iterable[ServiceField]) -> None:
        self.fields: dict[str, ServiceField] = {}
        for f in fields:
            if f.id in self.fields:
                raise CatalogError(f"service field {f.id!r} is listed twice")
            self.fields[f.id] = f
        if not self.fields:
            raise CatalogError("the catalog lists no service field")

    def __contains__(self, field_id: object) -> bool:
        return field_id in self.fields

    def __iter__(self) -> Iterator[ServiceField]:
        return iter(self.fields.values())

    def get(self, field_id: str) -> ServiceField:
        try:
            return self.fields[field_id]
        except KeyError:
            raise CatalogError(f"unknown service field {field_id!r}") from None

    def ids(self) -> list[str]:
        return list(self.fields)

    def as_dicts(self) -> list[dict[str, object]]:
        return [
            {
                "id": f.id,
                "icon": f.icon,
                "recording": f.recording.value,
                "names": dict(f.names),
                "matters": [{"id": m.id, "names": dict(m.names)} for m in f.matters],
            }
            for f in self.fields.values()
        ]
