"""JSON as JavaScript speaks it.

Every JSON text that wsio puts on the wire is read by ``JSON.parse`` on the
other side, and every JSON text it reads was usually written by
``JSON.stringify``. This module pins down that dialect:

* :func:`dumps` writes compact JSON (no spaces), keeps non-ASCII text as UTF-8
  instead of ``\\uXXXX`` escapes, and turns ``NaN``, ``Infinity`` and
  ``-Infinity`` into ``null``, as ``JSON.stringify`` does.
* :func:`loads` rejects the ``NaN`` / ``Infinity`` / ``-Infinity`` literals
  (``JSON.stringify`` never produces them), numbers that overflow a double,
  lone UTF-16 surrogates, invalid UTF-8 and trailing data, with
  :class:`ValueError`.

orjson is used when it is importable and the standard library otherwise. The
two paths give the same results:

* Anything orjson refuses to encode (integers beyond 64 bits, dict keys that
  are not ``str``, tuple subclasses, strings holding lone surrogates,
  ``datetime`` and dataclass objects, nesting deeper than orjson allows...) is
  handed to the standard library path, so its outcome is whatever that path
  decides. Integer, float, boolean and ``None`` keys become strings the way
  :mod:`json` writes them; ``datetime``, ``date``, ``time`` and dataclass
  instances raise :class:`TypeError` on both paths (convert them first);
  :class:`enum.Enum` members are written as their value and
  :class:`uuid.UUID` as its canonical string on both paths. Strings holding
  lone surrogates (not encodable as UTF-8) are written with ``\\uXXXX``
  escapes, as ``JSON.stringify`` does.
* Decoded integers keep their exact value in the 64-bit range
  ``[-2**63, 2**64 - 1]``; larger ones become floats, as a JavaScript peer
  would read them. Escaped lone surrogates (``"\\ud800"``) are rejected on
  both paths.
* The only byte-level difference: floats with a large or small exponent are
  spelled differently (``1e-07`` by the standard library, ``1e-7`` by
  orjson); both parse to the same double.
* Pathologically deep nesting (hundreds of levels) raises :class:`ValueError`
  on both paths, but the exact depth limit differs.
"""

from __future__ import annotations

import enum
import json
import math
import re
import uuid
from typing import Any

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the stdlib path is tested via _USE_ORJSON
    _orjson = None

__all__ = ["dumps", "loads"]

#: Whether the orjson fast path is used. Tests switch it off to exercise the
#: standard library path.
_USE_ORJSON: bool = _orjson is not None

if _orjson is not None:
    _ORJSON_OPTIONS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS
    _orjson_dumps = _orjson.dumps
    _orjson_loads = _orjson.loads
    _OrjsonEncodeError: type[Exception] = _orjson.JSONEncodeError
else:  # pragma: no cover - depends on the environment
    _ORJSON_OPTIONS = 0
    _OrjsonEncodeError = TypeError

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


# -- encoding ---------------------------------------------------------------


def _std_default(obj: Any) -> Any:
    """Serialize the extra types orjson knows natively, the same way it does."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_std_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_std_default
)
_std_encoder_ascii = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_std_default
)


def _replace_non_finite(obj: Any, active: set[int]) -> Any:
    """Return a copy of ``obj`` with non-finite floats replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (list, tuple, dict)):
        key = id(obj)
        if key in active:
            raise ValueError("Circular reference detected")
        active.add(key)
        try:
            if isinstance(obj, dict):
                return {k: _replace_non_finite(v, active) for k, v in obj.items()}
            return [_replace_non_finite(v, active) for v in obj]
        finally:
            active.discard(key)
    return obj


def _std_dumps(obj: Any) -> str:
    try:
        text = _std_encoder.encode(obj)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        obj = _replace_non_finite(obj, set())
        text = _std_encoder.encode(obj)
    except RecursionError:
        raise ValueError("JSON value nested too deeply") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates: escape them as JSON.stringify does.
            text = _std_encoder_ascii.encode(obj)
    return text


def dumps(obj: Any) -> str:
    """Serialize ``obj`` to compact JSON text that ``JSON.parse`` accepts.

    Raises :class:`TypeError` for values JSON cannot represent (``bytes``,
    ``set``, ``datetime``...) and :class:`ValueError` for circular or
    pathologically deep structures.
    """
    if _USE_ORJSON:
        try:
            encoded: bytes = _orjson_dumps(obj, option=_ORJSON_OPTIONS)
            return encoded.decode()
        except _OrjsonEncodeError:
            pass
    return _std_dumps(obj)


# -- decoding ---------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name!r}")


def _parse_int(text: str) -> int | float:
    if len(text) <= 18:
        return int(text)
    if len(text) <= 21:
        value = int(text)
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
    number = float(text)
    if math.isinf(number):
        raise ValueError("JSON number out of range")
    return number


def _parse_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError("JSON number out of range")
    return number


_std_decoder = json.JSONDecoder(
    parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _is_utf8_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_no_surrogates(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _is_utf8_text(item):
                raise ValueError("JSON string holds a lone UTF-16 surrogate")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def _std_loads(data: str | bytes | bytearray | memoryview) -> Any:
    if isinstance(data, str):
        text = data
        if not _is_utf8_text(text):
            raise ValueError("JSON text holds a lone UTF-16 surrogate")
    else:
        text = bytes(data).decode("utf-8")
    try:
        value = _std_decoder.decode(text)
    except RecursionError:
        raise ValueError("JSON value nested too deeply") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        _check_no_surrogates(value)
    return value


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse one JSON text (``str`` or UTF-8 ``bytes``).

    Raises :class:`ValueError` (a :class:`json.JSONDecodeError` or
    :class:`UnicodeDecodeError` in most cases) for anything that is not
    exactly one valid JSON value in the dialect described in the module
    docstring.
    """
    if _USE_ORJSON:
        try:
            return _orjson_loads(data)
        except RecursionError:
            raise ValueError("JSON value nested too deeply") from None
    return _std_loads(data)
