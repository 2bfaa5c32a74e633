"""The exceptions of :mod:`wsio.websocket`, one hierarchy.

::

    WebSocketError
    ├── ConnectionClosed            the connection is closed (code, reason)
    │   ├── ConnectionClosedOK      ... with 1000 or 1001 (or 1005 after a clean handshake)
    │   └── ConnectionClosedError   ... any other way (protocol error, 1006, ...)
    ├── InvalidHandshake            the opening handshake failed
    │   ├── InvalidRequest          a server refused a client's request (HTTP status + message)
    │   ├── InvalidResponse         a client refused a server's response
    │   │   └── InvalidStatus       ... because it was not 101 Switching Protocols
    │   └── NegotiationError        an extension or subprotocol could not be agreed
    ├── ProtocolError               the peer broke RFC 6455 (carries the close code to send)
    ├── InvalidURI                  connect() got a URL it cannot use
    └── InvalidState                an operation that the connection state forbids
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidRequest",
    "InvalidResponse",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "ProtocolError",
    "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of every exception raised by :mod:`wsio.websocket`."""


class ConnectionClosed(WebSocketError):
    """Raised when using a connection that is closed.

    ``code`` and ``reason`` are what the peer sent in its Close frame (1005 if
    it sent none, 1006 if the TCP connection dropped without a Close frame).
    ``sent_code`` is the code of the Close frame we sent, if any.
    """

    def __init__(self, code: int, reason: str = "", sent_code: int | None = None) -> None:
        self.code = code
        self.reason = reason
        self.sent_code = sent_code
        super().__init__(f"connection closed: {code} {reason}".rstrip())


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 / 1001, or 1005 after a clean handshake)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code or without a closing handshake."""


class InvalidHandshake(WebSocketError):
    """The opening handshake failed."""


class InvalidRequest(InvalidHandshake):
    """A server refused a client's upgrade request.

    ``status`` is the HTTP status the server answers with (400, 403, 426, ...),
    ``headers`` extra response headers (e.g. ``Sec-WebSocket-Version`` on 426).
    """

    def __init__(
        self, message: str, status: int = 400, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.status = status
        self.headers = list(headers)
        super().__init__(message)


class InvalidResponse(InvalidHandshake):
    """A client refused the server's answer to its upgrade request."""


class InvalidStatus(InvalidResponse):
    """The server did not answer 101 Switching Protocols."""

    def __init__(
        self, status: int, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        self.status = status
        self.headers = list(headers)
        self.body = body
        super().__init__(f"server rejected WebSocket connection: HTTP {status}")


class NegotiationError(InvalidHandshake):
    """An extension or subprotocol could not be negotiated."""


class ProtocolError(WebSocketError):
    """The peer broke the protocol; ``code`` is the close code to fail the connection with."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{reason} ({code})")


class InvalidURI(WebSocketError):
    """A WebSocket URL that cannot be used."""


class InvalidState(WebSocketError):
    """An operation the connection's current state does not allow."""
