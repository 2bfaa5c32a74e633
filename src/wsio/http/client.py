"""A small asyncio HTTP/1.1 client: what Engine.IO long-polling needs, nothing more.

:class:`HTTPClient` keeps a pool of keep-alive connections per
``(scheme, host, port)``, parses responses with ``httptools`` (Content-Length,
chunked, or read-until-close bodies), decodes ``gzip`` / ``deflate``
``Content-Encoding``, speaks TLS through an :class:`ssl.SSLContext` and keeps
cookies in a :class:`CookieJar`::

    async with HTTPClient() as http:
        response = await http.request("GET", "http://127.0.0.1:8000/", timeout=5)
        print(response.status, response.headers.get("Content-Type"), response.body)

Every request runs on its own connection of the pool (no pipelining), so a
long-polling ``GET`` and a ``POST`` to the same server run at the same time on
two connections. Closing the client aborts the requests still pending.

Errors form one hierarchy rooted in :class:`OSError`, so code that already
catches network errors catches these too::

    HTTPError (OSError)
    ├── ConnectError        the TCP or TLS connection could not be made
    │                       (the original error, e.g. ssl.SSLCertVerificationError,
    │                       is the ``__cause__``)
    ├── RequestTimeout      no complete response within ``timeout`` (also a TimeoutError)
    ├── RequestAborted      the client was closed while the request was pending
    ├── ResponseTooLarge    the (decoded) body is above ``max_response_size``
    └── ProtocolError       malformed response
        └── ServerDisconnected  the connection closed before the response was complete

A status of 4xx or 5xx is not an error: the response is returned as it is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl as ssl_module
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httptools

from .._util import set_nodelay, writelines
from .headers import Headers, HeadMeter

__all__ = [
    "ConnectError",
    "Cookie",
    "CookieJar",
    "HTTPClient",
    "HTTPError",
    "HTTPResponse",
    "ProtocolError",
    "RequestAborted",
    "RequestTimeout",
    "ResponseTooLarge",
    "ServerDisconnected",
    "make_ssl_context",
]

logger = logging.getLogger("wsio.http.client")

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


# -- errors ----------------------------------------------------------------------


class HTTPError(OSError):
    """Base class of the HTTP client's errors."""


class ConnectError(HTTPError):
    """The TCP or TLS connection failed; the original error is the ``__cause__``."""


class RequestTimeout(HTTPError, TimeoutError):
    """No complete response arrived within the request's ``timeout``."""


class RequestAborted(HTTPError):
    """The request was abandoned because the client was closed."""


class ResponseTooLarge(HTTPError):
    """The response body (after decoding) is larger than ``max_response_size``."""


class ProtocolError(HTTPError):
    """The server sent something that is not a valid HTTP/1.1 response."""


class ServerDisconnected(ProtocolError):
    """The connection closed before the response was complete.

    ``partial`` is False when not a single byte of the response arrived (the
    server dropped an idle keep-alive connection, say).
    """

    def __init__(self, message: str, *, partial: bool) -> None:
        super().__init__(message)
        self.partial = partial


# -- TLS -----------------------------------------------------------------------------


def make_ssl_context(ssl: ssl_module.SSLContext | bool | None) -> ssl_module.SSLContext:
    """The context for ``https``/``wss`` connections.

    ``None`` or ``True``: the default context (certificates and host names are
    verified against the system's CAs); ``False``: no verification at all
    (testing only); an :class:`ssl.SSLContext` is used as it is (for a private
    CA: ``ssl.create_default_context(cafile=...)``).
    """
    if isinstance(ssl, ssl_module.SSLContext):
        return ssl
    if ssl is False:
        ctx = ssl_module.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl_module.CERT_NONE
        return ctx
    return ssl_module.create_default_context()


# -- cookies -----------------------------------------------------------------------


