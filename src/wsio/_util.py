"""Small helpers shared by the layers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import inspect
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "SerialRunner",
    "call_handler",
    "is_async_callable",
    "new_id",
    "set_nodelay",
    "spawn",
    "writelines",
]

logger = logging.getLogger("wsio")

_background: set[asyncio.Task[Any]] = set()


def new_id() -> str:
    """A random, URL-safe 20-character id (120 bits of entropy)."""
    return base64.urlsafe_b64encode(os.urandom(15)).decode("ascii")


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once on a TCP *transport* (Nagle's algorithm off).

    Nothing happens on other transports (Unix sockets, pipes).
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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


_EAGER_TASKS = sys.version_info >= (3, 12)
"""Whether asyncio can run a new task's first step at once (``eager_start``)."""


class _Starting:
    """Stands for the task of a :class:`SerialRunner` while its first job starts."""

    __slots__ = ()

    def cancel(self) -> bool:
        return False


_STARTING: Any = _Starting()


class SerialRunner:
    """Runs jobs one after the other, in submission order, in at most one task.

    A job submitted while nothing else runs is called at once; when it
    returns an awaitable, that runs in a task (in a copy of the current
    context), which then takes the jobs queued meanwhile. Since Python 3.12
    the task starts eagerly: a coroutine that never waits finishes before
    :meth:`submit` returns, and ``asyncio.current_task()``,
    ``asyncio.timeout()`` work in it from its first line. The task exists
    only while a job waits or jobs are queued, so an idle owner costs
    nothing. A job is a zero-argument callable returning an awaitable or not.
    """

    __slots__ = ("_jobs", "_task")

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Whether a job is running (waiting) or queued."""
        return self._task is not None or bool(self._jobs)

    def submit(self, job: Callable[[], Any]) -> None:
        """Run *job* after every job submitted before it."""
        if self._task is None and not self._jobs:
            self._run_eagerly(job)
            return
        self._jobs.append(job)
        if self._task is None:
            self._task = spawn(self._run(None))

    def _run_eagerly(self, job: Callable[[], Any]) -> None:
        ctx = contextvars.copy_context()
        try:
            awaitable = ctx.run(job)
        except Exception:
            logger.exception("handler failed")
            return
        if awaitable is None or not inspect.isawaitable(awaitable):
            return
        loop = asyncio.get_running_loop()
        if _EAGER_TASKS:
            # Jobs submitted while the first step runs queue behind it.
            self._task = _STARTING
            try:
                task: asyncio.Task[None] = asyncio.Task(  # type: ignore[call-arg]
                    self._run(awaitable), loop=loop, context=ctx, eager_start=True
                )
            except BaseException:
                self._task = None
                raise
            if task.done():  # finished without waiting (_run reset _task)
                return
        else:
            task = loop.create_task(self._run(awaitable), context=ctx)
        _background.add(task)
        task.add_done_callback(_task_done)
        self._task = task

    def __len__(self) -> int:
        return len(self._jobs)

    async def _run(self, first: Any) -> None:
        jobs = self._jobs
        try:
            if first is not None:
                try:
                    await first
                except Exception:
                    logger.exception("handler failed")
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


def _selector_socket_transport() -> type | None:
    if sys.version_info < (3, 12):
        return None
    from asyncio import selector_events

    return getattr(selector_events, "_SelectorSocketTransport", None)


_SKIPS_FLOW_CONTROL = _selector_socket_transport()


def writelines(transport: asyncio.WriteTransport, data: list[bytes] | list[Any]) -> None:
    """``transport.writelines(data)``, working around two faults of asyncio's own
    socket transport since Python 3.12 (uvloop's and the TLS transport are fine).

    * It writes a list without comparing its buffer with the high-water mark,
      so ``pause_writing`` never comes and senders never wait: have it check.
    * An empty item after the last byte sent stays in its buffer for good: the
      transport spins on a writable socket and ``close()`` never completes. So
      empty items (the payload of an empty frame) are left out.
    """
    if _SKIPS_FLOW_CONTROL is not None and isinstance(transport, _SKIPS_FLOW_CONTROL):
        transport.writelines([item for item in data if len(item)])
        check = getattr(transport, "_maybe_pause_protocol", None)
        if check is not None:
            check()
        return
    transport.writelines(data)
