"""Engine.IO protocol v4 packets and polling payloads (sans-I/O).

An Engine.IO packet is a type (one decimal digit) and an optional payload::

    <type>[<data>]        e.g. "4hello", "2probe", "3", "0{...handshake...}"

On a WebSocket every packet travels in its own frame: text frames carry the
type digit followed by the text, binary frames carry the raw bytes of a
``message`` packet with no type byte at all. With HTTP long-polling several
packets share one body, separated by the record separator ``"\\x1e"``; binary
messages are written as ``"b"`` followed by their standard base64 encoding
(with padding), so a polling body is always UTF-8 text.

Validation rules (what :class:`DecodeError` refuses), decided from the
specification and the reference implementation (``engine.io-parser`` and the
``engine.io`` server):

* an empty packet, a type that is not one of the digits ``0``-``6``, a body
  that is not valid UTF-8, an empty polling body or an empty part in it;
* ``open`` (0) sent by a client: only the server opens a session over
  WebSocket and polling (a client-sent ``open`` exists only on WebTransport,
  which wsio does not speak); an ``open`` from the server must carry the
  handshake JSON (see :func:`parse_handshake` to validate it);
* ``upgrade`` (5) sent by a server: only the client completes an upgrade;
* a payload on ``close`` (1), ``upgrade`` (5) and ``noop`` (6): the reference
  implementation never sends one;
* ``ping`` (2) and ``pong`` (3) may carry text (the upgrade probe sends
  ``"2probe"`` and expects ``"3probe"``); what the text may be is the
  session's business, not the codec's;
* ``message`` (4) carries any text, possibly empty, or bytes;
* in a polling body: base64 that is not strictly valid (characters outside
  the standard alphabet, missing or extra padding, whitespace).

A text packet containing the separator cannot be framed in a polling body:
:func:`encode_payload` refuses to write one (Socket.IO's JSON escapes the
character, so only raw Engine.IO messages can hit this).

A decoded ``message`` always has ``str`` or ``bytes`` data (``"4"`` decodes to
the empty string); other packets without a payload have ``data=None``.
"""

from __future__ import annotations

import binascii
from base64 import b64encode
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from .. import _json

__all__ = [
    "CLOSE_WS",
    "NOOP_WS",
    "PING_PROBE",
    "PING_WS",
    "PONG_PROBE",
    "PONG_WS",
    "SEPARATOR",
    "UPGRADE_WS",
    "DecodeError",
    "Handshake",
    "Packet",
    "PacketType",
    "decode_payload",
    "decode_ws",
    "encode_message_payload",
    "encode_message_ws",
    "encode_payload",
    "encode_ws",
    "open_packet",
    "parse_handshake",
]


class PacketType(IntEnum):
    """Engine.IO packet types (the digit that starts every packet)."""

    OPEN = 0
    """Server to client: the handshake, with a JSON payload."""
    CLOSE = 1
    """Either side: the transport can be closed."""
    PING = 2
    """Server to client heartbeat (and client to server ``probe`` on upgrade)."""
    PONG = 3
    """Answer to a ping."""
    MESSAGE = 4
    """Application data: text or bytes."""
    UPGRADE = 5
    """Client to server: switch to the probed transport."""
    NOOP = 6
    """Server to client: forces a pending poll to return during an upgrade."""


class DecodeError(ValueError):
    """Malformed Engine.IO packet or payload received from the peer."""


#: Record separator between packets of a polling payload.
SEPARATOR = "\x1e"
#: Ready-made WebSocket text frames (and polling parts) for the control packets.
CLOSE_WS = "1"
PING_WS = "2"
PONG_WS = "3"
UPGRADE_WS = "5"
NOOP_WS = "6"
PING_PROBE = "2probe"
PONG_PROBE = "3probe"

_TYPE_CHARS = "0123456"
_TYPE_BY_CHAR = {str(int(t)): t for t in PacketType}
_OPEN = PacketType.OPEN
_MESSAGE = PacketType.MESSAGE
_UPGRADE = PacketType.UPGRADE
_NO_PAYLOAD = frozenset({PacketType.CLOSE, PacketType.UPGRADE, PacketType.NOOP})


