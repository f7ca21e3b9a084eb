"""Rows for multi-row statements in a few fixed counts, so that few distinct statements exist.

A multi-row INSERT is one statement per row count. Built for whatever count a batch happened to
have, they pile up: the SQL text is cached here (functools.cache), and the driver keeps each
statement prepared (sqlite3 keeps 128 per connection, about 0.5 MB each at 1,000 rows of 19
columns). The 30-minute soak (docs/benchmarks.md, "Soak") saw the gateway's RSS grow by 75 MB
in 20 minutes as batches of new sizes came. So a batch goes as chunks of `size` rows and then
the rest in powers of two, largest first: at most 1 + log2(size) statements per batch, and 11
row counts in all for a size of 1,000.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunk_sizes(count: int, size: int) -> Iterator[int]:
    """The row counts `count` rows go in: `size` while that many are left, then powers of two."""
    left = count
    while left >= size:
        yield size
        left -= size
    step = 1 << (size.bit_length() - 1)  # the largest power of two not above size
    while left:
        while step > left:
            step >>= 1
        yield step
        left -= step


def chunked(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`rows` in order, cut as chunk_sizes says."""
    start = 0
    for n in chunk_sizes(len(rows), size):
        yield rows[start:start + n]
        start += n
