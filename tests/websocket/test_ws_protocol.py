"""The sans-I/O connection state machine (wsio.websocket.protocol), driven by bytes only."""

from __future__ import annotations

import functools
import struct
import tracemalloc
import zlib

import pytest
from wsutil import (
    build_frame,
    client_frame,
    close_payload,
    deflate_message,
    feed,
    feed_bytewise,
    inflate_message,
    sent,
)

from wsio.websocket.deflate import PerMessageDeflate
from wsio.websocket.events import BinaryMessage, CloseReceived, Failed, Ping, Pong, TextMessage
from wsio.websocket.exceptions import InvalidState
from wsio.websocket.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT
from wsio.websocket.protocol import CLIENT, SERVER, Protocol, State


def server(**kw: object) -> Protocol:
    return Protocol(SERVER, **kw)  # type: ignore[arg-type]


def client(**kw: object) -> Protocol:
    return Protocol(CLIENT, **kw)  # type: ignore[arg-type]


def assert_failed(proto: Protocol, events: list[object], code: int) -> None:
    """The last event is Failed(code) and a Close frame with that code was queued."""
    assert events, "no events"
    last = events[-1]
    assert isinstance(last, Failed), events
    assert last.code == code, last
    assert proto.state is State.CLOSED
    frames = sent(proto.data_to_send())
    closes = [f for f in frames if f.opcode == OP_CLOSE]
    assert len(closes) == 1
    assert struct.unpack("!H", closes[0].payload[:2])[0] == code
    assert closes[0].masked is (proto.side is CLIENT)
    assert proto.close_sent == code
    # Nothing more is parsed after the failure.
    assert proto.receive_data(client_frame(OP_TEXT, b"late")) == []


# -- messages ----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 100_000])
def test_text_message_sizes(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)
    data = client_frame(OP_TEXT, text.encode())
    assert feed(server(), data) == [TextMessage(text)]


def test_binary_message_any_split() -> None:
    payload = bytes(range(200))
    data = client_frame(OP_BINARY, payload) + client_frame(OP_BINARY, b"")
    expected = [BinaryMessage(payload), BinaryMessage(b"")]
    assert feed_bytewise(server(), data) == expected
    for cut in range(len(data)):
        assert feed(server(), data, [cut]) == expected


def test_client_receives_unmasked_frames() -> None:
    data = build_frame(OP_TEXT, b"hi") + build_frame(OP_BINARY, b"\x00\x01")
    assert feed_bytewise(client(), data) == [TextMessage("hi"), BinaryMessage(b"\x00\x01")]


def test_non_minimal_length_encoding_is_read() -> None:
    data = client_frame(OP_TEXT, b"abc", long_form=126) + client_frame(
        OP_TEXT, b"de", long_form=127
    )
    assert feed(server(), data) == [TextMessage("abc"), TextMessage("de")]


def test_fragmented_message_with_interleaved_controls() -> None:
    text = "κόσμε, 世界! 🎉"
    raw = text.encode()
    data = (
        client_frame(OP_TEXT, raw[:3], fin=False)  # splits a 2-byte character
        + client_frame(OP_PING, b"p1")
        + client_frame(OP_CONT, raw[3:10], fin=False)
        + client_frame(OP_PONG, b"q")
        + client_frame(OP_CONT, b"", fin=False)
        + client_frame(OP_PING, b"")
        + client_frame(OP_CONT, raw[10:])
    )
    proto = server()
    events = feed_bytewise(proto, data)
    assert events == [Ping(b"p1"), Pong(b"q"), Ping(b""), TextMessage(text)]
    pongs = sent(proto.data_to_send())
    assert [(f.opcode, f.payload, f.masked) for f in pongs] == [
        (OP_PONG, b"p1", False),
        (OP_PONG, b"", False),
    ]


def test_fragmented_binary_first_fragment_empty() -> None:
    data = client_frame(OP_BINARY, b"", fin=False) + client_frame(OP_CONT, b"xyz")
    assert feed(server(), data) == [BinaryMessage(b"xyz")]
    assert feed_bytewise(server(), data) == [BinaryMessage(b"xyz")]


