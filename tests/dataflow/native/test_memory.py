"""The native engine under a small memory budget (bench/memory.py's cases, scaled down): a
wordcount, a GroupByKey over many distinct keys and one over a single hot key give the right
result, the two GroupByKeys spill (the engine names each spill file it writes; the files are
gone at the end), and the peak RSS of the engine's processes together (its driver and forked
workers, sampled) stays under the budget + 200 MB. bench/memory.py runs the full-scale cases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from bench.corpus import write_corpus
from bench.memory import (
    COMBINES,
    GROUPS,
    MARGIN_MB,
    WORDCOUNT,
    count_words,
    numbers_file,
    read_counts,
    run_case,
)

pytestmark = pytest.mark.slow

BUDGET_MB = 400  # below the processes' own RSS (Python + Beam): every check spills


@pytest.mark.parametrize(("case", "n"), [("keys", 150_000), ("hot", 150_000)])
def test_a_group_by_key_spills_and_stays_under_the_budget(tmp_path: Path, case: str,
                                                          n: int) -> None:  # fmt: skip
    inp = numbers_file(tmp_path / "numbers.txt", n)
    out = tmp_path / "out"
    work = tmp_path / "work"
    work.mkdir()
    result = run_case(GROUPS, [str(inp), str(out), case], BUDGET_MB, work)
    keys = 1 if case == "hot" else n
    assert out.read_text().split() == [str(keys), str(n), str(n * (n - 1) // 2), "True"]
    assert result["spills_logged"], "no spill"
    assert not any(Path(p).exists() for p in result["spills_logged"])
    assert result["spill_left"] == 0
    assert result["peak_rss_mb"] <= BUDGET_MB + MARGIN_MB, result


def test_combines_spill_their_accumulators_and_stay_under_the_budget(tmp_path: Path) -> None:
    n = 150_000
    inp = numbers_file(tmp_path / "numbers.txt", n)
    out = tmp_path / "out"
    work = tmp_path / "work"
    work.mkdir()
    result = run_case(COMBINES, [str(inp), str(out)], BUDGET_MB, work)
    # Every key's sum and mean is its own number: n keys twice, 2 * (0 + ... + n-1).
    assert out.read_text().split() == [str(2 * n), str(n * (n - 1)), "True"]
    assert any("accumulators" in what for what in result["spilled"]), result["spilled"]
    assert not any(Path(p).exists() for p in result["spills_logged"])
    assert result["spill_left"] == 0
    assert result["peak_rss_mb"] <= BUDGET_MB + MARGIN_MB, result


def test_a_wordcount_stays_under_the_budget(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, 2, 7)  # past parallel.MIN_BYTES: the read forks its workers
    out = tmp_path / "out"
    work = tmp_path / "work"
    work.mkdir()
    result = run_case(WORDCOUNT, [str(corpus), str(out)], BUDGET_MB, work)
    assert read_counts(out) == count_words(corpus) != Counter()
    assert result["processes"] >= 2  # the workers were sampled too
    assert result["peak_rss_mb"] <= BUDGET_MB + MARGIN_MB, result
