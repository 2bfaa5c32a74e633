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


class _Resume:
    """Awaitable that carries on a coroutine already started by hand.

    :class:`SerialRunner` starts a job's coroutine eagerly (most handlers
    finish without ever waiting); when it does wait, the rest runs in a task
    through this object, which forwards what the task sends or throws.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Any, first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Any:
        coro = self._coro
        value = self._first
        self._first = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in (e.g. cancellation)
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def _start(job: Callable[[], Any]) -> Any:
    """Run *job* up to its first wait; returns what is left to await, or None."""
    result = job()
    if result.__class__ is _COROUTINE or inspect.iscoroutine(result):
        try:
            first = result.send(None)
        except StopIteration:
            return None
        return _Resume(result, first)
    if result is not None and inspect.isawaitable(result):
        return result
    return None


async def _sample() -> None:  # pragma: no cover - only its type is used
    pass


_coro = _sample()
_COROUTINE = type(_coro)
_coro.close()


class SerialRunner:
    """Runs jobs one after the other, in submission order, in at most one task.

    A job submitted while nothing else runs starts at once, in a copy of the
    current context (no task at all when it finishes without waiting); the
    task exists only while a job waits or jobs are queued, so an idle owner
    costs nothing. A job is a zero-argument callable returning an awaitable
    or not.
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
            awaitable = ctx.run(_start, job)
        except Exception:
            logger.exception("handler failed")
            return
        if awaitable is None:
            return
        task = asyncio.get_running_loop().create_task(self._run(awaitable), context=ctx)
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
    """``transport.writelines(data)``, with flow control on every event loop.

    Since Python 3.12 asyncio's own socket transport writes a list without
    comparing its buffer with the high-water mark, so ``pause_writing``
    never comes (and senders never wait); have it check after. uvloop's
    transports and asyncio's TLS transport do it themselves.
    """
    transport.writelines(data)
    if _SKIPS_FLOW_CONTROL is not None and isinstance(transport, _SKIPS_FLOW_CONTROL):
        check = getattr(transport, "_maybe_pause_protocol", None)
        if check is not None:
            check()
