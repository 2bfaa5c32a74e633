"""Room bookkeeping and broadcasting: the in-memory :class:`Adapter`.

The adapter of a namespace is the only owner of its rooms (the server keeps
no second copy). Its interface is the one networked adapters (Redis)
implement too: every method acts on the local node at once and returns
``None`` or an awaitable that completes when the other nodes were told.
Broadcast options are plain, serializable data (:class:`BroadcastOptions`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..websocket.connection import PreparedMessage
from .packets import Packet, PacketType

if TYPE_CHECKING:
    from .namespace import Namespace
    from .socket import Socket

__all__ = ["Adapter", "BroadcastOptions", "Encoded"]


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    """Who receives a broadcast, and how.

    ``rooms`` empty means every socket of the namespace; ``except_rooms``
    removes the members of those rooms (a socket's id is a room holding
    only that socket). ``local`` keeps the broadcast on this node;
    ``volatile`` lets it be dropped for clients that are not ready;
    ``compress`` allows compression.
    """

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    local: bool = False
    volatile: bool = False
    compress: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON/msgpack-friendly form."""
        return {
            "rooms": sorted(self.rooms),
            "except": sorted(self.except_rooms),
            "flags": {"local": self.local, "volatile": self.volatile, "compress": self.compress},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BroadcastOptions:
        """The inverse of :meth:`to_dict`."""
        flags = d.get("flags") or {}
        return cls(
            rooms=frozenset(d.get("rooms") or ()),
            except_rooms=frozenset(d.get("except") or ()),
            local=bool(flags.get("local", False)),
            volatile=bool(flags.get("volatile", False)),
            compress=bool(flags.get("compress", True)),
        )


class Encoded:
    """A packet encoded once for every recipient.

    ``messages`` are the Engine.IO message payloads (``str`` or ``bytes``);
    ``items`` the same as Engine.IO packets (``"4..."`` text or raw bytes),
    ready for a polling queue; ``prepared`` their WebSocket frames, built on
    first use.
    """

    __slots__ = ("_prepared", "items", "messages", "offset")

    def __init__(self, messages: Sequence[str | bytes]) -> None:
        self.messages = messages
        self.items: list[str | bytes] = [("4" + m) if m.__class__ is str else m for m in messages]
        self._prepared: list[PreparedMessage] | None = None
        self.offset: Any = None
        """The recovery offset of a logged event (what its last argument is)."""

    @property
    def prepared(self) -> list[PreparedMessage]:
        """WebSocket frames of :attr:`items`, framed once."""
        p = self._prepared
        if p is None:
            p = self._prepared = [
                PreparedMessage(1, i.encode()) if i.__class__ is str else PreparedMessage(2, i)  # type: ignore[arg-type]
                for i in self.items
            ]
        return p


class Adapter:
    """In-memory adapter for one namespace (one node).

    ``rooms`` maps a room to the ids of its sockets, ``sids`` a socket id to
    its rooms.
    """

    def __init__(self, nsp: Namespace) -> None:
        self.nsp = nsp
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}
        # Connection state recovery: the packet log and the kept sessions.
        self._log: list[tuple[int, str, BroadcastOptions, list[Any], float]] = []
        self._log_first = 0  # sequence number of self._log[0]
        self._seq = 0
        self._epoch = os.urandom(3).hex()
        self._offsets: dict[str, int] = {}
        self._sessions: dict[str, tuple[dict[str, Any], float]] = {}

    # -- lifecycle -----------------------------------------------------------------

    def init(self) -> Awaitable[None] | None:
        """Called once when the namespace is created."""
        return None

    def close(self) -> Awaitable[None] | None:
        """Called when the server shuts down."""
        return None

    def server_count(self) -> int | Awaitable[int]:
        """How many nodes share this namespace (1 for the in-memory adapter)."""
        return 1

    # -- rooms ---------------------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> Awaitable[None] | None:
        """Add socket *sid* to *rooms*."""
        mine = self.sids.get(sid)
        if mine is None:
            mine = self.sids[sid] = set()
        all_rooms = self.rooms
        for room in rooms:
            if room in mine:
                continue
            mine.add(room)
            members = all_rooms.get(room)
            if members is None:
                all_rooms[room] = {sid}
                self.on_create_room(room)
            else:
                members.add(sid)
            self.on_join_room(room, sid)
        return None

    def delete(self, sid: str, room: str) -> Awaitable[None] | None:
        """Remove socket *sid* from *room*."""
        mine = self.sids.get(sid)
        if mine is not None:
            mine.discard(room)
        self._leave(room, sid)
        return None

    def _leave(self, room: str, sid: str) -> None:
        members = self.rooms.get(room)
        if members is not None and sid in members:
            members.discard(sid)
            self.on_leave_room(room, sid)
            if not members:
                del self.rooms[room]
                self.on_delete_room(room)

    def delete_all(self, sid: str) -> Awaitable[None] | None:
        """Remove socket *sid* from every room."""
        mine = self.sids.pop(sid, None)
        if mine:
            for room in mine:
                self._leave(room, sid)
        return None

    def socket_rooms(self, sid: str) -> set[str] | None:
        """The rooms of local socket *sid* (None if unknown)."""
        return self.sids.get(sid)

    # Room events (Node's create-room, delete-room, join-room, leave-room).
    def on_create_room(self, room: str) -> None:
        """A room got its first member on this node."""

    def on_delete_room(self, room: str) -> None:
        """A room lost its last member on this node."""

    def on_join_room(self, room: str, sid: str) -> None:
        """A socket joined a room."""

    def on_leave_room(self, room: str, sid: str) -> None:
        """A socket left a room."""

    # -- selecting sockets -----------------------------------------------------------

    def local_ids(self, opts: BroadcastOptions) -> Iterable[str]:
        """Ids of the local sockets *opts* selects."""
        except_ids: set[str] = set()
        for room in opts.except_rooms:
            members = self.rooms.get(room)
            if members:
                except_ids |= members
        if opts.rooms:
            ids: set[str] = set()
            for room in opts.rooms:
                members = self.rooms.get(room)
                if members:
                    ids |= members
            return ids - except_ids if except_ids else ids
        sockets = self.nsp.sockets
        if except_ids:
            return [sid for sid in sockets if sid not in except_ids]
        return list(sockets)

    def local_sockets(self, opts: BroadcastOptions) -> list[Socket]:
        """The local sockets *opts* selects."""
        sockets = self.nsp.sockets
        result = []
        for sid in self.local_ids(opts):
            socket = sockets.get(sid)
            if socket is not None:
                result.append(socket)
        return result

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        """Ids of the local sockets in any of *rooms* (all when empty)."""
        return set(self.local_ids(BroadcastOptions(rooms=frozenset(rooms))))

    # -- broadcasting ------------------------------------------------------------------

    def encode(self, packet: Packet) -> Encoded:
        """Encode *packet* once with the namespace's parser."""
        return Encoded(self.nsp.server.encoder.encode(packet))

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> Awaitable[None] | None:
        """Send *packet* to the sockets *opts* selects (encoded once).

        With connection state recovery on, an event that is neither volatile
        nor waiting for an acknowledgement gets an offset and is logged.
        """
        if (
            self.nsp.server.recovery is not None
            and packet.type is PacketType.EVENT
            and packet.id is None
            and not opts.volatile
        ):
            seq = self.log_packet(packet, opts)
            self.deliver(self.encode(packet), opts, packet, seq)
            return None
        self.deliver(self.encode(packet), opts, packet)
        return None

    def deliver(
        self,
        encoded: Encoded,
        opts: BroadcastOptions,
        packet: Packet | None = None,
        seq: int | None = None,
    ) -> int:
        """Write an encoded packet to the local sockets *opts* selects; returns how many.

        ``seq`` is the packet's position in the recovery log, if it is logged.
        """
        sockets = self.nsp.sockets
        volatile = opts.volatile
        count = 0
        if seq is not None:
            encoded.offset = seq
        for sid in self.local_ids(opts):
            socket = sockets.get(sid)
            if socket is None:
                continue
            if seq is not None and socket._since is None:
                socket._since = seq
            socket._write_encoded(encoded, volatile, packet)
            count += 1
        return count

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
    ) -> Awaitable[None] | None:
        """Broadcast *packet* (which has an ack id) and report answers.

        ``on_count`` is told how many clients were sent the packet (once per
        node); ``on_ack`` gets each answer with the answering socket's id.
        """
        encoded = self.encode(packet)
        assert packet.id is not None
        ack_id = packet.id
        count = 0
        for socket in self.local_sockets(opts):
            if socket._expect_ack(ack_id, on_ack):
                socket._write_encoded(encoded, opts.volatile, packet)
                count += 1
        on_count(count)
        return None

    # -- remote operations (local only here) -------------------------------------------

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        """The sockets *opts* selects (local :class:`Socket` objects here)."""
        return self.local_sockets(opts)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> Awaitable[None] | None:
        """Make the selected sockets join *rooms*."""
        rooms = list(rooms)
        for socket in self.local_sockets(opts):
            socket.join(rooms)
        return None

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> Awaitable[None] | None:
        """Make the selected sockets leave *rooms*."""
        rooms = list(rooms)
        for socket in self.local_sockets(opts):
            for room in rooms:
                socket.leave(room)
        return None

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> Awaitable[None] | None:
        """Disconnect the selected sockets (``close`` also closes their connection)."""
        for socket in self.local_sockets(opts):
            socket.disconnect(close)
        return None

    async def server_side_emit(self, packet: list[Any], timeout: float | None = None) -> list[Any]:
        """Emit to the other nodes' ``@sio.on`` server-side handlers (none here)."""
        return []

    # -- connection state recovery ------------------------------------------------------

    def _window(self) -> float:
        recovery = self.nsp.server.recovery
        return recovery.max_disconnection_duration if recovery is not None else 0.0

    def _trim(self, now: float) -> None:
        horizon = now - self._window()
        log = self._log
        drop = 0
        while drop < len(log) and log[drop][4] < horizon:
            self._offsets.pop(log[drop][1], None)
            drop += 1
        if drop:
            del log[:drop]
            self._log_first += drop
        if self._sessions:
            for pid in [p for p, (_, t) in self._sessions.items() if t < horizon]:
                del self._sessions[pid]

    def log_packet(self, packet: Packet, opts: BroadcastOptions) -> int:
        """Give an event packet its offset (appended to its data), log it; returns its sequence number."""
        now = time.monotonic()
        if self._log and self._log[0][4] < now - self._window():
            self._trim(now)
        seq = self._seq
        self._seq += 1
        offset = f"{seq:x}-{self._epoch}"
        packet.data.append(offset)
        if not self._log:
            self._log_first = seq
        self._log.append((seq, offset, opts, packet.data, now))
        self._offsets[offset] = seq
        return seq

    def recovery_position(self) -> Any:
        """The log position of the next packet."""
        return self._seq

    async def recovery_catch_up(
        self, socket: Socket, pending: list[Awaitable[None] | None], start: Any
    ) -> list[list[Any]]:
        """Events a recovered socket missed while it was being restored.

        *pending* are its room joins (a networked adapter waits until they
        are effective); *start* is where the restored events stopped. The
        in-memory adapter restores atomically: nothing to add.
        """
        for item in pending:
            if item is not None:
                await item
        return []

    def offset_key(self, offset: Any) -> Any:
        """A comparable form of an offset, for dropping events replayed twice (None: no need)."""
        return None

    async def recovery_start(self, socket: Socket) -> None:
        """A new socket (not a recovered one) is about to join: note where it starts receiving."""

    def session_started(self, socket: Socket) -> None:
        """A socket's CONNECT reply is sent (a store may keep a snapshot from now on)."""

    def discard_session(self, pid: str) -> None:
        """A socket left for good (deliberate disconnect): its session must not be recovered."""

    def persist_session(self, session: dict[str, Any]) -> Awaitable[None] | None:
        """Keep a disconnected socket's state (``sid``, ``pid``, ``rooms``, ``data``, ``since``)."""
        now = time.monotonic()
        self._trim(now)
        self._sessions[session["pid"]] = (session, now)
        return None

    async def restore_session(self, pid: str, offset: str | None) -> dict[str, Any] | None:
        """The kept state of session *pid* plus ``missed_packets`` after *offset*, or None.

        Without an offset (the client saw no event before it dropped), the
        missed packets start where the socket started receiving.
        """
        now = time.monotonic()
        self._trim(now)
        entry = self._sessions.pop(pid, None)
        if entry is None:
            return None
        session = entry[0]
        if offset is not None:
            seq = self._offsets.get(offset)
            if seq is None:
                return None  # too old, or from another server: cannot tell what was missed
            start = seq + 1
        else:
            since = session.get("since")
            if not isinstance(since, int) or since < self._log_first:
                return None  # packets it may have missed were already dropped
            start = since
        rooms = set(session.get("rooms") or ())
        missed = []
        for _seq, _offset, opts, data, _t in self._log[max(start - self._log_first, 0) :]:
            if opts.rooms and not (opts.rooms & rooms):
                continue
            if opts.except_rooms and opts.except_rooms & rooms:
                continue
            missed.append(data)
        return {**session, "missed_packets": missed}