@dataclass(slots=True, frozen=True)
class Packet:
    """One Engine.IO packet.

    ``data`` is ``str`` for text payloads, ``bytes`` for binary messages (only
    :attr:`PacketType.MESSAGE` may carry bytes) and ``None`` when there is no
    payload. ``close``, ``upgrade`` and ``noop`` carry no payload.
    """

    type: PacketType
    data: str | bytes | None = None

    def __post_init__(self) -> None:
        ptype = self.type
        if ptype.__class__ is not PacketType:
            object.__setattr__(self, "type", PacketType(ptype))
            ptype = self.type
        data = self.data
        if data is None:
            return
        cls = data.__class__
        if cls is str:
            if data and ptype in _NO_PAYLOAD:
                raise ValueError(f"{ptype.name} packets carry no payload")
            return
        if isinstance(data, (bytes, bytearray, memoryview)):
            if ptype is not _MESSAGE:
                raise ValueError("only MESSAGE packets can carry bytes")
            if cls is not bytes:
                object.__setattr__(self, "data", bytes(data))
            return
        raise TypeError(f"packet data must be str, bytes or None, not {cls.__name__}")


_new_object = object.__new__
_set_type = Packet.__dict__["type"].__set__
_set_data = Packet.__dict__["data"].__set__


def _packet(ptype: PacketType, data: str | bytes | None) -> Packet:
    """Build a packet known to be valid, skipping the frozen-dataclass overhead."""
    packet = _new_object(Packet)
    _set_type(packet, ptype)
    _set_data(packet, data)
    return packet


# -- WebSocket transport ------------------------------------------------------


def encode_ws(packet: Packet) -> str | bytes:
    """Encode ``packet`` for one WebSocket frame.

    Returns ``str`` for a text frame, ``bytes`` for a binary frame (a binary
    ``message``: the bytes as they are).
    """
    data = packet.data
    if data is None:
        return _TYPE_CHARS[packet.type]
    if data.__class__ is bytes:
        return data
    return _TYPE_CHARS[packet.type] + data  # type: ignore[operator]


def encode_message_ws(data: str | bytes | bytearray | memoryview) -> str | bytes:
    """Encode a ``message`` packet for a WebSocket frame without building a :class:`Packet`."""
    if data.__class__ is str:
        return "4" + data
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")


def decode_ws(data: str | bytes | bytearray | memoryview, *, from_server: bool = False) -> Packet:
    """Decode one WebSocket frame.

    ``str`` is a text frame, bytes-like is a binary frame (always a binary
    ``message``). ``from_server`` tells who sent it: ``False`` (the default)
    when a server decodes what a client sent, ``True`` when a client decodes
    what the server sent. Raises :class:`DecodeError` for malformed input.
    """
    if data.__class__ is str:
        if data[:1] == "4":
            return _packet(_MESSAGE, data[1:])
        return _decode_text(data, from_server)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _packet(_MESSAGE, data if data.__class__ is bytes else bytes(data))
    raise TypeError(f"WebSocket data must be str or bytes, not {type(data).__name__}")


def _decode_text(text: str, from_server: bool) -> Packet:
    if not text:
        raise DecodeError("empty packet")
    ptype = _TYPE_BY_CHAR.get(text[0])
    if ptype is None:
        raise DecodeError(f"unknown packet type {text[0]!r}")
    if ptype is _MESSAGE:
        return _packet(_MESSAGE, text[1:])
    payload = text[1:] if len(text) > 1 else None
    if ptype is _OPEN:
        if not from_server:
            raise DecodeError("OPEN packet sent by a client")
        if payload is None:
            raise DecodeError("OPEN packet without handshake data")
    elif ptype in _NO_PAYLOAD:
        if payload is not None:
            raise DecodeError(f"{ptype.name} packet must not carry a payload")
        if ptype is _UPGRADE and from_server:
            raise DecodeError("UPGRADE packet sent by a server")
    return _packet(ptype, payload)


# -- HTTP long-polling transport ---------------------------------------------


def _encode_part(packet: Packet) -> str:
    data = packet.data
    if data is None:
        return _TYPE_CHARS[packet.type]
    if data.__class__ is bytes:
        return "b" + b64encode(data).decode("ascii")
    if SEPARATOR in data:
        raise ValueError("a text packet sent by polling must not contain the record separator")
    return _TYPE_CHARS[packet.type] + data  # type: ignore[operator]


def encode_payload(packets: Iterable[Packet]) -> str:
    """Encode packets into one HTTP long-polling body (text).

    Raises :class:`ValueError` when there is no packet, or when a text packet
    contains the record separator ``"\\x1e"`` (it could not be told apart
    from the framing; Socket.IO's JSON escapes it, so only raw Engine.IO
    messages can hit this).
    """
    body = SEPARATOR.join([_encode_part(p) for p in packets])
    if not body:
        raise ValueError("a polling payload needs at least one packet")
    return body


def encode_message_payload(data: str | bytes | bytearray | memoryview) -> str:
    """Encode one ``message`` packet as a polling payload part, without a :class:`Packet`."""
    if data.__class__ is str:
        if SEPARATOR in data:
            raise ValueError("a text packet sent by polling must not contain the record separator")
        return "4" + data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return "b" + b64encode(data).decode("ascii")
    raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")


