"""The exceptions of wsio's Socket.IO layer.

::

    WsioError
    ├── ConnectionRefused   raised by a connect handler or middleware to refuse a client
    ├── ConnectionError     the client could not connect (carries the server's message/data)
    ├── AckTimeout          an acknowledgement did not arrive in time (partial answers inside)
    └── Disconnected        the peer went away before answering

WebSocket errors have their own hierarchy in :mod:`wsio.websocket.exceptions`.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = ["AckTimeout", "ConnectionError", "ConnectionRefused", "Disconnected", "WsioError"]


class WsioError(Exception):
    """Base class of the Socket.IO layer's exceptions."""


class ConnectionRefused(WsioError):
    """Raise from a ``connect`` handler or a middleware to refuse the connection.

    The client receives a CONNECT_ERROR packet with ``{"message": message}``
    and, when given, ``"data": data`` (its ``connect_error`` event).
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        self.message = message
        self.data = data
        super().__init__(message)

    def payload(self) -> dict[str, Any]:
        """The CONNECT_ERROR payload."""
        payload: dict[str, Any] = {"message": self.message}
        if self.data is not None:
            payload["data"] = self.data
        return payload


class ConnectionError(WsioError, builtins.ConnectionError):
    """A client could not connect; ``message`` and ``data`` come from the server when it refused."""

    def __init__(self, message: str, data: Any = None) -> None:
        self.message = message
        self.data = data
        super().__init__(message)


class AckTimeout(WsioError, TimeoutError):
    """An acknowledgement did not arrive in time.

    For a broadcast, ``responses`` holds the answers that did arrive.
    """

    def __init__(
        self, message: str = "acknowledgement timed out", responses: list[Any] | None = None
    ) -> None:
        self.responses = responses if responses is not None else []
        super().__init__(message)


class Disconnected(WsioError):
    """The peer disconnected before answering."""
