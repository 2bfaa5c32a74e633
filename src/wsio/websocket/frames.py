"""WebSocket frames (RFC 6455 section 5): opcodes, close codes, masking, serialization.

This module is sans-I/O and allocation-conscious: it is on the path of every
message. Parsing lives in :mod:`wsio.websocket.protocol`, which needs the
connection state to judge a frame; this module holds the pieces that do not.
"""

from __future__ import annotations

import os
import struct
from enum import IntEnum

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "CloseCode",
    "Opcode",
    "apply_mask",
    "encode_close_payload",
    "encode_frame",
    "is_valid_close_code",
]


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

DATA_OPCODES = frozenset({OP_CONT, OP_TEXT, OP_BINARY})
CONTROL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})


class CloseCode(IntEnum):
    """Close status codes (RFC 6455 section 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire
    ABNORMAL_CLOSURE = 1006  # never on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


# Codes an endpoint may put in a Close frame. 1004 is reserved, 1005, 1006 and
# 1015 "MUST NOT be set as a status code in a Close control frame by an
# endpoint" (section 7.4.1); 1016-2999 are reserved for future revisions and
# extensions; 3000-3999 are registered by libraries and frameworks, 4000-4999
# are private use.
_VALID_WIRE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_close_code(code: int) -> bool:
    """Whether *code* may appear in a Close frame on the wire."""
    return code in _VALID_WIRE_CODES or 3000 <= code <= 4999


def encode_close_payload(code: int | None, reason: str = "") -> bytes:
    """Payload of a Close frame: empty when *code* is None, else code + UTF-8 reason.

    Raises ValueError when the code cannot be sent or the payload would exceed
    the 125 bytes a control frame may carry.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason requires a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent on the wire")
    payload = struct.pack("!H", code) + reason.encode("utf-8")
    if len(payload) > 125:
        raise ValueError("close reason too long: a control frame carries at most 125 bytes")
    return payload


# --- masking -----------------------------------------------------------------


def _apply_mask_py(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR *data* with the 4-byte *mask* repeated (pure Python, no per-byte loop).

    Converting both operands to big integers lets CPython do the XOR in C, one
    machine word at a time.
    """
    n = len(data)
    if n == 0:
        return b""
    key = mask * ((n >> 2) + 1)
    if len(key) != n:
        key = key[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _mask_join_py(chunks: list[bytes | bytearray | memoryview], mask: bytes) -> bytes:
    """Join *chunks* and unmask them as one payload (pure Python)."""
    return _apply_mask_py(b"".join(chunks), mask)


try:  # the optional C speedups (built when a compiler is available at install)
    from wsio._speedups import apply_mask as _apply_mask_c
    from wsio._speedups import mask_join as _mask_join_c
except ImportError:  # pragma: no cover - depends on the build
    _apply_mask_c = None
    _mask_join_c = None

apply_mask = _apply_mask_c if _apply_mask_c is not None else _apply_mask_py
"""``apply_mask(data, mask) -> bytes``: mask or unmask a payload with a 4-byte key."""

mask_join = _mask_join_c if _mask_join_c is not None else _mask_join_py
"""``mask_join(chunks, mask) -> bytes``: join buffers and unmask them as one payload."""


# --- serialization -----------------------------------------------------------

_key_pool = b""
_key_pos = 0


def _mask_key() -> bytes:
    """A fresh masking key from the OS's CSPRNG, drawn 4 KiB at a time."""
    global _key_pool, _key_pos
    pos = _key_pos
    if pos >= len(_key_pool):
        _key_pool = os.urandom(4096)
        pos = 0
    _key_pos = pos + 4
    return _key_pool[pos : pos + 4]


_pack_h = struct.Struct("!BBH").pack
_pack_q = struct.Struct("!BBQ").pack


def frame_header(
    opcode: int, length: int, *, fin: bool = True, rsv1: bool = False, masked: bool = False
) -> bytes:
    """The header of a frame (without the masking key)."""
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    m = 0x80 if masked else 0
    if length < 126:
        return bytes((b0, m | length))
    if length < 65536:
        return _pack_h(b0, m | 126, length)
    return _pack_q(b0, m | 127, length)


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bool = False,
) -> list[bytes]:
    """Serialize one frame as a list of buffers, suitable for ``transport.writelines``.

    Server frames are unmasked (header + payload as they are, no copy); client
    frames get a fresh random key from ``os.urandom`` as section 5.3 requires.
    """
    header = frame_header(opcode, len(payload), fin=fin, rsv1=rsv1, masked=mask)
    if mask:
        key = _mask_key()
        return [header + key, apply_mask(payload, key)]
    if len(payload) < 1024:
        return [header + payload]
    return [header, payload]