def test_client_pong_is_masked() -> None:
    proto = client()
    assert feed(proto, build_frame(OP_PING, b"hello")) == [Ping(b"hello")]
    (pong,) = sent(proto.data_to_send())
    assert pong.opcode == OP_PONG and pong.masked and pong.payload == b"hello"


# -- violations and their close codes --------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        client_frame(OP_PING, b"x" * 126),
        client_frame(OP_PONG, b"x" * 200),
        client_frame(OP_CLOSE, close_payload(1000, b"x" * 124)),
        client_frame(OP_PING, b"", fin=False),
        client_frame(OP_CLOSE, close_payload(1000), fin=False),
        client_frame(OP_TEXT, b"x", rsv1=True),
        client_frame(OP_TEXT, b"x", rsv2=True),
        client_frame(OP_TEXT, b"x", rsv3=True),
        client_frame(OP_PING, b"x", rsv2=True),
        *[client_frame(op, b"x") for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)],
        client_frame(OP_CONT, b"x"),
        client_frame(OP_CONT, b"x", fin=False),
        client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_TEXT, b"b"),
        client_frame(OP_BINARY, b"a", fin=False) + client_frame(OP_BINARY, b"b"),
        build_frame(OP_TEXT, b"unmasked"),
        build_frame(OP_PING, b""),
        client_frame(OP_CLOSE, b"\x03"),
        client_frame(OP_BINARY, b"", length=2**63, long_form=127),
    ],
)
def test_protocol_errors_1002(frame: bytes) -> None:
    proto = server()
    assert_failed(proto, feed(proto, frame), 1002)


@pytest.mark.parametrize("rsv", ["rsv1", "rsv2", "rsv3"])
def test_reserved_bits_on_control_frames_with_deflate(rsv: str) -> None:
    proto = server(deflate=PerMessageDeflate())
    assert_failed(proto, feed(proto, client_frame(OP_PING, b"", **{rsv: True})), 1002)


def test_rsv1_on_continuation_is_1002() -> None:
    proto = server(deflate=PerMessageDeflate())
    data = client_frame(OP_TEXT, deflate_message(b"ab"), fin=False, rsv1=True)
    data += client_frame(OP_CONT, b"", rsv1=True)
    assert_failed(proto, feed(proto, data), 1002)


def test_client_refuses_masked_server_frames() -> None:
    proto = client()
    assert_failed(proto, feed(proto, client_frame(OP_TEXT, b"masked")), 1002)


def test_header_violation_reported_as_soon_as_the_header_is_complete() -> None:
    proto = server()
    frame = client_frame(OP_BINARY, b"x" * 1000, rsv2=True)
    assert_failed(proto, proto.receive_data(frame[:8]), 1002)


def test_messages_before_a_violation_are_delivered_first() -> None:
    proto = server()
    data = client_frame(OP_TEXT, b"ok") + client_frame(7, b"bad")
    first = proto.receive_data(data)
    assert first == [TextMessage("ok")]
    assert proto.has_pending_input
    assert_failed(proto, proto.receive_data(b""), 1002)


# -- UTF-8 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"\xc0\xaf",  # overlong
        b"\xed\xa0\x80",  # surrogate
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"abc\xe2\x82",  # truncated at the end
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    ],
)
def test_invalid_utf8_is_1007(payload: bytes) -> None:
    proto = server()
    assert_failed(proto, feed(proto, client_frame(OP_TEXT, payload)), 1007)
    proto = server()
    assert_failed(proto, feed_bytewise(proto, client_frame(OP_TEXT, payload)), 1007)


def test_invalid_utf8_truncated_at_end_of_fragmented_message() -> None:
    proto = server()
    data = client_frame(OP_TEXT, b"ok", fin=False) + client_frame(OP_CONT, b"\xe2\x82")
    assert_failed(proto, feed(proto, data), 1007)


