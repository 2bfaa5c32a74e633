"""The opening handshake, both sides (wsio.websocket.handshake), sans-I/O."""

from __future__ import annotations

import base64

import pytest

from wsio.http.headers import Headers
from wsio.websocket.deflate import DeflateOptions
from wsio.websocket.exceptions import (
    InvalidRequest,
    InvalidResponse,
    InvalidStatus,
    NegotiationError,
)
from wsio.websocket.handshake import (
    accept_key,
    build_request,
    build_response,
    generate_key,
    parse_response_head,
    validate_request,
    validate_response,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def request_headers(**overrides: str | None) -> Headers:
    base = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    base.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return Headers([(k, v) for k, v in base.items() if v is not None])


def test_accept_key_rfc_example() -> None:
    assert accept_key(KEY) == ACCEPT


def test_generate_key_is_16_random_bytes() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(base64.b64decode(k, validate=True)) == 16 for k in keys)


def test_valid_request_accepted() -> None:
    hs = validate_request("GET", "1.1", request_headers())
    assert hs.key == KEY and hs.subprotocol is None and hs.deflate is None
    head = hs.response().decode()
    assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    assert f"\r\nSec-WebSocket-Accept: {ACCEPT}\r\n" in head
    assert "\r\nUpgrade: websocket\r\n" in head and "\r\nConnection: Upgrade\r\n" in head
    assert head.endswith("\r\n\r\n")
    assert "Sec-WebSocket-Protocol" not in head and "Sec-WebSocket-Extensions" not in head


def test_tokens_are_case_insensitive_and_listed() -> None:
    headers = request_headers(Upgrade="WebSocket, foo", Connection="keep-alive, UPGRADE")
    assert validate_request("GET", "1.1", headers).key == KEY


