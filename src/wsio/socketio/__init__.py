"""Socket.IO v5: server (and, in :mod:`wsio.socketio.client`, client) on Engine.IO v4."""

from .adapter import Adapter, BroadcastOptions
from .broadcast import BroadcastOperator
from .client import Client, Manager
from .namespace import Namespace
from .recovery import RecoveryOptions
from .server import Server
from .simple import SimpleClient
from .socket import Handshake, Socket

__all__ = [
    "Adapter",
    "BroadcastOperator",
    "BroadcastOptions",
    "Client",
    "Handshake",
    "Manager",
    "Namespace",
    "RecoveryOptions",
    "Server",
    "SimpleClient",
    "Socket",
]