def decode_payload(
    body: str | bytes | bytearray | memoryview,
    max_packets: int | None = None,
    *,
    from_server: bool = False,
) -> list[Packet]:
    """Decode an HTTP long-polling body into its packets.

    ``body`` must be UTF-8 (bytes) or text; an empty body is an error. With
    ``max_packets``, a body holding more packets raises :class:`DecodeError`.
    ``from_server`` has the meaning described in :func:`decode_ws`.
    """
    if not isinstance(body, str):
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be str or bytes, not {type(body).__name__}")
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"payload is not valid UTF-8: {exc.reason}") from None
    if not body:
        raise DecodeError("empty payload")
    if max_packets is None:
        parts = body.split(SEPARATOR)
    else:
        parts = body.split(SEPARATOR, max_packets)
        if len(parts) > max_packets:
            raise DecodeError(f"payload holds more than {max_packets} packets")
    packets = []
    for index, part in enumerate(parts):
        if not part:
            raise DecodeError(f"empty packet at position {index} of the payload")
        if part[0] == "b":
            try:
                data = binascii.a2b_base64(part[1:], strict_mode=True)
            except (binascii.Error, ValueError) as exc:
                raise DecodeError(f"invalid base64 in binary packet: {exc}") from None
            packets.append(_packet(_MESSAGE, data))
        else:
            packets.append(_decode_text(part, from_server))
    return packets


# -- handshake ------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Handshake:
    """The handshake data carried by an ``open`` packet.

    ``max_payload`` is ``None`` when the server did not send ``maxPayload``
    (Engine.IO v4 servers older than the key).
    """

    sid: str
    upgrades: tuple[str, ...]
    ping_interval_ms: int
    ping_timeout_ms: int
    max_payload: int | None


def _check_ms(name: str, value: object) -> int:
    if value.__class__ is not int or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def open_packet(
    sid: str,
    upgrades: Sequence[str],
    ping_interval_ms: int,
    ping_timeout_ms: int,
    max_payload: int,
) -> Packet:
    """Build the server's ``open`` packet.

    The payload is JSON with exactly the keys ``sid``, ``upgrades``,
    ``pingInterval``, ``pingTimeout`` and ``maxPayload``; the three numbers are
    integers (milliseconds, and bytes for ``maxPayload``).
    """
    if not isinstance(sid, str) or not sid:
        raise ValueError("sid must be a non-empty str")
    if isinstance(upgrades, str) or not all(isinstance(u, str) for u in upgrades):
        raise ValueError("upgrades must be a sequence of transport names")
    handshake = {
        "sid": sid,
        "upgrades": list(upgrades),
        "pingInterval": _check_ms("ping_interval_ms", ping_interval_ms),
        "pingTimeout": _check_ms("ping_timeout_ms", ping_timeout_ms),
        "maxPayload": _check_ms("max_payload", max_payload),
    }
    return Packet(PacketType.OPEN, _json.dumps(handshake))


def parse_handshake(data: str | Packet) -> Handshake:
    """Validate the handshake JSON of an ``open`` packet (or the packet itself).

    Unknown keys are ignored; ``maxPayload`` is optional. Raises
    :class:`DecodeError` when the JSON is invalid or a key is missing or has
    the wrong type.
    """
    if isinstance(data, Packet):
        if data.type is not _OPEN or not isinstance(data.data, str):
            raise DecodeError("not an OPEN packet with handshake data")
        data = data.data
    try:
        obj = _json.loads(data)
    except ValueError as exc:
        raise DecodeError(f"handshake is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodeError("handshake must be a JSON object")
    sid = obj.get("sid")
    if not isinstance(sid, str) or not sid:
        raise DecodeError("handshake sid must be a non-empty string")
    upgrades = obj.get("upgrades")
    if not isinstance(upgrades, list) or not all(isinstance(u, str) for u in upgrades):
        raise DecodeError("handshake upgrades must be a list of strings")
    numbers: dict[str, int | None] = {}
    for key in ("pingInterval", "pingTimeout", "maxPayload"):
        value = obj.get(key)
        if value is None and key == "maxPayload" and key not in obj:
            numbers[key] = None
            continue
        if value.__class__ is not int or value < 0:
            raise DecodeError(f"handshake {key} must be a non-negative integer")
        numbers[key] = value
    return Handshake(
        sid=sid,
        upgrades=tuple(upgrades),
        ping_interval_ms=numbers["pingInterval"],  # type: ignore[arg-type]
        ping_timeout_ms=numbers["pingTimeout"],  # type: ignore[arg-type]
        max_payload=numbers["maxPayload"],
    )
