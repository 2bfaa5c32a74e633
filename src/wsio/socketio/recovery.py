"""Connection state recovery (the Socket.IO 4.6 extension).

With recovery on, the CONNECT reply carries a private session id ``pid`` and
every event that is neither volatile nor waiting for an acknowledgement gets
an offset as its last argument. When a client drops for a recoverable reason
(transport close or error, ping timeout, server shutdown) the adapter keeps
its id, rooms and ``data``; a client that reconnects within the window with
its ``pid`` (and the last offset it saw, if any) gets them back, then every
packet it missed, in order, right after the CONNECT reply.

The adapter owns the session store and the packet log (see
:meth:`wsio.socketio.adapter.Adapter.persist_session`), so a networked
adapter can keep them across nodes and restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RecoveryOptions"]


@dataclass(frozen=True, slots=True)
class RecoveryOptions:
    """Connection state recovery settings.

    * ``max_disconnection_duration`` (120 s): how long a disconnected
      client's id, rooms, ``data`` and missed packets are kept;
    * ``skip_middlewares`` (True): a recovered client does not go through the
      middlewares again (the connect handler runs, with ``socket.recovered``).
    """

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True