@pytest.mark.parametrize(
    "bad",
    [b"\xff", b"\xc0", b"\xe0\x80", b"\xf4\x90", b"\xf5", b"\xed\xa0", b"\xed\xbf", b"\xf0\x80"],
)
def test_invalid_utf8_fails_fast_across_fragments(bad: bytes) -> None:
    proto = server()
    # The first fragments are valid (one ends inside a character) ...
    events = feed(proto, client_frame(OP_TEXT, "κό".encode()[:3], fin=False))
    events += feed(proto, client_frame(OP_CONT, "κό".encode()[3:], fin=False))
    assert events == []
    # ... the next one makes the text invalid: fail now, not at the end.
    assert_failed(proto, feed(proto, client_frame(OP_CONT, b"a" + bad, fin=False)), 1007)


@pytest.mark.parametrize("bad", [b"\xed\xa0", b"\xf4\x90", b"\xff"])
def test_invalid_utf8_fails_fast_inside_one_frame(bad: bytes) -> None:
    proto = server()
    frame = client_frame(OP_TEXT, b"abc" + bad + b"x" * 10_000)
    # Header, key and the first bytes of the payload only.
    assert_failed(proto, proto.receive_data(frame[: 8 + 3 + len(bad)]), 1007)


def test_valid_utf8_at_every_split() -> None:
    text = "aé€😀" * 3
    data = b"".join(
        client_frame(OP_TEXT if i == 0 else OP_CONT, bytes([b]), fin=i == len(text.encode()) - 1)
        for i, b in enumerate(text.encode())
    )
    assert feed_bytewise(server(), data) == [TextMessage(text)]


# -- close ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_peer_close_valid_codes_echoed(code: int) -> None:
    proto = server()
    events = feed(proto, client_frame(OP_CLOSE, close_payload(code, "bye é".encode())))
    assert events == [CloseReceived(code, "bye é")]
    (echo,) = sent(proto.data_to_send())
    assert echo.opcode == OP_CLOSE and not echo.masked
    assert struct.unpack("!H", echo.payload)[0] == code
    assert proto.state is State.CLOSED
    assert proto.close_code == code and proto.close_reason == "bye é"
    assert proto.closed_cleanly
    assert proto.close_ok is (code in (1000, 1001))


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
def test_peer_close_invalid_codes_1002(code: int) -> None:
    proto = server()
    assert_failed(proto, feed(proto, client_frame(OP_CLOSE, close_payload(code))), 1002)


def test_peer_close_invalid_utf8_reason_1007() -> None:
    proto = server()
    assert_failed(
        proto, feed(proto, client_frame(OP_CLOSE, close_payload(1000, b"\xff\xfe"))), 1007
    )


def test_peer_close_without_code() -> None:
    proto = client()
    assert feed(proto, build_frame(OP_CLOSE, b"")) == [CloseReceived(1005, "")]
    (echo,) = sent(proto.data_to_send())
    assert echo.opcode == OP_CLOSE and echo.payload == b"" and echo.masked
    assert proto.close_ok


def test_peer_initiated_close_then_nothing() -> None:
    proto = server()
    data = client_frame(OP_CLOSE, close_payload(1000)) + client_frame(OP_TEXT, b"after")
    assert feed(proto, data) == [CloseReceived(1000, "")]
    with pytest.raises(InvalidState):
        proto.send_text("too late")
    with pytest.raises(InvalidState):
        proto.send_ping()
    assert proto.send_close(1000) == []
    assert proto.receive_eof() == []


def test_we_initiate_close() -> None:
    proto = client()
    (frame,) = sent(proto.send_close(4001, "done"))
    assert frame.opcode == OP_CLOSE and frame.masked
    assert frame.payload == close_payload(4001, b"done")
    assert proto.state is State.CLOSING
    assert proto.send_close(1000) == []  # only one Close frame
    with pytest.raises(InvalidState):
        proto.send_binary(b"x")
    # Data still flows in until the peer's Close frame.
    events = feed(proto, build_frame(OP_TEXT, b"in flight") + build_frame(OP_PING, b"p"))
    assert events == [TextMessage("in flight"), Ping(b"p")]
    assert feed(proto, build_frame(OP_CLOSE, close_payload(4001))) == [CloseReceived(4001, "")]
    assert proto.data_to_send() == []  # no echo of an echo
    assert proto.state is State.CLOSED
    assert proto.closed_cleanly and not proto.close_ok


