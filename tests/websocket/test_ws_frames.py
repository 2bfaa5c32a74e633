"""Frame serialization, masking and close codes (wsio.websocket.frames)."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsutil import mask_bytes, parse_frames

from wsio.websocket import frames
from wsio.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    CloseCode,
    Opcode,
    apply_mask,
    encode_close_payload,
    encode_frame,
    frame_header,
    is_valid_close_code,
)


def test_opcodes_match_rfc() -> None:
    assert [int(o) for o in Opcode] == [0, 1, 2, 8, 9, 10]
    assert (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING) == (0, 1, 2, 8, 9)


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (2**32 + 5, b"\x81\x7f\x00\x00\x00\x01\x00\x00\x00\x05"),
    ],
)
def test_length_encodings(length: int, header: bytes) -> None:
    assert frame_header(OP_TEXT, length) == header


def test_header_bits() -> None:
    assert frame_header(OP_BINARY, 3, fin=False) == b"\x02\x03"
    assert frame_header(OP_TEXT, 3, rsv1=True) == b"\xc1\x03"
    assert frame_header(OP_CONT, 3, fin=True, masked=True) == b"\x80\x83"


@pytest.mark.parametrize("size", [0, 1, 125, 126, 1023, 1024, 65535, 65536, 70000])
def test_encode_frame_unmasked_roundtrip(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    chunks = encode_frame(OP_BINARY, payload)
    (frame,) = parse_frames(b"".join(chunks))
    assert frame.opcode == OP_BINARY and frame.fin and not frame.masked
    assert frame.payload == payload


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 65536])
def test_encode_frame_masked_roundtrip(size: int) -> None:
    payload = bytes(i % 253 for i in range(size))
    data = b"".join(encode_frame(OP_TEXT, payload, mask=True, fin=False, rsv1=True))
    (frame,) = parse_frames(data)
    assert frame.masked and not frame.fin and frame.rsv1 and frame.opcode == OP_TEXT
    assert frame.payload == payload
    if size >= 8:
        # The payload on the wire really is masked.
        assert payload not in data


def test_masking_keys_are_fresh() -> None:
    keys = set()
    for _ in range(50):
        data = b"".join(encode_frame(OP_BINARY, b"x", mask=True))
        keys.add(data[2:6])
    assert len(keys) > 45


def test_rfc_masking_example() -> None:
    # RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
    key = bytes.fromhex("37fa213d")
    assert apply_mask(b"Hello", key) == bytes.fromhex("7f9f4d5158")


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_apply_mask_matches_definition(data: bytes, key: bytes) -> None:
    masked = apply_mask(data, key)
    assert masked == mask_bytes(data, key)
    assert apply_mask(masked, key) == data
    assert frames._apply_mask_py(data, key) == masked
    assert frames._apply_mask_py(bytearray(data), key) == masked
    assert frames._apply_mask_py(memoryview(data), key) == masked


@given(
    st.binary(max_size=2000),
    st.binary(min_size=4, max_size=4),
    st.lists(st.integers(0, 2000), max_size=6),
)
def test_mask_join_matches_definition_for_any_split(
    data: bytes, key: bytes, cuts: list[int]
) -> None:
    """Pieces of any length and phase: the vector, word and byte steps all line up."""
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks: list[bytes | bytearray | memoryview] = [
        memoryview(data)[a:b] for a, b in itertools.pairwise(bounds)
    ]
    expected = mask_bytes(data, key)
    assert frames.mask_join(chunks, key) == expected
    assert frames._mask_join_py(chunks, key) == expected
    assert frames.apply_mask(data, key) == expected


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        (0, False),
        (999, False),
        (1000, True),
        (1001, True),
        (1002, True),
        (1003, True),
        (1004, False),
        (1005, False),
        (1006, False),
        (1007, True),
        (1008, True),
        (1009, True),
        (1010, True),
        (1011, True),
        (1012, True),
        (1013, True),
        (1014, True),
        (1015, False),
        (1016, False),
        (2999, False),
        (3000, True),
        (4999, True),
        (5000, False),
        (65535, False),
    ],
)
def test_close_code_validity(code: int, valid: bool) -> None:
    assert is_valid_close_code(code) is valid


def test_close_code_enum() -> None:
    assert CloseCode.MESSAGE_TOO_BIG == 1009
    assert CloseCode.INVALID_DATA == 1007


def test_close_payload() -> None:
    assert encode_close_payload(None) == b""
    assert encode_close_payload(1000) == b"\x03\xe8"
    assert encode_close_payload(4000, "héllo") == struct.pack("!H", 4000) + "héllo".encode()
    assert len(encode_close_payload(1000, "x" * 123)) == 125
    with pytest.raises(ValueError):
        encode_close_payload(1000, "x" * 124)
    with pytest.raises(ValueError):
        encode_close_payload(1000, "é" * 62)  # 124 bytes of UTF-8
    with pytest.raises(ValueError):
        encode_close_payload(None, "reason without a code")
    for bad in (1005, 1006, 1015, 999, 5000):
        with pytest.raises(ValueError):
            encode_close_payload(bad)
