"""A small case-insensitive multi-dict of HTTP headers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["HeadMeter", "Headers"]


class Headers:
    """HTTP header fields, in order, looked up case-insensitively.

    Stored as a list of ``(name, value)`` pairs as received; lookups use the
    lower-cased name. ``headers["Host"]`` returns the first value (KeyError if
    absent), :meth:`get_all` every value.
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a field (keeps other fields of the same name)."""
        self._items.append((name, value))
        key = name.lower()
        values = self._index.get(key)
        if values is None:
            self._index[key] = [value]
        else:
            values.append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of *name*, or *default*."""
        values = self._index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of *name*, in order (an empty list if none)."""
        return list(self._index.get(name.lower(), ()))

    def get_tokens(self, name: str) -> list[str]:
        """The comma-separated tokens of every *name* field, lower-cased."""
        tokens = []
        for value in self._index.get(name.lower(), ()):
            for token in value.split(","):
                token = token.strip()
                if token:
                    tokens.append(token.lower())
        return tokens

    def __getitem__(self, name: str) -> str:
        values = self._index.get(name.lower())
        if not values:
            raise KeyError(name)
        return values[0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        """The fields as ``(name, value)`` pairs, in order."""
        return list(self._items)

    def to_dict(self) -> dict[str, str]:
        """Lower-cased names to values (several values joined with ", ")."""
        return {k: ", ".join(v) for k, v in self._index.items()}

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class HeadMeter:
    """Counts the bytes of an HTTP head as they arrive, up to its blank line.

    Parsers such as httptools hold an unfinished header line until it ends,
    so the raw stream is what tells an endless head; bytes after the blank
    line (the body) are not counted.
    """

    __slots__ = ("_tail", "done", "size")

    def __init__(self) -> None:
        self.size = 0
        self.done = False
        self._tail = b""

    def reset(self) -> None:
        """Start counting a new head."""
        self.size = 0
        self.done = False
        self._tail = b""

    def feed(self, data: bytes) -> int:
        """Account for *data*; returns the head's size so far."""
        if self.done:
            return self.size
        tail = self._tail
        joined = tail + data if tail else data
        end = joined.find(b"\r\n\r\n")
        if end >= 0:
            self.size += end + 4 - len(tail)
            self.done = True
        else:
            self.size += len(data)
            self._tail = joined[-3:]
        return self.size
