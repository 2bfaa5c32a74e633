"""Small helpers shared by the layers."""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["SerialRunner", "call_handler", "is_async_callable", "new_id", "spawn"]

logger = logging.getLogger("wsio")

_background: set[asyncio.Task[Any]] = set()


def new_id() -> str:
    """A random, URL-safe 20-character id (120 bits of entropy)."""
    return base64.urlsafe_b64encode(os.urandom(15)).decode("ascii")


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling *fn* returns a coroutine (async def, or a partial of one)."""
    while hasattr(fn, "func"):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


def spawn(coro: Awaitable[Any], name: str | None = None) -> asyncio.Task[Any]:
    """Run *coro* in a task that is kept referenced until it finishes; errors are logged."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_task_done)
    return task


def _task_done(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        exc = task.exception()
        if exc is not None:
            logger.error("background task failed", exc_info=exc)


async def call_handler(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a sync or async handler and return its result."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class SerialRunner:
    """Runs jobs one after the other, in submission order, in at most one task.

    The task exists only while jobs are pending, so an idle owner costs no
    task. A job is a zero-argument callable returning an awaitable or not.
    """

    __slots__ = ("_jobs", "_task")

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue *job*; it runs after every job submitted before it."""
        self._jobs.append(job)
        if self._task is None:
            self._task = spawn(self._run())

    def __len__(self) -> int:
        return len(self._jobs)

    async def _run(self) -> None:
        jobs = self._jobs
        try:
            while jobs:
                job = jobs.popleft()
                try:
                    result = job()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("handler failed")
        finally:
            self._task = None

    def cancel(self) -> None:
        """Drop pending jobs and cancel the one running."""
        self._jobs.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None