@pytest.mark.parametrize("method", ["POST", "HEAD", "PUT", "get"])
def test_method_must_be_get(method: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request(method, "1.1", request_headers())
    assert info.value.status == 400


def test_http_1_0_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.0", request_headers())
    assert info.value.status == 400


@pytest.mark.parametrize("upgrade", [None, "h2c", "websocketx"])
def test_missing_upgrade_is_426(upgrade: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.1", request_headers(Upgrade=upgrade))
    assert info.value.status == 426
    assert ("Upgrade", "websocket") in info.value.headers


@pytest.mark.parametrize("connection", [None, "keep-alive", "upgraded"])
def test_connection_needs_upgrade_token(connection: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.1", request_headers(Connection=connection))
    assert info.value.status == 400
    assert "Connection" in str(info.value)


def test_missing_host() -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.1", request_headers(Host=None))
    assert info.value.status == 400


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "not base64!!",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        "dGhlIHNhbXBsZSBub25jZQ",  # missing padding
    ],
)
def test_bad_key(key: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.1", request_headers(Sec_WebSocket_Key=key))
    assert info.value.status == 400
    assert "Sec-WebSocket-Key" in str(info.value)


def test_duplicate_key() -> None:
    headers = request_headers()
    headers.add("Sec-WebSocket-Key", generate_key())
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.1", headers)
    assert info.value.status == 400


@pytest.mark.parametrize("version", [None, "8", "12", "14", "13, 8"])
def test_version_must_be_13(version: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.1", request_headers(Sec_WebSocket_Version=version))
    assert info.value.status == 426
    assert ("Sec-WebSocket-Version", "13") in info.value.headers


def test_two_version_headers_refused() -> None:
    headers = request_headers()
    headers.add("Sec-WebSocket-Version", "13")
    with pytest.raises(InvalidRequest) as info:
        validate_request("GET", "1.1", headers)
    assert info.value.status == 426


# -- subprotocols ---------------------------------------------------------------


def test_subprotocol_server_preference() -> None:
    headers = request_headers(Sec_WebSocket_Protocol="chat, superchat")
    hs = validate_request("GET", "1.1", headers, subprotocols=["superchat", "chat"])
    assert hs.subprotocol == "superchat"
    assert "\r\nSec-WebSocket-Protocol: superchat\r\n" in hs.response().decode()


def test_subprotocol_across_several_headers_case_sensitive() -> None:
    headers = request_headers(Sec_WebSocket_Protocol="Chat")
    headers.add("Sec-WebSocket-Protocol", "v2.example")
    hs = validate_request("GET", "1.1", headers, subprotocols=["chat", "v2.example"])
    assert hs.subprotocol == "v2.example"


def test_no_common_subprotocol() -> None:
    headers = request_headers(Sec_WebSocket_Protocol="a, b")
    hs = validate_request("GET", "1.1", headers, subprotocols=["c"])
    assert hs.subprotocol is None
    assert "Sec-WebSocket-Protocol" not in hs.response().decode()


def test_subprotocol_not_offered_by_client() -> None:
    hs = validate_request("GET", "1.1", request_headers(), subprotocols=["chat"])
    assert hs.subprotocol is None


def test_subprotocol_selector() -> None:
    seen: list[list[str]] = []

    def pick(offered: list[str]) -> str | None:
        seen.append(offered)
        return offered[-1]

    headers = request_headers(Sec_WebSocket_Protocol="one, Two , three")
    hs = validate_request("GET", "1.1", headers, subprotocols=pick)
    assert seen == [["one", "Two", "three"]]
    assert hs.subprotocol == "three"


def test_subprotocol_selector_must_pick_an_offered_one() -> None:
    headers = request_headers(Sec_WebSocket_Protocol="one")
    with pytest.raises(NegotiationError):
        validate_request("GET", "1.1", headers, subprotocols=lambda offered: "other")


# -- extensions -------------------------------------------------------------------


def test_deflate_accepted_when_offered() -> None:
    headers = request_headers(Sec_WebSocket_Extensions="permessage-deflate; client_max_window_bits")
    hs = validate_request("GET", "1.1", headers, compression=DeflateOptions())
    assert hs.deflate is not None
    ext = [
        line
        for line in hs.response().decode().split("\r\n")
        if line.startswith("Sec-WebSocket-Ext")
    ]
    assert ext == ["Sec-WebSocket-Extensions: " + hs.deflate.response]
    assert hs.deflate.response.startswith("permessage-deflate")


def test_deflate_refused_without_compression() -> None:
    headers = request_headers(Sec_WebSocket_Extensions="permessage-deflate")
    hs = validate_request("GET", "1.1", headers, compression=None)
    assert hs.deflate is None
    assert "Sec-WebSocket-Extensions" not in hs.response().decode()


def test_unknown_extension_ignored() -> None:
    headers = request_headers(Sec_WebSocket_Extensions="x-webkit-deflate-frame, foo; bar=1")
    hs = validate_request("GET", "1.1", headers, compression=DeflateOptions())
    assert hs.deflate is None


# -- client side -------------------------------------------------------------------


def test_build_request() -> None:
    head = build_request(
        "example.com:8080",
        "/chat?x=1",
        KEY,
        origin="http://example.com",
        subprotocols=["a", "b"],
        compression=DeflateOptions(),
        extra_headers=[("X-Token", "t")],
    ).decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /chat?x=1 HTTP/1.1"
    assert head.endswith("\r\n\r\n")
    headers = Headers(tuple(line.split(": ", 1)) for line in lines[1:] if line)  # type: ignore[misc]
    # What the client sends, a server accepts.
    hs = validate_request("GET", "1.1", headers, subprotocols=["b"], compression=DeflateOptions())
    assert hs.subprotocol == "b" and hs.deflate is not None
    assert headers["Origin"] == "http://example.com"
    assert headers["X-Token"] == "t"
    assert headers["Host"] == "example.com:8080"


def test_build_request_refuses_header_injection() -> None:
    with pytest.raises(ValueError):
        build_request("h", "/", KEY, extra_headers=[("X", "a\r\nEvil: 1")])


def test_build_response_extra_headers() -> None:
    head = build_response(KEY, subprotocol="chat", extra_headers=[("X-A", "1")]).decode()
    assert "\r\nSec-WebSocket-Protocol: chat\r\n" in head
    assert "\r\nX-A: 1\r\n" in head


def test_parse_response_head_incremental() -> None:
    raw = build_response(KEY) + b"\x81\x02hi"
    for cut in range(len(raw) - 4):
        if raw[:cut].find(b"\r\n\r\n") < 0:
            assert parse_response_head(raw[:cut]) is None
    status, reason, headers, size = parse_response_head(raw)  # type: ignore[misc]
    assert status == 101 and reason == "Switching Protocols"
    assert headers["sec-websocket-accept"] == ACCEPT
    assert raw[size:] == b"\x81\x02hi"


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 1011 OK\r\n\r\n",
        b"SPDY/3 101 OK\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 101 OK\r\n Upgrade: websocket\r\n\r\n",
    ],
)
def test_parse_response_head_malformed(raw: bytes) -> None:
    with pytest.raises(InvalidResponse):
        parse_response_head(raw)


def test_parse_response_head_too_large() -> None:
    with pytest.raises(InvalidResponse):
        parse_response_head(b"HTTP/1.1 101 OK\r\nX: " + b"a" * 20000)
    with pytest.raises(InvalidResponse):
        parse_response_head(b"HTTP/1.1 101 OK\r\nX: " + b"a" * 20000 + b"\r\n\r\n")


def response_headers(**overrides: str | None) -> Headers:
    base = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": ACCEPT}
    base.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return Headers([(k, v) for k, v in base.items() if v is not None])


def test_validate_response_ok() -> None:
    assert validate_response(101, response_headers(), KEY) == (None, None)


def test_validate_response_status() -> None:
    with pytest.raises(InvalidStatus) as info:
        validate_response(403, Headers([("X", "y")]), KEY, body=b"go away")
    assert info.value.status == 403
    assert info.value.body == b"go away"
    assert ("X", "y") in info.value.headers
    assert isinstance(info.value, InvalidResponse)


@pytest.mark.parametrize(
    "overrides",
    [
        {"Upgrade": None},
        {"Upgrade": "h2c"},
        {"Connection": None},
        {"Connection": "close"},
        {"Sec_WebSocket_Accept": None},
        {"Sec_WebSocket_Accept": accept_key(generate_key())},
    ],
)
def test_validate_response_refusals(overrides: dict[str, str | None]) -> None:
    with pytest.raises(InvalidResponse):
        validate_response(101, response_headers(**overrides), KEY)


def test_validate_response_duplicate_accept() -> None:
    headers = response_headers()
    headers.add("Sec-WebSocket-Accept", ACCEPT)
    with pytest.raises(InvalidResponse):
        validate_response(101, headers, KEY)


def test_validate_response_subprotocols() -> None:
    headers = response_headers(Sec_WebSocket_Protocol="chat")
    assert validate_response(101, headers, KEY, subprotocols=["x", "chat"]) == ("chat", None)
    with pytest.raises(NegotiationError):
        validate_response(101, headers, KEY)  # nothing offered
    with pytest.raises(NegotiationError):
        validate_response(101, headers, KEY, subprotocols=["x"])
    with pytest.raises(NegotiationError):
        validate_response(
            101, response_headers(Sec_WebSocket_Protocol="x, chat"), KEY, subprotocols=["x", "chat"]
        )


def test_validate_response_unrequested_extension() -> None:
    headers = response_headers(Sec_WebSocket_Extensions="permessage-deflate")
    with pytest.raises(NegotiationError):
        validate_response(101, headers, KEY, compression=None)
    # A server that ignores our server_max_window_bits must not be accepted ...
    with pytest.raises(NegotiationError):
        validate_response(101, headers, KEY, compression=DeflateOptions(server_max_window_bits=12))
    # ... one answering a plain offer is.
    _, deflate = validate_response(
        101, headers, KEY, compression=DeflateOptions(server_max_window_bits=15)
    )
    assert deflate is not None
    with pytest.raises(NegotiationError):
        validate_response(
            101,
            response_headers(Sec_WebSocket_Extensions="x-foo"),
            KEY,
            compression=DeflateOptions(),
        )
