"""The shuffle between the native engine's worker processes (native/exchange.py): a grouping's
merge, its output and the stage after it run in the workers, never in the parent; 1, True and
1.0 stay three keys whichever worker they land in; many keys give FnApiRunner's output; a
spilled table is shuffled as sorted runs whose files are gone at the end; a combine spills
what it receives past the budget; a worker killed after its partitions were written fails the
job, naming it, and leaves no process behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from cloudlet.dataflow.native import NativeRunner, exchange
from cloudlet.dataflow.native.parallel import MIN_BYTES, WorkerDied

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]
KEYS: list[Any] = [1, True, 1.0, "1", b"1", None, (1,), 2**70]


def _pipeline(runner: Any = None, workers: int = 2) -> beam.Pipeline:
    options = PipelineOptions([f"--direct_num_workers={workers}"])
    return beam.Pipeline(runner=runner or NativeRunner(), options=options)


@pytest.fixture(scope="module")
def numbers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lines 0..n-1: more than MIN_BYTES, so the read forks its workers."""
    path = tmp_path_factory.mktemp("numbers") / "numbers.txt"
    path.write_text("".join(f"{i:07d}\n" for i in range(200_000)))
    assert path.stat().st_size > MIN_BYTES
    return path


def _read(p: beam.Pipeline, path: Path) -> Any:
    return p | beam.io.ReadFromText(str(path)) | beam.Map(int)


class _SumWithPid(beam.CombineFn):  # type: ignore[misc]
    """A sum whose output names the process that extracted it."""

    def create_accumulator(self) -> int:
        return 0

    def add_input(self, acc: int, x: int) -> int:
        return acc + x

    def merge_accumulators(self, accs: Any) -> int:
        return sum(accs)

    def extract_output(self, acc: int) -> tuple[int, int]:
        return acc, os.getpid()


