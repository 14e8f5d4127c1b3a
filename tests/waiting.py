"""Waiting for a state the test cannot be told about by an event: polled, with a timeout."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def until(predicate: Callable[[], Any], what: str, timeout_s: float = 5.0) -> Any:
    """Wait (polling every 20 ms, at most ``timeout_s``) until ``predicate()`` (or the awaitable it returns) is
    truthy on the server side; return that value."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                value = predicate()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s} s: {what}") from None
