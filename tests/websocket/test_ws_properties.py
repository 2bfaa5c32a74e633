"""Property tests of the sans-I/O core: any split, any fragmentation, any corruption."""

from __future__ import annotations

import itertools
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsutil import build_frame, close_payload, parse_frames

from wsio.http.headers import Headers
from wsio.websocket.deflate import (
    DeflateOptions,
    PerMessageDeflate,
    client_accept,
    client_offer,
    server_negotiate,
)
from wsio.websocket.events import (
    BinaryMessage,
    CloseReceived,
    Event,
    Failed,
    Ping,
    Pong,
    TextMessage,
)
from wsio.websocket.exceptions import InvalidHandshake, InvalidResponse, NegotiationError
from wsio.websocket.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT
from wsio.websocket.handshake import parse_response_head, validate_request
from wsio.websocket.protocol import CLIENT, SERVER, Protocol

PROPS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

messages_st = st.lists(
    st.one_of(st.text(max_size=200), st.binary(max_size=200)),
    max_size=6,
)


def split_points(draw: st.DrawFn, length: int, max_cuts: int = 6) -> list[int]:
    if length <= 1:
        return []
    return sorted(
        set(draw(st.lists(st.integers(min_value=1, max_value=length - 1), max_size=max_cuts)))
    )


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def encoded_streams(draw: st.DrawFn) -> tuple[bool, bool, bytes, list[Event]]:
    """A stream of frames from an independent encoder and the events it must give.

    Messages are fragmented at random, Pings are interleaved anywhere between
    frames, and (when compression is on) each message may be compressed or not.
    """
    to_server = draw(st.booleans())
    compression = draw(st.booleans())
    messages = draw(messages_st)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
    out = bytearray()
    expected: list[Event] = []

    def frame(opcode: int, payload: bytes, **kw: bool) -> bytes:
        return build_frame(opcode, payload, mask=to_server, **kw)  # type: ignore[arg-type]

    for message in messages:
        if isinstance(message, str):
            opcode, payload = OP_TEXT, message.encode()
            event: Event = TextMessage(message)
        else:
            opcode, payload = OP_BINARY, message
            event = BinaryMessage(message)
        compressed = compression and draw(st.booleans())
        if compressed:
            payload = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]
        chunks = pieces(payload, split_points(draw, len(payload), 4))
        if draw(st.booleans()):
            chunks.append(b"")  # an empty final fragment
        for i, chunk in enumerate(chunks):
            if draw(st.integers(0, 3)) == 0:
                ping = draw(st.binary(max_size=125))
                out += frame(OP_PING, ping)
                expected.append(Ping(ping))
            out += frame(
                OP_CONT if i else opcode,
                chunk,
                fin=i == len(chunks) - 1,
                rsv1=compressed and i == 0,
            )
        expected.append(event)
    if draw(st.booleans()):
        out += frame(OP_CLOSE, close_payload(1000, b"bye"))
        expected.append(CloseReceived(1000, "bye"))
    return to_server, compression, bytes(out), expected


@PROPS
@given(encoded_streams(), st.data())
def test_any_stream_any_split(
    stream: tuple[bool, bool, bytes, list[Event]], data: st.DataObject
) -> None:
    to_server, compression, raw, expected = stream
    deflate = PerMessageDeflate(remote_max_window_bits=12) if compression else None
    proto = Protocol(SERVER if to_server else CLIENT, max_size=None, deflate=deflate)
    cuts = data.draw(st.lists(st.integers(0, max(len(raw), 1)), max_size=20))
    events: list[Event] = []
    for piece in pieces(raw, sorted(set(c for c in cuts if 0 < c < len(raw)))):
        events += proto.receive_data(piece)
    assert events == expected
    # Every Ping was answered with a Pong carrying its payload.
    pings = [e.data for e in expected if isinstance(e, Ping)]
    replies = parse_frames(b"".join(proto.data_to_send()))
    assert [f.payload for f in replies if f.opcode == 0xA] == pings


@st.composite
def option_pairs(draw: st.DrawFn) -> tuple[DeflateOptions, DeflateOptions]:
    def opts() -> DeflateOptions:
        return DeflateOptions(
            server_max_window_bits=draw(st.integers(8, 15)),
            client_max_window_bits=draw(st.integers(8, 15)),
            server_no_context_takeover=draw(st.booleans()),
            client_no_context_takeover=draw(st.booleans()),
            threshold=draw(st.sampled_from([0, 10, 64])),
        )

    return opts(), opts()