def test_the_merge_and_the_steps_after_it_run_in_the_workers(numbers: Path) -> None:
    # Five keys: before the shuffle, the parent merged the workers' tables, extracted the
    # outputs, and ran the 5-element stage after each grouping itself.
    parent = os.getpid()
    n = 200_000

    def no_parent(pids: list[int]) -> None:
        assert pids and parent not in pids, pids

    with _pipeline() as p:
        keyed = _read(p, numbers) | beam.Map(lambda i: (WORDS[i % 5], i))
        combined = keyed | beam.CombinePerKey(_SumWithPid())
        grouped = keyed | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, len(vs), os.getpid()))
        assert_that(combined | beam.MapTuple(lambda k, sp: sp[1]), no_parent, label="extracted")
        assert_that(grouped | beam.MapTuple(lambda k, n, pid: pid), no_parent, label="grouped")
        sums = combined | beam.MapTuple(lambda k, sp: (k, sp[0]))
        expected = Counter[str]()
        for i in range(n):
            expected[WORDS[i % 5]] += i
        assert_that(sums, equal_to(list(expected.items())), label="sums")
        sizes = grouped | beam.MapTuple(lambda k, size, pid: (k, size))
        assert_that(sizes, equal_to([(w, n // 5) for w in WORDS]), label="sizes")


def test_one_true_and_one_point_oh_are_three_keys_across_workers(numbers: Path) -> None:
    n = 200_000
    assert len({exchange.partition_of(exchange_key(k), 2) for k in KEYS}) == 2  # both workers

    with _pipeline() as p:
        keyed = _read(p, numbers) | beam.Map(lambda i: (KEYS[i % len(KEYS)], 1))
        counted = keyed | beam.CombinePerKey(sum)
        grouped = keyed | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, len(vs)))
        expected = [(k, n // len(KEYS)) for k in KEYS]
        assert_that(counted, equal_to(expected), label="combined")
        assert_that(grouped, equal_to(expected), label="grouped")


def exchange_key(k: Any) -> Any:
    """What the engine groups `k` by (shuffle.key_of with Beam's deterministic coder)."""
    from apache_beam.coders import coders

    from cloudlet.dataflow.native.shuffle import key_of

    return key_of(coders.FastPrimitivesCoder().get_impl().encode)(k)


def _many_keys(p: beam.Pipeline, path: Path, out: Path) -> None:
    ints = _read(p, path)
    grouped = (ints | beam.Map(lambda i: (i % 70_001, i)) | beam.GroupByKey()
               | beam.MapTuple(lambda k, vs: f"g {k} {sorted(vs)}"))  # fmt: skip
    summed = (ints | "Str" >> beam.Map(lambda i: (str(i % 90_001), i)) | beam.CombinePerKey(sum)
              | beam.MapTuple(lambda k, s: f"s {k} {s}"))  # fmt: skip
    _ = (grouped, summed) | beam.Flatten() | beam.io.WriteToText(str(out))


@pytest.mark.slow
def test_many_keys_give_fnapis_output(numbers: Path, tmp_path: Path) -> None:
    with _pipeline() as p:
        _many_keys(p, numbers, tmp_path / "native")
    with _pipeline("FnApiRunner", workers=1) as p:
        _many_keys(p, numbers, tmp_path / "fnapi")

    def lines(prefix: str) -> list[str]:
        return sorted(x for f in tmp_path.glob(f"{prefix}-*") for x in f.read_text().splitlines())

    native = lines("native")
    assert len(native) == 70_001 + 90_001
    assert native == lines("fnapi")


def test_a_spilled_table_is_shuffled_as_runs(
    numbers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget of 1 MB is below any process's RSS: every check spills, so each worker's
    table is sorted runs when it partitions it. The workers log the partition files they write
    (a file per line); all are gone at the end, as are the spill files."""
    from cloudlet.dataflow.native import shuffle

    spill = tmp_path / "spill"
    spill.mkdir()
    log = tmp_path / "routes.log"
    monkeypatch.setenv("CLOUDLET_DATAFLOW_MEMORY_MB", "1")
    monkeypatch.setattr(shuffle, "CHECK_EVERY", 1000)
    monkeypatch.setattr(shuffle.tempfile, "tempdir", str(spill))
    original = exchange.write_partitions

    def logged(op: Any, n: int, spill_dir: Any) -> list[list[tuple[str, str]]]:
        routes = original(op, n, spill_dir)
        with log.open("a") as f:
            f.writelines(f"{os.getpid()} {kind} {path}\n" for rs in routes for kind, path in rs)
        return routes

    monkeypatch.setattr(exchange, "write_partitions", logged)
    n = 200_000
    with _pipeline() as p:
        ints = _read(p, numbers)
        many = (ints | "many" >> beam.Map(lambda i: (i % 50_000, 1)) | "g1" >> beam.GroupByKey()
                | beam.MapTuple(lambda k, vs: (k, len(vs))))  # fmt: skip
        hot = (ints | "hot" >> beam.Map(lambda i: ("k", i)) | "g2" >> beam.GroupByKey()
               | beam.MapTuple(lambda k, vs: (k, len(vs), sum(vs))))  # fmt: skip
        assert_that(many, equal_to([(k, 4) for k in range(50_000)]))
        assert_that(hot, equal_to([("k", n, n * (n - 1) // 2)]), label="hot")
    routes = [line.split() for line in log.read_text().splitlines()]
    # Two stages (one per GroupByKey) of two workers each, every one wrote partitions.
    assert len({pid for pid, _, _ in routes}) == 4, routes
    assert os.getpid() not in {int(pid) for pid, _, _ in routes}
    assert "run" in {kind for _, kind, _ in routes}
    assert not any(Path(path).exists() for _, _, path in routes)
    assert list(spill.iterdir()) == []


def _die_on_gamma(kv: tuple[str, int]) -> tuple[str, int]:
    if kv[0] == "gamma" and os.getpid() != int(os.environ["NATIVE_TEST_PARENT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return kv


def test_a_worker_killed_in_the_shuffle_fails_the_job_naming_it(
    numbers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker that owns gamma's partition dies once the partitions are exchanged, while the
    # other waits for the next round (WriteToText's own GroupByKey): the job fails, no hang.
    monkeypatch.setenv("NATIVE_TEST_PARENT", str(os.getpid()))
    died = r"worker process \d+ died \(exit code -9\)"
    with pytest.raises(WorkerDied, match=died), _pipeline() as p:
        counted = (_read(p, numbers) | beam.Map(lambda i: (WORDS[i % 5], i))
                   | beam.CombinePerKey(sum))  # fmt: skip
        _ = counted | beam.Map(_die_on_gamma) | beam.io.WriteToText(str(tmp_path / "out"))
    assert multiprocessing.active_children() == []


def _with_window(kv: tuple[str, Any], w: Any = beam.DoFn.WindowParam) -> Any:
    k, v = kv
    return k, v if isinstance(v, int) else len(list(v)), int(w.start)


def test_windowed_groups_are_shuffled_by_key_and_window(numbers: Path) -> None:
    from apache_beam.transforms import window

    n = 200_000
    expected = Counter((WORDS[i % 5], i % 100 // 10 * 10) for i in range(n))
    with _pipeline() as p:
        windowed = (_read(p, numbers)
                    | beam.Map(lambda i: window.TimestampedValue((WORDS[i % 5], 1), i % 100))
                    | beam.WindowInto(window.FixedWindows(10)))  # fmt: skip
        summed = windowed | beam.CombinePerKey(sum) | "S" >> beam.Map(_with_window)
        grouped = windowed | beam.GroupByKey() | "G" >> beam.Map(_with_window)
        want = [(k, c, start) for (k, start), c in expected.items()]
        assert_that(summed, equal_to(want), label="summed")
        assert_that(grouped, equal_to(want), label="grouped")


def test_a_side_input_from_a_stage_the_workers_ran(numbers: Path) -> None:
    # The first GroupByKey's workers run the stage after it (the sizes); the second's workers
    # run a stage reading those sizes as a side input, which the parent holds by then.
    n = 200_000
    with _pipeline() as p:
        sizes = (_read(p, numbers) | "Five" >> beam.Map(lambda i: (WORDS[i % 5], i))
                 | "G1" >> beam.GroupByKey() | beam.MapTuple(lambda k, vs: len(vs)))  # fmt: skip
        second = p | "Again" >> beam.io.ReadFromText(str(numbers)) | "Int" >> beam.Map(int)
        out = (second | "Three" >> beam.Map(lambda i: (i % 3, 1)) | "G2" >> beam.GroupByKey()
               | beam.Map(lambda kv, s: (kv[0], len(kv[1]), sorted(s)),
                          beam.pvalue.AsList(sizes)))  # fmt: skip
        counts = Counter(i % 3 for i in range(n))
        assert_that(out, equal_to([(k, c, [n // 5] * 5) for k, c in counts.items()]))


def _fail_on_gamma(kv: tuple[str, int]) -> tuple[str, int]:
    if kv[0] == "gamma" and os.getpid() != int(os.environ["NATIVE_TEST_PARENT"]):
        raise ValueError("no gamma after the shuffle")
    return kv


def test_a_dofn_failing_after_the_shuffle_fails_the_job_with_its_traceback(
    numbers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATIVE_TEST_PARENT", str(os.getpid()))
    failed = r"(?s)_fail_on_gamma.*no gamma after the shuffle"
    with pytest.raises(RuntimeError, match=failed), _pipeline() as p:
        counted = (_read(p, numbers) | beam.Map(lambda i: (WORDS[i % 5], i))
                   | beam.CombinePerKey(sum))  # fmt: skip
        _ = counted | beam.Map(_fail_on_gamma)
    assert multiprocessing.active_children() == []


def test_a_combine_spills_what_it_receives_past_the_budget(
    numbers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget of 1 MB is below any process's RSS, and a check every 150,000 elements comes
    after a worker's ~100,000 inputs per combine but before the input and the partitions it
    receives: the workers hand each other unspilled tables, and the receiving side spills
    while it merges them (it held them all in memory before). Both the running sums (`sum`,
    str keys) and a CombineFn's accumulators (mean, int keys) come back right."""
    from cloudlet.dataflow.native import combine, shuffle

    log = tmp_path / "events.log"
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setenv("CLOUDLET_DATAFLOW_MEMORY_MB", "1")
    monkeypatch.setattr(shuffle, "CHECK_EVERY", 150_000)
    monkeypatch.setattr(shuffle.tempfile, "tempdir", str(spill))
    spill_op = combine.CombineOp._spill
    partition = exchange.write_partitions

    def spy(self: combine.CombineOp) -> None:
        spill_op(self)
        with log.open("a") as f:
            f.write(f"{os.getpid()} spilled {self.op.name} {self.runs[-1]}\n")

    def partitioned(op: Any, n: int, spill_dir: Any) -> list[list[tuple[str, str]]]:
        routes = partition(op, n, spill_dir)
        with log.open("a") as f:
            f.write(f"{os.getpid()} partitioned {op.op.name} {sum(map(len, routes))}\n")
        return routes

    monkeypatch.setattr(combine.CombineOp, "_spill", spy)
    monkeypatch.setattr(exchange, "write_partitions", partitioned)
    n = 200_000
    with _pipeline() as p:
        ints = _read(p, numbers)
        sums = (ints | beam.Map(lambda i: (str(i), i)) | "Sum" >> beam.CombinePerKey(sum)
                | beam.MapTuple(lambda k, s: s == int(k)))  # fmt: skip
        means = (ints | beam.Map(lambda i: (i, i))
                 | "Mean" >> beam.CombinePerKey(beam.combiners.MeanCombineFn())
                 | beam.MapTuple(lambda k, m: m == k))  # fmt: skip
        checked = (sums, means) | beam.Flatten() | beam.combiners.Count.PerElement()
        assert_that(checked, equal_to([(True, 2 * n)]))
    events = [line.split() for line in log.read_text().splitlines()]
    for name in ("Sum", "Mean"):
        # Per worker: its partitions written (no spill before: it sent a table), then spills.
        mine = [(int(pid), what) for pid, what, op, _ in events if op == name]
        pids = {pid for pid, _ in mine}
        assert len(pids) == 2 and os.getpid() not in pids, mine
        for pid in pids:
            whats = [what for p, what in mine if p == pid]
            assert whats[0] == "partitioned" and "spilled" in whats[1:], (name, whats)
    spilled = [path for _, what, _, path in events if what == "spilled"]
    assert not any(Path(path).exists() for path in spilled)
    assert list(spill.iterdir()) == []


def test_a_windowed_combine_spills_past_the_budget(
    numbers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a 1 MB budget (every check spills) a combine in fixed and in sliding windows
    spills its accumulators, per (key, window), and gives the right sums and means from the
    runs the workers exchanged; the spill files are gone at the end."""
    from apache_beam.transforms import window

    from cloudlet.dataflow.native import combine, shuffle

    log = tmp_path / "spills.log"
    log.touch()
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setenv("CLOUDLET_DATAFLOW_MEMORY_MB", "1")
    monkeypatch.setattr(shuffle, "CHECK_EVERY", 5000)
    monkeypatch.setattr(shuffle.tempfile, "tempdir", str(spill))
    spill_op = combine.CombineOp._spill

    def spy(self: combine.CombineOp) -> None:
        spill_op(self)
        with log.open("a") as f:
            f.write(f"{self.op.name} {self.runs[-1]}\n")

    monkeypatch.setattr(combine.CombineOp, "_spill", spy)
    kept = range(0, 200_000, 4)  # 50,000 numbers
    keys = 1000  # 10,000 (key, window)s: more than a check's worth
    fixed: Counter[tuple[int, int]] = Counter()
    for i in kept:
        fixed[(i % keys, i % 100 // 10 * 10)] += i
    sliding: Counter[tuple[int, int]] = Counter()
    for i in kept:
        for start in range(i % 100 // 10 * 10 - 10, i % 100 // 10 * 10 + 1, 10):
            sliding[(i % keys, start)] += 1
    with _pipeline() as p:
        stamped = (
            _read(p, numbers)
            | beam.Filter(lambda i: i % 4 == 0)
            | beam.Map(lambda i: window.TimestampedValue((i % keys, i), i % 100))
        )
        sums = (stamped | "Fixed" >> beam.WindowInto(window.FixedWindows(10))
                | "Sum" >> beam.CombinePerKey(sum) | "S" >> beam.Map(_with_window))  # fmt: skip
        counts = (stamped | "Sliding" >> beam.WindowInto(window.SlidingWindows(20, 10))
                  | beam.MapTuple(lambda k, i: (str(k), i))
                  | "Count" >> beam.CombinePerKey(beam.combiners.CountCombineFn())
                  | "C" >> beam.Map(_with_window))  # fmt: skip
        assert_that(sums, equal_to([(k, s, w) for (k, w), s in fixed.items()]), label="sums")
        want = [(str(k), c, w) for (k, w), c in sliding.items()]
        assert_that(counts, equal_to(want), label="counts")
    spilled = [line.split() for line in log.read_text().splitlines()]
    assert {"Sum", "Count"} <= {name for name, _ in spilled}, spilled
    assert not any(Path(path).exists() for _, path in spilled)
    assert list(spill.iterdir()) == []


def test_a_workers_large_output_reaches_the_parent_as_spill_files(
    numbers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read's output has two consumers, so the workers materialize it: each sends its
    ~100,000 numbers to the parent as a spill file (past SEND_ELEMENTS), not through its pipe
    for the parent to hold in memory. The files are gone at the end."""
    from cloudlet.dataflow.native import parallel, store

    log = tmp_path / "spills.log"
    log.touch()
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(parallel, "SEND_ELEMENTS", 50_000)
    monkeypatch.setattr(store.tempfile, "tempdir", str(spill))
    spill_store = store.BatchStore.spill

    def spy(self: store.BatchStore, start: int = 0) -> None:
        spill_store(self, start)
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")

    monkeypatch.setattr(store.BatchStore, "spill", spy)
    n = 200_000
    with _pipeline() as p:
        ints = _read(p, numbers)
        total = ints | beam.CombineGlobally(sum)
        count = ints | beam.combiners.Count.Globally()
        assert_that(total, equal_to([n * (n - 1) // 2]), label="total")
        assert_that(count, equal_to([n]), label="count")
    pids = {int(line) for line in log.read_text().splitlines()}
    assert len(pids) >= 2 and os.getpid() not in pids, pids
    assert list(spill.iterdir()) == []