@dataclass(slots=True)
class Cookie:
    """One stored cookie (RFC 6265 section 5.3)."""

    name: str
    value: str
    domain: str
    """The host (``host_only``) or the domain the cookie applies to, lower-cased."""
    path: str
    host_only: bool = True
    secure: bool = False
    http_only: bool = False
    expires: float | None = None
    """Expiry as a :func:`time.time` timestamp; None for a session cookie."""
    created: float = field(default_factory=time.time)

    def expired(self, now: float | None = None) -> bool:
        """Whether the cookie is past its expiry time."""
        return self.expires is not None and self.expires <= (time.time() if now is None else now)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _domain_match(host: str, domain: str) -> bool:
    return host == domain or (host.endswith("." + domain) and not _is_ip(host))


def _path_match(request_path: str, cookie_path: str) -> bool:
    if request_path == cookie_path:
        return True
    if not request_path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"


def _default_path(request_path: str) -> str:
    if not request_path.startswith("/"):
        return "/"
    cut = request_path.rfind("/")
    return request_path[:cut] if cut > 0 else "/"


def _url_parts(url: str) -> tuple[str, bool, str]:
    """``(host, secure, path)`` of an http(s) or ws(s) URL, for cookie matching."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return host, parts.scheme.lower() in ("https", "wss"), parts.path or "/"


class CookieJar:
    """Cookies received in ``Set-Cookie`` headers, sent back in ``Cookie`` headers.

    A simplified RFC 6265 store: cookies are kept per domain, path and name,
    with ``Max-Age`` / ``Expires`` expiry (``Max-Age`` wins), the ``Domain``,
    ``Path`` and ``Secure`` rules applied when choosing what to send, and
    ``Secure`` cookies sent only over ``https``/``wss``. URLs may be
    ``http(s)://`` or ``ws(s)://``, so one jar serves the polling requests
    and the WebSocket handshake of an Engine.IO client (cookie-based sticky
    load balancing needs both to carry the same cookie). There is no public
    suffix list: a ``Domain`` attribute must contain a dot or equal the host.
    """

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}

    def __len__(self) -> int:
        self._purge()
        return len(self._cookies)

    def __iter__(self) -> Iterator[Cookie]:
        self._purge()
        return iter(list(self._cookies.values()))

    def clear(self) -> None:
        """Forget every cookie."""
        self._cookies.clear()

    def _purge(self) -> None:
        now = time.time()
        for key in [k for k, c in self._cookies.items() if c.expired(now)]:
            del self._cookies[key]

    def extract(self, url: str, headers: Headers | Iterable[tuple[str, str]]) -> None:
        """Store the cookies of every ``Set-Cookie`` field of a response to *url*."""
        if isinstance(headers, Headers):
            values = headers.get_all("Set-Cookie")
        else:
            values = [v for n, v in headers if n.lower() == "set-cookie"]
        for value in values:
            self.set_cookie(url, value)

    def set_cookie(self, url: str, header: str) -> Cookie | None:
        """Parse one ``Set-Cookie`` value received from *url* and store it.

        Returns the cookie, or None when it was ignored (malformed, a
        ``Domain`` the host does not belong to) or when it deleted one.
        """
        host, _secure, path = _url_parts(url)
        pair, *attributes = header.split(";")
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            return None
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        now = time.time()
        cookie = Cookie(name, value, host, _default_path(path), created=now)
        max_age: float | None = None
        expires: float | None = None
        for attribute in attributes:
            key, _, attr_value = attribute.partition("=")
            key, attr_value = key.strip().lower(), attr_value.strip()
            if key == "max-age":
                try:
                    delta = int(attr_value)
                except ValueError:
                    continue
                max_age = now + delta if delta > 0 else 0.0
            elif key == "expires":
                try:
                    expires = parsedate_to_datetime(attr_value).timestamp()
                except (TypeError, ValueError, IndexError, OverflowError):
                    continue
            elif key == "domain":
                domain = attr_value.lstrip(".").lower()
                if not domain:
                    continue
                if not _domain_match(host, domain) or ("." not in domain and domain != host):
                    return None
                cookie.domain = domain
                cookie.host_only = domain == host
            elif key == "path":
                if attr_value.startswith("/"):
                    cookie.path = attr_value
            elif key == "secure":
                cookie.secure = True
            elif key == "httponly":
                cookie.http_only = True
        cookie.expires = max_age if max_age is not None else expires
        key3 = (cookie.domain, cookie.path, cookie.name)
        if cookie.expired(now):
            self._cookies.pop(key3, None)
            return None
        old = self._cookies.get(key3)
        if old is not None:
            cookie.created = old.created
        self._cookies[key3] = cookie
        return cookie

    def cookies_for(self, url: str) -> list[Cookie]:
        """The cookies to send to *url*: longest paths first, then oldest first."""
        host, secure, path = _url_parts(url)
        now = time.time()
        chosen = []
        for key, cookie in list(self._cookies.items()):
            if cookie.expired(now):
                del self._cookies[key]
                continue
            if cookie.host_only:
                if host != cookie.domain:
                    continue
            elif not _domain_match(host, cookie.domain):
                continue
            if cookie.secure and not secure:
                continue
            if not _path_match(path, cookie.path):
                continue
            chosen.append(cookie)
        chosen.sort(key=lambda c: (-len(c.path), c.created))
        return chosen

    def header_for(self, url: str) -> str | None:
        """The ``Cookie`` header value for a request to *url*, or None when there is none."""
        cookies = self.cookies_for(url)
        if not cookies:
            return None
        return "; ".join(f"{c.name}={c.value}" for c in cookies)


# -- responses ---------------------------------------------------------------------


@dataclass(slots=True)
class HTTPResponse:
    """A complete response; ``body`` is already decoded from gzip/deflate."""

    status: int
    headers: Headers
    body: bytes
    reason: str = ""
    url: str = ""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The body as text."""
        return self.body.decode(encoding, errors)


