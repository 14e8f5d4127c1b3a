"""What the core is asked to do: one command at a time, each with the time it happens.

Every incoming event, connect, disconnect and timer tick becomes one command.
Commands are plain values (msgspec structs), so they can be queued, logged,
forwarded to another node and replayed. Anything random (a new call's id) is
drawn by the server and carried in the command, so applying the same commands
at the same times always gives the same state.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from signaling.stages import ClerkProfile

Role = Literal["kiosk", "clerk"]
KIOSK: Role = "kiosk"
CLERK: Role = "clerk"


class Party(msgspec.Struct, frozen=True):
    """Who: a kiosk or a clerk, by id."""

    role: Role
    id: str

    def __str__(self) -> str:
        return f"{self.role}:{self.id}"


class KioskCard(msgspec.Struct, frozen=True):
    """What the core knows of a kiosk device."""

    id: str
    name: str
    region: str


class ClerkCard(msgspec.Struct, frozen=True):
    """What the core knows of a clerk."""

    id: str
    name: str
    center: str
    fields: tuple[str, ...]
    regions: tuple[str, ...]
    languages: tuple[str, ...]

    def profile(self) -> ClerkProfile:
        return ClerkProfile(self.id, frozenset(self.fields), frozenset(self.languages), self.regions)


class Command(msgspec.Struct, frozen=True, tag=True):
    pass


class KioskConnected(Command, frozen=True):
    conn: str  # the connection (socket) id; a newer connection of the same kiosk replaces the older
    kiosk: KioskCard
    again: bool = False  # a node announcing its sockets anew (the live state started afresh): never replaces


class ClerkConnected(Command, frozen=True):
    conn: str
    clerk: ClerkCard
    again: bool = False


class Disconnected(Command, frozen=True):
    party: Party
    conn: str
    lost: bool  # the connection broke (transport closed, ping timeout, node gone) rather than being closed


class Received(Command, frozen=True):
    """An event a connected kiosk or clerk sent, already validated against its schema."""

    party: Party
    conn: str
    event: str
    msg: Any  # the event's struct from signaling.messages
    fresh: str = ""  # a new random id, for the events that open a call (request_call, transfer)


class Tick(Command, frozen=True):
    """Time passed: ring timeouts, stage widenings, grace periods, wrap-up times, queue updates."""


class SendPositions(Command, frozen=True):
    """Tell every visitor waiting in these queues (field, district) their position and wait (batched updates)."""

    groups: tuple[tuple[str, str], ...]


class RecorderAnswered(Command, frozen=True):
    """The recorder took (or could not take) a participant's connection."""

    call_id: str
    participant: Literal["visitor", "clerk"]
    error: str = ""  # "" when it answered


class RecorderLost(Command, frozen=True):
    """The recorder worker of a call died; its replacement runs now."""

    call_id: str
    participant: Literal["visitor", "clerk"]


class Revoked(Command, frozen=True):
    """A kiosk's or clerk's token was revoked: cut it off, and no longer count the clerk as serving."""

    id: str


class RosterChanged(Command, frozen=True):
    """The clerks on record (not revoked): who could ever serve which field where."""

    clerks: tuple[ClerkCard, ...]
