"""wsio: WebSocket and Socket.IO for asyncio, server and client, in one package.

* :mod:`wsio.websocket`: WebSocket (RFC 6455 + permessage-deflate), ``serve`` / ``connect``.
* :mod:`wsio.engineio`: Engine.IO v4 (long-polling + WebSocket with upgrade).
* :class:`wsio.Server`: the Socket.IO v5 server (namespaces, rooms, acks, binary).
* :class:`wsio.Client`, :class:`wsio.SimpleClient`: the Socket.IO v5 client (async, blocking).
* :mod:`wsio.adapters`: several nodes through Redis (:class:`wsio.adapters.RedisAdapter`);
  :class:`wsio.Emitter` emits into such a cluster from a process without a server.
"""

from . import adapters as adapters
from .emitter import Emitter
from .exceptions import AckTimeout, ConnectionError, ConnectionRefused, Disconnected, WsioError
from .socketio import (
    Adapter,
    BroadcastOperator,
    BroadcastOptions,
    Client,
    Handshake,
    Namespace,
    RecoveryOptions,
    Server,
    SimpleClient,
    Socket,
)

__version__ = "0.1.0"

__all__ = [
    "AckTimeout",
    "Adapter",
    "BroadcastOperator",
    "BroadcastOptions",
    "Client",
    "ConnectionError",
    "ConnectionRefused",
    "Disconnected",
    "Emitter",
    "Handshake",
    "Namespace",
    "RecoveryOptions",
    "Server",
    "SimpleClient",
    "Socket",
    "WsioError",
    "__version__",
]
