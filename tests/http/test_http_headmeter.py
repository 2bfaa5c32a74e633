"""HeadMeter counts an HTTP head in any split of the stream, never the body after it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wsio.http.headers import HeadMeter

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 70000\r\n\r\n"
BODY = b"\r\n" * 35000  # a body full of line ends must not confuse it


@given(
    st.lists(st.integers(min_value=1, max_value=len(HEAD) + len(BODY) - 1), max_size=8, unique=True)
)
def test_any_split_counts_the_head_only(cuts: list[int]) -> None:
    data = HEAD + BODY
    meter = HeadMeter()
    previous = 0
    for cut in [*sorted(cuts), len(data)]:
        meter.feed(data[previous:cut])
        previous = cut
    assert meter.done
    assert meter.size == len(HEAD)


def test_an_endless_head_keeps_growing() -> None:
    meter = HeadMeter()
    meter.feed(b"GET / HTTP/1.1\r\nX-Endless: ")
    for _ in range(100):
        meter.feed(b"a" * 1000)
    assert not meter.done and meter.size > 100_000
    meter.reset()
    assert meter.feed(b"GET / HTTP/1.1\r\n\r\n") == 18 and meter.done