# -- one connection --------------------------------------------------------------


class _HeadDone(Exception):
    """Raised from the parser callback: a HEAD response has no body to wait for."""


class _TooLarge(Exception):
    pass


@dataclass(slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    host_header: str
    target: str
    url: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def _parse_url(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    host = parts.hostname
    if not host:
        raise ValueError(f"{url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{url!r}: credentials in the URL are not supported")
    default = 443 if scheme == "https" else 80
    port = port or default
    host_header = f"[{host}]" if ":" in host else host
    if port != default:
        host_header += f":{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return _Target(scheme, host, port, host_header, target, url)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; runs one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        self.loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.keep_alive = False
        self.reused = False
        self._fut: asyncio.Future[HTTPResponse] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._method = "GET"
        self._url = ""
        self._limit = 0
        self._max_header = 0
        self._received = 0
        self._head_meter = HeadMeter()
        self._headers_done = False
        self._status = 0
        self._reason = ""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._until_eof = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        fut = self._fut
        parser = self._parser
        if fut is None or fut.done() or parser is None:
            # Nothing was asked: the connection cannot be trusted any more.
            self.close()
            return
        self._received += len(data)
        if not self._headers_done and self._head_meter.feed(data) > self._max_header:
            self._fail(ProtocolError(f"response head larger than {self._max_header} bytes"))
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _HeadDone):
                self._complete()
            elif isinstance(cause, _TooLarge):
                self._fail(ResponseTooLarge(f"response body larger than {self._limit} bytes"))
            else:
                self._fail(ProtocolError(f"malformed response: {exc}"))
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("unexpected protocol upgrade in response"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed response: {exc}"))

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        fut = self._fut
        if fut is None or fut.done():
            return
        if self._headers_done and self._until_eof:
            self.keep_alive = False
            self._complete()
            return
        detail = f": {exc}" if exc is not None else ""
        self._fail(
            ServerDisconnected(
                f"connection closed before the response was complete{detail}",
                partial=self._received > 0,
            )
        )

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._headers = []
        self._body = []
        self._body_size = 0
        self._headers_done = False

    def on_status(self, status: bytes) -> None:
        self._reason = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim response; the real one follows
        self._status = status
        self._headers_done = True
        names = {name.lower() for name, _ in self._headers}
        chunked = any(
            "chunked" in value.lower()
            for name, value in self._headers
            if name.lower() == "transfer-encoding"
        )
        self._until_eof = "content-length" not in names and not chunked and status not in (204, 304)
        if self._method == "HEAD":
            self.keep_alive = parser.should_keep_alive()
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limit:
            raise _TooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        if not self._headers_done:
            return  # end of an interim (1xx) response
        self.keep_alive = parser.should_keep_alive()
        self._complete()

    # requests

    def start(
        self,
        data: list[bytes],
        method: str,
        url: str,
        limit: int,
        max_header: int,
    ) -> asyncio.Future[HTTPResponse]:
        fut: asyncio.Future[HTTPResponse] = self.loop.create_future()
        self._fut = fut
        self._parser = httptools.HttpResponseParser(self)
        self._method = method
        self._url = url
        self._limit = limit
        self._max_header = max_header
        self._received = 0
        self._head_meter.reset()
        self._headers_done = False
        self._until_eof = False
        self._status = 0
        self._reason = ""
        self._headers = []
        self._body = []
        self._body_size = 0
        self.keep_alive = False
        assert self.transport is not None
        writelines(self.transport, data)
        return fut

    def _complete(self) -> None:
        fut = self._fut
        if fut is None or fut.done():
            return
        body = b"".join(self._body)
        self._body = []
        headers = Headers(self._headers)
        try:
            body = _decode_body(headers, body, self._limit)
        except HTTPError as exc:
            self._fail(exc)
            return
        if not self.keep_alive:
            self.close()
        fut.set_result(HTTPResponse(self._status, headers, body, self._reason, self._url))

    def _fail(self, exc: BaseException) -> None:
        fut = self._fut
        self.keep_alive = False
        self.close()
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def abort_request(self, exc: BaseException) -> None:
        """Fail the pending request (if any) and drop the connection."""
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_exception(exc)
        self.keep_alive = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()

    @property
    def usable(self) -> bool:
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


def _decode_body(headers: Headers, body: bytes, limit: int) -> bytes:
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    if not encoding or encoding == "identity" or not body:
        return body
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(wbits=31)
    elif encoding == "deflate":
        # "deflate" should be the zlib format (RFC 9110), but raw deflate is
        # common: a zlib stream starts with a header whose 16-bit value is a
        # multiple of 31 and whose method is 8.
        wrapped = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        decoder = zlib.decompressobj(wbits=15 if wrapped else -15)
    else:
        return body  # an encoding we do not know: hand it over untouched
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"cannot decode {encoding} body: {exc}") from None
    if len(out) > limit:
        raise ResponseTooLarge(f"decoded response body larger than {limit} bytes")
    if not decoder.eof:
        raise ProtocolError(f"truncated {encoding} body")
    return out


# -- the client ------------------------------------------------------------------------


class _HostPool:
    __slots__ = ("active", "idle", "waiters")

    def __init__(self) -> None:
        self.idle: list[_Connection] = []
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


def _header_items(headers: HeadersLike | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    for name, value in items:
        if not name or any(c in name for c in "\r\n:") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header field {name!r}: {value!r}")
    return items


_MANAGED = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class HTTPClient:
    """An asyncio HTTP/1.1 client with keep-alive connection pools and a cookie jar.

    Options:

    * ``ssl``: TLS for ``https://`` URLs, see :func:`make_ssl_context`
      (``None`` verifies, ``False`` does not, or pass a context).
    * ``cookie_jar``: a :class:`CookieJar` to share (one is created otherwise);
      ``Set-Cookie`` of every response is stored, and matching cookies are
      sent with every request.
    * ``headers``: fields sent with every request (``User-Agent: wsio`` and
      ``Accept-Encoding: gzip, deflate`` unless given here or per request).
    * ``max_connections_per_host`` (4): connections open at once to one
      ``(scheme, host, port)``; more requests wait for a free one.
    * ``max_response_size`` (16 MiB): largest body, before and after decoding.
    * ``max_header_size`` (64 KiB): largest response head.
    * ``keepalive_timeout`` (15 s): idle pooled connections older than this
      are not reused (servers drop them).
    * ``connect_timeout`` (None): bound on TCP + TLS setup, on top of the
      request's own ``timeout``.

    A request that fails before receiving a single byte on a reused
    keep-alive connection (the server closed it while idle) is retried once
    on a new connection, as browsers do.
    """

    def __init__(
        self,
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        cookie_jar: CookieJar | None = None,
        headers: HeadersLike | None = None,
        max_connections_per_host: int = 4,
        max_response_size: int = 16 * 2**20,
        max_header_size: int = 65536,
        keepalive_timeout: float = 15.0,
        connect_timeout: float | None = None,
        user_agent: str | None = "wsio",
    ) -> None:
        if max_connections_per_host < 1:
            raise ValueError("max_connections_per_host must be at least 1")
        self.ssl = ssl
        self.cookie_jar = cookie_jar if cookie_jar is not None else CookieJar()
        self.headers = _header_items(headers)
        self.max_connections_per_host = max_connections_per_host
        self.max_response_size = max_response_size
        self.max_header_size = max_header_size
        self.keepalive_timeout = keepalive_timeout
        self.connect_timeout = connect_timeout
        self.user_agent = user_agent
        self._ssl_context: ssl_module.SSLContext | None = None
        self._pools: dict[tuple[str, str, int], _HostPool] = {}
        self._active: set[_Connection] = set()
        self._connecting: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`abort` was called."""
        return self._closed

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests -----------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeadersLike | None = None,
        body: bytes | str = b"",
        timeout: float | None = None,
    ) -> HTTPResponse:
        """Send a request and return the complete response.

        ``timeout`` bounds the whole exchange (waiting for a pooled
        connection, connecting, sending, receiving). ``str`` bodies are sent
        as UTF-8. Raises an :class:`HTTPError` subclass (see the module
        documentation) or :class:`ValueError` for a URL or header it cannot
        send.
        """
        if self._closed:
            raise RequestAborted("the HTTP client is closed")
        target = _parse_url(url)
        payload = body.encode() if isinstance(body, str) else bytes(body)
        extra = _header_items(headers)
        method = method.upper()
        if timeout is None:
            return await self._request(method, target, extra, payload)
        try:
            async with asyncio.timeout(timeout) as scope:
                return await self._request(method, target, extra, payload)
        except TimeoutError:
            if scope.expired():
                raise RequestTimeout(
                    f"{method} {url}: no complete response within {timeout} s"
                ) from None
            raise

    def _head(
        self, method: str, target: _Target, extra: list[tuple[str, str]], body: bytes
    ) -> bytes:
        lines = [f"{method} {target.target} HTTP/1.1", f"Host: {target.host_header}"]
        given = set()
        cookies = []
        for name, value in (*self.headers, *extra):
            lower = name.lower()
            if lower in _MANAGED:
                continue
            if lower == "cookie":
                cookies.append(value)
                continue
            given.add(lower)
            lines.append(f"{name}: {value}")
        if "user-agent" not in given and self.user_agent:
            lines.append(f"User-Agent: {self.user_agent}")
        if "accept-encoding" not in given:
            lines.append("Accept-Encoding: gzip, deflate")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        cookie = self.cookie_jar.header_for(target.url)
        if cookie is not None:
            cookies.append(cookie)
        if cookies:
            lines.append("Cookie: " + "; ".join(cookies))
        lines.append("\r\n")
        try:
            return "\r\n".join(lines).encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("header fields must be latin-1 text") from None

    async def _request(
        self, method: str, target: _Target, extra: list[tuple[str, str]], body: bytes
    ) -> HTTPResponse:
        fresh = False
        while True:
            conn = await self._acquire(target, fresh)
            head = self._head(method, target, extra, body)
            data = [head, body] if body else [head]
            fut = conn.start(data, method, target.url, self.max_response_size, self.max_header_size)
            try:
                response = await fut
            except ServerDisconnected as exc:
                self._release(conn, reuse=False)
                if conn.reused and not exc.partial and not fresh and not self._closed:
                    fresh = True  # a stale keep-alive connection: once more, on a new one
                    continue
                raise
            except BaseException:
                conn.abort_request(RequestAborted("request cancelled"))
                self._release(conn, reuse=False)
                raise
            self._release(conn, reuse=conn.keep_alive)
            if response.headers.get("Set-Cookie") is not None:
                self.cookie_jar.extract(target.url, response.headers)
            return response

    # -- the pool -----------------------------------------------------------------

    async def _acquire(self, target: _Target, fresh: bool) -> _Connection:
        key = target.key
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _HostPool()
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise RequestAborted("the HTTP client is closed")
            now = loop.time()
            while pool.idle and not fresh:
                conn = pool.idle.pop()
                if conn.usable and now - conn.idle_since < self.keepalive_timeout:
                    pool.active += 1
                    conn.reused = True
                    self._active.add(conn)
                    return conn
                conn.close()
            if pool.active + len(pool.idle) >= self.max_connections_per_host and pool.idle:
                pool.idle.pop(0).close()  # make room for a new connection
            if pool.active < self.max_connections_per_host:
                pool.active += 1
                try:
                    conn = await self._connect(target)
                except BaseException:
                    pool.active -= 1
                    self._wake(pool)
                    raise
                self._active.add(conn)
                return conn
            waiter: asyncio.Future[None] = loop.create_future()
            pool.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in pool.waiters:
                    pool.waiters.remove(waiter)

    def _context(self) -> ssl_module.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = make_ssl_context(self.ssl)
        return self._ssl_context

    async def _connect(self, target: _Target) -> _Connection:
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if target.scheme == "https":
            kwargs["ssl"] = self._context()
            kwargs["server_hostname"] = target.host
        coro = loop.create_connection(
            lambda: _Connection(loop, target.key), target.host, target.port, **kwargs
        )
        task = asyncio.ensure_future(asyncio.wait_for(coro, self.connect_timeout))
        self._connecting.add(task)
        try:
            _transport, conn = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and (current is None or not current.cancelling()):
                raise RequestAborted("the HTTP client was closed while connecting") from None
            raise
        except TimeoutError as exc:
            raise ConnectError(f"cannot connect to {target.host}:{target.port}: timed out") from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
        finally:
            self._connecting.discard(task)
            if not task.done():
                task.cancel()
        if self._closed:
            conn.close()
            raise RequestAborted("the HTTP client was closed while connecting")
        return conn

    def _release(self, conn: _Connection, *, reuse: bool) -> None:
        self._active.discard(conn)
        pool = self._pools.get(conn.key)
        if pool is None:  # pragma: no cover - pools are never removed while in use
            conn.close()
            return
        pool.active -= 1
        if reuse and conn.usable and not self._closed:
            conn.idle_since = conn.loop.time()
            pool.idle.append(conn)
        else:
            conn.close()
        self._wake(pool)

    @staticmethod
    def _wake(pool: _HostPool) -> None:
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # -- closing ------------------------------------------------------------------

    def abort(self) -> None:
        """Close the client now: pending requests raise :class:`RequestAborted`."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._connecting):
            task.cancel()
        for conn in list(self._active):
            conn.abort_request(RequestAborted("the HTTP client was closed"))
        for pool in self._pools.values():
            for conn in pool.idle:
                conn.close()
            pool.idle.clear()
            for waiter in pool.waiters:
                if not waiter.done():
                    waiter.set_result(None)  # the woken request sees the client closed

    async def close(self) -> None:
        """Close every connection; pending requests raise :class:`RequestAborted`."""
        self.abort()
        await asyncio.sleep(0)  # let the transports' close callbacks run
