"""Engine.IO v4: the transport layer of Socket.IO, usable on its own.

:class:`Server` speaks HTTP long-polling and WebSocket with the upgrade between
them; :class:`Client` is its counterpart. :mod:`~wsio.engineio.packets` is the
sans-I/O codec.
"""

from .client import Client
from .server import Server
from .session import HandshakeInfo, Session

__all__ = ["Client", "HandshakeInfo", "Server", "Session"]
