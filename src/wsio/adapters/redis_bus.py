"""The cluster bus of :mod:`wsio.engineio.cluster` over Redis pub/sub.

Each node listens on its own channel, ``<key_prefix>#eio#<node id>#``, on the
Redis connection its adapters already use. Requests are published with a
command whose answer counts the receivers, so a request to a node that is gone
fails at once; the other messages go through the adapter's ordered, pipelined
publisher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..engineio.cluster import Message, new_node_id

if TYPE_CHECKING:
    from .redis import RedisAdapter, _RedisLink

__all__ = ["RedisBus"]


class RedisBus:
    """A :class:`wsio.engineio.cluster.Bus` on a server's Redis link."""

    def __init__(self, factory: RedisAdapter, link: _RedisLink, node_id: str | None = None) -> None:
        import msgpack

        self.factory = factory
        self.link = link
        self.node_id = node_id or new_node_id()
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._unpack: Callable[[bytes], Any] = lambda data: msgpack.unpackb(data, raw=False)
        self._publish = "SPUBLISH" if link.sharded else "PUBLISH"

    def channel(self, node: str) -> str:
        """The channel a node listens on."""
        return f"{self.factory.key_prefix}#eio#{node}#"

    def listen(self, handler: Callable[[Message], None]) -> Awaitable[Any] | None:
        """Receive the messages addressed to this node."""
        unpack = self._unpack
        self.link.ensure_started()
        return self.link.subscribe(
            (self.channel(self.node_id),), lambda data: handler(unpack(data))
        )

    def send(self, node: str, message: Message) -> None:
        """Publish to *node* (in order with this node's other messages to it)."""
        self.link.publish(self.channel(node), self._pack(message))

    async def request(self, node: str, message: Message) -> bool:
        """Publish to *node*; False when no node listens there."""
        self.link.ensure_started()
        try:
            receivers = await self.link.command(
                self._publish, self.channel(node), self._pack(message)
            )
        except Exception:
            return False
        return bool(receivers)
