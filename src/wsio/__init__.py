"""wsio: WebSocket and Socket.IO for asyncio, server and client, in one package.

* :mod:`wsio.websocket`: WebSocket (RFC 6455 + permessage-deflate), ``serve`` / ``connect``.
* :mod:`wsio.engineio`: Engine.IO v4 (long-polling + WebSocket with upgrade).
* :class:`wsio.Server`: the Socket.IO v5 server (namespaces, rooms, acks, binary).
"""

from .exceptions import AckTimeout, ConnectionError, ConnectionRefused, Disconnected, WsioError
from .socketio import (
    Adapter,
    BroadcastOperator,
    BroadcastOptions,
    Handshake,
    Namespace,
    RecoveryOptions,
    Server,
    Socket,
)

__version__ = "0.1.0"

__all__ = [
    "AckTimeout",
    "Adapter",
    "BroadcastOperator",
    "BroadcastOptions",
    "ConnectionError",
    "ConnectionRefused",
    "Disconnected",
    "Handshake",
    "Namespace",
    "RecoveryOptions",
    "Server",
    "Socket",
    "WsioError",
    "__version__",
]
