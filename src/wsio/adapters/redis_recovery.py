"""Connection state recovery across nodes and restarts: the log and the sessions in Redis.

With ``connection_state_recovery`` on and the Redis adapter, every recoverable
event (neither volatile nor waiting for an acknowledgement) is first appended
to a Redis Stream per namespace, ``<key_prefix>#<nsp>#log``; the entry id is
the event's offset. Only then is it delivered, locally and to the other nodes,
in the order it was logged. The stream is trimmed by time (entries older than
``max_disconnection_duration``). A departing socket's session (id, rooms,
``data``, where it started receiving) is kept under
``<key_prefix>#<nsp>#session#<pid>`` with the same lifetime.

A client that comes back, on any node and even after every node restarted,
gets its session and the entries after its offset that were addressed to its
rooms. Cost: one Redis round trip (pipelined) before each recoverable event
leaves, and the log's memory in Redis. When Redis cannot be reached, events
are still delivered to this node's clients, without an offset.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._util import spawn
from ..socketio.adapter import BroadcastOptions
from ..socketio.packets import Packet, PacketType

if TYPE_CHECKING:
    from .redis import RedisNamespaceAdapter

__all__ = ["SharedRecovery", "append_to_log"]

logger = logging.getLogger("wsio.adapters.redis")

_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_BATCH = 256


def recoverable(packet: Packet, opts: BroadcastOptions) -> bool:
    """Whether *packet* gets an offset (and a place in the log)."""
    return packet.type is PacketType.EVENT and packet.id is None and not opts.volatile


async def append_to_log(
    client: Any,
    pack: Callable[[Any], bytes],
    entries: Sequence[tuple[str, list[Any], BroadcastOptions]],
    window: float,
) -> list[str]:
    """Append ``(stream, event data, options)`` entries to recovery logs in one pipeline.

    Each stream drops what is older than *window* seconds and expires a minute
    after it; returns the entries' ids (their offsets). Redis errors propagate.
    """
    min_id = str(max(int((time.time() - window) * 1000), 0))
    pipe = client.pipeline(transaction=False)
    for stream, data, opts in entries:
        fields = {"d": pack(data), "o": pack(opts.to_dict())}
        pipe.xadd(stream, fields, minid=min_id, approximate=True)
    for stream in dict.fromkeys(stream for stream, _, _ in entries):
        pipe.expire(stream, int(window) + 60)
    ids = await pipe.execute()
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids[: len(entries)]]


class SharedRecovery:
    """The recovery log and session store of one namespace adapter, in Redis."""

    def __init__(self, adapter: RedisNamespaceAdapter) -> None:
        import msgpack

        self.adapter = adapter
        prefix = adapter.factory.key_prefix
        name = adapter.nsp.name
        self.stream = f"{prefix}#{name}#log"
        self.session_prefix = f"{prefix}#{name}#session#"
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._unpack = lambda data: msgpack.unpackb(data, raw=False)
        self._queue: deque[tuple[Packet, BroadcastOptions, bool, asyncio.Future[None]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._persisting: set[asyncio.Task[None]] = set()

    @property
    def window(self) -> float:
        recovery = self.adapter.nsp.server.recovery
        return recovery.max_disconnection_duration if recovery is not None else 0.0

    # -- logging events ----------------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions, publish: bool) -> Awaitable[None]:
        """Log *packet*, then deliver it (and publish it when *publish*), in order."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((packet, opts, publish, fut))
        if self._task is None:
            self._task = spawn(self._drain())
        return fut

    async def _drain(self) -> None:
        queue = self._queue
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), _BATCH))]
                ids = await self._append(batch)
                for (packet, opts, publish, fut), offset in zip(batch, ids):
                    try:
                        if offset is not None:
                            packet.data.append(offset)
                        self.adapter._deliver_logged(packet, opts, publish, offset)
                    except Exception:
                        logger.exception("delivering a logged broadcast failed")
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._task = None

    async def _append(self, batch: list[Any]) -> list[str | None]:
        link = self.adapter.link
        if not link.up or link.client is None:
            return [None] * len(batch)
        entries = [(self.stream, packet.data, opts) for packet, opts, _publish, _fut in batch]
        try:
            return list(await append_to_log(link.client, self._pack, entries, self.window))
        except Exception as exc:
            logger.warning("recovery log unavailable (%s): events go out without an offset", exc)
            return [None] * len(batch)

    # -- sessions ---------------------------------------------------------------------
    #
    # A session is written when the socket connects (a snapshot, refreshed
    # every third of the window with its current rooms and data, so that a
    # node that crashes leaves its clients recoverable), again when it leaves
    # for a recoverable reason, and deleted when it leaves for good.

    @property
    def _period(self) -> float:
        return max(self.window / 3, 1.0)

    async def start(self, socket: Any) -> None:
        """A new socket starts receiving after the log's current end."""
        link = self.adapter.link
        try:
            last = await link.command("XREVRANGE", self.stream, "+", "-", "COUNT", "1")
        except Exception:
            return
        last_id = last[0][0] if last else b"0-0"
        socket._since = "(" + (last_id.decode() if isinstance(last_id, bytes) else str(last_id))

    def _snapshot(self, socket: Any) -> dict[str, Any]:
        return {
            "sid": socket.id,
            "pid": socket.pid,
            "rooms": sorted(socket.rooms),
            "data": socket.data,
            "since": socket._since,
        }

    def session_started(self, socket: Any) -> None:
        """Keep a snapshot of a connected socket's session from now on."""
        spawn(self._write([self._snapshot(socket)], self.window + 2 * self._period))
        if self._refresher is None:
            self._refresher = spawn(self._refresh())

    async def _refresh(self) -> None:
        try:
            while True:
                await asyncio.sleep(self._period)
                snapshots = [
                    self._snapshot(s)
                    for s in list(self.adapter.nsp.sockets.values())
                    if s.connected and s.pid is not None
                ]
                if snapshots:
                    await self._write(snapshots, self.window + 2 * self._period)
        except asyncio.CancelledError:
            pass
        finally:
            self._refresher = None

    async def _write(self, sessions: list[dict[str, Any]], ttl: float) -> None:
        link = self.adapter.link
        if not link.up or link.client is None:
            return
        try:
            pipe = link.client.pipeline(transaction=False)
            for session in sessions:
                try:
                    packed = self._pack(session)
                except TypeError:  # data that msgpack cannot hold: keep the rest
                    packed = self._pack({**session, "data": {}})
                pipe.set(self.session_prefix + session["pid"], packed, px=max(int(ttl * 1000), 1))
            await pipe.execute()
        except Exception:
            logger.warning("could not write recovery sessions", exc_info=True)

    def persist(self, session: dict[str, Any]) -> Awaitable[None]:
        """Keep a departing socket's session in Redis (for the recovery window)."""
        task = spawn(self._persist(dict(session)))
        self._persisting.add(task)
        task.add_done_callback(self._persisting.discard)
        return task

    async def _persist(self, session: dict[str, Any]) -> None:
        if not isinstance(session.get("since"), str):
            return  # it never started receiving (Redis was down): nothing to recover from
        await self._write([session], self.window)

    def discard(self, pid: str) -> None:
        """Forget a session (the socket left for good)."""
        if self.adapter.link.up:
            spawn(self._discard(pid))

    async def _discard(self, pid: str) -> None:
        try:
            await self.adapter.link.command("DEL", self.session_prefix + pid)
        except Exception:
            pass

    async def close(self, timeout: float) -> None:
        """Stop refreshing snapshots; let the sessions being written (a server
        shutting down writes every session) reach Redis, for *timeout* at most."""
        if self._refresher is not None:
            self._refresher.cancel()
        if self._persisting:
            await asyncio.wait(list(self._persisting), timeout=timeout)

    async def restore(self, pid: str, offset: str | None) -> dict[str, Any] | None:
        """The session *pid* with ``missed_packets``, or None when it cannot be recovered."""
        link = self.adapter.link
        raw = await link.command("GETDEL", self.session_prefix + pid)
        if raw is None:
            return None
        session = self._unpack(raw)
        if offset is not None:
            if not _STREAM_ID.match(offset):
                return None
            start = "(" + offset
        else:
            since = session.get("since")
            if not isinstance(since, str):
                return None
            start = since
        session["missed_packets"] = await self.read(start, set(session.get("rooms") or ()))
        return session

    async def read(self, start: str, rooms: set[str]) -> list[Any]:
        """The logged events after *start* (``"(id"`` exclusive, ``"id"`` inclusive) for *rooms*."""
        link = self.adapter.link
        missed: list[Any] = []
        while True:
            entries = await link.command("XRANGE", self.stream, start, "+", "COUNT", "500")
            if not entries:
                break
            for entry_id, fields in entries:
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                values = _fields(fields)
                opts = BroadcastOptions.from_dict(self._unpack(values[b"o"]))
                if opts.rooms and not (opts.rooms & rooms):
                    continue
                if opts.except_rooms and opts.except_rooms & rooms:
                    continue
                data = self._unpack(values[b"d"])
                if isinstance(data, list):
                    data.append(entry_id)  # its offset
                    missed.append(data)
            if len(entries) < 500:
                break
            start = "(" + entry_id
        return missed


def _fields(fields: Any) -> dict[bytes, bytes]:
    if isinstance(fields, dict):
        return {k if isinstance(k, bytes) else str(k).encode(): v for k, v in fields.items()}
    it = iter(fields)
    return {k if isinstance(k, bytes) else str(k).encode(): v for k, v in zip(it, it)}
