"""WebSocket (RFC 6455) with permessage-deflate (RFC 7692): server and client for asyncio.

Sans-I/O core: :mod:`~wsio.websocket.frames`, :mod:`~wsio.websocket.handshake`,
:mod:`~wsio.websocket.deflate`, :mod:`~wsio.websocket.protocol`. asyncio layer:
:func:`serve`, :func:`connect`, :class:`WebSocket`.
"""

from .client import connect
from .connection import PreparedMessage, WebSocket, prepare
from .deflate import DeflateOptions
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidRequest,
    InvalidResponse,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    ProtocolError,
    WebSocketError,
)
from .frames import CloseCode, Opcode
from .server import ServerOptions, WebSocketServer, serve

__all__ = [
    "CloseCode",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DeflateOptions",
    "InvalidHandshake",
    "InvalidRequest",
    "InvalidResponse",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "Opcode",
    "PreparedMessage",
    "ProtocolError",
    "ServerOptions",
    "WebSocket",
    "WebSocketError",
    "WebSocketServer",
    "connect",
    "prepare",
    "serve",
]
