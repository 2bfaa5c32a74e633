"""Events produced by the sans-I/O WebSocket protocol (:mod:`wsio.websocket.protocol`).

The whole vocabulary a peer can say to us, one small class each.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BinaryMessage", "CloseReceived", "Event", "Failed", "Ping", "Pong", "TextMessage"]


@dataclass(slots=True)
class TextMessage:
    """A complete text message (all fragments joined, decompressed, UTF-8 validated)."""

    data: str


@dataclass(slots=True)
class BinaryMessage:
    """A complete binary message (all fragments joined, decompressed)."""

    data: bytes


@dataclass(slots=True)
class Ping:
    """A Ping frame; the protocol already queued the Pong that answers it."""

    data: bytes


@dataclass(slots=True)
class Pong:
    """A Pong frame (solicited or not)."""

    data: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's Close frame.

    ``code`` is 1005 when the frame carried no status code. When the peer
    started the closing handshake the protocol already queued the echo.
    """

    code: int
    reason: str


@dataclass(slots=True)
class Failed:
    """We failed the connection because the peer broke the protocol.

    A Close frame with ``code`` is queued (unless one was sent already); the
    I/O layer should write it and then close the TCP connection.
    """

    code: int
    reason: str


Event = TextMessage | BinaryMessage | Ping | Pong | CloseReceived | Failed
