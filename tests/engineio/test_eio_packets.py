"""Engine.IO v4 packet and payload codec: wire vectors, errors and properties."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsio.engineio.packets import (
    CLOSE_WS,
    NOOP_WS,
    PING_PROBE,
    PING_WS,
    PONG_PROBE,
    PONG_WS,
    SEPARATOR,
    UPGRADE_WS,
    DecodeError,
    Handshake,
    Packet,
    PacketType,
    decode_payload,
    decode_ws,
    encode_message_payload,
    encode_message_ws,
    encode_payload,
    encode_ws,
    open_packet,
    parse_handshake,
)

T = PacketType
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- packet types and the Packet dataclass ------------------------------------------


def test_packet_type_values() -> None:
    assert [(t.name, int(t)) for t in PacketType] == [
        ("OPEN", 0),
        ("CLOSE", 1),
        ("PING", 2),
        ("PONG", 3),
        ("MESSAGE", 4),
        ("UPGRADE", 5),
        ("NOOP", 6),
    ]


def test_packet_defaults_and_coercion() -> None:
    assert Packet(T.PING) == Packet(T.PING, None)
    assert Packet(4, "x").type is T.MESSAGE  # type: ignore[arg-type]
    assert Packet(T.MESSAGE, bytearray(b"ab")).data == b"ab"
    assert Packet(T.MESSAGE, memoryview(b"ab")).data.__class__ is bytes
    assert Packet(T.CLOSE, "").data == ""


def test_packet_is_frozen() -> None:
    packet = Packet(T.MESSAGE, "x")
    with pytest.raises(AttributeError):
        packet.data = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("ptype", "data", "error"),
    [
        (T.PING, b"probe", ValueError),
        (T.OPEN, b"{}", ValueError),
        (T.CLOSE, "x", ValueError),
        (T.UPGRADE, "x", ValueError),
        (T.NOOP, "x", ValueError),
        (T.MESSAGE, 42, TypeError),
        (T.MESSAGE, ["x"], TypeError),
        (9, "x", ValueError),
    ],
)
def test_packet_rejects_invalid_combinations(ptype: int, data: object, error: type) -> None:
    with pytest.raises(error):
        Packet(ptype, data)  # type: ignore[arg-type]


# -- WebSocket transport ------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "wire"),
    [
        (Packet(T.OPEN, '{"sid":"x"}'), '0{"sid":"x"}'),
        (Packet(T.CLOSE), "1"),
        (Packet(T.PING), "2"),
        (Packet(T.PING, "probe"), "2probe"),
        (Packet(T.PONG), "3"),
        (Packet(T.PONG, "probe"), "3probe"),
        (Packet(T.MESSAGE, "hello"), "4hello"),
        (Packet(T.MESSAGE, "HelloWorld"), "4HelloWorld"),
        (Packet(T.MESSAGE, ""), "4"),
        (Packet(T.MESSAGE, "€€€ 😀"), "4€€€ 😀"),
        (Packet(T.MESSAGE, '2["hey","Jude"]'), '42["hey","Jude"]'),
        (Packet(T.MESSAGE, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04"),
        (Packet(T.MESSAGE, b""), b""),
        (Packet(T.UPGRADE), "5"),
        (Packet(T.NOOP), "6"),
    ],
)
def test_encode_ws(packet: Packet, wire: str | bytes) -> None:
    assert encode_ws(packet) == wire
    assert type(encode_ws(packet)) is type(wire)


def test_control_constants_match_encoder() -> None:
    assert encode_ws(Packet(T.CLOSE)) == CLOSE_WS
    assert encode_ws(Packet(T.PING)) == PING_WS
    assert encode_ws(Packet(T.PONG)) == PONG_WS
    assert encode_ws(Packet(T.UPGRADE)) == UPGRADE_WS
    assert encode_ws(Packet(T.NOOP)) == NOOP_WS
    assert encode_ws(Packet(T.PING, "probe")) == PING_PROBE
    assert encode_ws(Packet(T.PONG, "probe")) == PONG_PROBE
    assert SEPARATOR == "\x1e"


@pytest.mark.parametrize(
    ("wire", "packet"),
    [
        ("1", Packet(T.CLOSE)),
        ("2", Packet(T.PING)),
        ("2probe", Packet(T.PING, "probe")),
        ("3", Packet(T.PONG)),
        ("3probe", Packet(T.PONG, "probe")),
        ("4", Packet(T.MESSAGE, "")),
        ("4hello", Packet(T.MESSAGE, "hello")),
        ("44", Packet(T.MESSAGE, "4")),
        ("40/admin,", Packet(T.MESSAGE, "0/admin,")),
        ("4\x1e", Packet(T.MESSAGE, "\x1e")),
        ("5", Packet(T.UPGRADE)),
        ("6", Packet(T.NOOP)),
        (b"\x01\x02\x03", Packet(T.MESSAGE, b"\x01\x02\x03")),
        (bytearray(b"\x00"), Packet(T.MESSAGE, b"\x00")),
        (memoryview(b"ab"), Packet(T.MESSAGE, b"ab")),
        (b"", Packet(T.MESSAGE, b"")),
        (b"4hello", Packet(T.MESSAGE, b"4hello")),
    ],
)
def test_decode_ws_from_client(wire: str | bytes, packet: Packet) -> None:
    decoded = decode_ws(wire)
    assert decoded == packet
    assert decoded.type is packet.type
    assert type(decoded.data) is type(packet.data)


@pytest.mark.parametrize(
    ("wire", "packet"),
    [
        ('0{"sid":"abc"}', Packet(T.OPEN, '{"sid":"abc"}')),
        ("2", Packet(T.PING)),
        ("3probe", Packet(T.PONG, "probe")),
        ("4hey", Packet(T.MESSAGE, "hey")),
        ("6", Packet(T.NOOP)),
        ("1", Packet(T.CLOSE)),
    ],
)
def test_decode_ws_from_server(wire: str, packet: Packet) -> None:
    assert decode_ws(wire, from_server=True) == packet


@pytest.mark.parametrize(
    ("wire", "from_server", "message"),
    [
        ("", False, "empty packet"),
        ("", True, "empty packet"),
        ("7", False, "unknown packet type '7'"),
        ("9hello", False, "unknown packet type '9'"),
        ("x", False, "unknown packet type 'x'"),
        ("b", False, "unknown packet type 'b'"),
        ("bAQID", False, "unknown packet type 'b'"),
        (" 4", False, "unknown packet type ' '"),
        ("٤hello", False, "unknown packet type"),
        ('0{"sid":"x"}', False, "OPEN packet sent by a client"),
        ("0", False, "OPEN packet sent by a client"),
        ("0", True, "OPEN packet without handshake data"),
        ("1x", False, "CLOSE packet must not carry a payload"),
        ("1 ", True, "CLOSE packet must not carry a payload"),
        ("5probe", False, "UPGRADE packet must not carry a payload"),
        ("5", True, "UPGRADE packet sent by a server"),
        ("6x", True, "NOOP packet must not carry a payload"),
    ],
)
def test_decode_ws_errors(wire: str, from_server: bool, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_ws(wire, from_server=from_server)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_decode_ws_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        decode_ws(42)  # type: ignore[arg-type]


def test_encode_message_ws() -> None:
    assert encode_message_ws("hello") == "4hello"
    assert encode_message_ws("") == "4"
    assert encode_message_ws(b"\x01") == b"\x01"
    assert encode_message_ws(bytearray(b"\x01")) == b"\x01"
    assert type(encode_message_ws(memoryview(b"\x01"))) is bytes
    with pytest.raises(TypeError):
        encode_message_ws(1)  # type: ignore[arg-type]


# -- HTTP long-polling transport ---------------------------------------------------


@pytest.mark.parametrize(
    ("packets", "body"),
    [
        # engine.io-protocol v4 examples
        (
            [Packet(T.MESSAGE, "hello"), Packet(T.PING), Packet(T.MESSAGE, "world")],
            "4hello\x1e2\x1e4world",
        ),
        (
            [Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, b"\x01\x02\x03\x04")],
            "4hello\x1ebAQIDBA==",
        ),
        # engine.io-parser 4.0.0 changelog examples
        ([Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, "€€€")], "4hello\x1e4€€€"),
        ([Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, b"\x01\x02\x03")], "4hello\x1ebAQID"),
        (
            [Packet(T.MESSAGE, '2["hello"]'), Packet(T.MESSAGE, '2["world"]')],
            '42["hello"]\x1e42["world"]',
        ),
        ([Packet(T.NOOP)], "6"),
        ([Packet(T.MESSAGE, b"")], "b"),
        ([Packet(T.MESSAGE, "")], "4"),
        ([Packet(T.MESSAGE, b"\xfb\xff")], "b+/8="),
    ],
)
def test_payload_vectors(packets: list[Packet], body: str) -> None:
    assert encode_payload(packets) == body
    assert encode_payload(iter(packets)) == body
    assert decode_payload(body) == packets
    assert decode_payload(body.encode("utf-8")) == packets


def test_encode_payload_errors() -> None:
    with pytest.raises(ValueError, match="at least one packet"):
        encode_payload([])
    with pytest.raises(ValueError, match="record separator"):
        encode_payload([Packet(T.MESSAGE, "a\x1eb")])
    with pytest.raises(ValueError, match="record separator"):
        encode_message_payload("a\x1eb")


def test_encode_message_payload() -> None:
    assert encode_message_payload("hello") == "4hello"
    assert encode_message_payload(b"\x01\x02\x03\x04") == "bAQIDBA=="
    assert encode_message_payload(bytearray(b"\x01\x02\x03")) == "bAQID"
    with pytest.raises(TypeError):
        encode_message_payload(None)  # type: ignore[arg-type]


def test_decode_payload_open_from_server() -> None:
    body = '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"]}\x1e40'
    assert decode_payload(body, from_server=True) == [
        Packet(T.OPEN, '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"]}'),
        Packet(T.MESSAGE, "0"),
    ]
    with pytest.raises(DecodeError, match="OPEN packet sent by a client"):
        decode_payload(body)


def test_decode_payload_max_packets() -> None:
    body = "4a\x1e4b\x1e4c"
    assert len(decode_payload(body, max_packets=3)) == 3
    assert len(decode_payload("4a", max_packets=1)) == 1
    with pytest.raises(DecodeError, match="more than 2 packets"):
        decode_payload(body, max_packets=2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty payload"),
        (b"", "empty payload"),
        (b"4\xff", "not valid UTF-8"),
        (b"4\xed\xa0\x80", "not valid UTF-8"),
        (b"\xef\xbb\xbf4a", "unknown packet type"),
        ("4a\x1e", "empty packet at position 1"),
        ("\x1e4a", "empty packet at position 0"),
        ("4a\x1e\x1e4b", "empty packet at position 1"),
        ("\x1e", "empty packet at position 0"),
        ("4a\x1e9", "unknown packet type '9'"),
        ("bAQ", "invalid base64"),
        ("bAQIDBA", "invalid base64"),
        ("bAQIDBA=", "invalid base64"),
        ("bAQIDBA===", "invalid base64"),
        ("bAQ-D", "invalid base64"),
        ("bAQ_D", "invalid base64"),
        ("b AQID", "invalid base64"),
        ("bAQID\n", "invalid base64"),
        ("bAQIDBA==AQID", "invalid base64"),
        ("b=AQI", "invalid base64"),
        ("bA", "invalid base64"),
        ("bé", "invalid base64"),
        ("4a\x1e1x", "CLOSE packet must not carry a payload"),
        ("4a\x1e5", "UPGRADE packet sent by a server"),
    ],
)
def test_decode_payload_errors(body: str | bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_payload(body, from_server=body == "4a\x1e5")


def test_decode_payload_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        decode_payload(None)  # type: ignore[arg-type]


# -- handshake ------------------------------------------------------------------


def test_open_packet_exact_json() -> None:
    packet = open_packet("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 20000, 1000000)
    assert packet.type is T.OPEN
    assert encode_ws(packet) == (
        '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
        '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
    )
    assert list(json.loads(packet.data)) == [  # type: ignore[arg-type]
        "sid",
        "upgrades",
        "pingInterval",
        "pingTimeout",
        "maxPayload",
    ]


def test_open_packet_short_intervals_and_no_upgrades() -> None:
    packet = open_packet("s", (), 300, 200, 1)
    assert packet.data == (
        '{"sid":"s","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1}'
    )


@pytest.mark.parametrize(
    "args",
    [
        ("", ["websocket"], 1, 1, 1),
        (1, ["websocket"], 1, 1, 1),
        ("s", "websocket", 1, 1, 1),
        ("s", [1], 1, 1, 1),
        ("s", [], 0.3, 1, 1),
        ("s", [], 1, -1, 1),
        ("s", [], 1, 1, True),
        ("s", [], 1, 1, None),
    ],
)
def test_open_packet_rejects_bad_arguments(args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        open_packet(*args)  # type: ignore[arg-type]


def test_parse_handshake_round_trip() -> None:
    packet = open_packet("abc", ["websocket"], 25000, 20000, 1000000)
    expected = Handshake("abc", ("websocket",), 25000, 20000, 1000000)
    assert parse_handshake(packet) == expected
    assert parse_handshake(packet.data) == expected  # type: ignore[arg-type]
    decoded = decode_ws(encode_ws(packet), from_server=True)
    assert parse_handshake(decoded) == expected


def test_parse_handshake_without_max_payload_and_extra_keys() -> None:
    data = '{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":5000,"extra":1}'
    assert parse_handshake(data) == Handshake("a", (), 25000, 5000, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"upgrades":[],"pingInterval":1,"pingTimeout":1}', "sid"),
        ('{"sid":"","upgrades":[],"pingInterval":1,"pingTimeout":1}', "sid"),
        ('{"sid":"a","pingInterval":1,"pingTimeout":1}', "upgrades"),
        ('{"sid":"a","upgrades":[1],"pingInterval":1,"pingTimeout":1}', "upgrades"),
        ('{"sid":"a","upgrades":[],"pingTimeout":1}', "pingInterval"),
        ('{"sid":"a","upgrades":[],"pingInterval":2.5,"pingTimeout":1}', "pingInterval"),
        ('{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":-1}', "pingTimeout"),
        ('{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":true}', "pingTimeout"),
        ('{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":null}', "max"),
    ],
)
def test_parse_handshake_errors(data: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_handshake(data)


def test_parse_handshake_rejects_other_packets() -> None:
    with pytest.raises(DecodeError, match="not an OPEN packet"):
        parse_handshake(Packet(T.MESSAGE, "{}"))


# -- properties -------------------------------------------------------------------

_texts = st.text(max_size=40)
_payloads = st.text(max_size=40).filter(lambda s: SEPARATOR not in s)


@st.composite
def packets(draw: st.DrawFn, *, polling: bool = False) -> Packet:
    """Valid packets (text without the separator when they go by polling)."""
    texts = _payloads if polling else _texts
    ptype = draw(st.sampled_from(list(PacketType)))
    if ptype is T.MESSAGE:
        return Packet(ptype, draw(texts | st.binary(max_size=40)))
    if ptype is T.OPEN:
        return Packet(ptype, draw(texts.filter(bool)))
    if ptype in (T.PING, T.PONG):
        return Packet(ptype, draw(st.none() | texts.filter(bool)))
    return Packet(ptype)


def _sender_is_server(packet: Packet) -> bool:
    return packet.type is not T.UPGRADE


@PROPERTY
@given(packets())
def test_ws_round_trip(packet: Packet) -> None:
    wire = encode_ws(packet)
    assert decode_ws(wire, from_server=_sender_is_server(packet)) == packet


@PROPERTY
@given(st.lists(packets(polling=True), min_size=1, max_size=8))
def test_payload_round_trip(items: list[Packet]) -> None:
    body = encode_payload(items)
    from_server = all(_sender_is_server(p) for p in items)
    if not from_server and any(p.type is T.OPEN for p in items):
        items = [p for p in items if p.type is not T.OPEN] or [Packet(T.NOOP)]
        body = encode_payload(items)
    assert decode_payload(body, from_server=from_server) == items
    assert decode_payload(body.encode("utf-8"), from_server=from_server) == items
    assert body.count(SEPARATOR) == len(items) - 1


@PROPERTY
@given(st.binary(max_size=64))
def test_binary_base64_matches_stdlib(data: bytes) -> None:
    assert encode_payload([Packet(T.MESSAGE, data)]) == "b" + base64.b64encode(data).decode()


_any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)


@PROPERTY
@given(st.one_of(_any_text, st.binary(max_size=60)), st.booleans())
def test_decoders_raise_only_decode_error(data: str | bytes, from_server: bool) -> None:
    for decode in (decode_ws, decode_payload):
        try:
            result = decode(data, from_server=from_server)  # type: ignore[operator]
        except DecodeError:
            continue
        assert isinstance(result, (Packet, list))


@st.composite
def corrupted_payloads(draw: st.DrawFn) -> str:
    body = encode_payload(draw(st.lists(packets(polling=True), min_size=1, max_size=5)))
    chars = list(body)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        pos = draw(st.integers(0, len(chars)))
        char = draw(st.sampled_from(list("0123456789b=/+A\x1e\x00é")) | st.characters())
        if op == "insert":
            chars.insert(pos, char)
        elif chars and pos < len(chars):
            if op == "delete":
                del chars[pos]
            else:
                chars[pos] = char
    return "".join(chars)


@PROPERTY
@given(corrupted_payloads(), st.booleans())
def test_corrupted_payloads_fail_cleanly_or_decode_validly(body: str, from_server: bool) -> None:
    try:
        decoded = decode_payload(body, from_server=from_server)
    except DecodeError:
        return
    assert decoded
    for packet in decoded:
        assert isinstance(packet, Packet)
        if isinstance(packet.data, bytes):
            assert packet.type is T.MESSAGE
    # What decodes re-encodes, and decodes again to the same packets.
    if all(not (isinstance(p.data, str) and SEPARATOR in p.data) for p in decoded):
        assert decode_payload(encode_payload(decoded), from_server=from_server) == decoded
