"""A fast path for Beam's text read (`ReadFromText`): whole lines split from large blocks.

Beam's own reader claims every line from a range tracker, which is most of a read's cost. For
a plain `_TextSource` (uncompressed files, the default newline delimiter, no header lines or
escape character, trailing newlines stripped, UTF-8 strings) the records are exactly what
`bytes.split(b"\\n")` gives with one trailing `\\r` removed from each, and the last empty part
dropped; anything else keeps Beam's reader. Files are opened through Beam's FileSystems, so
`gs://` works as it does for Beam.

`byte_range(start, end)` follows Beam's rule for splits: a range owns every line that starts
in it (a line starting at `start` included unless it continues one from before).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["plain_text_files", "read_lines"]

_BLOCK = 8 << 20
BATCH = 2048


def plain_text_files(source: Any) -> list[tuple[str, int]] | None:
    """[(path, size)] when `source` can take the fast path, else None."""
    try:
        from apache_beam.coders import coders
        from apache_beam.io import textio
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems
    except ImportError:  # pragma: no cover
        return None
    if type(source) is not textio._TextSource:
        return None
    if (
        source._skip_header_lines
        or source._header_matcher is not None
        or source._delimiter is not None
        or source._escapechar is not None
        or not source._strip_trailing_newlines
        or type(source._coder) is not coders.StrUtf8Coder
    ):
        return None
    pattern = source._pattern
    if not isinstance(pattern, str):
        pattern = pattern.get()
    compression = source._compression_type
    files: list[tuple[str, int]] = []
    for match in FileSystems.match([pattern]):
        for meta in match.metadata_list:
            kind = compression
            if kind == CompressionTypes.AUTO:
                kind = CompressionTypes.detect_compression_type(meta.path)
            if kind != CompressionTypes.UNCOMPRESSED:
                return None
            files.append((meta.path, meta.size_in_bytes))
    return files


def read_lines(path: str, start: int = 0, end: int | None = None) -> Iterator[list[str]]:
    """The lines starting in [start, end) of `path`, in lists of about BATCH."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        pos = start  # file offset of the next line to yield
        if start > 0:
            f.seek(start - 1)
            if f.read(1) != b"\n":  # mid-line: that line belongs to the range before
                while True:
                    block = f.read(1 << 16)
                    if not block:
                        return
                    i = block.find(b"\n")
                    if i >= 0:
                        pos = f.tell() - len(block) + i + 1
                        break
            f.seek(pos)
        carry = b""
        while end is None or pos < end:
            block = f.read(_BLOCK)
            if not block:
                break
            data = carry + block if carry else block
            last = data.rfind(b"\n")
            if last < 0:
                carry = data
                continue
            cut = last
            if end is not None and pos + last >= end:
                # Keep the lines that start before `end`: up to the first newline at or
                # after end - 1 (the newline that ends the last line owned by the range).
                cut = data.find(b"\n", max(0, end - pos - 1))
            yield from _decoded(data[:cut])
            if cut < last:
                return
            carry = data[last + 1 :]
            pos += last + 1
        if carry and (end is None or pos < end):
            yield [carry.decode("utf-8")]  # at the end of the file: no newline to strip


def _decoded(chunk: bytes) -> Iterator[list[str]]:
    """The lines of `chunk` (whole lines, the last one's newline cut off), decoded at once
    and split in C, one trailing carriage return removed from each."""
    lines = chunk.decode("utf-8").split("\n")
    if b"\r" in chunk:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    for i in range(0, len(lines), BATCH):
        yield lines[i : i + BATCH]
