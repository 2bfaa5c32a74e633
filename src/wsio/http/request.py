"""Request and response objects shared by the built-in server and the ASGI adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from http import HTTPStatus
from urllib.parse import parse_qsl

from .headers import Headers

__all__ = ["Request", "Response", "status_line"]


class Request:
    """An HTTP request with its whole body.

    ``path`` is the percent-decoded path, ``query_string`` the raw query,
    ``query`` its parsed form (first value of each key), ``client`` the
    peer's ``(host, port)``.
    """

    __slots__ = (
        "_callbacks",
        "_disconnected",
        "_query",
        "_waiters",
        "body",
        "client",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query_string",
        "scheme",
        "target",
    )

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query_string: str,
        headers: Headers,
        *,
        http_version: str = "1.1",
        body: bytes = b"",
        client: tuple[str, int] | None = None,
        scheme: str = "http",
        keep_alive: bool = True,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.http_version = http_version
        self.body = body
        self.client = client
        self.scheme = scheme
        self.keep_alive = keep_alive
        self._query: dict[str, str] | None = None
        self._disconnected = False
        self._waiters: list[asyncio.Future[None]] | None = None
        self._callbacks: list[Callable[[], None]] | None = None

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the first value of each)."""
        q = self._query
        if q is None:
            qs = self.query_string
            if "%" in qs or "+" in qs or ";" in qs:
                q = {}
                for k, v in parse_qsl(qs, keep_blank_values=True):
                    q.setdefault(k, v)
            else:
                # Fast path for plain queries such as EIO=4&transport=polling&sid=...
                q = {}
                for part in qs.split("&"):
                    if part:
                        k, _, v = part.partition("=")
                        q.setdefault(k, v)
            self._query = q
        return q

    @property
    def disconnected(self) -> bool:
        """Whether the client went away while the request was being served."""
        return self._disconnected

    def set_disconnected(self) -> None:
        """Mark the client as gone and wake :meth:`wait_disconnected` callers."""
        if self._disconnected:
            return
        self._disconnected = True
        if self._callbacks:
            callbacks, self._callbacks = self._callbacks, None
            for callback in callbacks:
                callback()
        if self._waiters:
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(None)
            self._waiters = None

    def add_disconnect_callback(self, callback: Callable[[], None]) -> None:
        """Call *callback* (once) when the client goes away; at once if it has."""
        if self._disconnected:
            callback()
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    async def wait_disconnected(self) -> None:
        """Return when the client closes its connection (e.g. abandons a long-poll)."""
        if self._disconnected:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if self._waiters is not None and fut in self._waiters:
                self._waiters.remove(fut)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


class Response:
    """An HTTP response with a complete body (always sent with Content-Length)."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes | str = b"",
        headers: Sequence[tuple[str, str]] = (),
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = list(headers)
        if content_type is not None:
            self.headers.append(("Content-Type", content_type))

    @classmethod
    def text(cls, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
        """A plain-text response."""
        return cls(status, message, headers, "text/plain; charset=utf-8")

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` (cached)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode()
    return line
