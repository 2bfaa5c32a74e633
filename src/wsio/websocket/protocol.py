"""The WebSocket connection state machine (RFC 6455 sections 5-7), sans-I/O.

Bytes in (:meth:`Protocol.receive_data`), events out; commands in
(``send_*``), bytes out. No sockets, no clocks. The parser is incremental: any
split of the byte stream gives the same events, and data frames are processed
as they arrive, so invalid UTF-8 and oversized or over-inflating messages are
caught before the rest of the message is read.
"""

from __future__ import annotations

import codecs
import struct
from enum import Enum

from .deflate import PerMessageDeflate
from .events import BinaryMessage, CloseReceived, Event, Failed, Ping, Pong, TextMessage
from .exceptions import InvalidState, ProtocolError
from .frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    apply_mask,
    encode_close_payload,
    encode_frame,
    is_valid_close_code,
    mask_join,
)

__all__ = ["CLIENT", "SERVER", "Protocol", "Side", "State"]


class Side(Enum):
    """Which end of the connection this protocol object plays."""

    SERVER = "server"
    CLIENT = "client"


SERVER = Side.SERVER
CLIENT = Side.CLIENT


class State(Enum):
    """Connection states after the opening handshake."""

    OPEN = 1
    """Data flows both ways."""
    CLOSING = 2
    """We sent a Close frame and wait for the peer's; we may still receive data."""
    CLOSED = 3
    """Close frames were exchanged, or the connection failed: only the TCP close remains."""


_unpack_h = struct.Struct("!H").unpack_from
_unpack_q = struct.Struct("!Q").unpack_from
_utf8_decoder = codecs.getincrementaldecoder("utf-8")

_OK_CLOSE = frozenset({1000, 1001})


def _rotate(key: bytes, offset: int) -> bytes:
    offset &= 3
    return key[offset:] + key[:offset] if offset else key


