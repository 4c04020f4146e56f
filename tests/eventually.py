"""Waiting in tests for something to become true: ask again until it is, never a fixed sleep.

A check passes when it returns a truthy value without raising ``AssertionError``; that value
is returned, so a check that asserts returns what it checked (``return body``). A falsy value
or a failed assertion means "not yet". Any other exception is a bug and goes straight up.
Past the deadline the last falsy value or failed assertion is raised as an ``AssertionError``,
so the failure says what was seen, not only that time ran out.

The deadline is generous (10 s) because a loaded machine is slow, not wrong: a condition
that holds comes back at the next ``interval`` whatever the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 10.0, interval: float = 0.05
) -> T: ...
@overload
async def eventually(
    check: Callable[[], T], *, within: float = 10.0, interval: float = 0.05
) -> T: ...
async def eventually(
    check: Callable[[], Awaitable[T] | T], *, within: float = 10.0, interval: float = 0.05
) -> T:
    """Call ``check`` (sync or async) every ``interval`` seconds until it passes, for at most
    ``within`` seconds, and return what it returned."""
    deadline = time.monotonic() + within
    while True:
        # The clock is read before asking, so the last ask comes after the deadline.
        late = time.monotonic() > deadline
        try:
            outcome = check()
            value: T = await outcome if inspect.isawaitable(outcome) else outcome
        except AssertionError as failed:
            if late:
                raise AssertionError(f"not so within {within} s: {failed}") from failed
        else:
            if value:
                return value
            if late:
                raise AssertionError(f"not so within {within} s: {value!r}")
        await asyncio.sleep(interval)


def eventually_sync(check: Callable[[], T], *, within: float = 10.0, interval: float = 0.05) -> T:
    """``eventually`` for code off the event loop (threads, sync tests): blocks meanwhile."""
    deadline = time.monotonic() + within
    while True:
        late = time.monotonic() > deadline
        try:
            value = check()
        except AssertionError as failed:
            if late:
                raise AssertionError(f"not so within {within} s: {failed}") from failed
        else:
            if value:
                return value
            if late:
                raise AssertionError(f"not so within {within} s: {value!r}")
        time.sleep(interval)