def test_close_without_code() -> None:
    proto = server()
    (frame,) = sent(proto.send_close(None))
    assert frame.payload == b""
    assert proto.close_sent == 1005
    assert feed(proto, client_frame(OP_CLOSE, b"")) == [CloseReceived(1005, "")]
    assert proto.close_ok


def test_eof_without_close_is_1006() -> None:
    proto = server()
    feed(proto, client_frame(OP_TEXT, b"partial", fin=False))
    assert proto.receive_eof() == [CloseReceived(1006, "")]
    assert proto.close_code == 1006
    assert not proto.closed_cleanly and not proto.close_ok


# -- message size ------------------------------------------------------------------


def test_max_size_exact() -> None:
    assert feed(server(max_size=10), client_frame(OP_BINARY, b"x" * 10)) == [
        BinaryMessage(b"x" * 10)
    ]


def test_max_size_known_from_header() -> None:
    proto = server(max_size=1000)
    frame = client_frame(OP_BINARY, b"x" * 1001)
    # Refused from the header alone, before the payload arrives.
    assert_failed(proto, proto.receive_data(frame[:8]), 1009)


def test_max_size_across_fragments() -> None:
    proto = server(max_size=1000)
    events = feed(proto, client_frame(OP_TEXT, b"x" * 600, fin=False))
    assert events == []
    assert_failed(proto, proto.receive_data(client_frame(OP_CONT, b"x" * 401)[:8]), 1009)


def test_max_size_none_is_unlimited() -> None:
    data = client_frame(OP_BINARY, b"y" * 3_000_000)
    assert feed(server(max_size=None), data) == [BinaryMessage(b"y" * 3_000_000)]


def test_max_size_after_decompression() -> None:
    payload = deflate_message(b"a" * 1001)
    proto = server(max_size=1000, deflate=PerMessageDeflate())
    assert_failed(proto, feed(proto, client_frame(OP_TEXT, payload, rsv1=True)), 1009)
    proto = server(max_size=1001, deflate=PerMessageDeflate())
    assert feed(proto, client_frame(OP_TEXT, payload, rsv1=True)) == [TextMessage("a" * 1001)]


