"""Connection state recovery (Socket.IO 4.6's extension): options and server hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .namespace import Namespace
    from .server import Connection, Server
    from .socket import Handshake, Socket

__all__ = ["RecoveryOptions"]


@dataclass(frozen=True, slots=True)
class RecoveryOptions:
    """``max_disconnection_duration``: seconds a disconnected client's state is kept;
    ``skip_middlewares``: whether a recovered client skips the middlewares."""

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True


def restore(
    server: Server,
    nsp: Namespace,
    conn: Connection,
    handshake: Handshake,
    auth: dict[str, Any] | None,
) -> Socket | None:
    """The socket restored from the client's ``pid`` and offset, or None."""
    return None


def after_accept(server: Server, socket: Socket) -> None:
    """Runs once a socket's CONNECT reply is sent."""


def persist(server: Server, socket: Socket, reason: str) -> None:
    """Keep a disconnected socket's state when the reason is recoverable."""
