"""permessage-deflate (RFC 7692): negotiation on both sides, and the codec.

Memory, per connection, for the parameters used here (zlib's own formulas):

* compressing with window bits ``w`` and memLevel ``m`` costs
  ``2**(w + 2) + 2**(m + 9)`` bytes: 32 KiB for the defaults (w=12, m=5),
  256 KiB for zlib's defaults (w=15, m=8);
* decompressing costs ``2**w`` plus about 7 KiB: 11 KiB for w=12, 39 KiB for 15.

The defaults (window bits 12 both ways, memLevel 5, level 6) keep a
compressed connection near 45 KiB while keeping most of the ratio on chat-like
traffic. With ``*_no_context_takeover`` the contexts are released between
messages, which trades ratio for memory on idle connections.

zlib cannot produce a raw deflate stream with a window of 8 bits (it silently
uses 9). When we choose the peer's window we never ask for 8 (we ask for 9);
when a peer forces 8 on our compressor, we compress with Huffman coding only,
which emits no back-references and so fits any window.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .exceptions import NegotiationError, ProtocolError

__all__ = [
    "DeflateOptions",
    "PerMessageDeflate",
    "client_accept",
    "client_offer",
    "parse_extensions",
    "server_negotiate",
]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"

ExtensionParams = list[tuple[str, str | None]]


@dataclass(frozen=True, slots=True)
class DeflateOptions:
    """What this endpoint wants from permessage-deflate.

    * ``server_max_window_bits`` / ``client_max_window_bits``: the largest
      LZ77 window (8-15) the server / client compresses with. A server asks the
      client for ``client_max_window_bits`` only when the client offered to
      honour it; a client asks the server only when these differ from 15.
    * ``server_no_context_takeover`` / ``client_no_context_takeover``: reset the
      compression context after each message (less memory, worse ratio).
    * ``level`` (0-9) and ``mem_level`` (1-9) tune zlib.
    * ``threshold``: messages shorter than this are sent uncompressed.
    """

    server_max_window_bits: int = 12
    client_max_window_bits: int = 12
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    level: int = 6
    mem_level: int = 5
    threshold: int = 64

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            if not 8 <= getattr(self, name) <= 15:
                raise ValueError(f"{name} must be between 8 and 15")
        if not 0 <= self.level <= 9 and self.level != -1:
            raise ValueError("level must be between 0 and 9")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be between 1 and 9")


# --- header parsing (RFC 6455 section 9.1) ------------------------------------

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            buf.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quoted:
        raise ValueError("unterminated quoted string")
    parts.append("".join(buf))
    return parts


def _is_token(s: str) -> bool:
    return bool(s) and all(c in _TOKEN_CHARS for c in s)


def parse_extensions(values: list[str]) -> list[tuple[str, ExtensionParams]]:
    """Parse ``Sec-WebSocket-Extensions`` header values into (name, params) pairs.

    Raises ValueError on a malformed header.
    """
    result: list[tuple[str, ExtensionParams]] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            item = item.strip()
            if not item:
                continue
            pieces = _split_outside_quotes(item, ";")
            name = pieces[0].strip()
            if not _is_token(name):
                raise ValueError(f"invalid extension name {name!r}")
            params: ExtensionParams = []
            for piece in pieces[1:]:
                piece = piece.strip()
                if "=" in piece:
                    key, _, val = piece.partition("=")
                    key, val = key.strip(), val.strip()
                    if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                        val = val[1:-1].replace("\\", "")
                    if not _is_token(val):
                        raise ValueError(f"invalid value for extension parameter {key!r}")
                    params.append((key, val))
                else:
                    key, val2 = piece, None
                    params.append((key, val2))
                if not _is_token(key):
                    raise ValueError(f"invalid extension parameter {key!r}")
            result.append((name, params))
    return result


@dataclass(slots=True)
class _Params:
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    client_max_window_bits_flag: bool = False  # present without a value


def _window_bits(value: str | None, name: str) -> int:
    if value is None or not value.isdigit() or len(value) > 2 or value.startswith("0"):
        raise ValueError(f"{name} needs a value between 8 and 15")
    bits = int(value)
    if not 8 <= bits <= 15:
        raise ValueError(f"{name}={bits} is out of range 8-15")
    return bits


def _parse_params(params: ExtensionParams, *, is_offer: bool) -> _Params:
    """Validate permessage-deflate parameters (RFC 7692 section 7.1)."""
    p = _Params()
    seen: set[str] = set()
    for key, value in params:
        if key in seen:
            raise ValueError(f"duplicate parameter {key}")
        seen.add(key)
        if key in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{key} takes no value")
            setattr(p, key, True)
        elif key == "server_max_window_bits":
            p.server_max_window_bits = _window_bits(value, key)
        elif key == "client_max_window_bits":
            if value is None:
                if not is_offer:
                    raise ValueError("client_max_window_bits needs a value in a response")
                p.client_max_window_bits_flag = True
            else:
                p.client_max_window_bits = _window_bits(value, key)
        else:
            raise ValueError(f"unknown parameter {key}")
    return p


# --- the codec -----------------------------------------------------------------


class PerMessageDeflate:
    """The negotiated permessage-deflate state of one connection.

    ``local_*`` applies to what we compress, ``remote_*`` to what we inflate.
    """

    __slots__ = (
        "_compressor",
        "_decompressor",
        "level",
        "local_max_window_bits",
        "local_no_context_takeover",
        "mem_level",
        "remote_max_window_bits",
        "remote_no_context_takeover",
        "response",
        "threshold",
    )

    def __init__(
        self,
        *,
        local_max_window_bits: int = 15,
        local_no_context_takeover: bool = False,
        remote_max_window_bits: int = 15,
        remote_no_context_takeover: bool = False,
        level: int = 6,
        mem_level: int = 5,
        threshold: int = 64,
        response: str = EXTENSION_NAME,
    ) -> None:
        self.local_max_window_bits = local_max_window_bits
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.remote_no_context_takeover = remote_no_context_takeover
        self.level = level
        self.mem_level = mem_level
        self.threshold = threshold
        self.response = response
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    # compression -------------------------------------------------------------

    def _new_compressor(self) -> zlib._Compress:
        bits = self.local_max_window_bits
        if bits == 8:
            # No back-references at all: valid for any window size.
            return zlib.compressobj(
                self.level, zlib.DEFLATED, -9, self.mem_level, zlib.Z_HUFFMAN_ONLY
            )
        return zlib.compressobj(self.level, zlib.DEFLATED, -bits, self.mem_level)

    def compress(self, data: bytes, *, fin: bool = True) -> bytes:
        """Compress one message (or one fragment of it when ``fin`` is False)."""
        c = self._compressor
        if c is None:
            c = self._compressor = self._new_compressor()
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            if out.endswith(_TAIL):
                out = out[:-4]
            if self.local_no_context_takeover:
                self._compressor = None
        return out

    # decompression -----------------------------------------------------------

    def decompress(self, data: bytes, max_length: int, *, fin: bool) -> bytes:
        """Inflate one chunk of a compressed message.

        ``max_length`` bounds the output (0: unbounded); the caller treats
        output of exactly ``max_length`` bytes as "too big", which stops a
        deflate bomb after at most that many bytes were produced.
        """
        d = self._decompressor
        if d is None:
            # A window of 8 bits is inflated with 9: zlib peers may have used 9.
            d = self._decompressor = zlib.decompressobj(-max(self.remote_max_window_bits, 9))
        try:
            if fin:
                data = data + _TAIL
            if max_length:
                out = d.decompress(data, max_length)
                if len(out) < max_length and d.unconsumed_tail:  # pragma: no cover - defensive
                    out += d.decompress(d.unconsumed_tail, max_length - len(out))
            else:
                out = d.decompress(data)
        except zlib.error as exc:
            self._decompressor = None
            raise ProtocolError(1007, f"invalid compressed data: {exc}") from None
        if fin and self.remote_no_context_takeover:
            self._decompressor = None
        return out

    def reset_decompressor(self) -> None:
        """Forget the inflate context (after a failure)."""
        self._decompressor = None


def _response_string(parts: list[str]) -> str:
    return "; ".join([EXTENSION_NAME, *parts])


def server_negotiate(values: list[str], options: DeflateOptions) -> PerMessageDeflate | None:
    """Pick the first acceptable permessage-deflate offer of a client.

    Returns None when there is none (the connection then runs uncompressed);
    offers with invalid parameters are declined, not fatal (RFC 7692 section 5).
    The ``response`` attribute of the result is the header value to send.
    """
    try:
        extensions = parse_extensions(values)
    except ValueError:
        return None
    for name, params in extensions:
        if name != EXTENSION_NAME:
            continue
        try:
            offer = _parse_params(params, is_offer=True)
        except ValueError:
            continue
        parts: list[str] = []
        # Our own compression (server -> client).
        server_bits = options.server_max_window_bits
        if offer.server_max_window_bits is not None:
            server_bits = min(server_bits, offer.server_max_window_bits)
        if server_bits < 15 or offer.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={server_bits}")
        server_nct = options.server_no_context_takeover or offer.server_no_context_takeover
        if server_nct:
            parts.append("server_no_context_takeover")
        # The client's compression (what we inflate).
        client_bits = offer.client_max_window_bits or 15
        if offer.client_max_window_bits is not None or offer.client_max_window_bits_flag:
            wanted = max(options.client_max_window_bits, 9)  # never ask a zlib peer for 8
            if wanted < client_bits:
                client_bits = wanted
            if client_bits < 15 or offer.client_max_window_bits is not None:
                parts.append(f"client_max_window_bits={client_bits}")
        # The client's "client_no_context_takeover" in an offer is only a hint
        # (some clients ignore their own hint): rely on it only by echoing it,
        # which binds the client.
        client_nct = options.client_no_context_takeover or offer.client_no_context_takeover
        if client_nct:
            parts.append("client_no_context_takeover")
        return PerMessageDeflate(
            local_max_window_bits=server_bits,
            local_no_context_takeover=server_nct,
            remote_max_window_bits=client_bits,
            remote_no_context_takeover=client_nct,
            level=options.level,
            mem_level=options.mem_level,
            threshold=options.threshold,
            response=_response_string(parts),
        )
    return None


def client_offer(options: DeflateOptions) -> str:
    """The ``Sec-WebSocket-Extensions`` value a client sends."""
    parts: list[str] = []
    if options.server_no_context_takeover:
        parts.append("server_no_context_takeover")
    if options.client_no_context_takeover:
        parts.append("client_no_context_takeover")
    if options.server_max_window_bits < 15:
        parts.append(f"server_max_window_bits={options.server_max_window_bits}")
    if options.client_max_window_bits < 15:
        parts.append(f"client_max_window_bits={options.client_max_window_bits}")
    else:
        parts.append("client_max_window_bits")
    return _response_string(parts)


def client_accept(values: list[str], options: DeflateOptions) -> PerMessageDeflate | None:
    """Check a server's ``Sec-WebSocket-Extensions`` answer to :func:`client_offer`.

    Returns None when the server accepted no extension; raises
    NegotiationError when it answered with something we did not offer.
    """
    try:
        extensions = parse_extensions(values)
    except ValueError as exc:
        raise NegotiationError(f"invalid Sec-WebSocket-Extensions: {exc}") from None
    if not extensions:
        return None
    if len(extensions) > 1:
        raise NegotiationError("server accepted more than one extension")
    name, params = extensions[0]
    if name != EXTENSION_NAME:
        raise NegotiationError(f"server accepted an extension we did not offer: {name}")
    try:
        resp = _parse_params(params, is_offer=False)
    except ValueError as exc:
        raise NegotiationError(f"invalid permessage-deflate response: {exc}") from None
    if options.server_no_context_takeover and not resp.server_no_context_takeover:
        raise NegotiationError("server ignored server_no_context_takeover")
    server_bits = resp.server_max_window_bits or 15
    if options.server_max_window_bits < 15 and server_bits > options.server_max_window_bits:
        raise NegotiationError("server ignored server_max_window_bits")
    client_bits = options.client_max_window_bits
    if resp.client_max_window_bits is not None:
        if resp.client_max_window_bits > client_bits:
            raise NegotiationError("server asked for a larger client_max_window_bits than offered")
        client_bits = resp.client_max_window_bits
    return PerMessageDeflate(
        local_max_window_bits=client_bits,
        local_no_context_takeover=options.client_no_context_takeover
        or resp.client_no_context_takeover,
        remote_max_window_bits=server_bits,
        remote_no_context_takeover=resp.server_no_context_takeover,
        level=options.level,
        mem_level=options.mem_level,
        threshold=options.threshold,
        response=_response_string([]),
    )
