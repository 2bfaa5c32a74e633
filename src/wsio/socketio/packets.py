"""Socket.IO protocol v5 packets: the default (JSON) parser and the msgpack parser.

Sans-I/O: encoders turn a :class:`Packet` into the Engine.IO message payloads
that carry it, decoders are fed those payloads one by one and hand back
packets.

Default parser (wire-compatible with ``socket.io-parser``)::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

``2["a",1]`` is an event on the main namespace, ``2/admin,13["a"]`` one on
``/admin`` that asks for an acknowledgement with id 13. ``bytes`` anywhere in
the payload of an EVENT or ACK (nested in lists and dicts too) turn it into a
BINARY_EVENT / BINARY_ACK: every bytes object is replaced by
``{"_placeholder":true,"num":<index>}``, the count of attachments prefixes the
packet (``51-["x",{"_placeholder":true,"num":0}]``) and the attachments follow
as separate binary messages, in order.

Msgpack parser (wire-compatible with ``socket.io-msgpack-parser``): the whole
packet is one msgpack map ``{"type", "nsp", "data", "id"}`` sent as one
binary message; bytes are native msgpack ``bin`` values, so there are no
BINARY_* packets and no attachments. It needs the optional ``msgpack``
package (``pip install 'wsio[msgpack]'``).

Validation of received packets (:class:`DecodeError`), for both parsers:

* the namespace starts with ``/`` (it runs up to the first ``,``);
* an ack id is a non-negative integer of at most 16 digits and at most
  ``2**53 - 1`` (:data:`MAX_ACK_ID`), and only EVENT and ACK packets (binary
  or not) carry one; ACK packets must carry one;
* CONNECT: an object payload, or none; DISCONNECT: no payload;
  EVENT: a non-empty list whose first element (the event name) is a string
  or a number, and not one of :data:`RESERVED_EVENTS` unless the decoder was
  built with ``reject_reserved=False``; ACK: a list;
  CONNECT_ERROR: an object (a plain string, which servers before protocol v5
  sent, is accepted too);
* JSON parser only: the JSON payload is a single valid JSON value with
  nothing after it; a binary packet announces between 1 and
  ``max_attachments`` attachments; every placeholder has an integer ``num``
  in range and every attachment is referenced; placeholders appear only in
  binary packets; no text packet arrives while attachments are expected and
  no attachment arrives when none is expected.

After a :class:`DecodeError` a decoder is reset (no pending binary packet);
the connection that sent the bad data should be closed anyway.

A decoded binary packet is returned as a plain EVENT or ACK whose data holds
``bytes`` objects where the placeholders were, so that handlers need not care
how the payload travelled. Encoding such a packet again gives a binary packet
again. Encoders validate the packet they are given with the same rules and
raise :class:`ValueError` (or :class:`TypeError` for data that cannot be
serialized).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from .. import _json

__all__ = [
    "MAX_ACK_ID",
    "RESERVED_EVENTS",
    "DecodeError",
    "Decoder",
    "Encoder",
    "MsgpackDecoder",
    "MsgpackEncoder",
    "Packet",
    "PacketType",
    "ParserClasses",
    "make_parser",
]


class PacketType(IntEnum):
    """Socket.IO packet types."""

    CONNECT = 0
    """Client: join a namespace (optional auth object). Server: accepted, ``{"sid": ...}``."""
    DISCONNECT = 1
    """Either side: leave a namespace."""
    EVENT = 2
    """An event: ``[name, *args]``, with an ack id when an answer is expected."""
    ACK = 3
    """The answer to an event that had an ack id: ``[*args]``."""
    CONNECT_ERROR = 4
    """Server: joining the namespace was refused, ``{"message": ..., "data": ...}``."""
    BINARY_EVENT = 5
    """An EVENT whose payload holds binary attachments (JSON parser only)."""
    BINARY_ACK = 6
    """An ACK whose payload holds binary attachments (JSON parser only)."""


@dataclass(slots=True)
class Packet:
    """One Socket.IO packet.

    ``data`` is the payload (``None`` when absent); ``id`` the ack id.
    """

    type: PacketType
    nsp: str = "/"
    data: Any = None
    id: int | None = None


class DecodeError(ValueError):
    """Malformed Socket.IO packet received from the peer."""


#: Event names that cannot be sent or received: they mean something to the
#: Socket.IO libraries themselves.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

#: Largest ack id accepted (the largest integer a JavaScript number holds exactly).
MAX_ACK_ID = 2**53 - 1
_MAX_ACK_ID_DIGITS = 16
_MAX_COUNT_DIGITS = 9

_CONNECT = PacketType.CONNECT
_DISCONNECT = PacketType.DISCONNECT
_EVENT = PacketType.EVENT
_ACK = PacketType.ACK
_CONNECT_ERROR = PacketType.CONNECT_ERROR
_BINARY_EVENT = PacketType.BINARY_EVENT
_BINARY_ACK = PacketType.BINARY_ACK

_DIGITS = "0123456"
# The packet type as the application sees it: binary types fold into their plain one.
_KIND = {
    0: _CONNECT,
    1: _DISCONNECT,
    2: _EVENT,
    3: _ACK,
    4: _CONNECT_ERROR,
    5: _EVENT,
    6: _ACK,
}
# Type digit -> (wire type, kind, whether attachments follow).
_TYPE_BY_CHAR = {
    str(int(t)): (t, _KIND[int(t)], t in (_BINARY_EVENT, _BINARY_ACK)) for t in PacketType
}
_BINARY_KINDS = (bytes, bytearray, memoryview)


# -- shared validation ----------------------------------------------------------


def _event_name_error(name: Any, reject_reserved: bool) -> str | None:
    """Return why ``name`` cannot name an event, or ``None``."""
    if isinstance(name, str):
        if reject_reserved and name in RESERVED_EVENTS:
            return f"{name!r} is a reserved event name"
        return None
    if isinstance(name, bool) or not isinstance(name, (int, float)):
        return "event name must be a string or a number"
    if isinstance(name, float) and not math.isfinite(name):
        return "event name must be a finite number"
    return None


def _payload_error(kind: PacketType, data: Any, ack_id: Any, reject_reserved: bool) -> str | None:
    """Return why (kind, data, ack_id) is not a valid packet, or ``None``."""
    if ack_id is not None:
        if kind is not _EVENT and kind is not _ACK:
            return f"{kind.name} packets carry no ack id"
        if ack_id.__class__ is not int or not 0 <= ack_id <= MAX_ACK_ID:
            return f"ack id must be an integer between 0 and {MAX_ACK_ID}"
    if kind is _EVENT:
        if not isinstance(data, (list, tuple)) or not data:
            return "EVENT payload must be a non-empty list"
        return _event_name_error(data[0], reject_reserved)
    if kind is _ACK:
        if ack_id is None:
            return "ACK packets need an ack id"
        if not isinstance(data, (list, tuple)):
            return "ACK payload must be a list"
        return None
    if kind is _CONNECT:
        if data is not None and not isinstance(data, dict):
            return "CONNECT payload must be an object"
        return None
    if kind is _DISCONNECT:
        if data is not None:
            return "DISCONNECT packets carry no payload"
        return None
    # CONNECT_ERROR
    if not isinstance(data, (dict, str)):
        return "CONNECT_ERROR payload must be an object"
    return None


def _check_outgoing(packet: Packet, reject_reserved: bool) -> PacketType:
    """Validate a packet about to be encoded; return its (non-binary) kind."""
    try:
        kind = _KIND[packet.type]
    except (KeyError, TypeError):
        raise ValueError(f"unknown packet type {packet.type!r}") from None
    nsp = packet.nsp
    if nsp != "/" and (nsp.__class__ is not str or not nsp.startswith("/") or "," in nsp):
        raise ValueError(f"invalid namespace {nsp!r}: must start with '/' and contain no ','")
    error = _payload_error(kind, packet.data, packet.id, reject_reserved)
    if error is not None:
        raise ValueError(error)
    return kind


def _is_placeholder(obj: dict[Any, Any]) -> bool:
    return obj.get("_placeholder") is True


def _find_placeholder(data: Any) -> bool:
    """Whether ``data`` holds a dict that reads as a binary placeholder."""
    stack = [data]
    pop = stack.pop
    push = stack.extend
    while stack:
        item = pop()
        if isinstance(item, dict):
            if _is_placeholder(item):
                return True
            push(item.values())
        elif isinstance(item, (list, tuple)):
            push(item)
    return False


# -- default (JSON) parser ------------------------------------------------------


def _deconstruct(obj: Any, buffers: list[bytes]) -> Any:
    """Copy ``obj`` with every bytes-like object replaced by a placeholder."""
    if isinstance(obj, _BINARY_KINDS):
        placeholder = {"_placeholder": True, "num": len(buffers)}
        buffers.append(obj if obj.__class__ is bytes else bytes(obj))
        return placeholder
    if isinstance(obj, (list, tuple)):
        return [_deconstruct(item, buffers) for item in obj]
    if isinstance(obj, dict):
        if _is_placeholder(obj):
            raise ValueError("payload holds a dict that reads as a binary placeholder")
        return {key: _deconstruct(value, buffers) for key, value in obj.items()}
    return obj


class Encoder:
    """Encoder of the default Socket.IO parser (``socket.io-parser``).

    :meth:`encode` returns the Engine.IO message payloads of one packet: the
    text packet first, then its binary attachments in order.
    ``reject_reserved`` refuses to send events named like
    :data:`RESERVED_EVENTS` (the peer would refuse them).
    """

    __slots__ = ("_reject_reserved",)

    def __init__(self, *, reject_reserved: bool = True) -> None:
        self._reject_reserved = reject_reserved

    def encode(self, packet: Packet) -> list[str | bytes]:
        """Encode ``packet``; raise :class:`ValueError` or :class:`TypeError` if it is invalid."""
        data = packet.data
        ack_id = packet.id
        ptype = packet.type
        if (
            (
                (
                    ptype is _EVENT
                    and data.__class__ is list
                    and data
                    and data[0].__class__ is str
                    and (data[0] not in RESERVED_EVENTS or not self._reject_reserved)
                )
                or (ptype is _ACK and data.__class__ is list and ack_id is not None)
            )
            and (ack_id is None or (ack_id.__class__ is int and 0 <= ack_id <= MAX_ACK_ID))
            and (
                packet.nsp == "/"
                or (packet.nsp.__class__ is str and packet.nsp[:1] == "/" and "," not in packet.nsp)
            )
        ):
            # Fast path: the common packets, already known to be valid.
            kind = ptype
        else:
            kind = _check_outgoing(packet, self._reject_reserved)
        if data is None:
            return [_head(kind, packet.nsp, packet.id)]
        try:
            body = _json.dumps(data)
        except TypeError:
            if kind is _EVENT or kind is _ACK:
                buffers: list[bytes] = []
                stripped = _deconstruct(data, buffers)
                if buffers:
                    body = _json.dumps(stripped)
                    binary = _BINARY_EVENT if kind is _EVENT else _BINARY_ACK
                    head = _head(binary, packet.nsp, packet.id, len(buffers))
                    return [head + body, *buffers]
            raise
        if "_placeholder" in body and _find_placeholder(data):
            raise ValueError("payload holds a dict that reads as a binary placeholder")
        if packet.nsp == "/" and packet.id is None:
            return [_DIGITS[kind] + body]
        return [_head(kind, packet.nsp, packet.id) + body]


def _head(kind: PacketType, nsp: str, ack_id: int | None, attachments: int = 0) -> str:
    head = _DIGITS[kind]
    if attachments:
        head += f"{attachments}-"
    if nsp != "/":
        head += nsp + ","
    if ack_id is not None:
        head += str(ack_id)
    return head


class Decoder:
    """Decoder of the default Socket.IO parser (``socket.io-parser``).

    Feed it the Engine.IO messages of a connection in order with :meth:`feed`.
    ``reject_reserved`` refuses events named like :data:`RESERVED_EVENTS`;
    ``max_attachments`` bounds the attachments one binary packet may announce.
    """

    __slots__ = ("_buffers", "_expected", "_max_attachments", "_pending", "_reject_reserved")

    def __init__(self, *, reject_reserved: bool = True, max_attachments: int = 10) -> None:
        if max_attachments < 1:
            raise ValueError("max_attachments must be at least 1")
        self._reject_reserved = reject_reserved
        self._max_attachments = max_attachments
        self._pending: Packet | None = None
        self._expected = 0
        self._buffers: list[bytes] = []

    @property
    def pending(self) -> bool:
        """Whether a binary packet is waiting for attachments."""
        return self._pending is not None

    def reset(self) -> None:
        """Drop a partially received binary packet."""
        self._pending = None
        self._expected = 0
        self._buffers = []

    def feed(self, data: str | bytes | bytearray | memoryview) -> Packet | None:
        """Decode one Engine.IO message.

        Returns the complete packet, or ``None`` while the attachments of a
        binary packet are still expected. Raises :class:`DecodeError` for
        malformed input.
        """
        if data.__class__ is str:
            if self._pending is not None:
                self.reset()
                raise DecodeError("text packet received while binary attachments were expected")
            packet, attachments = self._decode_text(data)
            if attachments:
                self._pending = packet
                self._expected = attachments
                return None
            return packet
        if isinstance(data, _BINARY_KINDS):
            pending = self._pending
            if pending is None:
                raise DecodeError("binary data received while no binary packet was pending")
            buffers = self._buffers
            buffers.append(data if data.__class__ is bytes else bytes(data))
            if len(buffers) < self._expected:
                return None
            self.reset()
            _reconstruct(pending.data, buffers)
            return pending
        raise TypeError(f"expected str or bytes, not {type(data).__name__}")

    def _decode_text(self, text: str) -> tuple[Packet, int]:
        length = len(text)
        if not length:
            raise DecodeError("empty packet")
        entry = _TYPE_BY_CHAR.get(text[0])
        if entry is None:
            raise DecodeError(f"unknown packet type {text[0]!r}")
        kind = entry[1]
        index = 1
        attachments = 0
        if entry[2]:
            dash = text.find("-", 1, _MAX_COUNT_DIGITS + 2)
            count = text[1:dash]
            if dash < 0 or not count or not count.isascii() or not count.isdigit():
                raise DecodeError("illegal attachment count")
            attachments = int(count)
            if attachments < 1:
                raise DecodeError("binary packet without attachments")
            if attachments > self._max_attachments:
                raise DecodeError(f"too many attachments ({attachments} > {self._max_attachments})")
            index = dash + 1
        nsp = "/"
        if index < length and text[index] == "/":
            comma = text.find(",", index)
            if comma < 0:
                nsp = text[index:]
                index = length
            else:
                nsp = text[index:comma]
                index = comma + 1
        ack_id = None
        start = index
        stop = start + _MAX_ACK_ID_DIGITS + 1
        if stop > length:
            stop = length
        while index < stop and "0" <= text[index] <= "9":
            index += 1
        if index > start:
            if kind is not _EVENT and kind is not _ACK:
                raise DecodeError(f"{kind.name} packets carry no ack id")
            if index - start > _MAX_ACK_ID_DIGITS:
                raise DecodeError("ack id too long")
            ack_id = int(text[start:index])
        data = None
        if index < length:
            try:
                data = _json.loads(text[index:])
            except ValueError as exc:
                raise DecodeError(f"invalid JSON payload: {exc}") from None
        if not (
            # Fast path for the most common packet: an event named by a string.
            kind is _EVENT
            and data.__class__ is list
            and data
            and data[0].__class__ is str
            and (data[0] not in RESERVED_EVENTS or not self._reject_reserved)
            and ack_id is None
        ):
            error = _payload_error(kind, data, ack_id, self._reject_reserved)
            if error is not None:
                raise DecodeError(error)
        if (
            not attachments
            and data is not None
            and ("_placeholder" in text or "\\u" in text)
            and _find_placeholder(data)
        ):
            raise DecodeError("binary placeholder in a packet without attachments")
        return Packet(kind, nsp, data, ack_id), attachments


def _reconstruct(data: list[Any], buffers: list[bytes]) -> None:
    """Replace the placeholders in ``data`` (in place) by their attachments."""
    count = len(buffers)
    used = [False] * count
    stack: list[Any] = [data]
    while stack:
        container = stack.pop()
        items = enumerate(container) if container.__class__ is list else container.items()
        for key, value in items:
            cls = value.__class__
            if cls is dict:
                if value.get("_placeholder") is True:
                    num = value.get("num")
                    if num.__class__ is not int or not 0 <= num < count:
                        raise DecodeError(f"illegal attachment placeholder {num!r}")
                    container[key] = buffers[num]
                    used[num] = True
                else:
                    stack.append(value)
            elif cls is list:
                stack.append(value)
    if not all(used):
        raise DecodeError(f"attachment {used.index(False)} is never referenced")


# -- msgpack parser -------------------------------------------------------------


def _import_msgpack() -> Any:
    try:
        import msgpack
    except ImportError as exc:
        raise ImportError(
            "the Socket.IO msgpack parser needs the optional 'msgpack' package: "
            "install it with pip install 'wsio[msgpack]'"
        ) from exc
    return msgpack


class _Undefined:
    """JavaScript ``undefined`` as sent by ``notepack.io`` (fixext 1, type 0)."""

    __slots__ = ()


_UNDEFINED = _Undefined()
# notepack.io writes a JavaScript Date as fixext 8 of type 0 and an ArrayBuffer
# or typed array (in Node) as ext 8/16/32 of type 0; Python's msgpack does not
# tell those formats apart, so every type-0 extension other than ``undefined``
# is read as bytes. msgpack timestamps (type -1) are refused.
_TIMESTAMP_MARKERS = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


def _strip_undefined(obj: Any) -> Any:
    """Drop ``undefined`` map values and turn ``undefined`` list items into ``None``.

    That is what ``JSON.stringify`` would have made of them.
    """
    if obj is _UNDEFINED:
        return None
    if isinstance(obj, dict):
        return {k: _strip_undefined(v) for k, v in obj.items() if v is not _UNDEFINED}
    if isinstance(obj, list):
        return [_strip_undefined(v) for v in obj]
    return obj


def _contains_instance(obj: Any, cls: type) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, cls):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class MsgpackEncoder:
    """Encoder of the msgpack parser (``socket.io-msgpack-parser``).

    :meth:`encode` returns a one-element list: the packet as msgpack bytes.
    BINARY_EVENT / BINARY_ACK packets are written as EVENT / ACK (msgpack
    carries bytes natively).
    """

    __slots__ = ("_pack", "_reject_reserved")

    def __init__(self, *, reject_reserved: bool = True) -> None:
        msgpack = _import_msgpack()
        self._pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
        self._reject_reserved = reject_reserved

    def encode(self, packet: Packet) -> list[bytes]:
        """Encode ``packet``; raise :class:`ValueError` or :class:`TypeError` if it is invalid."""
        kind = _check_outgoing(packet, self._reject_reserved)
        obj: dict[str, Any] = {"type": int(kind), "nsp": packet.nsp}
        if packet.data is not None:
            obj["data"] = packet.data
        if packet.id is not None:
            obj["id"] = packet.id
        try:
            return [self._pack(obj)]
        except OverflowError as exc:
            raise ValueError(f"cannot encode packet: {exc}") from None


class MsgpackDecoder:
    """Decoder of the msgpack parser (``socket.io-msgpack-parser``).

    Every binary message is one complete packet: :meth:`feed` never returns
    ``None``. Unknown keys of the packet map (``socket.io-client`` adds
    ``options``) are ignored; JavaScript ``undefined`` values are dropped from
    maps and become ``None`` in lists.
    """

    __slots__ = ("_reject_reserved", "_saw_undefined", "_timestamp_cls", "_unpackb")

    def __init__(self, *, reject_reserved: bool = True) -> None:
        msgpack = _import_msgpack()
        self._unpackb = msgpack.unpackb
        self._timestamp_cls = msgpack.Timestamp
        self._reject_reserved = reject_reserved
        self._saw_undefined = False

    @property
    def pending(self) -> bool:
        """Always ``False``: msgpack packets never wait for attachments."""
        return False

    def reset(self) -> None:
        """Nothing to drop: present for interface parity with :class:`Decoder`."""

    def _ext_hook(self, code: int, payload: bytes) -> Any:
        if code != 0:
            raise DecodeError(f"unsupported msgpack extension type {code}")
        if payload == b"\x00":
            self._saw_undefined = True
            return _UNDEFINED
        return payload

    def feed(self, data: str | bytes | bytearray | memoryview) -> Packet:
        """Decode one Engine.IO binary message into a packet."""
        if data.__class__ is str:
            raise DecodeError("the msgpack parser expects binary messages, got text")
        if not isinstance(data, _BINARY_KINDS):
            raise TypeError(f"expected bytes, not {type(data).__name__}")
        self._saw_undefined = False
        try:
            obj = self._unpackb(data, ext_hook=self._ext_hook, raw=False)
        except DecodeError:
            raise
        except Exception as exc:  # the C unpacker raises many exception types
            raise DecodeError(f"invalid msgpack data: {exc}") from None
        if self._saw_undefined:
            try:
                obj = _strip_undefined(obj)
            except RecursionError:
                raise DecodeError("msgpack data nested too deeply") from None
        raw = data if data.__class__ is bytes else bytes(data)
        if (
            b"\xff" in raw
            and any(marker in raw for marker in _TIMESTAMP_MARKERS)
            and _contains_instance(obj, self._timestamp_cls)
        ):
            raise DecodeError("msgpack timestamps are not supported")
        if obj.__class__ is not dict:
            raise DecodeError("packet must be a msgpack map")
        ptype = obj.get("type")
        if ptype.__class__ is not int or not 0 <= ptype <= 4:
            raise DecodeError(f"invalid packet type {ptype!r}")
        nsp = obj.get("nsp")
        if nsp.__class__ is not str or not nsp.startswith("/"):
            raise DecodeError(f"invalid namespace {nsp!r}")
        payload = obj.get("data", _UNDEFINED)
        if payload is None:
            raise DecodeError("packet data must not be nil")
        if payload is _UNDEFINED:
            payload = None
        ack_id = obj.get("id", _UNDEFINED)
        if ack_id is None:
            raise DecodeError("ack id must not be nil")
        if ack_id is _UNDEFINED:
            ack_id = None
        kind = _KIND[ptype]
        error = _payload_error(kind, payload, ack_id, self._reject_reserved)
        if error is not None:
            raise DecodeError(error)
        return Packet(kind, nsp, payload, ack_id)


# -- parser selection -------------------------------------------------------------


class ParserClasses(NamedTuple):
    """The encoder and decoder classes of one Socket.IO parser."""

    encoder: type[Encoder] | type[MsgpackEncoder]
    decoder: type[Decoder] | type[MsgpackDecoder]


def make_parser(name: str) -> ParserClasses:
    """Return the encoder and decoder classes of the parser called ``name``.

    ``"json"`` is the default parser; ``"msgpack"`` needs the optional
    ``msgpack`` package and raises :class:`ImportError` naming the
    ``wsio[msgpack]`` extra when it is missing.
    """
    if name == "json":
        return ParserClasses(Encoder, Decoder)
    if name == "msgpack":
        _import_msgpack()
        return ParserClasses(MsgpackEncoder, MsgpackDecoder)
    raise ValueError(f"unknown Socket.IO parser {name!r} (expected 'json' or 'msgpack')")
