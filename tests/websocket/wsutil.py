"""Independent WebSocket frame codec for the tests.

Written from RFC 6455 section 5.2 without using :mod:`wsio.websocket.frames`,
so that the tests check the library against a second implementation.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wsio.websocket import ConnectionClosed, WebSocket, WebSocketServer
from wsio.websocket.events import Event
from wsio.websocket.protocol import Protocol

StartServer = Callable[..., Awaitable[WebSocketServer]]
"""Type of the ``start_server`` fixture."""


async def echo(ws: WebSocket) -> None:
    """A handler that sends every message back."""
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


def mask_bytes(data: bytes, key: bytes) -> bytes:
    """XOR *data* with the repeated 4-byte *key* (byte by byte for short data)."""
    if len(data) > 4096:
        return _fast_unmask(data, key)
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bool | bytes = False,
    length: int | None = None,
    long_form: int | None = None,
) -> bytes:
    """Serialize one frame exactly as told (also frames the RFC forbids).

    ``mask`` True picks a random key, bytes give the key. ``length`` lies
    about the payload length; ``long_form`` forces the 16-bit (126) or
    64-bit (127) length encoding.
    """
    n = len(payload) if length is None else length
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    b0 |= (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0)
    m = 0x80 if mask else 0
    if long_form == 127 or (long_form is None and n > 0xFFFF):
        head = struct.pack("!BBQ", b0, m | 127, n)
    elif long_form == 126 or (long_form is None and n > 125):
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BB", b0, m | n)
    if mask:
        key = mask if isinstance(mask, bytes) else os.urandom(4)
        return head + key + mask_bytes(payload, key)
    return head + payload


def client_frame(opcode: int, payload: bytes = b"", **kw: object) -> bytes:
    """A masked frame, as clients send."""
    kw.setdefault("mask", True)
    return build_frame(opcode, payload, **kw)  # type: ignore[arg-type]


def close_payload(code: int, reason: bytes = b"") -> bytes:
    """The payload of a Close frame."""
    return struct.pack("!H", code) + reason


@dataclass
class RawFrame:
    """One parsed frame."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    payload: bytes

    @classmethod
    def of(cls, b0: int, key: bytes, payload: bytes) -> RawFrame:
        """The frame with first byte *b0*, masking key *key* (empty: none) and *payload*
        (still masked: it is unmasked here)."""
        return cls(
            fin=bool(b0 & 0x80),
            rsv1=bool(b0 & 0x40),
            rsv2=bool(b0 & 0x20),
            rsv3=bool(b0 & 0x10),
            opcode=b0 & 0x0F,
            masked=bool(key),
            payload=mask_bytes(payload, key) if key else payload,
        )


def parse_frames(data: bytes) -> list[RawFrame]:
    """Parse a complete byte string of frames (raises on a truncated one)."""
    frames: list[RawFrame] = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        key = b""
        if b1 & 0x80:
            key = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + n]
        if len(payload) != n:
            raise ValueError("truncated frame")
        pos += n
        frames.append(RawFrame.of(b0, key, payload))
    return frames


def _fast_unmask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def deflate_message(data: bytes, wbits: int = 15) -> bytes:
    """Compress one message as permessage-deflate does, with a fresh context."""
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate_message(data: bytes, wbits: int = 15) -> bytes:
    """Decompress one permessage-deflate message with a fresh context."""
    d = zlib.decompressobj(-wbits)
    return d.decompress(data + b"\x00\x00\xff\xff")


def feed(proto: Protocol, data: bytes, cuts: list[int] | None = None) -> list[Event]:
    """Feed *data* to *proto* split at the offsets in *cuts*; collect the events."""
    events: list[Event] = []
    prev = 0
    for cut in [*sorted(set(cuts or [])), len(data)]:
        events.extend(proto.receive_data(data[prev:cut]))
        prev = cut
        while proto.has_pending_input:
            events.extend(proto.receive_data(b""))
    return events


def feed_bytewise(proto: Protocol, data: bytes) -> list[Event]:
    """Feed *data* one byte at a time."""
    return feed(proto, data, list(range(1, len(data))))


def sent(chunks: list[bytes]) -> list[RawFrame]:
    """Parse frames a protocol produced."""
    return parse_frames(b"".join(chunks))


# -- a hand-driven peer over asyncio streams ------------------------------------------


async def read_frame(reader: asyncio.StreamReader) -> RawFrame | None:
    """Read one frame; None on EOF (also in the middle of a frame)."""
    try:
        head = await reader.readexactly(2)
        n = head[1] & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await reader.readexactly(8))
        key = await reader.readexactly(4) if head[1] & 0x80 else b""
        payload = await reader.readexactly(n)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return RawFrame.of(head[0], key, payload)


def upgrade_request(
    port: int,
    path: str = "/",
    extra: list[tuple[str, str]] | None = None,
    key: str = "dGhlIHNhbXBsZSBub25jZQ==",
) -> bytes:
    """A client's upgrade request head."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Read an HTTP response head: (status, lower-cased headers)."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return status, headers


class RawClient:
    """A WebSocket client driven frame by frame, to misbehave on purpose."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls,
        port: int,
        path: str = "/",
        extra: list[tuple[str, str]] | None = None,
        *,
        sock: socket.socket | None = None,
        limit: int = 2**24,
    ) -> tuple[RawClient, int, dict[str, str]]:
        """Connect and do the upgrade; returns the client, the status and headers.

        ``sock`` is an already connected socket to use; ``limit`` is the
        stream buffer above which the client stops reading from the socket.
        """
        if sock is not None:
            reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=limit)
        writer.write(upgrade_request(port, path, extra))
        status, headers = await read_head(reader)
        return cls(reader, writer), status, headers

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def frame(self, opcode: int, payload: bytes = b"", **kw: object) -> None:
        kw.setdefault("mask", True)
        self.writer.write(build_frame(opcode, payload, **kw))  # type: ignore[arg-type]

    async def read(self, timeout: float = 5.0) -> RawFrame | None:
        return await asyncio.wait_for(read_frame(self.reader), timeout)

    async def read_until_close(self, timeout: float = 5.0) -> tuple[list[RawFrame], int | None]:
        """Frames until EOF; returns them and the code of the Close frame (None: no Close)."""
        frames: list[RawFrame] = []
        code = None
        while True:
            frame = await self.read(timeout)
            if frame is None:
                return frames, code
            frames.append(frame)
            if frame.opcode == 8:
                code = struct.unpack("!H", frame.payload[:2])[0] if frame.payload else 1005

    async def at_eof(self, timeout: float = 5.0) -> bool:
        """Whether the server closed the TCP connection within *timeout* (data is discarded)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