@PROPS
@given(option_pairs(), messages_st, st.data())
def test_library_peers_roundtrip(
    options: tuple[DeflateOptions, DeflateOptions], messages: list[str | bytes], data: st.DataObject
) -> None:
    """A client and a server Protocol with negotiated compression understand each other."""
    client_opts, server_opts = options
    srv_pmd = server_negotiate([client_offer(client_opts)], server_opts)
    assert srv_pmd is not None
    cli_pmd = client_accept([srv_pmd.response], client_opts)
    cli = Protocol(CLIENT, deflate=cli_pmd)
    srv = Protocol(SERVER, deflate=srv_pmd)
    for sender, receiver in ((cli, srv), (srv, cli)):
        wire = bytearray()
        for message in messages:
            opcode = OP_TEXT if isinstance(message, str) else OP_BINARY
            payload = message.encode() if isinstance(message, str) else message
            if data.draw(st.booleans()):
                chunks = pieces(payload, split_points(data.draw, len(payload), 3))
                for i, chunk in enumerate(chunks):
                    wire += b"".join(
                        sender.send_fragment(
                            OP_CONT if i else opcode, chunk, fin=i == len(chunks) - 1
                        )
                    )
                    if data.draw(st.booleans()):
                        wire += b"".join(sender.send_ping(b"x"))
            else:
                wire += b"".join(sender.send_message(opcode, payload))
        events: list[Event] = []
        for piece in pieces(bytes(wire), split_points(data.draw, len(wire), 10)):
            events += receiver.receive_data(piece)
        got = [e.data for e in events if isinstance(e, (TextMessage, BinaryMessage))]
        assert got == messages


def check_events(events: list[Event], state: dict[str, bool]) -> None:
    allowed = (TextMessage, BinaryMessage, Ping, Pong, CloseReceived, Failed)
    for event in events:
        assert isinstance(event, allowed), event
        assert not state["ended"], "event after the end of the connection"
        if isinstance(event, (Failed, CloseReceived)):
            state["ended"] = True
        if isinstance(event, Failed):
            assert event.code in (1002, 1007, 1009), event


@st.composite
def corrupted_streams(draw: st.DrawFn) -> tuple[bool, bool, bytes]:
    to_server, compression, raw, _ = draw(encoded_streams())
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not data and kind != "insert":
            continue
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return to_server, compression, bytes(data)


@PROPS
@given(corrupted_streams(), st.data())
def test_corruption_gives_only_events(
    stream: tuple[bool, bool, bytes], data: st.DataObject
) -> None:
    to_server, compression, raw = stream
    deflate = PerMessageDeflate(remote_max_window_bits=12) if compression else None
    max_size = data.draw(st.sampled_from([None, 50, 1 << 20]))
    proto = Protocol(SERVER if to_server else CLIENT, max_size=max_size, deflate=deflate)
    state = {"ended": False}
    for piece in pieces(raw, split_points(data.draw, len(raw), 10)):
        check_events(proto.receive_data(piece), state)
        while proto.has_pending_input:
            check_events(proto.receive_data(b""), state)
    check_events(proto.receive_eof(), state)
    assert state["ended"]
    # Whatever the protocol wants to send is well-formed frames.
    for frame in parse_frames(b"".join(proto.data_to_send())):
        assert frame.masked is (not to_server)


@PROPS
@given(st.binary(max_size=400), st.booleans(), st.booleans())
def test_garbage_gives_only_events(raw: bytes, to_server: bool, compression: bool) -> None:
    deflate = PerMessageDeflate() if compression else None
    proto = Protocol(SERVER if to_server else CLIENT, max_size=100, deflate=deflate)
    state = {"ended": False}
    check_events(proto.receive_data(raw), state)
    while proto.has_pending_input:
        check_events(proto.receive_data(b""), state)
    check_events(proto.receive_eof(), state)


header_names = st.sampled_from(
    [
        "Host",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Origin",
    ]
)
header_values = st.one_of(
    st.sampled_from(
        [
            "websocket",
            "Upgrade",
            "13",
            "dGhlIHNhbXBsZSBub25jZQ==",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=8; client_no_context_takeover",
            "chat, superchat",
        ]
    ),
    st.text(max_size=60),
)


@PROPS
@given(
    st.sampled_from(["GET", "POST", ""]),
    st.sampled_from(["1.1", "1.0", "2"]),
    st.lists(st.tuples(header_names, header_values), max_size=10),
)
def test_validate_request_raises_only_handshake_errors(
    method: str, version: str, headers: list[tuple[str, str]]
) -> None:
    try:
        hs = validate_request(
            method,
            version,
            Headers(headers),
            subprotocols=["chat"],
            compression=DeflateOptions(),
        )
    except InvalidHandshake:
        return
    hs.response()


@PROPS
@given(st.lists(st.text(max_size=80), max_size=3))
def test_extension_parsing_never_crashes(values: list[str]) -> None:
    server_negotiate(values, DeflateOptions())
    try:
        client_accept(values, DeflateOptions())
    except NegotiationError:
        pass


@PROPS
@given(st.binary(max_size=300))
def test_response_head_parsing_raises_only_invalid_response(raw: bytes) -> None:
    for data in (raw, b"HTTP/1.1 101 OK\r\n" + raw, raw + b"\r\n\r\n"):
        try:
            parse_response_head(data)
        except InvalidResponse:
            pass
