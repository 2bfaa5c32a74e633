"""Adapters that spread a Socket.IO server over several nodes.

* :class:`RedisAdapter`: through Redis pub/sub, wire-compatible with the npm
  ``@socket.io/redis-adapter`` (sharded and classic formats), so wsio and Node
  ``socket.io`` nodes can serve one cluster. Needs ``pip install 'wsio[redis]'``.

Without an adapter, :class:`wsio.Server` keeps its rooms in memory (one node).
"""

from __future__ import annotations

from .redis import ClusterError, ClusterTimeout, RedisAdapter, RedisNamespaceAdapter, RemoteSocket

__all__ = [
    "ClusterError",
    "ClusterTimeout",
    "RedisAdapter",
    "RedisNamespaceAdapter",
    "RemoteSocket",
]
