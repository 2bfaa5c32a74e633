"""A blocking Socket.IO client for scripts and tests: :class:`SimpleClient`.

::

    import wsio

    with wsio.SimpleClient("http://127.0.0.1:8000") as client:
        client.emit("chat", "hello")
        print(client.call("echo", 42, timeout=5))
        event, args = client.receive(timeout=10)

It runs a :class:`wsio.Client` on an event loop in a background thread and
waits for the results: every behaviour (reconnection, buffering, acks) is the
async client's. Events from the server are queued for :meth:`receive`; an
event that asks for an acknowledgement is acknowledged with no arguments.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._util import spawn
from ..exceptions import Disconnected
from .client import Client

__all__ = ["SimpleClient"]

T = TypeVar("T")

_END = object()


class SimpleClient:
    """A blocking client of one namespace.

    ``url`` and the keyword options are those of :class:`wsio.Client`; they
    can be given here or to :meth:`connect`. Used as a context manager, it
    connects on entry when it has a URL and disconnects on exit.
    """

    def __init__(self, url: str | None = None, **options: Any) -> None:
        self.url = url
        self.options = options
        self.client: Client | None = None
        """The async client (None before :meth:`connect`)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._events: queue.Queue[Any] = queue.Queue()

    def __repr__(self) -> str:
        return f"<wsio.SimpleClient {self.url} {'connected' if self.connected else 'closed'}>"

    def __enter__(self) -> SimpleClient:
        if self.url is not None and self.client is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    def id(self) -> str | None:
        """The socket id (None while not connected)."""
        return self.client.id if self.client is not None else None

    sid = id

    @property
    def connected(self) -> bool:
        """Whether the client is connected."""
        return self.client is not None and self.client.connected

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise Disconnected("the client is not connected")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.done():
                raise  # the coroutine's own TimeoutError (an AckTimeout...)
            future.cancel()
            raise TimeoutError("no result in time") from None

    def connect(self, url: str | None = None, **options: Any) -> None:
        """Connect (blocking); raises :class:`wsio.ConnectionError` on failure."""
        if self.client is not None:
            raise RuntimeError("already connected; call disconnect() first")
        if url is not None:
            self.url = url
        if self.url is None:
            raise ValueError("no URL to connect to")
        self.options.update(options)
        client = Client(self.url, **self.options)
        self._events = queue.Queue()
        events = self._events

        def on_event(event: Any, *args: Any) -> None:
            events.put((event, list(args)))

        client.on("*", on_event)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="wsio-simple-client", daemon=True)
        thread.start()
        self._loop, self._thread, self.client = loop, thread, client

        async def start() -> None:
            await client.connect()

            async def watch() -> None:
                await client.wait()
                events.put(_END)

            spawn(watch())

        try:
            self._run(start())
        except BaseException:
            self._stop()
            raise

    def emit(self, event: str | int | float, *args: Any) -> None:
        """Send an event (buffered while reconnecting)."""
        client = self._client()

        async def emit() -> None:
            await client.emit(event, *args)

        self._run(emit())

    def call(self, event: str | int | float, *args: Any, timeout: float | None = 60) -> Any:
        """Send an event and return the acknowledgement (see :meth:`wsio.Client.call`).

        Raises :class:`wsio.AckTimeout` after ``timeout`` seconds.
        """
        client = self._client()
        return self._run(client.call(event, *args, timeout=timeout))

    def receive(self, timeout: float | None = None) -> tuple[Any, list[Any]]:
        """The next event from the server as ``(event, args)``.

        Raises :class:`TimeoutError` when none arrives within ``timeout``
        seconds, :class:`wsio.Disconnected` when the client is disconnected
        for good and every event has been received.
        """
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout} s") from None
        if item is _END:
            self._events.put(_END)
            raise Disconnected("the client is disconnected")
        return item

    def disconnect(self) -> None:
        """Disconnect and stop the background thread (does nothing if not connected)."""
        client = self.client
        if client is None:
            return
        try:
            self._run(client.manager.close(), timeout=client.manager.timeout + 1)
        except (TimeoutError, Disconnected):
            pass
        finally:
            self._stop()

    def _client(self) -> Client:
        if self.client is None:
            raise Disconnected("the client is not connected")
        return self.client

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        self.client = None
        self._loop = self._thread = None
        self._events.put(_END)
        if loop is None or thread is None:
            return

        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(finish(), loop).result(5)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()
