"""Loopback ICE candidates for aioice, and a look at the selected candidate pair.

aioice gathers host candidates from ``aioice.ice.get_host_addresses``, which
leaves out ``127.0.0.1``. On a host whose only interface is loopback (a CI
container, a sandbox) no host candidate is gathered and, without STUN/TURN,
no call can connect. This module swaps that function for a wrapper:

- :func:`allow_loopback_candidates`: the usual addresses plus ``127.0.0.1``
  (when IPv4 is in use);
- :func:`only_loopback_candidates`: ``127.0.0.1`` and nothing else, which
  simulates a loopback-only host on any machine.

Calling either installs the patch at once (``allow_loopback_candidates()``
as a plain statement patches the whole process); used as a context manager it
also restores the previous mode when the block ends, so blocks nest.
:func:`install_loopback_candidates` / :func:`uninstall_loopback_candidates`
are the idempotent process-wide switches. The patch only affects
connections that gather candidates while it is installed. If the aioice
internals it relies on are missing, :class:`LoopbackPatchError` is raised
rather than silently doing nothing.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, Literal

import aioice.ice

logger = logging.getLogger(__name__)

LOOPBACK_V4 = "127.0.0.1"

Mode = Literal["allow", "only"]
HostAddresses = Callable[[bool, bool], list[str]]

_ice: Any = aioice.ice  # patched through an untyped alias: mypy won't let a module's function be reassigned


class LoopbackPatchError(RuntimeError):
    """aioice does not look the way this patch expects (an aioice upgrade changed its internals)."""


_original: HostAddresses | None = None
_mode: Mode | None = None


def _check_aioice() -> HostAddresses:
    """The original ``get_host_addresses`` after checking that gathering really goes through it."""
    current = getattr(_ice, "get_host_addresses", None)
    if current is None or not callable(current):
        raise LoopbackPatchError("aioice.ice.get_host_addresses is gone; cannot add loopback candidates")
    if current is not _patched_get_host_addresses:
        params = list(inspect.signature(current).parameters)
        if params[:2] != ["use_ipv4", "use_ipv6"]:
            raise LoopbackPatchError(f"aioice.ice.get_host_addresses has an unexpected signature {params}")
    gather = getattr(getattr(_ice, "Connection", None), "gather_candidates", None)
    code = getattr(gather, "__code__", None)
    if code is None or "get_host_addresses" not in code.co_names:
        raise LoopbackPatchError(
            "aioice.ice.Connection.gather_candidates no longer calls get_host_addresses; cannot add loopback candidates"
        )
    return current


def _patched_get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    assert _original is not None
    if _mode == "only":
        return [LOOPBACK_V4] if use_ipv4 else []
    addresses = _original(use_ipv4, use_ipv6)
    if _mode == "allow" and use_ipv4 and LOOPBACK_V4 not in addresses:
        addresses = [*addresses, LOOPBACK_V4]
    return addresses


def _set_mode(mode: Mode | None) -> None:
    global _mode, _original
    current = _check_aioice()
    if mode is None:
        if _original is not None and current is _patched_get_host_addresses:
            _ice.get_host_addresses = _original
        _original = None
        _mode = None
        return
    if current is not _patched_get_host_addresses:
        _original = current
        _ice.get_host_addresses = _patched_get_host_addresses
    _mode = mode
    logger.debug("aioice host addresses: %s loopback", mode)


def loopback_mode() -> Mode | None:
    """The installed mode: ``"allow"``, ``"only"`` or ``None``."""
    return _mode


def install_loopback_candidates(*, only: bool = False) -> None:
    """Patch aioice for the whole process (idempotent; a second call just changes the mode)."""
    _set_mode("only" if only else "allow")


def uninstall_loopback_candidates() -> None:
    """Put aioice's own ``get_host_addresses`` back (idempotent)."""
    _set_mode(None)


class LoopbackPatch:
    """The patch as installed by :func:`allow_loopback_candidates` / :func:`only_loopback_candidates`.

    It is in effect from the call on; used as a context manager, it puts the
    previous mode back when the block ends (so blocks nest), and so does
    :meth:`undo`.
    """

    def __init__(self, mode: Mode) -> None:
        self.mode: Mode = mode
        self.previous: Mode | None = _mode
        self._undone = False
        _set_mode(mode)

    def undo(self) -> None:
        if not self._undone:
            self._undone = True
            _set_mode(self.previous)

    def __enter__(self) -> LoopbackPatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.undo()


def allow_loopback_candidates() -> LoopbackPatch:
    """From now on (or within a ``with`` block), aioice gathers its usual host addresses plus ``127.0.0.1``."""
    return LoopbackPatch("allow")


def only_loopback_candidates() -> LoopbackPatch:
    """From now on (or within a ``with`` block), aioice gathers ``127.0.0.1`` as its only host address."""
    return LoopbackPatch("only")


def selected_candidate_pair(pc: Any) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """``(local (host, port), remote (host, port))`` of the pair ICE nominated for ``pc``'s first transport.

    aiortc exposes no candidate-pair stats, so this reads aioice internals; it
    returns ``None`` when it cannot find them (diagnostics only).
    """
    try:
        for transceiver in pc.getTransceivers():
            ice_transport = transceiver.sender.transport.transport
            connection = ice_transport._connection
            for pair in connection._nominated.values():
                local = pair.local_candidate
                remote_host, remote_port = pair.remote_addr
                return (str(local.host), int(local.port)), (str(remote_host), int(remote_port))
    except AttributeError:
        return None
    return None