class Protocol:
    """One WebSocket connection, after the opening handshake.

    * ``max_size``: the largest message accepted, counted after
      decompression (None: no limit). A bigger message fails the connection
      with 1009 as soon as its size is known (frame header) or reached
      (while inflating), so memory never holds more than ``max_size`` bytes
      of one message.
    * ``deflate``: the negotiated permessage-deflate state, if any.
    """

    __slots__ = (
        "_buf",
        "_deferred",
        "_fchunks",
        "_ffin",
        "_fkey",
        "_fmasked",
        "_foff",
        "_frem",
        "_in_frame",
        "_is_client",
        "_msg_compressed",
        "_msg_decoder",
        "_msg_op",
        "_msg_parts",
        "_msg_size",
        "_out",
        "_rx_done",
        "_send_fragmenting",
        "close_code",
        "close_reason",
        "close_sent",
        "deflate",
        "max_size",
        "side",
        "state",
    )

    def __init__(
        self,
        side: Side,
        *,
        max_size: int | None = 2**20,
        deflate: PerMessageDeflate | None = None,
    ) -> None:
        self.side = side
        self._is_client = side is Side.CLIENT
        self.max_size = max_size
        self.deflate = deflate
        self.state = State.OPEN
        self.close_code: int | None = None
        """Code of the Close frame received (1005: none in it; None: no frame yet)."""
        self.close_reason = ""
        self.close_sent: int | None = None
        """Code of the Close frame we sent (1005 for an empty one), None if none."""
        self._buf = bytearray()
        self._deferred = False
        self._out: list[bytes] = []
        self._rx_done = False
        # current frame, while its payload is still arriving
        self._in_frame = False
        self._frem = 0
        self._fkey = b""
        self._fmasked = False
        self._foff = 0
        self._ffin = False
        self._fchunks: list[bytes | bytearray | memoryview] = []
        # current message (fragmented or streamed)
        self._msg_op = 0
        self._msg_compressed = False
        self._msg_parts: list[bytes] | list[str] = []
        self._msg_size = 0
        self._msg_decoder: codecs.IncrementalDecoder | None = None
        self._send_fragmenting = False

    # -- receiving ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the network; return the events they complete.

        Replies the protocol makes by itself (Pong, the echo of a Close,
        the Close that fails the connection) are queued: see
        :meth:`data_to_send`.
        """
        if self._rx_done:
            return []
        self._deferred = False
        events: list[Event] = []
        buf = self._buf
        if buf:
            buf += data
            data = buf  # type: ignore[assignment]
        pos = 0
        end = len(data)
        frame_start = -1
        try:
            while pos < end:
                if self._in_frame:
                    pos = self._continue_frame(data, pos, end, events)
                    if self._in_frame or self._rx_done:
                        break
                    continue
                if end - pos < 2:
                    break
                frame_start = pos
                b0 = data[pos]
                b1 = data[pos + 1]
                length = b1 & 0x7F
                p = pos + 2
                if length == 126:
                    if end - p < 2:
                        break
                    length = _unpack_h(data, p)[0]
                    p += 2
                elif length == 127:
                    if end - p < 8:
                        break
                    length = _unpack_q(data, p)[0]
                    p += 8
                    if length >> 63:
                        raise ProtocolError(1002, "frame length has its most significant bit set")
                masked = b1 & 0x80
                if masked:
                    if end - p < 4:
                        break
                    key = bytes(data[p : p + 4])
                    p += 4
                else:
                    key = b""
                opcode = b0 & 0x0F
                fin = b0 & 0x80
                rsv1 = b0 & 0x40
                self._check_header(b0, opcode, fin, rsv1, masked, length)
                frame_start = -1
                if opcode >= 8:
                    # Control frame: at most 125 bytes, wait until complete.
                    if end - p < length:
                        break
                    payload = bytes(data[p : p + length])
                    if masked:
                        payload = apply_mask(payload, key)
                    pos = p + length
                    self._on_control(opcode, payload, events)
                    if self._rx_done:
                        break
                    continue
                # Data frame.
                if opcode != OP_CONT:
                    self._msg_op = opcode
                    self._msg_compressed = bool(rsv1)
                    self._msg_size = 0
                avail = end - p
                if avail >= length and not self._msg_parts and fin and self._msg_decoder is None:
                    # Fast path: a whole message in one complete frame.
                    if masked:
                        if length > 256:  # unmask straight from the buffer: one copy
                            with memoryview(data) as view:
                                payload = apply_mask(view[p : p + length], key)
                        else:
                            payload = apply_mask(data[p : p + length], key)
                    else:
                        payload = bytes(data[p : p + length])
                    pos = p + length
                    self._whole_message(payload, events)
                    continue
                # Slow path: fragments, or a frame still arriving.
                self._in_frame = True
                self._frem = length
                self._fkey = key
                self._fmasked = bool(masked)
                self._foff = 0
                self._ffin = bool(fin)
                pos = p
                if length == 0:
                    pos = self._continue_frame(data, pos, end, events)
        except ProtocolError as exc:
            if frame_start >= 0 and events:
                # A bad frame header behind complete messages: hand those out
                # first and fail on the next call, so that the application
                # sees (and may answer) what came before the violation.
                self._buf = bytearray(data[frame_start:])
                self._deferred = True
                return events
            self._fail(exc.code, exc.reason, events)
            self._buf = bytearray()
            return events
        if pos >= end:
            self._buf = bytearray()
        elif data is buf:
            del buf[:pos]
        else:
            self._buf = bytearray(data[pos:])
        return events

    def _check_header(
        self, b0: int, opcode: int, fin: int, rsv1: int, masked: int, length: int
    ) -> None:
        if b0 & 0x30:
            raise ProtocolError(1002, "reserved bits RSV2/RSV3 set")
        if masked:
            if self._is_client:
                raise ProtocolError(1002, "server frames must not be masked")
        elif not self._is_client:
            raise ProtocolError(1002, "client frames must be masked")
        if opcode >= 8:
            if opcode > OP_PONG:
                raise ProtocolError(1002, f"reserved opcode {opcode}")
            if not fin:
                raise ProtocolError(1002, "fragmented control frame")
            if length > 125:
                raise ProtocolError(1002, "control frame payload longer than 125 bytes")
            if rsv1:
                raise ProtocolError(1002, "RSV1 set on a control frame")
            return
        if opcode > OP_BINARY:
            raise ProtocolError(1002, f"reserved opcode {opcode}")
        if opcode == OP_CONT:
            if not self._msg_op:
                raise ProtocolError(1002, "continuation frame without a message to continue")
            if rsv1:
                raise ProtocolError(1002, "RSV1 set on a continuation frame")
        else:
            if self._msg_op:
                raise ProtocolError(1002, "new data frame while a fragmented message is open")
            if rsv1 and self.deflate is None:
                raise ProtocolError(1002, "RSV1 set but no extension negotiated")
        max_size = self.max_size
        if max_size is not None:
            # Uncompressed sizes are known from the header: refuse before reading.
            if opcode == OP_CONT:
                if not self._msg_compressed and self._msg_size + length > max_size:
                    raise ProtocolError(1009, f"message larger than {max_size} bytes")
            elif not rsv1 and length > max_size:
                raise ProtocolError(1009, f"message larger than {max_size} bytes")

    def _continue_frame(
        self, data: bytes | bytearray, pos: int, end: int, events: list[Event]
    ) -> int:
        """Consume as much of the current data frame's payload as is available.

        Text and compressed payloads are processed as they arrive (UTF-8 and
        inflating fail fast); an uncompressed binary frame is gathered as
        views of the received buffers and unmasked in one pass at its end.
        """
        take = min(self._frem, end - pos)
        self._frem -= take
        done = self._frem == 0
        if self._msg_op == OP_BINARY and not self._msg_compressed:
            if take:
                if data.__class__ is bytes:
                    self._fchunks.append(memoryview(data)[pos : pos + take])
                else:  # our own buffer, which changes: copy
                    self._fchunks.append(bytes(data[pos : pos + take]))
                self._msg_size += take
            if not done:
                return pos + take
            self._in_frame = False
            chunks, self._fchunks = self._fchunks, []
            chunk = mask_join(chunks, self._fkey) if self._fmasked else b"".join(chunks)
            self._msg_size -= len(chunk)  # _feed_message counts it again
            self._feed_message(chunk, self._ffin, events)
            return pos + take
        chunk = bytes(data[pos : pos + take])
        if self._fmasked and take:
            chunk = apply_mask(chunk, _rotate(self._fkey, self._foff))
        self._foff += take
        if done:
            self._in_frame = False
        self._feed_message(chunk, done and self._ffin, events)
        return pos + take

    def _inflate(self, chunk: bytes, final: bool) -> bytes:
        deflate = self.deflate
        assert deflate is not None
        limit = 0
        if self.max_size is not None:
            limit = self.max_size - self._msg_size + 1
        out = deflate.decompress(chunk, limit, fin=final)
        if limit and len(out) >= limit:
            deflate.reset_decompressor()
            raise ProtocolError(
                1009, f"message larger than {self.max_size} bytes after decompression"
            )
        return out

    def _whole_message(self, payload: bytes, events: list[Event]) -> None:
        op = self._msg_op
        self._msg_op = 0
        if self._msg_compressed:
            payload = self._inflate(payload, True)
        if op == OP_TEXT:
            try:
                events.append(TextMessage(payload.decode()))
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8 in text message") from None
        else:
            events.append(BinaryMessage(payload))

    def _feed_message(self, chunk: bytes, final: bool, events: list[Event]) -> None:
        if self._msg_compressed:
            chunk = self._inflate(chunk, final)
            self._msg_size += len(chunk)
        else:
            self._msg_size += len(chunk)
            if self.max_size is not None and self._msg_size > self.max_size:  # pragma: no cover
                raise ProtocolError(1009, f"message larger than {self.max_size} bytes")
        parts = self._msg_parts
        if self._msg_op == OP_TEXT:
            decoder = self._msg_decoder
            if decoder is None:
                decoder = self._msg_decoder = _utf8_decoder()
            try:
                text = decoder.decode(chunk, final)
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8 in text message") from None
            if not final:
                # CPython's decoder waits for a third byte after ED A0..ED BF,
                # which can only start a UTF-16 surrogate: fail fast on it too.
                pending = decoder.getstate()[0]
                if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                    raise ProtocolError(1007, "invalid UTF-8 in text message")
            if text:
                parts.append(text)  # type: ignore[arg-type]
            if final:
                self._msg_decoder = None
                self._msg_parts = []
                self._msg_op = 0
                events.append(TextMessage("".join(parts)))  # type: ignore[arg-type]
        else:
            if chunk:
                parts.append(chunk)  # type: ignore[arg-type]
            if final:
                self._msg_parts = []
                self._msg_op = 0
                events.append(BinaryMessage(b"".join(parts)))  # type: ignore[arg-type]

    def _on_control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == OP_PING:
            if self.state is State.OPEN:
                self._out.extend(encode_frame(OP_PONG, payload, mask=self._is_client))
            events.append(Ping(payload))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            self._on_close(payload, events)

    def _on_close(self, payload: bytes, events: list[Event]) -> None:
        if len(payload) == 1:
            raise ProtocolError(1002, "close frame with a one-byte payload")
        if payload:
            code = _unpack_h(payload)[0]
            if not is_valid_close_code(code):
                raise ProtocolError(1002, f"invalid close code {code}")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8 in close reason") from None
        else:
            code, reason = 1005, ""
        self.close_code = code
        self.close_reason = reason
        if self.state is State.OPEN:
            # "the endpoint typically echos the status code it received"
            self._out.extend(encode_frame(OP_CLOSE, payload[:2], mask=self._is_client))
            self.close_sent = code
        self.state = State.CLOSED
        self._rx_done = True
        events.append(CloseReceived(code, reason))

    def _fail(self, code: int, reason: str, events: list[Event]) -> None:
        """_Fail the WebSocket Connection_ (section 7.1.7) with *code*."""
        if self.state is State.OPEN:
            self._out.extend(
                encode_frame(
                    OP_CLOSE, encode_close_payload(code, reason[:120]), mask=self._is_client
                )
            )
            self.close_sent = code
        if self.close_code is None:
            self.close_code = 1006
        self.state = State.CLOSED
        self._rx_done = True
        self._in_frame = False
        self._fchunks = []
        self._msg_parts = []
        self._msg_decoder = None
        events.append(Failed(code, reason))

    @property
    def has_pending_input(self) -> bool:
        """Whether bytes received are still unparsed (call ``receive_data(b"")``)."""
        return self._deferred and not self._rx_done

    def receive_eof(self) -> list[Event]:
        """The peer closed the TCP connection.

        Without a Close frame first, the connection closed abnormally (1006).
        """
        if self._rx_done:
            return []
        self._rx_done = True
        self.state = State.CLOSED
        self.close_code = 1006
        self.close_reason = ""
        return [CloseReceived(1006, "")]

    # -- sending -------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """Bytes the protocol queued by itself; the caller writes them."""
        out = self._out
        if out:
            self._out = []
        return out

    def _check_open(self) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send: connection is {self.state.name}")

    def send_text(self, text: str) -> list[bytes]:
        """Frames of a text message."""
        return self.send_message(OP_TEXT, text.encode())

    def send_binary(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Frames of a binary message."""
        return self.send_message(OP_BINARY, bytes(data))

    def send_message(self, opcode: int, payload: bytes) -> list[bytes]:
        """Frames of one unfragmented data message (``OP_TEXT`` payloads must be UTF-8)."""
        if self.state is not State.OPEN or self._send_fragmenting:
            self._check_open()
            raise InvalidState("cannot send a message while a fragmented one is in progress")
        deflate = self.deflate
        if deflate is not None and len(payload) >= deflate.threshold:
            return encode_frame(opcode, deflate.compress(payload), rsv1=True, mask=self._is_client)
        return encode_frame(opcode, payload, mask=self._is_client)

    def send_fragment(self, opcode: int, payload: bytes, *, fin: bool) -> list[bytes]:
        """One fragment of a message: ``opcode`` TEXT/BINARY for the first, CONT after."""
        self._check_open()
        if opcode == OP_CONT:
            if not self._send_fragmenting:
                raise InvalidState("no fragmented message in progress")
        elif self._send_fragmenting:
            raise InvalidState("a fragmented message is already in progress")
        rsv1 = False
        deflate = self.deflate
        if deflate is not None:
            # Compress every fragment of a message once its first one is (section 6).
            payload = deflate.compress(payload, fin=fin)
            rsv1 = opcode != OP_CONT
        self._send_fragmenting = not fin
        return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=self._is_client)

    def send_ping(self, data: bytes = b"") -> list[bytes]:
        """A Ping frame (at most 125 bytes of payload)."""
        self._check_open()
        if len(data) > 125:
            raise ValueError("ping payload longer than 125 bytes")
        return encode_frame(OP_PING, data, mask=self._is_client)

    def send_pong(self, data: bytes = b"") -> list[bytes]:
        """An unsolicited Pong frame (at most 125 bytes of payload)."""
        self._check_open()
        if len(data) > 125:
            raise ValueError("pong payload longer than 125 bytes")
        return encode_frame(OP_PONG, data, mask=self._is_client)

    def send_close(self, code: int | None = 1000, reason: str = "") -> list[bytes]:
        """Start the closing handshake (or finish it if the peer started it).

        ``code=None`` sends a Close frame without a status code. Returns no
        bytes when a Close frame was sent already.
        """
        if self.close_sent is not None or self.state is State.CLOSED:
            return []
        payload = encode_close_payload(code, reason)
        self.close_sent = 1005 if code is None else code
        self.state = State.CLOSING
        return encode_frame(OP_CLOSE, payload, mask=self._is_client)

    # -- state ---------------------------------------------------------------

    @property
    def closed_cleanly(self) -> bool:
        """Whether Close frames were exchanged in both directions."""
        return self.close_sent is not None and self.close_code not in (None, 1006)

    @property
    def close_ok(self) -> bool:
        """Whether the connection ended normally (1000/1001, or a clean empty close)."""
        if not self.closed_cleanly:
            return False
        return self.close_code in _OK_CLOSE or (
            self.close_code == 1005 and self.close_sent in (1000, 1001, 1005)
        )
