"""The opening handshake (RFC 6455 section 4), both sides, sans-I/O."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..http.headers import Headers
from .deflate import (
    DeflateOptions,
    PerMessageDeflate,
    client_accept,
    client_offer,
    server_negotiate,
)
from .exceptions import (
    InvalidRequest,
    InvalidResponse,
    InvalidStatus,
    NegotiationError,
)

__all__ = [
    "GUID",
    "ServerHandshake",
    "accept_key",
    "build_request",
    "build_response",
    "generate_key",
    "parse_response_head",
    "validate_request",
    "validate_response",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

MAX_RESPONSE_HEAD = 16384


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (section 4.2.2 step 5.4)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def generate_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (section 4.1)."""
    return base64.b64encode(os.urandom(16)).decode()


def _has_token(headers: Headers, name: str, token: str) -> bool:
    return token in headers.get_tokens(name)


# --- server side -------------------------------------------------------------


@dataclass(slots=True)
class ServerHandshake:
    """An accepted upgrade request: what to answer and what was negotiated."""

    key: str
    subprotocol: str | None = None
    deflate: PerMessageDeflate | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    def response(self) -> bytes:
        """The ``101 Switching Protocols`` response head."""
        return build_response(
            self.key,
            subprotocol=self.subprotocol,
            extensions=self.deflate.response if self.deflate is not None else None,
            extra_headers=self.extra_headers,
        )


SubprotocolSelector = Callable[[list[str]], "str | None"]


