"""Clients of a Socket.IO cluster in tests: they say who they are and which rooms they want.

The cluster nodes of the tests read ``{"name": ..., "rooms": [...]}`` from the
CONNECT auth and join those rooms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import wsio


class Recorder:
    """Every event a client receives, as ``(event, *args)``; it answers ``q`` with ``x * 10``."""

    def __init__(self, client: wsio.Client) -> None:
        self.client = client
        self.seen: list[tuple[Any, ...]] = []
        self.disconnects: list[str] = []
        client.on_any(lambda event, *args: self.seen.append((event, *args)))
        client.on("disconnect", self.disconnects.append)
        client.on("q", lambda x: x * 10)

    def events(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every *name* event so far."""
        return [e[1:] for e in self.seen if e[0] == name]


async def connect(
    port: int, name: str, rooms: Iterable[str] = (), *, nsp: str = "", **options: Any
) -> Recorder:
    """Connect a WebSocket-only client (no reconnection) to namespace *nsp* of the node
    on *port*, as *name* asking for *rooms*; *options* go to :class:`wsio.Client`."""
    client = wsio.Client(
        f"http://127.0.0.1:{port}{nsp}",
        transports=["websocket"],
        reconnection=False,
        auth={"name": name, "rooms": list(rooms)},
        **options,
    )
    recorder = Recorder(client)
    await client.connect()
    return recorder
