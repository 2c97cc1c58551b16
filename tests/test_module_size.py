"""No module of src/ grows past 600 lines: a module that long asks to be split by concept
(docs/architecture.md; STYLE.md, after Starlette's one module per idea)."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LIMIT = 600

# Known exceptions (path under src/ → the bound it may not pass), each with its reason in a
# comment. Keep it empty.
EXCEPTIONS: dict[str, int] = {}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_is_over_600_lines() -> None:
    too_long = {
        str(p.relative_to(SRC)): n
        for p in sorted(SRC.rglob("*.py"))
        if (n := _lines(p)) > EXCEPTIONS.get(str(p.relative_to(SRC)), LIMIT)
    }
    assert too_long == {}, f"split these modules (over {LIMIT} lines): {too_long}"


def test_every_exception_is_still_needed() -> None:
    # An exception whose module shrank under the limit is dropped from the list.
    assert [m for m in EXCEPTIONS if _lines(SRC / m) <= LIMIT] == []
