"""Grouping tables: elements grouped by the key's deterministic encoded bytes, as Beam does.

`1`, `True` and `1.0` encode differently, so they are three keys (a plain dict would merge
them). `str` and `bytes` keys, whose encodings are injective and agree with equality, are used
as they are, which saves an encode per element; every other key is grouped by its encoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["GroupTable", "key_of"]


def key_of(encode: Any) -> Any:
    """A function mapping a key to what it is grouped by."""

    def kk(k: Any) -> Any:
        t = type(k)
        if t is str or t is bytes:
            return k
        return (None, encode(k))

    return kk


class GroupTable:
    """Values grouped per key (and per window for non-default windowing)."""

    def __init__(self, key_coder: Any, spill: Any = None) -> None:
        self.kk = key_of(key_coder.get_impl().encode)
        self.table: dict[Any, list[Any]] = {}  # grouping key → [key, values]
        self.spill = spill

    def add_values(self, pairs: list[Any]) -> None:
        table = self.table
        kk = self.kk
        for k, v in pairs:
            g = kk(k)
            entry = table.get(g)
            if entry is None:
                table[g] = [k, [v]]
            else:
                entry[1].append(v)

    def add_windowed(self, wvs: list[Any]) -> None:
        table = self.table
        kk = self.kk
        for wv in wvs:
            k, v = wv.value
            g = kk(k)
            entry = table.get(g)
            if entry is None:
                table[g] = entry = [k, []]
            entry[1].append(wv.with_value(v))

    def grouped(self, n: int) -> Iterator[list[Any]]:
        out: list[Any] = []
        for key, values in self.table.values():
            out.append((key, values))
            if len(out) >= n:
                yield out
                out = []
        if out:
            yield out
        self.table = {}

    def grouped_windowed(self) -> Iterator[tuple[Any, list[Any]]]:
        for entry in self.table.values():
            yield entry[0], entry[1]
        self.table = {}
