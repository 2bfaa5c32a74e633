"""The chat server behind ``wsio demo``: nicknames, rooms, presence, typing, images, history.

Events the page sends (each answered with an acknowledgement):

* ``join`` (room) -> ``{"room", "history", "members"}``: joins *room*; the
  answer carries the room's last messages and who is in it.
* ``leave`` (room) -> ``True``.
* ``message`` ({"room", "text"}) -> ``{"id", "ts"}``: the server's receipt,
  which the page shows as the delivery mark; the others get ``message``.
* ``image`` ({"room", "mime"}, bytes) -> ``{"id", "ts"}``: the picture
  travels as a binary attachment, both ways.
* ``typing`` ({"room", "typing"}): relayed as a volatile event.

Events it receives: ``message`` (a message dict; ``kind`` is ``"text"`` or
``"image"``, an image carries its bytes in ``image``), ``presence``
({"room", "members"}), ``typing`` ({"room", "nick", "typing"}), ``notice``
({"room", "text"}: someone joined or left).

The nickname comes in the CONNECT payload (``auth: {nick}``). Connection
state recovery is on, so a client that drops for a moment gets its rooms and
every missed event back. Presence is computed with ``fetch_sockets()``, so
with the Redis adapter it spans every process; the history is kept in each
process's memory (with several processes, a room's history holds what was
said through that process).
"""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wsio

__all__ = [
    "HISTORY_IMAGE_BYTES",
    "HISTORY_SIZE",
    "IMAGE_TYPES",
    "MAX_IMAGE",
    "MAX_TEXT",
    "STATIC_DIR",
    "ChatApp",
]

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The page: ``index.html``, ``app.js``, ``style.css``."""

HISTORY_SIZE = 50
"""Messages kept per room for late joiners."""

HISTORY_IMAGE_BYTES = 8_000_000
"""Image bytes kept per room: older messages go first beyond it."""

MAX_TEXT = 2000
"""Longest text message, in characters."""

MAX_IMAGE = 1_000_000
"""Largest image, in bytes."""

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Image types the server relays (no SVG: it can carry scripts)."""

_NAME = re.compile(r"[^\W_][\w .'-]*", re.UNICODE)


def clean_name(value: Any, limit: int) -> str | None:
    """*value* as a nickname or room name (trimmed, 1 to *limit* characters), or None."""
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    if not value or len(value) > limit or _NAME.fullmatch(value) is None:
        return None
    return value


def _room_of(data: Any) -> str | None:
    if isinstance(data, dict):
        data = data.get("room")
    return clean_name(data, 32)


