"""A deterministic English-like text corpus for the pipeline benchmarks.

    uv run python bench/corpus.py OUT.txt [--mb 100] [--seed 7]

Words follow a Zipf law (s=1.1) over a 50,000-word synthetic vocabulary; lines hold 0-20 words
with some punctuation and apostrophes, so the corpus exercises the same regex and shuffle paths
as real prose. The same arguments always give the same bytes (the same bytes as the workspace's
``shared/bench/make_corpus.py``), so figures from different runs and checkouts compare.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
from pathlib import Path

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "gi", "fu", "be",
             "an", "or", "el", "is", "um", "th", "ch", "st", "pr", "qu", "wa", "yo",
             "x"]  # fmt: skip
COMMON = ["the", "of", "and", "to", "a", "in", "is", "it's", "that", "for", "don't", "Python",
          "cloud", "beam", "data", "pipeline", "I", "you", "was", "with"]  # fmt: skip
PUNCT = [".", ",", ";", ":", "!", "?", " -", ""]


def vocabulary(rng: random.Random, n: int) -> list[str]:
    words: list[str] = []
    seen: set[str] = set()
    for w in COMMON:
        seen.add(w)
        words.append(w)
    while len(words) < n:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.03:
            w = w.capitalize()
        if rng.random() < 0.01:
            w += "'s"
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def write_corpus(out: Path, mb: float, seed: int) -> None:
    """Write about `mb` * 10^6 bytes of corpus to `out`; the bytes depend only on (mb, seed)."""
    rng = random.Random(seed)
    vocab = vocabulary(rng, 50_000)
    weights = [1.0 / (r**1.1) for r in range(1, len(vocab) + 1)]
    cum = list(itertools.accumulate(weights))
    total = cum[-1]
    target = int(mb * 1_000_000)
    written = 0
    with open(out, "w", encoding="utf-8") as f:
        buf: list[str] = []
        while written < target:
            n = rng.randint(0, 20)
            ws = [vocab[bisect.bisect_left(cum, rng.random() * total)] for _ in range(n)]
            line = " ".join(ws) + (rng.choice(PUNCT) if ws else "") + "\n"
            buf.append(line)
            written += len(line.encode("utf-8"))
            if len(buf) >= 10_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--mb", type=float, default=100.0, help="size in MB (10^6 bytes)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    write_corpus(a.out, a.mb, a.seed)


if __name__ == "__main__":
    main()
