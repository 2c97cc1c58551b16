#!/usr/bin/env python3
"""Figures of src/cloudlet's module graph, now or at any commit: for the closing notes of
architecture work (docs/architecture.md). It uses the layering test's own analysis
(tests/test_layering.py), so the figures count what the test enforces.

    uv run python scripts/module_graph.py            # the working tree
    uv run python scripts/module_graph.py REV ...    # commits (git archive of their src/)
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_layering import (  # noqa: E402
    _modules,
    all_imports,
    module_cycles,
    package_cycles,
    violations,
)

__all__ = ["figures"]


def figures(src: Path) -> dict[str, object]:
    modules = _modules(src)
    imports = all_imports(modules)
    cycles = module_cycles(imports, modules)
    found = violations(imports, modules)
    wrong_way = [v for v in found if "may not import" in v]
    lengths = {name: len(path.read_text().splitlines()) for name, path in modules.items()}
    return {
        "modules": len(modules),
        "lines": sum(lengths.values()),
        "imports of cloudlet modules": len(imports),
        "module cycles (SCCs)": len(cycles),
        "modules in cycles": sum(len(c) for c in cycles),
        "package cycles": [sorted(c) for c in package_cycles(imports)],
        "upward imports (against the layer rules)": len(wrong_way),
        "reaches past a package's __all__": len(found) - len(wrong_way),
        "modules over 600 lines": sorted(n for n, k in lengths.items() if k > 600),
        "longest module": max(lengths.items(), key=lambda kv: kv[1]),
        "# fmt: skip": sum(p.read_text().count("# fmt: skip") for p in modules.values()),
    }


def _at(rev: str, into: Path) -> Path:
    command = ["git", "-C", str(ROOT), "archive", rev, "src"]
    archive = subprocess.run(command, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main(revs: list[str]) -> None:
    targets = revs or ["working tree"]
    for rev in targets:
        with tempfile.TemporaryDirectory() as tmp:
            src = ROOT / "src" if rev == "working tree" else _at(rev, Path(tmp))
            print(f"== {rev}")
            for key, value in figures(src).items():
                print(f"  {key}: {value}")


if __name__ == "__main__":
    main(sys.argv[1:])
