"""permessage-deflate (RFC 7692): negotiation on both sides and the codec."""

from __future__ import annotations

import os
import zlib

import pytest
from wsutil import inflate_message, parse_frames

from wsio.websocket.deflate import (
    DeflateOptions,
    PerMessageDeflate,
    client_accept,
    client_offer,
    parse_extensions,
    server_negotiate,
)
from wsio.websocket.exceptions import NegotiationError, ProtocolError
from wsio.websocket.frames import OP_BINARY, OP_TEXT
from wsio.websocket.protocol import CLIENT, SERVER, Protocol


def params(response: str) -> dict[str, str | None]:
    """The parameters of a one-extension header value."""
    ((name, items),) = parse_extensions([response])
    assert name == "permessage-deflate"
    return dict(items)


def test_parse_extensions() -> None:
    parsed = parse_extensions(
        [
            'permessage-deflate; client_max_window_bits; server_max_window_bits="10", x-foo',
            "bar;a=b",
        ]
    )
    assert parsed == [
        (
            "permessage-deflate",
            [("client_max_window_bits", None), ("server_max_window_bits", "10")],
        ),
        ("x-foo", []),
        ("bar", [("a", "b")]),
    ]
    for bad in ['permessage-deflate; a="unterminated', "perm deflate", "pmd; =1", "pmd; a=b c"]:
        with pytest.raises(ValueError):
            parse_extensions([bad])


# -- server side negotiation -----------------------------------------------------


def test_server_plain_offer_defaults() -> None:
    pmd = server_negotiate(["permessage-deflate"], DeflateOptions())
    assert pmd is not None
    # The server limits its own window (allowed without an offer), but must not
    # mention client_max_window_bits the client did not offer.
    assert params(pmd.response) == {"server_max_window_bits": "12"}
    assert pmd.local_max_window_bits == 12
    assert pmd.remote_max_window_bits == 15
    assert not pmd.local_no_context_takeover and not pmd.remote_no_context_takeover


def test_server_plain_offer_zlib_defaults() -> None:
    opts = DeflateOptions(server_max_window_bits=15, client_max_window_bits=15)
    pmd = server_negotiate(["permessage-deflate"], opts)
    assert pmd is not None and pmd.response == "permessage-deflate"


def test_server_all_four_parameters() -> None:
    offer = (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=10; client_max_window_bits=11"
    )
    pmd = server_negotiate(
        [offer], DeflateOptions(server_max_window_bits=12, client_max_window_bits=13)
    )
    assert pmd is not None
    assert params(pmd.response) == {
        "server_max_window_bits": "10",
        "server_no_context_takeover": None,
        "client_max_window_bits": "11",
        "client_no_context_takeover": None,
    }
    assert pmd.local_max_window_bits == 10 and pmd.local_no_context_takeover
    assert pmd.remote_max_window_bits == 11 and pmd.remote_no_context_takeover


def test_server_asks_for_its_own_options() -> None:
    opts = DeflateOptions(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=9,
        client_max_window_bits=10,
    )
    pmd = server_negotiate(["permessage-deflate; client_max_window_bits"], opts)
    assert pmd is not None
    assert params(pmd.response) == {
        "server_max_window_bits": "9",
        "server_no_context_takeover": None,
        "client_max_window_bits": "10",
        "client_no_context_takeover": None,
    }
    assert pmd.remote_no_context_takeover and pmd.local_no_context_takeover


def test_server_never_asks_a_peer_for_8_bits() -> None:
    opts = DeflateOptions(client_max_window_bits=8)
    pmd = server_negotiate(["permessage-deflate; client_max_window_bits"], opts)
    assert pmd is not None
    assert params(pmd.response)["client_max_window_bits"] == "9"
    assert pmd.remote_max_window_bits == 9


def test_server_forced_to_8_bits_compresses_huffman_only() -> None:
    pmd = server_negotiate(["permessage-deflate; server_max_window_bits=8"], DeflateOptions())
    assert pmd is not None
    assert params(pmd.response)["server_max_window_bits"] == "8"
    assert pmd.local_max_window_bits == 8
    data = b"abcabcabc" * 2000
    out = pmd.compress(data)
    # Huffman only: about two bits per symbol here, no back-references at all,
    # so the output inflates within an 8-bit window.
    assert len(data) // 8 < len(out) < len(data) // 2
    assert inflate_message(out, 8) == data
    # An LZ77 compressor would need a few dozen bytes.
    assert len(zlib.compress(data)) < 100