class ChatApp:
    """The demo's Socket.IO server and its state.

    Args:
        adapter: the adapter factory (``RedisAdapter(url)`` for several
            processes; in memory by default).
        client_dist: directory of the official browser bundle (see
            :class:`wsio.Server`'s ``client_dist``).
        history_size: messages kept per room.
    """

    def __init__(
        self,
        *,
        adapter: Callable[..., Any] | None = None,
        client_dist: str | None = None,
        history_size: int = HISTORY_SIZE,
    ) -> None:
        self.sio = wsio.Server(
            adapter=adapter,
            serve_client=True,
            client_dist=client_dist,
            connection_state_recovery=True,
            # An image over long-polling travels as base64: a third larger.
            max_http_buffer_size=2 * MAX_IMAGE,
        )
        self.history_size = history_size
        self.history: dict[str, deque[dict[str, Any]]] = {}
        sio = self.sio
        sio.use(self._check_nick)
        sio.on("connect", self._on_connect)
        sio.on("join", self._on_join)
        sio.on("leave", self._on_leave)
        sio.on("message", self._on_message)
        sio.on("image", self._on_image)
        sio.on("typing", self._on_typing)
        sio.on("disconnecting", self._on_disconnecting)

    @property
    def static_files(self) -> dict[str, str]:
        """The ``static_files`` mapping that serves the page."""
        return {"/": str(STATIC_DIR)}

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _rooms(socket: wsio.Socket) -> list[str]:
        return sorted(socket.rooms - {socket.id})

    def _remember(self, message: dict[str, Any]) -> None:
        room = message["room"]
        history = self.history.get(room)
        if history is None:
            history = self.history[room] = deque(maxlen=self.history_size)
        history.append(message)
        while sum(len(m.get("image", b"")) for m in history) > HISTORY_IMAGE_BYTES:
            history.popleft()

    @staticmethod
    def _new_message(socket: wsio.Socket, room: str, kind: str) -> dict[str, Any]:
        ts = int(time.time() * 1000)
        return {
            "id": f"{ts:x}-{secrets.token_hex(4)}",
            "room": room,
            "nick": socket.data.get("nick"),
            "kind": kind,
            "ts": ts,
        }

    async def members(self, room: str, without: str | None = None) -> list[str]:
        """The nicknames in *room* (on every node), sorted, *without* a socket id."""
        try:
            sockets = await self.sio.in_(room).fetch_sockets()
        except wsio.WsioError:  # the other nodes cannot be asked: this node's view
            sockets = await self.sio.local.in_(room).fetch_sockets()
        nicks = {
            s.data.get("nick") for s in sockets if s.id != without and isinstance(s.data, dict)
        }
        return sorted((n for n in nicks if isinstance(n, str)), key=str.casefold)

    async def _announce(self, room: str, without: str | None = None) -> list[str]:
        members = await self.members(room, without)
        self.sio.to(room).emit("presence", {"room": room, "members": members})
        return members

    # -- handlers ---------------------------------------------------------------------

    def _check_nick(self, socket: wsio.Socket) -> None:
        auth = socket.handshake.auth or {}
        nick = clean_name(auth.get("nick"), 24)
        if nick is None:
            raise wsio.ConnectionRefused(
                "pick a nickname: 1 to 24 letters or digits (spaces, . ' _ - inside)"
            )
        socket.data["nick"] = nick

    async def _on_connect(self, socket: wsio.Socket, auth: Any) -> None:
        if socket.recovered:  # back with its rooms: show it present again
            for room in self._rooms(socket):
                await self._announce(room)

    async def _on_join(self, socket: wsio.Socket, data: Any) -> dict[str, Any]:
        room = _room_of(data)
        if room is None:
            return {"error": "a room name is 1 to 32 letters or digits"}
        fresh = room not in socket.rooms
        if fresh:
            await socket.join(room)
        members = await self._announce(room)
        if fresh:
            socket.to(room).emit("notice", {"room": room, "text": f"{socket.data['nick']} joined"})
        return {"room": room, "history": list(self.history.get(room, ())), "members": members}

    async def _on_leave(self, socket: wsio.Socket, data: Any) -> bool:
        room = _room_of(data)
        if room is None or room not in socket.rooms:
            return False
        await socket.leave(room)
        await self._announce(room)
        self.sio.to(room).emit("notice", {"room": room, "text": f"{socket.data['nick']} left"})
        return True

    def _on_message(self, socket: wsio.Socket, data: Any) -> dict[str, Any]:
        room = _room_of(data)
        text = data.get("text") if isinstance(data, dict) else None
        if room is None or room not in socket.rooms:
            return {"error": "join the room first"}
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            return {"error": f"a message is 1 to {MAX_TEXT} characters"}
        message = self._new_message(socket, room, "text")
        message["text"] = text
        self._remember(message)
        socket.to(room).emit("message", message)
        return {"id": message["id"], "ts": message["ts"]}

    def _on_image(self, socket: wsio.Socket, meta: Any, data: Any = None) -> dict[str, Any]:
        room = _room_of(meta)
        mime = meta.get("mime") if isinstance(meta, dict) else None
        if room is None or room not in socket.rooms:
            return {"error": "join the room first"}
        if mime not in IMAGE_TYPES:
            return {"error": "PNG, JPEG, GIF or WebP images only"}
        if not isinstance(data, bytes) or not 0 < len(data) <= MAX_IMAGE:
            return {"error": f"an image is at most {MAX_IMAGE // 1000} kB"}
        message = self._new_message(socket, room, "image")
        message["mime"] = mime
        message["image"] = data
        self._remember(message)
        socket.to(room).emit("message", message)
        return {"id": message["id"], "ts": message["ts"]}

    def _on_typing(self, socket: wsio.Socket, data: Any) -> None:
        room = _room_of(data)
        if room is None or room not in socket.rooms or not isinstance(data, dict):
            return
        socket.to(room).volatile.emit(
            "typing",
            {"room": room, "nick": socket.data["nick"], "typing": bool(data.get("typing"))},
        )

    async def _on_disconnecting(self, socket: wsio.Socket, reason: str) -> None:
        for room in self._rooms(socket):
            await self._announce(room, without=socket.id)
