"""The single-node routing scenarios, unchanged, on three nodes sharing one Redis (kiosks and clerks spread)."""

from tests.server.test_signaling_server import *  # noqa: F403 (the very same tests, with this folder's harness)
