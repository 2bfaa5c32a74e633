"""Socket.IO v5 packet codecs (JSON and msgpack parsers) and the JSON dialect they use."""

from __future__ import annotations

import datetime
import enum
import json
import math
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsio import _json
from wsio.socketio.packets import (
    MAX_ACK_ID,
    RESERVED_EVENTS,
    DecodeError,
    Decoder,
    Encoder,
    MsgpackDecoder,
    MsgpackEncoder,
    Packet,
    PacketType,
    make_parser,
)

T = PacketType
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(params=["orjson", "stdlib"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with each JSON implementation."""
    monkeypatch.setattr(_json, "_USE_ORJSON", request.param == "orjson")
    yield request.param


def decode_all(parts: list[str | bytes], decoder: Decoder | None = None) -> Packet | None:
    decoder = decoder or Decoder()
    result = None
    for index, part in enumerate(parts):
        result = decoder.feed(part)
        if index < len(parts) - 1:
            assert result is None
    return result


# -- exact wire strings -----------------------------------------------------------

# Every row of the socket.io-protocol v5 "Packet encoding" tables, the
# socket.io-parser test vectors, and packets whose encodings were compared byte
# for byte with socket.io-parser 4.2.7.
VECTORS: list[tuple[Packet, list[str | bytes]]] = [
    (Packet(T.CONNECT, "/"), ["0"]),
    (Packet(T.CONNECT, "/", {"sid": "wZX3oN0bSVIhsaknAAAI"}), ['0{"sid":"wZX3oN0bSVIhsaknAAAI"}']),
    (Packet(T.CONNECT, "/admin"), ["0/admin,"]),
    (
        Packet(T.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
    ),
    (Packet(T.CONNECT, "/", {"token": "x"}), ['0{"token":"x"}']),
    (Packet(T.CONNECT, "/woot", {"token": "123"}), ['0/woot,{"token":"123"}']),
    (
        Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}),
        ['4{"message":"Not authorized"}'],
    ),
    (Packet(T.CONNECT_ERROR, "/", "Unauthorized"), ['4"Unauthorized"']),
    (
        Packet(T.CONNECT_ERROR, "/nsp", {"message": "Invalid namespace"}),
        ['4/nsp,{"message":"Invalid namespace"}'],
    ),
    (Packet(T.EVENT, "/", ["foo"]), ['2["foo"]']),
    (Packet(T.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (Packet(T.EVENT, "/", ["a", 1]), ['2["a",1]']),
    (Packet(T.EVENT, "/", ["a"], 1), ['21["a"]']),
    (Packet(T.EVENT, "/admin", ["a"], 1), ['2/admin,1["a"]']),
    (Packet(T.EVENT, "/", ["a", 1, {}]), ['2["a",1,{}]']),
    (Packet(T.EVENT, "/", [1, "a", {}]), ['2[1,"a",{}]']),
    (Packet(T.EVENT, "/test", ["a", 1, {}], 1), ['2/test,1["a",1,{}]']),
    (Packet(T.EVENT, "/", ["hey", "Jude"]), ['2["hey","Jude"]']),
    (
        Packet(T.EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
        ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (Packet(T.EVENT, "/", ["x", b"\x00"]), ['51-["x",{"_placeholder":true,"num":0}]', b"\x00"]),
    (
        Packet(T.EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        [
            '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            b"\x01\x02",
            b"\x03\x04",
        ],
    ),
    (Packet(T.EVENT, "/", ["foo"], 12), ['212["foo"]']),
    (Packet(T.ACK, "/", [], 12), ["312[]"]),
    (Packet(T.EVENT, "/admin", ["foo"], 13), ['2/admin,13["foo"]']),
    (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (
        Packet(T.EVENT, "/", ["foo", b"\x01\x02\x03\x04"], 14),
        ['51-14["foo",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (Packet(T.ACK, "/", ["bar"], 14), ['314["bar"]']),
    (
        Packet(T.ACK, "/", ["bar", b"\x01\x02\x03\x04"], 15),
        ['61-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (Packet(T.ACK, "/", ["a", 1, {}], 123), ['3123["a",1,{}]']),
    (
        Packet(T.ACK, "/admin", [b"\xff"], 1),
        ['61-/admin,1[{"_placeholder":true,"num":0}]', b"\xff"],
    ),
    (Packet(T.DISCONNECT, "/"), ["1"]),
    (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
    (Packet(T.DISCONNECT, "/woot"), ["1/woot,"]),
    (
        Packet(T.EVENT, "/cool", ["a", {"b": ["c", b"abc"]}], 23),
        ['51-/cool,23["a",{"b":["c",{"_placeholder":true,"num":0}]}]', b"abc"],
    ),
    (
        Packet(T.ACK, "/back", ["a", b"xxx", {}], 127),
        ['61-/back,127["a",{"_placeholder":true,"num":0},{}]', b"xxx"],
    ),
    (
        Packet(T.EVENT, "/", ["x", {"nested": [[b""], {"deep": [1, b"\xff"]}]}], 0),
        [
            '52-0["x",{"nested":[[{"_placeholder":true,"num":0}],'
            '{"deep":[1,{"_placeholder":true,"num":1}]}]}]',
            b"",
            b"\xff",
        ],
    ),
    (
        Packet(T.EVENT, "/", ["chat", {"text": 'héllo € 😀 \x1e \u2028 " \\ / \x00'}]),
        ['2["chat",{"text":"héllo € 😀 \\u001e \u2028 \\" \\\\ / \\u0000"}]'],
    ),
    (
        Packet(T.EVENT, "/", ["n", -0.5, 123456789, -42, True, None]),
        ['2["n",-0.5,123456789,-42,true,null]'],
    ),
    (Packet(T.EVENT, "/", [1.5]), ["2[1.5]"]),
]


@pytest.mark.parametrize(("packet", "wire"), VECTORS)
def test_encode_vectors(packet: Packet, wire: list[str | bytes], json_backend: str) -> None:
    assert Encoder().encode(packet) == wire


@pytest.mark.parametrize(("packet", "wire"), VECTORS)
def test_decode_vectors(packet: Packet, wire: list[str | bytes], json_backend: str) -> None:
    decoded = decode_all(wire)
    assert decoded == packet
    assert decoded is not None and decoded.type is packet.type


def test_event_on_the_wire_inside_engineio() -> None:
    from wsio.engineio.packets import decode_ws, encode_message_ws

    wire = encode_message_ws(Encoder().encode(Packet(T.EVENT, "/", ["foo"]))[0])
    assert wire == '42["foo"]'
    assert Decoder().feed(decode_ws(wire).data) == Packet(T.EVENT, "/", ["foo"])  # type: ignore[arg-type]


def test_encoder_accepts_tuples_and_bytes_likes() -> None:
    encoder = Encoder()
    assert encoder.encode(Packet(T.EVENT, "/", ("a", (1, 2)))) == ['2["a",[1,2]]']
    assert encoder.encode(Packet(T.EVENT, "/", ["a", bytearray(b"\x01"), memoryview(b"\x02")])) == [
        '52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        b"\x01",
        b"\x02",
    ]


def test_binary_types_fold_into_plain_ones() -> None:
    encoder = Encoder()
    # Declared binary without bytes: sent as a plain EVENT (a count of 0 is illegal).
    assert encoder.encode(Packet(T.BINARY_EVENT, "/", ["a"])) == ['2["a"]']
    assert encoder.encode(Packet(T.BINARY_ACK, "/", [1], 2)) == ["32[1]"]
    assert encoder.encode(Packet(T.BINARY_EVENT, "/", ["a", b"x"])) == [
        '51-["a",{"_placeholder":true,"num":0}]',
        b"x",
    ]
    assert encoder.encode(Packet(2, "/", ["a"])) == ['2["a"]']  # type: ignore[arg-type]


def test_decoded_binary_packet_is_plain_event_and_reencodes() -> None:
    wire = Encoder().encode(Packet(T.EVENT, "/", ["a", b"x"], 3))
    decoded = decode_all(wire)
    assert decoded == Packet(T.EVENT, "/", ["a", b"x"], 3)
    assert Encoder().encode(decoded) == wire  # type: ignore[arg-type]


def test_same_bytes_object_twice_gives_two_attachments() -> None:
    blob = b"abc"
    wire = Encoder().encode(Packet(T.EVENT, "/", ["a", blob, blob]))
    assert wire[0].startswith("52-")  # type: ignore[union-attr]
    assert wire[1:] == [blob, blob]


# -- decoding details ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "packet"),
    [
        ("0/custom", Packet(T.CONNECT, "/custom")),
        ("0/admin,", Packet(T.CONNECT, "/admin")),
        ("0", Packet(T.CONNECT, "/")),
        ("0{}", Packet(T.CONNECT, "/", {})),
        ("1/custom", Packet(T.DISCONNECT, "/custom")),
        ('2012["a"]', Packet(T.EVENT, "/", ["a"], 12)),
        ('2["a"] ', Packet(T.EVENT, "/", ["a"])),
        ('2 ["a"]', Packet(T.EVENT, "/", ["a"])),
        ('2/,["a"]', Packet(T.EVENT, "/", ["a"])),
        ('2/a/b,["a"]', Packet(T.EVENT, "/a/b", ["a"])),
        ("2[1.5]", Packet(T.EVENT, "/", [1.5])),
        ("2[-3]", Packet(T.EVENT, "/", [-3])),
        ('2["connectx"]', Packet(T.EVENT, "/", ["connectx"])),
        ('2["toString"]', Packet(T.EVENT, "/", ["toString"])),
        ("3/a,0[]", Packet(T.ACK, "/a", [], 0)),
        (f"3{MAX_ACK_ID}[]", Packet(T.ACK, "/", [], MAX_ACK_ID)),
        ('4"legacy string"', Packet(T.CONNECT_ERROR, "/", "legacy string")),
        (
            '2["a",{"_placeholder":false,"num":0}]',
            Packet(T.EVENT, "/", ["a", {"_placeholder": False, "num": 0}]),
        ),
        ('2["a",{"_placeholder":1}]', Packet(T.EVENT, "/", ["a", {"_placeholder": 1}])),
    ],
)
def test_decode_details(wire: str, packet: Packet, json_backend: str) -> None:
    assert Decoder().feed(wire) == packet


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        # socket.io-parser "invalid payload" vectors
        ('442["some","data"', "CONNECT_ERROR packets carry no ack id"),
        ('0/admin,"invalid"', "CONNECT payload must be an object"),
        ("0[]", "CONNECT payload must be an object"),
        ("1/admin,{}", "DISCONNECT packets carry no payload"),
        ('2/admin,"invalid', "invalid JSON"),
        ("2/admin,{}", "EVENT payload must be a non-empty list"),
        ('2[{"toString":"foo"}]', "event name must be a string or a number"),
        ('2[true,"foo"]', "event name must be a string or a number"),
        ('2[null,"bar"]', "event name must be a string or a number"),
        ('2["connect"]', "reserved event name"),
        ('2["disconnect","123"]', "reserved event name"),
        # socket.io-parser "Illegal attachments" vectors
        ("5", "illegal attachment count"),
        ("51", "illegal attachment count"),
        ("50-", "without attachments"),
        ("5a-", "illegal attachment count"),
        ("51.23-", "illegal attachment count"),
        ("999", "unknown packet type '9'"),
        # more
        ("", "empty packet"),
        ("7", "unknown packet type '7'"),
        ("x", "unknown packet type 'x'"),
        ("-1", "unknown packet type '-'"),
        ("5-[]", "illegal attachment count"),
        ("5٣-[]", "illegal attachment count"),
        ("5²-[]", "illegal attachment count"),
        ("51234567890-[]", "illegal attachment count"),
        ("511-[]", "too many attachments"),
        ("2", "EVENT payload must be a non-empty list"),
        ("21", "EVENT payload must be a non-empty list"),
        ("2/admin", "EVENT payload must be a non-empty list"),
        ("2[]", "EVENT payload must be a non-empty list"),
        ('2"a"', "EVENT payload must be a non-empty list"),
        ("2{}", "EVENT payload must be a non-empty list"),
        ("2[[]]", "event name must be a string or a number"),
        ('2["a"]x', "invalid JSON"),
        ('2["a"][]', "invalid JSON"),
        ("2[NaN]", "invalid JSON"),
        ('2["a",Infinity]', "invalid JSON"),
        ('2["a",-Infinity]', "invalid JSON"),
        ('2["a",1e400]', "invalid JSON"),
        ('2["\\ud800"]', "invalid JSON"),
        ("2['a']", "invalid JSON"),
        ('2["a",]', "invalid JSON"),
        ('2admin,["a"]', "invalid JSON"),
        ('2/admin["a"]', "EVENT payload must be a non-empty list"),
        ('212345678901234567["a"]', "ack id too long"),
        ('29007199254740992["a"]', "ack id must be an integer between"),
        ("3[]", "ACK packets need an ack id"),
        ('31"a"', "ACK payload must be a list"),
        ("31{}", "ACK payload must be a list"),
        ("01{}", "CONNECT packets carry no ack id"),
        ("11", "DISCONNECT packets carry no ack id"),
        ("4", "CONNECT_ERROR payload must be an object"),
        ("4[]", "CONNECT_ERROR payload must be an object"),
        ("41", "CONNECT_ERROR packets carry no ack id"),
        ('0{"a":1}}', "invalid JSON"),
        ('2["a",{"_placeholder":true,"num":0}]', "placeholder in a packet without attachments"),
        ('2["a",[{"_placeholder":true}]]', "placeholder in a packet without attachments"),
        (
            '2["a",{"\\u005fplaceholder":true,"num":0}]',
            "placeholder in a packet without attachments",
        ),
        ('0{"x":{"_placeholder":true,"num":0}}', "placeholder in a packet without attachments"),
    ],
)
def test_decode_errors(wire: str, message: str, json_backend: str) -> None:
    decoder = Decoder()
    with pytest.raises(DecodeError, match=message):
        decoder.feed(wire)
    assert not decoder.pending


def test_reserved_events_constant() -> None:
    expected = {"connect", "connect_error", "disconnect", "disconnecting", "newListener"}
    assert expected | {"removeListener"} == RESERVED_EVENTS


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_reserved_names_rejected_unless_allowed(name: str) -> None:
    wire = f'2["{name}",1]'
    with pytest.raises(DecodeError, match="reserved"):
        Decoder().feed(wire)
    assert Decoder(reject_reserved=False).feed(wire) == Packet(T.EVENT, "/", [name, 1])
    with pytest.raises(ValueError, match="reserved"):
        Encoder().encode(Packet(T.EVENT, "/", [name, 1]))
    assert Encoder(reject_reserved=False).encode(Packet(T.EVENT, "/", [name, 1])) == [wire]
    # A reserved word is harmless in an ACK's arguments.
    assert Decoder().feed(f'31["{name}"]') == Packet(T.ACK, "/", [name], 1)


# -- binary attachments -----------------------------------------------------------


def test_binary_packet_waits_for_attachments() -> None:
    decoder = Decoder()
    assert (
        decoder.feed('52-["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]') is None
    )
    assert decoder.pending
    assert decoder.feed(b"zero") is None
    assert decoder.feed(bytearray(b"one")) == Packet(T.EVENT, "/", ["a", b"one", b"zero"])
    assert not decoder.pending
    assert decoder.feed('2["next"]') == Packet(T.EVENT, "/", ["next"])


def test_attachment_used_twice_is_accepted() -> None:
    packet = decode_all(
        ['51-["a",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":0}]]', b"x"]
    )
    assert packet == Packet(T.EVENT, "/", ["a", b"x", [b"x"]])


def test_placeholder_extra_keys_follow_socket_io_parser() -> None:
    # socket.io-parser replaces any object whose _placeholder is true.
    packet = decode_all(['51-["a",{"_placeholder":true,"num":0,"x":1}]', memoryview(b"m")])
    assert packet == Packet(T.EVENT, "/", ["a", b"m"])
    assert type(packet.data[1]) is bytes  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([b"world"], "no binary packet was pending"),
        (
            ['51-["hello",{"_placeholder":true,"num":0}]', '2["hello"]'],
            "text packet received while",
        ),
        (
            ['51-["hello",{"_placeholder":true,"num":"splice"}]', b"world"],
            "illegal attachment placeholder",
        ),
        (
            ['51-["hello",{"_placeholder":true,"num":1}]', b"world"],
            "illegal attachment placeholder",
        ),
        (
            ['51-["hello",{"_placeholder":true,"num":-1}]', b"world"],
            "illegal attachment placeholder",
        ),
        (
            ['51-["hello",{"_placeholder":true,"num":0.0}]', b"world"],
            "illegal attachment placeholder",
        ),
        (
            ['51-["hello",{"_placeholder":true,"num":true}]', b"world"],
            "illegal attachment placeholder",
        ),
        (['51-["hello",{"_placeholder":true}]', b"world"], "illegal attachment placeholder"),
        (['51-["hello"]', b"world"], "attachment 0 is never referenced"),
        (
            ['52-["a",{"_placeholder":true,"num":0}]', b"x", b"y"],
            "attachment 1 is never referenced",
        ),
        (['51-["connect",{"_placeholder":true,"num":0}]'], "reserved"),
        (['61-[{"_placeholder":true,"num":0}]'], "ACK packets need an ack id"),
        (['51-"x"'], "EVENT payload must be a non-empty list"),
    ],
)
def test_binary_errors(parts: list[str | bytes], message: str) -> None:
    decoder = Decoder()
    with pytest.raises(DecodeError, match=message):
        for part in parts:
            decoder.feed(part)
    assert not decoder.pending
    # The decoder is usable again after an error.
    assert decoder.feed('2["ok"]') == Packet(T.EVENT, "/", ["ok"])


def test_max_attachments_option() -> None:
    wire = '53-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]'
    with pytest.raises(DecodeError, match="too many attachments"):
        Decoder(max_attachments=2).feed(wire)
    assert Decoder(max_attachments=3).feed(wire) is None
    with pytest.raises(ValueError):
        Decoder(max_attachments=0)
    wire = '512-["a"' + "".join(f',{{"_placeholder":true,"num":{i}}}' for i in range(12)) + "]"
    decoder = Decoder(max_attachments=12)
    assert decoder.feed(wire) is None
    for i in range(11):
        assert decoder.feed(bytes([i])) is None
    assert decoder.feed(b"\x0b") == Packet(T.EVENT, "/", ["a", *[bytes([i]) for i in range(12)]])


def test_reset_drops_pending_packet() -> None:
    decoder = Decoder()
    assert decoder.feed('51-["hello"]') is None
    decoder.reset()
    assert not decoder.pending
    assert decoder.feed('2["hello"]') == Packet(T.EVENT, "/", ["hello"])


def test_decoder_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        Decoder().feed(999)  # type: ignore[arg-type]


# -- encoder validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (Packet(T.EVENT, "/a,b", ["hello"]), "invalid namespace"),
        (Packet(T.EVENT, "/a,b", ["hello", b"\x01"]), "invalid namespace"),
        (Packet(T.EVENT, "admin", ["hello"]), "invalid namespace"),
        (Packet(T.EVENT, "", ["hello"]), "invalid namespace"),
        (Packet(T.EVENT, None, ["hello"]), "invalid namespace"),  # type: ignore[arg-type]
        (Packet(T.EVENT, "/", []), "non-empty list"),
        (Packet(T.EVENT, "/", None), "non-empty list"),
        (Packet(T.EVENT, "/", "a"), "non-empty list"),
        (Packet(T.EVENT, "/", [None]), "event name"),
        (Packet(T.EVENT, "/", [True]), "event name"),
        (Packet(T.EVENT, "/", [b"name"]), "event name"),
        (Packet(T.EVENT, "/", [math.nan]), "finite"),
        (Packet(T.EVENT, "/", [math.inf]), "finite"),
        (Packet(T.EVENT, "/", ["connect"]), "reserved"),
        (Packet(T.EVENT, "/", ["a"], -1), "ack id"),
        (Packet(T.EVENT, "/", ["a"], MAX_ACK_ID + 1), "ack id"),
        (Packet(T.EVENT, "/", ["a"], True), "ack id"),  # type: ignore[arg-type]
        (Packet(T.EVENT, "/", ["a"], "1"), "ack id"),  # type: ignore[arg-type]
        (Packet(T.ACK, "/", []), "ACK packets need an ack id"),
        (Packet(T.ACK, "/", None, 1), "ACK payload must be a list"),
        (Packet(T.ACK, "/", {"a": 1}, 1), "ACK payload must be a list"),
        (Packet(T.CONNECT, "/", ["a"]), "CONNECT payload must be an object"),
        (Packet(T.CONNECT, "/", {"a": 1}, 1), "CONNECT packets carry no ack id"),
        (Packet(T.DISCONNECT, "/", {}), "DISCONNECT packets carry no payload"),
        (Packet(T.CONNECT_ERROR, "/"), "CONNECT_ERROR payload must be an object"),
        (Packet(T.CONNECT_ERROR, "/", 42), "CONNECT_ERROR payload must be an object"),
        (Packet(7, "/"), "unknown packet type"),  # type: ignore[arg-type]
        (Packet("2", "/", ["a"]), "unknown packet type"),  # type: ignore[arg-type]
        (Packet(T.EVENT, "/", ["a", {"_placeholder": True, "num": 0}]), "placeholder"),
        (Packet(T.EVENT, "/", ["a", b"x", {"_placeholder": True}]), "placeholder"),
    ],
)
def test_encoder_rejects_invalid_packets(packet: Packet, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Encoder().encode(packet)


@pytest.mark.parametrize(
    "packet",
    [
        Packet(T.EVENT, "/", ["a", {1, 2}]),
        Packet(T.EVENT, "/", ["a", b"x", {1, 2}]),
        Packet(T.EVENT, "/", ["a", object()]),
        Packet(T.CONNECT, "/", {"blob": b"x"}),
        Packet(T.CONNECT_ERROR, "/", {"when": datetime.datetime(2020, 1, 1)}),
    ],
)
def test_encoder_rejects_unserializable_data(packet: Packet, json_backend: str) -> None:
    with pytest.raises(TypeError):
        Encoder().encode(packet)


def test_encoder_accepts_placeholder_lookalikes_that_are_not_placeholders() -> None:
    packet = Packet(T.EVENT, "/", ["a", {"_placeholder": "yes"}, "_placeholder"])
    wire = Encoder().encode(packet)
    assert wire == ['2["a",{"_placeholder":"yes"},"_placeholder"]']
    assert Decoder().feed(wire[0]) == packet  # type: ignore[arg-type]


def test_encoder_rejects_circular_data(json_backend: str) -> None:
    data: list[Any] = ["a"]
    data.append(data)
    with pytest.raises(ValueError):
        Encoder().encode(Packet(T.EVENT, "/", data, 1))


def test_encode_nan_becomes_null(json_backend: str) -> None:
    assert Encoder().encode(Packet(T.EVENT, "/", ["a", math.nan, [math.inf, -math.inf]])) == [
        '2["a",null,[null,null]]'
    ]


# -- msgpack parser ----------------------------------------------------------------

# Byte strings produced by socket.io-msgpack-parser 3.0.2 for the same packets.
MSGPACK_VECTORS: list[tuple[Packet, str]] = [
    (Packet(T.CONNECT, "/"), "82a47479706500a36e7370a12f"),
    (Packet(T.CONNECT, "/admin"), "82a47479706500a36e7370a62f61646d696e"),
    (
        Packet(T.CONNECT, "/woot", {"token": "123"}),
        "83a47479706500a36e7370a52f776f6f74a46461746181a5746f6b656ea3313233",
    ),
    (Packet(T.DISCONNECT, "/woot"), "82a47479706501a36e7370a52f776f6f74"),
    (Packet(T.EVENT, "/", ["a", 1, {}]), "83a47479706502a36e7370a12fa46461746193a1610180"),
    (Packet(T.EVENT, "/", [1, "a", {}]), "83a47479706502a36e7370a12fa4646174619301a16180"),
    (
        Packet(T.EVENT, "/test", ["a", 1, {}], 1),
        "84a47479706502a36e7370a52f74657374a46461746193a1610180a2696401",
    ),
    (Packet(T.ACK, "/", [], 12), "84a47479706503a36e7370a12fa46461746190a269640c"),
    (
        Packet(T.CONNECT_ERROR, "/", "Unauthorized"),
        "83a47479706504a36e7370a12fa464617461ac556e617574686f72697a6564",
    ),
    (
        Packet(T.EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
        "83a47479706502a36e7370a12fa46461746192a362617ac40401020304",
    ),
    (
        Packet(T.ACK, "/back", ["a", b"xxx", {}], 127),
        "84a47479706503a36e7370a52f6261636ba46461746193a161c40378787880a269647f",
    ),
    (
        Packet(T.EVENT, "/", ["big", 2**53, -(2**40), 0.1]),
        "83a47479706502a36e7370a12fa46461746194a3626967cf0020000000000000"
        "d3ffffff0000000000cb3fb999999999999a",
    ),
]


@pytest.mark.parametrize(("packet", "hex_wire"), MSGPACK_VECTORS)
def test_msgpack_vectors(packet: Packet, hex_wire: str) -> None:
    wire = MsgpackEncoder().encode(packet)
    assert wire == [bytes.fromhex(hex_wire)]
    assert MsgpackDecoder().feed(wire[0]) == packet


@pytest.mark.parametrize(
    ("hex_wire", "packet"),
    [
        # {type:0, nsp:"/", data: undefined}
        ("83a47479706500a36e7370a12fa464617461d40000", Packet(T.CONNECT, "/")),
        # {type:2, nsp:"/", data:["a", ArrayBuffer<01 02>], options:{compress:true}} (Node)
        (
            "84a47479706502a36e7370a12fa46461746192a161c702000102a76f7074696f6e7381a8636f6d7072657373c3",
            Packet(T.EVENT, "/", ["a", b"\x01\x02"]),
        ),
        # {type:0, nsp:"/", data:{sid:"x", pid: undefined}}
        (
            "83a47479706500a36e7370a12fa46461746182a3736964a178a3706964d40000",
            Packet(T.CONNECT, "/", {"sid": "x"}),
        ),
        # {type:2, nsp:"/", data:["u", undefined, 1], id: 5}
        (
            "84a47479706502a36e7370a12fa46461746193a175d4000001a2696405",
            Packet(T.EVENT, "/", ["u", None, 1], 5),
        ),
        # {type:2, nsp:"/", data:["d", new Date(0)]}: a Date arrives as its 8 bytes
        (
            "83a47479706502a36e7370a12fa46461746192a164d7000000000000000000",
            Packet(T.EVENT, "/", ["d", bytes(8)]),
        ),
        # {type:2, nsp:"/", data:["x"], id: undefined}
        ("84a47479706502a36e7370a12fa46461746191a178a26964d40000", Packet(T.EVENT, "/", ["x"])),
    ],
)
def test_msgpack_decodes_javascript_output(hex_wire: str, packet: Packet) -> None:
    assert MsgpackDecoder().feed(bytes.fromhex(hex_wire)) == packet


def _mp(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("2[]", "expects binary messages"),
        (b"", "invalid msgpack"),
        (b"\xc1", "invalid msgpack"),
        (_mp({"type": 2}) + b"\x00", "invalid msgpack"),
        (_mp([2, "/", ["a"]]), "must be a msgpack map"),
        (_mp("x"), "must be a msgpack map"),
        (_mp({"nsp": "/", "data": ["a"]}), "invalid packet type"),
        (_mp({"type": 5, "nsp": "/", "data": ["a"]}), "invalid packet type"),
        (_mp({"type": -1, "nsp": "/"}), "invalid packet type"),
        (_mp({"type": True, "nsp": "/"}), "invalid packet type"),
        (_mp({"type": 2.0, "nsp": "/", "data": ["a"]}), "invalid packet type"),
        (_mp({"type": 0}), "invalid namespace"),
        (_mp({"type": 0, "nsp": "admin"}), "invalid namespace"),
        (_mp({"type": 0, "nsp": b"/"}), "invalid namespace"),
        (_mp({"type": 0, "nsp": "/", "data": None}), "must not be nil"),
        (_mp({"type": 0, "nsp": "/", "data": []}), "CONNECT payload must be an object"),
        (_mp({"type": 1, "nsp": "/", "data": {}}), "DISCONNECT packets carry no payload"),
        (_mp({"type": 2, "nsp": "/"}), "EVENT payload must be a non-empty list"),
        (_mp({"type": 2, "nsp": "/", "data": []}), "EVENT payload must be a non-empty list"),
        (_mp({"type": 2, "nsp": "/", "data": [b"a"]}), "event name"),
        (_mp({"type": 2, "nsp": "/", "data": ["connect"]}), "reserved"),
        (_mp({"type": 2, "nsp": "/", "data": ["a"], "id": None}), "must not be nil"),
        (_mp({"type": 2, "nsp": "/", "data": ["a"], "id": 1.5}), "ack id"),
        (_mp({"type": 2, "nsp": "/", "data": ["a"], "id": -1}), "ack id"),
        (_mp({"type": 3, "nsp": "/", "data": []}), "ACK packets need an ack id"),
        (_mp({"type": 0, "nsp": "/", "id": 1}), "CONNECT packets carry no ack id"),
        (_mp({"type": 4, "nsp": "/"}), "CONNECT_ERROR payload must be an object"),
        (_mp({1: 2}), "invalid msgpack"),
        (_mp({"type": 2, "nsp": "/", "data": ["a", msgpack.ExtType(5, b"x")]}), "extension type 5"),
        (
            _mp({"type": 2, "nsp": "/", "data": ["a", msgpack.Timestamp(1, 0)]}),
            "timestamps are not supported",
        ),
        (bytes.fromhex("83a47479706502a36e7370a12fa464617461d40000"), "EVENT payload"),
    ],
)
def test_msgpack_decode_errors(data: str | bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        MsgpackDecoder().feed(data)


def test_msgpack_interface() -> None:
    decoder = MsgpackDecoder()
    assert not decoder.pending
    decoder.reset()
    with pytest.raises(TypeError):
        decoder.feed(3)  # type: ignore[arg-type]
    encoder = MsgpackEncoder()
    assert encoder.encode(Packet(T.BINARY_EVENT, "/", ["a", b"x"])) == encoder.encode(
        Packet(T.EVENT, "/", ["a", b"x"])
    )
    with pytest.raises(ValueError, match="reserved"):
        encoder.encode(Packet(T.EVENT, "/", ["disconnect"]))
    with pytest.raises(ValueError, match="cannot encode"):
        encoder.encode(Packet(T.EVENT, "/", ["a", 2**64]))
    with pytest.raises(TypeError):
        encoder.encode(Packet(T.EVENT, "/", ["a", {1, 2}]))
    assert MsgpackDecoder(reject_reserved=False).feed(
        MsgpackEncoder(reject_reserved=False).encode(Packet(T.EVENT, "/", ["connect"]))[0]
    ) == Packet(T.EVENT, "/", ["connect"])


def test_make_parser() -> None:
    assert make_parser("json") == (Encoder, Decoder)
    assert make_parser("msgpack") == (MsgpackEncoder, MsgpackDecoder)
    assert make_parser("json").encoder is Encoder
    with pytest.raises(ValueError, match=r"unknown Socket\.IO parser"):
        make_parser("bson")


def test_msgpack_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)
    for build in (lambda: make_parser("msgpack"), MsgpackEncoder, MsgpackDecoder):
        with pytest.raises(ImportError, match=r"wsio\[msgpack\]"):
            build()


# -- the JSON dialect -----------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_backend_flag_switches_implementation(json_backend: str) -> None:
    # The one documented byte-level difference: how exponents are spelled.
    expected = "[1e-7]" if json_backend == "orjson" else "[1e-07]"
    assert _json.dumps([1e-7]) == expected
    assert _json.loads(expected) == [1e-7]


def test_dumps_is_compact_utf8(json_backend: str) -> None:
    assert _json.dumps({"a": [1, "é€😀"], "b": None}) == '{"a":[1,"é€😀"],"b":null}'
    assert _json.dumps("\x1e\x00\u2028") == '"\\u001e\\u0000\u2028"'


def test_dumps_non_finite_floats_become_null(json_backend: str) -> None:
    assert (
        _json.dumps([math.nan, {"x": (math.inf, -math.inf)}, 1.5]) == '[null,{"x":[null,null]},1.5]'
    )


def test_dumps_big_ints_and_non_str_keys(json_backend: str) -> None:
    assert _json.dumps([2**70, -(2**70), 2**64 - 1]) == (
        "[1180591620717411303424,-1180591620717411303424,18446744073709551615]"
    )
    assert _json.dumps({1: "a", False: "b", None: "c", 1.5: "d"}) == (
        '{"1":"a","false":"b","null":"c","1.5":"d"}'
    )
    assert _json.dumps({"k": {2: [1]}}) == '{"k":{"2":[1]}}'


def test_dumps_extra_types_identical_on_both_paths(json_backend: str) -> None:
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert _json.dumps([value, Color.RED, Level.HIGH]) == (
        '["12345678-1234-5678-1234-567812345678","red",3]'
    )
    for bad in (datetime.datetime(2020, 1, 1), datetime.date(2020, 1, 1), b"x", {1}, object()):
        with pytest.raises(TypeError):
            _json.dumps(["x", bad])


def test_dumps_lone_surrogates_are_escaped(json_backend: str) -> None:
    text = _json.dumps(["a\ud800", "é"])
    text.encode("utf-8")
    assert json.loads(text) == ["a\ud800", "é"]


def test_dumps_deep_and_circular(json_backend: str) -> None:
    deep: list[Any] = []
    for _ in range(200):
        deep = [deep]
    assert _json.dumps(deep) == "[" * 201 + "]" * 201
    very_deep: list[Any] = []
    for _ in range(100_000):
        very_deep = [very_deep]
    with pytest.raises(ValueError):
        _json.dumps(very_deep)
    circular: dict[str, Any] = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        _json.dumps(circular)
    with pytest.raises(ValueError):
        _json.dumps([math.nan, circular])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a":[1,2.5,"é",true,false,null]}', {"a": [1, 2.5, "é", True, False, None]}),
        (b'["\\ud83d\\ude00"]', ["😀"]),
        (bytearray(b"[1]"), [1]),
        (" [1] ", [1]),
        ("-0", 0),
        ("1E5", 100000.0),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("18446744073709551615", 2**64 - 1),
        ("18446744073709551616", float(2**64)),
        ("-9223372036854775809", -float(2**63)),
        ("1" * 300, float("1" * 300)),
        ("1e-400", 0.0),
        ('{"a":1,"a":2}', {"a": 2}),
        ('"\\u0000\\u001e"', "\x00\x1e"),
    ],
)
def test_loads_values(text: str | bytes, value: Any, json_backend: str) -> None:
    result = _json.loads(text)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "[Infinity]",
        "-Infinity",
        "1e400",
        "-1e400",
        "1" * 400,
        "1" * 5000,
        '"\\ud800"',
        '["a\\udc00b"]',
        '{"\\ud800":1}',
        '"\\udc00\\ud800"',
        "a\ud800",
        '"\ud800"',
        b'"\xed\xa0\x80"',
        b"\xff",
        b'"\xc3"',
        "\ufeff[1]",
        b"\xef\xbb\xbf[1]",
        b"\xff\xfe[\x00]\x00",
        "",
        "[1,]",
        "01",
        "1.",
        ".5",
        "[1] x",
        "'a'",
        '"\x01"',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_loads_rejects(text: str | bytes, json_backend: str) -> None:
    with pytest.raises(ValueError):
        _json.loads(text)


def test_loads_moderate_depth(json_backend: str) -> None:
    assert _json.loads("[" * 200 + "]" * 200) is not None


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_keys = st.text(max_size=8).filter(lambda k: k != "_placeholder")
json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)
binary_values = st.recursive(
    _json_scalars | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


@PROPERTY
@given(
    st.recursive(
        _json_scalars
        | st.floats()
        | st.integers()
        | st.text(st.characters(codec=None, exclude_categories=()), max_size=6),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.text(max_size=4) | st.integers(-5, 5) | st.booleans(), children, max_size=4
            )
        ),
        max_leaves=10,
    )
)
def test_json_paths_agree(value: Any) -> None:
    results = []
    for flag in (True, False):
        _json._USE_ORJSON = flag
        try:
            results.append(_json.dumps(value))
        finally:
            _json._USE_ORJSON = _json._orjson is not None
    fast, slow = results
    slow.encode("utf-8")
    if not _has_float(value):
        assert fast == slow
    assert json.loads(fast) == json.loads(slow) or fast == slow


@PROPERTY
@given(json_values)
def test_json_round_trip_both_paths(value: Any) -> None:
    for flag in (True, False):
        _json._USE_ORJSON = flag
        try:
            assert _json.loads(_json.dumps(value)) == value
            assert _json.loads(_json.dumps(value).encode()) == value
        finally:
            _json._USE_ORJSON = _json._orjson is not None


@PROPERTY
@given(st.text(max_size=30) | st.binary(max_size=30))
def test_json_loads_paths_agree_on_arbitrary_input(text: str | bytes) -> None:
    outcomes = []
    for flag in (True, False):
        _json._USE_ORJSON = flag
        try:
            outcomes.append(("ok", _json.loads(text)))
        except ValueError:
            outcomes.append(("error", None))
        finally:
            _json._USE_ORJSON = _json._orjson is not None
    assert outcomes[0] == outcomes[1]


# -- codec properties ----------------------------------------------------------------

_event_names = st.text(max_size=10).filter(lambda s: s not in RESERVED_EVENTS) | st.integers(
    -(2**53), 2**53
)
_namespaces = st.just("/") | st.text(max_size=8).filter(lambda s: "," not in s).map(
    lambda s: "/" + s
)
_ack_ids = st.none() | st.integers(0, MAX_ACK_ID)


@st.composite
def sio_packets(draw: st.DrawFn, values: st.SearchStrategy[Any] = binary_values) -> Packet:
    ptype = draw(st.sampled_from([T.CONNECT, T.DISCONNECT, T.EVENT, T.ACK, T.CONNECT_ERROR]))
    nsp = draw(_namespaces)
    if ptype is T.EVENT:
        data = [draw(_event_names), *draw(st.lists(values, max_size=4))]
        return Packet(ptype, nsp, data, draw(_ack_ids))
    if ptype is T.ACK:
        return Packet(
            ptype, nsp, draw(st.lists(values, max_size=4)), draw(st.integers(0, MAX_ACK_ID))
        )
    if ptype is T.CONNECT:
        return Packet(ptype, nsp, draw(st.none() | st.dictionaries(_keys, json_values, max_size=3)))
    if ptype is T.CONNECT_ERROR:
        return Packet(
            ptype, nsp, draw(st.text(max_size=10) | st.dictionaries(_keys, json_values, max_size=3))
        )
    return Packet(ptype, nsp)


@PROPERTY
@given(sio_packets())
def test_json_codec_round_trip(packet: Packet) -> None:
    wire = Encoder().encode(packet)
    assert isinstance(wire[0], str)
    assert all(isinstance(part, bytes) for part in wire[1:])
    if len(wire) > 1:
        assert wire[0].startswith(f"{5 if packet.type is T.EVENT else 6}{len(wire) - 1}-")  # type: ignore[union-attr]
    assert decode_all(wire) == packet


@PROPERTY
@given(sio_packets())
def test_msgpack_codec_round_trip(packet: Packet) -> None:
    wire = MsgpackEncoder().encode(packet)
    assert len(wire) == 1 and isinstance(wire[0], bytes)
    assert MsgpackDecoder().feed(wire[0]) == packet


_any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_wire_like = st.text(alphabet='0123456-/,[]{}":_placeholdernum truefals\\u', max_size=40)


@PROPERTY
@given(st.lists(_any_text | _wire_like | st.binary(max_size=20), max_size=6))
def test_decoders_raise_only_decode_error(parts: list[str | bytes]) -> None:
    decoder = Decoder()
    mdecoder = MsgpackDecoder()
    for part in parts:
        for dec in (decoder, mdecoder):
            try:
                result = dec.feed(part)
            except DecodeError:
                continue
            assert result is None or isinstance(result, Packet)


def _assert_reencodes(packet: Packet, encoder: Encoder | MsgpackEncoder, decoder_cls: type) -> None:
    wire = encoder.encode(packet)
    again = decoder_cls()
    result = None
    for part in wire:
        result = again.feed(part)
    assert result == packet


@st.composite
def corrupted_json_wire(draw: st.DrawFn) -> list[str | bytes]:
    wire = Encoder().encode(draw(sio_packets()))
    index = draw(st.integers(0, len(wire) - 1))
    part = wire[index]
    chars: list[Any] = list(part)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(chars)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if isinstance(part, str):
            new: Any = draw(st.sampled_from([*'0123456789-/,[]{}":\\', "_placeholder", "true"]))
        else:
            new = draw(st.integers(0, 255))
        if op == "insert":
            chars.insert(pos, new)
        elif pos < len(chars):
            if op == "delete":
                del chars[pos]
            else:
                chars[pos] = new
    wire[index] = "".join(chars) if isinstance(part, str) else bytes(chars)
    if draw(st.booleans()) and len(wire) > 1:
        del wire[draw(st.integers(1, len(wire) - 1))]
    return wire


@PROPERTY
@given(corrupted_json_wire())
def test_corrupted_json_wire_fails_cleanly_or_decodes_validly(wire: list[str | bytes]) -> None:
    decoder = Decoder()
    for part in wire:
        try:
            result = decoder.feed(part)
        except DecodeError:
            continue
        if result is not None:
            _assert_reencodes(result, Encoder(), Decoder)


@st.composite
def corrupted_msgpack(draw: st.DrawFn) -> bytes:
    data = bytearray(MsgpackEncoder().encode(draw(sio_packets()))[0])
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.integers(0, 255))
        if op == "insert":
            data.insert(pos, byte)
        elif pos < len(data):
            if op == "delete":
                del data[pos]
            else:
                data[pos] = byte
    return bytes(data)


@PROPERTY
@given(corrupted_msgpack())
def test_corrupted_msgpack_fails_cleanly_or_decodes_validly(data: bytes) -> None:
    try:
        packet = MsgpackDecoder().feed(data)
    except DecodeError:
        return
    # What decodes re-encodes, and decodes again to the same bytes (compared as
    # bytes: a corrupted float may have become NaN, which never equals itself).
    wire = MsgpackEncoder().encode(packet)[0]
    assert MsgpackEncoder().encode(MsgpackDecoder().feed(wire)) == [wire]