def test_server_client_offered_8_bits() -> None:
    pmd = server_negotiate(["permessage-deflate; client_max_window_bits=8"], DeflateOptions())
    assert pmd is not None
    assert params(pmd.response)["client_max_window_bits"] == "8"
    assert pmd.remote_max_window_bits == 8


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=08",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; unknown_parameter",
        'permessage-deflate; a="unterminated',
    ],
)
def test_server_declines_invalid_offers(offer: str) -> None:
    assert server_negotiate([offer], DeflateOptions()) is None


def test_server_takes_first_acceptable_offer() -> None:
    pmd = server_negotiate(
        [
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=11"
        ],
        DeflateOptions(),
    )
    assert pmd is not None and pmd.local_max_window_bits == 11


def test_server_quoted_value() -> None:
    pmd = server_negotiate(['permessage-deflate; server_max_window_bits="10"'], DeflateOptions())
    assert pmd is not None and pmd.local_max_window_bits == 10


# -- client side -------------------------------------------------------------------


def test_client_offer() -> None:
    assert params(client_offer(DeflateOptions())) == {
        "server_max_window_bits": "12",
        "client_max_window_bits": "12",
    }
    assert params(
        client_offer(DeflateOptions(server_max_window_bits=15, client_max_window_bits=15))
    ) == {"client_max_window_bits": None}
    all_four = DeflateOptions(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=9,
        client_max_window_bits=10,
    )
    assert params(client_offer(all_four)) == {
        "server_no_context_takeover": None,
        "client_no_context_takeover": None,
        "server_max_window_bits": "9",
        "client_max_window_bits": "10",
    }


def test_client_accepts_response() -> None:
    opts = DeflateOptions(server_max_window_bits=12, client_max_window_bits=14)
    pmd = client_accept(
        [
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11;"
            " server_no_context_takeover; client_no_context_takeover"
        ],
        opts,
    )
    assert pmd is not None
    assert pmd.local_max_window_bits == 11 and pmd.local_no_context_takeover
    assert pmd.remote_max_window_bits == 10 and pmd.remote_no_context_takeover


def test_client_keeps_its_offered_window() -> None:
    pmd = client_accept(["permessage-deflate; server_max_window_bits=12"], DeflateOptions())
    assert pmd is not None
    assert pmd.local_max_window_bits == 12  # offered, not lowered by the server
    assert pmd.remote_max_window_bits == 12


@pytest.mark.parametrize(
    ("options", "response"),
    [
        (
            DeflateOptions(server_no_context_takeover=True),
            "permessage-deflate; server_max_window_bits=12",
        ),
        (DeflateOptions(), "permessage-deflate; server_max_window_bits=13"),
        (DeflateOptions(), "permessage-deflate"),
        (
            DeflateOptions(),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=13",
        ),
        (DeflateOptions(), "permessage-deflate; server_max_window_bits=12; client_max_window_bits"),
        (DeflateOptions(), "permessage-deflate; server_max_window_bits=12; foo"),
        (DeflateOptions(), "permessage-deflate; server_max_window_bits=12, permessage-deflate"),
        (DeflateOptions(), "x-foo"),
        (DeflateOptions(), "permessage-deflate; server_max_window_bits=12=3"),
    ],
)
def test_client_refuses_bad_responses(options: DeflateOptions, response: str) -> None:
    with pytest.raises(NegotiationError):
        client_accept([response], options)


def test_client_no_extension_in_response() -> None:
    assert client_accept([""], DeflateOptions()) is None


# -- both sides: negotiated pairs exchange messages --------------------------------


def negotiate(
    client: DeflateOptions, server: DeflateOptions
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    srv = server_negotiate([client_offer(client)], server)
    assert srv is not None
    cli = client_accept([srv.response], client)
    assert cli is not None
    return cli, srv


ALL_OPTIONS = [
    DeflateOptions(),
    DeflateOptions(server_max_window_bits=15, client_max_window_bits=15),
    DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True),
    DeflateOptions(server_max_window_bits=8, client_max_window_bits=8),
    DeflateOptions(
        server_max_window_bits=9, client_max_window_bits=10, server_no_context_takeover=True
    ),
    DeflateOptions(client_no_context_takeover=True, level=1, mem_level=9),
]