@functools.cache
def deflate_bomb() -> bytes:
    """16 MiB of zeros as one permessage-deflate message: about 16 KB."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(b"\x00" * (16 << 20)) + c.flush(zlib.Z_SYNC_FLUSH)[:-4]


@pytest.mark.parametrize("fragmented", [False, True])
def test_deflate_bomb_stopped_early(fragmented: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    max_size = 256 << 10
    bomb = deflate_bomb()
    assert len(bomb) < 20_000
    if fragmented:
        pieces = [bomb[i : i + 1000] for i in range(0, len(bomb), 1000)]
        data = b"".join(
            client_frame(OP_CONT if i else OP_BINARY, p, fin=i == len(pieces) - 1, rsv1=i == 0)
            for i, p in enumerate(pieces)
        )
    else:
        data = client_frame(OP_BINARY, bomb, rsv1=True)
    produced: list[int] = []
    real = PerMessageDeflate.decompress

    def counting(self: PerMessageDeflate, chunk: bytes, max_length: int, *, fin: bool) -> bytes:
        out = real(self, chunk, max_length, fin=fin)
        produced.append(len(out))
        return out

    monkeypatch.setattr(PerMessageDeflate, "decompress", counting)
    proto = server(max_size=max_size, deflate=PerMessageDeflate())
    tracemalloc.start()
    try:
        events: list[object] = []
        fed = 0
        while fed < len(data) and not events:
            events += proto.receive_data(data[fed : fed + 500])
            fed += 500
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(proto, events, 1009)
    # Stopped after about max_size bytes of output, long before the end of the input.
    assert sum(produced) <= max_size + 1
    assert fed < len(data) // 8
    assert peak < 8 * max_size


def test_compressed_fragmented_message_with_ping() -> None:
    text = "compressed " * 100
    payload = deflate_message(text.encode())
    data = (
        client_frame(OP_TEXT, payload[:10], fin=False, rsv1=True)
        + client_frame(OP_PING, b"x")
        + client_frame(OP_CONT, payload[10:20], fin=False)
        + client_frame(OP_CONT, payload[20:])
        + client_frame(OP_TEXT, b"plain")
    )
    proto = server(deflate=PerMessageDeflate())
    assert feed_bytewise(proto, data) == [Ping(b"x"), TextMessage(text), TextMessage("plain")]


def test_compressed_invalid_data_is_1007() -> None:
    proto = server(deflate=PerMessageDeflate())
    assert_failed(proto, feed(proto, client_frame(OP_BINARY, b"\xff\xee\xdd", rsv1=True)), 1007)


def test_compressed_invalid_utf8_is_1007() -> None:
    proto = server(deflate=PerMessageDeflate())
    frame = client_frame(OP_TEXT, deflate_message(b"ok \xff"), rsv1=True)
    assert_failed(proto, feed(proto, frame), 1007)


def test_context_takeover_between_received_messages() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    frames = []
    for _ in range(3):
        out = c.compress(b"repeat me " * 20) + c.flush(zlib.Z_SYNC_FLUSH)
        frames.append(client_frame(OP_TEXT, out[:-4], rsv1=True))
    proto = server(deflate=PerMessageDeflate())
    assert feed_bytewise(proto, b"".join(frames)) == [TextMessage("repeat me " * 20)] * 3


# -- sending ----------------------------------------------------------------------


def test_send_masks_only_on_client() -> None:
    (f,) = sent(client().send_text("hé"))
    assert f.masked and f.payload == "hé".encode() and f.opcode == OP_TEXT and f.fin
    (f,) = sent(server().send_binary(bytearray(b"\x00\x01")))
    assert not f.masked and f.payload == b"\x00\x01" and f.opcode == OP_BINARY


def test_send_fragments() -> None:
    proto = server()
    with pytest.raises(InvalidState):
        proto.send_fragment(OP_CONT, b"x", fin=True)
    out = proto.send_fragment(OP_TEXT, b"ab", fin=False)
    with pytest.raises(InvalidState):
        proto.send_text("interleaved data message")
    with pytest.raises(InvalidState):
        proto.send_fragment(OP_BINARY, b"new message", fin=True)
    out += proto.send_ping(b"ctl")  # control frames may interleave
    out += proto.send_fragment(OP_CONT, b"cd", fin=True)
    frames = sent(out)
    assert [(f.opcode, f.fin, f.payload) for f in frames] == [
        (OP_TEXT, False, b"ab"),
        (OP_PING, True, b"ctl"),
        (OP_CONT, True, b"cd"),
    ]
    proto.send_text("ok again")


def test_send_compressed_fragments() -> None:
    sender = client(deflate=PerMessageDeflate())
    out = sender.send_fragment(OP_BINARY, b"a" * 500, fin=False)
    out += sender.send_fragment(OP_CONT, b"b" * 500, fin=False)
    out += sender.send_fragment(OP_CONT, b"c" * 500, fin=True)
    frames = sent(out)
    assert [f.rsv1 for f in frames] == [True, False, False]
    assert (
        inflate_message(b"".join(f.payload for f in frames)) == b"a" * 500 + b"b" * 500 + b"c" * 500
    )
    receiver = server(deflate=PerMessageDeflate())
    assert feed(receiver, b"".join(out)) == [BinaryMessage(b"a" * 500 + b"b" * 500 + b"c" * 500)]


def test_control_payload_limits() -> None:
    proto = client()
    with pytest.raises(ValueError):
        proto.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        proto.send_pong(b"x" * 126)
    with pytest.raises(ValueError):
        proto.send_close(1000, "x" * 124)
    with pytest.raises(ValueError):
        proto.send_close(1006)
    (f,) = sent(proto.send_ping(b"x" * 125))
    assert f.payload == b"x" * 125