def validate_request(
    method: str,
    http_version: str,
    headers: Headers,
    *,
    subprotocols: Sequence[str] | SubprotocolSelector | None = None,
    compression: DeflateOptions | None = None,
) -> ServerHandshake:
    """Check a client's upgrade request and negotiate what it offers.

    Raises :class:`InvalidRequest` carrying the HTTP status to answer with: 400
    for a malformed request, 426 (with ``Sec-WebSocket-Version: 13`` or
    ``Upgrade: websocket``) when the client must change protocol or version.

    ``subprotocols`` is the server's list in order of preference (the first
    the client also offers wins) or a function choosing from the client's list.
    """
    if method != "GET":
        raise InvalidRequest(f"WebSocket upgrade requires GET, not {method}", 400)
    if http_version not in ("1.1", "2.0", "2", "3"):
        raise InvalidRequest(f"WebSocket upgrade requires HTTP/1.1, not HTTP/{http_version}", 400)
    if "upgrade" not in headers or not _has_token(headers, "Upgrade", "websocket"):
        raise InvalidRequest(
            "this endpoint speaks WebSocket: send Upgrade: websocket",
            426,
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )
    if not _has_token(headers, "Connection", "upgrade"):
        raise InvalidRequest("missing 'upgrade' token in the Connection header", 400)
    if headers.get("Host") is None:
        raise InvalidRequest("missing Host header", 400)
    keys = headers.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        raise InvalidRequest(
            "missing Sec-WebSocket-Key header" if not keys else "several Sec-WebSocket-Key headers",
            400,
        )
    key = keys[0].strip()
    try:
        raw = base64.b64decode(key.encode(), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise InvalidRequest("Sec-WebSocket-Key must be 16 bytes, base64-encoded", 400)
    versions = headers.get_all("Sec-WebSocket-Version")
    if versions != ["13"]:
        raise InvalidRequest(
            "unsupported Sec-WebSocket-Version: this server speaks version 13",
            426,
            [("Sec-WebSocket-Version", "13")],
        )
    result = ServerHandshake(key=key)
    offered = headers.get_tokens("Sec-WebSocket-Protocol")
    if offered and subprotocols:
        # Tokens are case-sensitive: reread them without lower-casing.
        offered = [
            t.strip()
            for v in headers.get_all("Sec-WebSocket-Protocol")
            for t in v.split(",")
            if t.strip()
        ]
        if callable(subprotocols):
            chosen = subprotocols(offered)
            if chosen is not None and chosen not in offered:
                raise NegotiationError(f"selected subprotocol {chosen!r} was not offered")
        else:
            chosen = next((p for p in subprotocols if p in offered), None)
        result.subprotocol = chosen
    if compression is not None:
        ext = headers.get_all("Sec-WebSocket-Extensions")
        if ext:
            result.deflate = server_negotiate(ext, compression)
    return result


def build_response(
    key: str,
    *,
    subprotocol: str | None = None,
    extensions: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The ``101 Switching Protocols`` response head for an accepted request."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    for name, value in extra_headers:
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --- client side -------------------------------------------------------------


def build_request(
    host: str,
    resource: str,
    key: str,
    *,
    origin: str | None = None,
    subprotocols: Sequence[str] = (),
    compression: DeflateOptions | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    user_agent: str | None = "wsio",
) -> bytes:
    """The upgrade request head a client sends."""
    lines = [
        f"GET {resource} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    if compression is not None:
        lines.append(f"Sec-WebSocket-Extensions: {client_offer(compression)}")
    names = {n.lower() for n, _ in extra_headers}
    if user_agent and "user-agent" not in names:
        lines.append(f"User-Agent: {user_agent}")
    for name, value in extra_headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError("header names and values must not contain CR or LF")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def parse_response_head(data: bytes | bytearray) -> tuple[int, str, Headers, int] | None:
    """Parse an HTTP response head from the start of *data*.

    Returns ``(status, reason, headers, length_of_head)``, or None when more
    bytes are needed. Raises :class:`InvalidResponse` on malformed input or a
    head over 16 KiB.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_RESPONSE_HEAD:
            raise InvalidResponse("response head too large")
        return None
    if end > MAX_RESPONSE_HEAD:
        raise InvalidResponse("response head too large")
    try:
        text = bytes(data[:end]).decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
        raise InvalidResponse("undecodable response head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    if (
        len(parts) < 2
        or not parts[0].startswith("HTTP/1.")
        or not parts[1].isdigit()
        or len(parts[1]) != 3
    ):
        raise InvalidResponse(f"malformed status line: {lines[0][:80]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = Headers()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise InvalidResponse(f"malformed header line: {line[:80]!r}")
        headers.add(name, value.strip())
    return status, reason, headers, end + 4


def validate_response(
    status: int,
    headers: Headers,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    compression: DeflateOptions | None = None,
    body: bytes = b"",
) -> tuple[str | None, PerMessageDeflate | None]:
    """Check a server's answer to our upgrade request (section 4.1, client requirements).

    Returns the agreed ``(subprotocol, deflate)``; raises :class:`InvalidStatus`
    for a status other than 101 and :class:`InvalidResponse` /
    :class:`NegotiationError` for everything else the client must refuse.
    """
    if status != 101:
        raise InvalidStatus(status, headers.items(), body)
    if not _has_token(headers, "Upgrade", "websocket"):
        raise InvalidResponse("missing 'websocket' in the Upgrade header")
    if not _has_token(headers, "Connection", "upgrade"):
        raise InvalidResponse("missing 'upgrade' in the Connection header")
    accepts = headers.get_all("Sec-WebSocket-Accept")
    if len(accepts) != 1 or accepts[0].strip() != accept_key(key):
        raise InvalidResponse("wrong Sec-WebSocket-Accept")
    protocols = headers.get_all("Sec-WebSocket-Protocol")
    subprotocol = None
    if protocols:
        if len(protocols) > 1 or "," in protocols[0]:
            raise NegotiationError("server selected several subprotocols")
        subprotocol = protocols[0].strip()
        if subprotocol not in subprotocols:
            raise NegotiationError(f"server selected a subprotocol we did not offer: {subprotocol}")
    ext = headers.get_all("Sec-WebSocket-Extensions")
    deflate = None
    if ext:
        if compression is None:
            raise NegotiationError("server accepted an extension we did not offer")
        deflate = client_accept(ext, compression)
    return subprotocol, deflate