@pytest.mark.parametrize("client_opts", ALL_OPTIONS)
@pytest.mark.parametrize("server_opts", ALL_OPTIONS)
def test_negotiated_pairs_roundtrip(
    client_opts: DeflateOptions, server_opts: DeflateOptions
) -> None:
    cli, srv = negotiate(client_opts, server_opts)
    # Each side's local parameters are the other side's remote ones.
    assert cli.local_max_window_bits <= max(srv.remote_max_window_bits, 9)
    assert srv.local_max_window_bits <= cli.remote_max_window_bits
    assert srv.local_no_context_takeover == cli.remote_no_context_takeover
    if cli.local_no_context_takeover:
        assert srv.remote_no_context_takeover
    rnd = os.urandom(3000)
    messages = [b"hello " * 50, rnd + rnd, b"", b"hello " * 50, bytes(range(256)) * 40]
    for msg in messages:
        assert srv.decompress(cli.compress(msg), 0, fin=True) == msg
        assert cli.decompress(srv.compress(msg), 0, fin=True) == msg


@pytest.mark.parametrize("bits", [9, 10, 12, 15])
def test_compressor_respects_window(bits: int) -> None:
    pmd = PerMessageDeflate(local_max_window_bits=bits)
    block = os.urandom(2**bits)
    data = block + block  # back-references at a distance of exactly 2**bits
    out = pmd.compress(data)
    assert inflate_message(out, bits) == data


def test_context_takeover() -> None:
    msg = os.urandom(200) * 2
    keep = PerMessageDeflate()
    first, second = keep.compress(msg), keep.compress(msg)
    assert len(second) < len(first) // 4  # refers back to the previous message
    with pytest.raises(zlib.error):
        inflate_message(second)  # needs the shared context
    reset = PerMessageDeflate(local_no_context_takeover=True)
    a, b = reset.compress(msg), reset.compress(msg)
    assert a == b
    assert inflate_message(b) == msg


def test_decompressor_context_takeover() -> None:
    msg = os.urandom(200) * 2
    sender = PerMessageDeflate()
    frames = [sender.compress(msg) for _ in range(3)]
    receiver = PerMessageDeflate()
    assert [receiver.decompress(f, 0, fin=True) for f in frames] == [msg] * 3
    # A receiver that resets its context cannot follow a sender that does not.
    forgetful = PerMessageDeflate(remote_no_context_takeover=True)
    assert forgetful.decompress(frames[0], 0, fin=True) == msg
    with pytest.raises(ProtocolError) as info:
        forgetful.decompress(frames[1], 0, fin=True)
    assert info.value.code == 1007


def test_decompress_bounded_output() -> None:
    pmd = PerMessageDeflate()
    bomb = PerMessageDeflate().compress(b"\x00" * 10_000_000)
    assert len(bomb) < 20_000
    out = pmd.decompress(bomb, 1001, fin=True)
    assert len(out) == 1001


def test_invalid_compressed_data_is_1007() -> None:
    pmd = PerMessageDeflate()
    with pytest.raises(ProtocolError) as info:
        pmd.decompress(b"\xff\xff\xff\xff", 0, fin=True)
    assert info.value.code == 1007


def test_empty_message_compresses_to_single_zero_byte() -> None:
    assert PerMessageDeflate().compress(b"") == b"\x00"


@pytest.mark.parametrize("side", [CLIENT, SERVER])
def test_threshold(side: object) -> None:
    proto = Protocol(side, deflate=PerMessageDeflate(threshold=10))  # type: ignore[arg-type]
    (small,) = parse_frames(b"".join(proto.send_message(OP_TEXT, b"123456789")))
    assert not small.rsv1 and small.payload == b"123456789"
    (big,) = parse_frames(b"".join(proto.send_message(OP_BINARY, b"1234567890")))
    assert big.rsv1 and inflate_message(big.payload) == b"1234567890"
    assert big.masked is (side is CLIENT)


def test_options_validation() -> None:
    for bad in (
        {"server_max_window_bits": 7},
        {"client_max_window_bits": 16},
        {"level": 10},
        {"mem_level": 0},
    ):
        with pytest.raises(ValueError):
            DeflateOptions(**bad)  # type: ignore[arg-type]
