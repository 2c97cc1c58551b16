"""ParDo: the user's DoFn, unpickled from `ParDoPayload.do_fn`, run over batches.

The general path is Beam's own `DoFnRunner` (runners/common.py), fed WindowedValues: it gives
every DoFn parameter (element, key, timestamp, window, pane, side inputs), tagged outputs and
the lifecycle (setup, start_bundle, process, finish_bundle, teardown) Beam's exact semantics.
Outputs to tags the transform does not declare are dropped, as Beam's SDK worker does.

The fast path is taken when Beam itself would use its SimpleInvoker (no side inputs, no extra
arguments, no DoFn parameters) on a batch whose elements share one timestamp, window and
pane: `process` is called in a tight loop on the bare values and the outputs stay bare. An
output that carries its own metadata (TaggedOutput, TimestampedValue, WindowedValue) goes
through Beam's output handler instead.

Splittable DoFns (reads) are run whole per element: the initial restriction, its initial
splits, each processed to completion (a residual from a self-checkpoint is processed next).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import operator
import re
import time
import types
from collections.abc import Iterator
from typing import Any

from cloudlet.dataflow.native.ops import BaseOp, Batch, explode
from cloudlet.dataflow.native.textread import plain_text_files, read_lines

__all__ = ["ParDoOp", "SideInputMap"]


def _receiver_base() -> Any:
    from apache_beam.runners.common import Receiver

    return Receiver


class SideInputMap:
    """A side input's views by window, from the fully materialized side PCollection."""

    def __init__(self, data: Any, batches: list[Batch]) -> None:
        self.data = data
        self.batches = batches
        self.cache: dict[Any, Any] = {}

    def __getitem__(self, window: Any) -> Any:
        target = self.data.window_mapping_fn(window)
        if target not in self.cache:
            values: list[Any] = []
            for vals, tmpl in self.batches:
                if tmpl is not None:
                    if target in tmpl.windows:
                        values.extend(vals)
                else:
                    values.extend(wv.value for wv in vals if target in wv.windows)
            if self.data.access_pattern == "beam:side_input:multimap:v1":
                raw: Any = _MultiMap(values)
            else:
                raw = values
            self.cache[target] = self.data.view_fn(raw)
        return self.cache[target]

    def is_globally_windowed(self) -> bool:
        from apache_beam.transforms import sideinputs

        return bool(self.data.window_mapping_fn == sideinputs._global_window_mapping_fn)


class _MultiMap:
    def __init__(self, pairs: list[Any]) -> None:
        self.map: dict[Any, list[Any]] = {}
        for k, v in pairs:
            self.map.setdefault(k, []).append(v)

    def __getitem__(self, key: Any) -> list[Any]:
        return self.map.get(key, [])


_SPECIAL: tuple[type, ...] = ()
_OUT_BATCH = 256  # input elements per output batch (a FlatMap may fan out a lot)
# A batch goes through the user's callable in slices whose size adapts so that each takes about
# _SLICE_AIM seconds: a fast callable runs in few large C loops, a slow one (10 ms an element)
# in slices of a few elements, so its step's count still rises live (about once a second).
_SLICE_AIM = 0.05
_SLICE_FIRST, _SLICE_MOST = 16, 1 << 16
_WRAPPERS: dict[Any, str] = {}
_NOT_NONE = functools.partial(operator.is_not, None)


def _wrapper_codes() -> dict[Any, str]:
    """The code of the lambdas Beam's Map, MapTuple and Filter wrap the user's callable in
    (`lambda x: [fn(x)]`, ...), taken from Beam itself: a DoFn whose callable has that code
    is run as `map(fn, values)` (C's loop, no list per element) with the same result."""
    if not _WRAPPERS:
        from apache_beam.transforms import core

        def probe(x: Any) -> Any:
            return x

        for kind, make in (("map", core.Map), ("maptuple", core.MapTuple),
                           ("filter", core.Filter)):  # fmt: skip
            wrapper = make(probe).fn._fn
            _WRAPPERS[wrapper.__code__] = kind
    return _WRAPPERS


def _plain_defaults(defaults: list[Any]) -> bool:
    """Whether none of a process method's defaults asks Beam for a DoFn parameter (the
    element, key, window, a side input, state, a timer, ...). Beam's invoker then calls
    `process(element)` and the defaults stay Python's (common._get_arg_placeholders), as
    with `beam.FlatMap(str.split)` or `FlatMap(pattern.findall)`, whose methods have
    defaults (`sep=None`, `pos=0`): the fast path makes the same call."""
    from apache_beam.transforms.core import _DoFnParam

    return not any(
        isinstance(d, _DoFnParam) or (isinstance(d, type) and issubclass(d, _DoFnParam))
        for d in defaults
    )


def _unwrap(fn: Any) -> tuple[str, Any]:
    """("map" | "maptuple" | "filter", the user's callable) for a DoFn made by beam.Map,
    MapTuple or Filter, else ("flatmap", the DoFn's process method)."""
    from apache_beam.transforms import core

    wrapper: Any = getattr(fn, "_fn", None)
    code = getattr(wrapper, "__code__", None)
    if isinstance(fn, core.CallableWrapperDoFn) and code is not None:
        kind = _wrapper_codes().get(code)
        if kind is not None and "fn" in code.co_freevars and wrapper.__closure__:
            inner = wrapper.__closure__[code.co_freevars.index("fn")].cell_contents
            if callable(inner):
                return kind, inner
    return "flatmap", fn.process


_NO_PAIR: Any = object()
_PAIR_CODE = (lambda x: (x, 1)).__code__  # LOAD_FAST x, LOAD_CONST 1, BUILD_TUPLE 2, RETURN
_PLAIN_FLAGS = (
    inspect.CO_VARARGS
    | inspect.CO_VARKEYWORDS
    | inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
)


def _pair_constant(fn: Any) -> Any:
    """`c` when the callable `fn` is exactly `lambda x: (x, c)` for a constant `c` (any names,
    a `def` as well), else _NO_PAIR: its bytecode is that of the template, so calling it can
    do nothing but build that tuple, and the pairs can be handed on as (keys, c)."""
    code = _shaped_like(fn, _PAIR_CODE)
    return _NO_PAIR if code is None else code.co_consts[1]


def _shaped_like(fn: Any, template: types.CodeType) -> types.CodeType | None:
    """`fn`'s code when `fn` is a plain function of one argument (no closure, defaults,
    varargs or keyword-only arguments) whose bytecode is `template`'s, else None."""
    code = getattr(fn, "__code__", None)
    if (
        not isinstance(fn, types.FunctionType)
        or code is None
        or code.co_code != template.co_code
        or code.co_argcount != 1
        or code.co_kwonlyargcount
        or code.co_flags & _PLAIN_FLAGS
        or fn.__closure__
    ):
        return None
    return code


_RE_CODE = (lambda x: re.findall("", x)).__code__  # LOAD_GLOBAL re, LOAD_ATTR, CONST, x, CALL
# The functions of `re` that are `_compile(pattern, 0).<name>(string)` when given just those two.
_RE_FUNCTIONS = {
    name: getattr(re, name) for name in ("findall", "finditer", "fullmatch", "match", "search",
                                         "split")
}  # fmt: skip


def _compiled_pattern(fn: Any) -> Any:
    """For a callable that is exactly `lambda x: re.findall(PATTERN, x)` (any names, a `def`
    too; findall, finditer, fullmatch, match, search or split, with a constant pattern and
    `re` the module), the compiled pattern's bound method, which returns the same for every
    argument: `re.findall(p, x)` is `re._compile(p, 0).findall(x)`, minus the per-call
    lookup in re's cache (a third of a wordcount's split step). Else None."""
    code = _shaped_like(fn, _RE_CODE)
    if code is None or len(code.co_names) != 2:
        return None
    module, name = code.co_names
    pattern = code.co_consts[_RE_CODE.co_consts.index("")]
    function = _RE_FUNCTIONS.get(name)
    if (
        function is None
        or fn.__globals__.get(module) is not re
        or getattr(re, name) is not function
        or not isinstance(pattern, (str, bytes))
    ):
        return None
    try:
        return getattr(re.compile(pattern), name)
    except re.error:
        return None  # the user's call raises it, from their code


def _special() -> tuple[type, ...]:
    global _SPECIAL
    if not _SPECIAL:
        from apache_beam.pvalue import TaggedOutput
        from apache_beam.transforms.window import TimestampedValue
        from apache_beam.utils.windowed_value import WindowedBatch, WindowedValue

        _SPECIAL = (TaggedOutput, TimestampedValue, WindowedValue, WindowedBatch)
    return _SPECIAL


class ParDoOp(BaseOp):
    def start(self) -> None:
        if not self.set_up:
            self._setup()
        with self.ctx.scoped(self.op, "start"):
            self.runner.start()
        self._flush()

    def _setup(self) -> None:
        import inspect

        from apache_beam.internal import pickler
        from apache_beam.portability.api import beam_runner_api_pb2 as rpb
        from apache_beam.pvalue import SideInputData
        from apache_beam.runners import common
        from apache_beam.transforms import core, sideinputs

        op = self.op
        payload = rpb.ParDoPayload.FromString(op.proto.spec.payload)
        fn, args, kwargs, _tags, windowing = pickler.loads(payload.do_fn.payload)
        if not windowing:
            windowing = self.ctx.windowing(op.inputs[0])
        tagged = sorted(payload.side_inputs.items(),
                        key=lambda t: sideinputs.get_sideinput_index(t[0]))  # fmt: skip
        side_maps = [
            SideInputMap(
                SideInputData.from_runner_api(si, self.ctx.context),
                self.ctx.materialized(op.side_inputs[tag]),
            )
            for tag, si in tagged
        ]
        base = _receiver_base()
        collected: dict[str, list[Any]] = {}  # output pcoll → WindowedValues
        self.collected = collected
        flush = self._flush_one

        class Collect(base):  # type: ignore[misc, valid-type]
            def __init__(self, pcoll: str) -> None:
                self.items: list[Any] = []
                self.pcoll = pcoll
                collected[pcoll] = self.items

            def receive(self, wv: Any) -> None:
                items = self.items
                items.append(wv)
                if len(items) >= 2048:  # a read emits its whole range from one call
                    flush(self.pcoll, items)

        class Drop(base):  # type: ignore[misc, valid-type]
            def receive(self, wv: Any) -> None:
                pass

        class Receivers(dict):  # type: ignore[type-arg]
            def __missing__(self, tag: Any) -> Any:
                self[tag] = r = Drop()
                return r

        receivers = Receivers()
        outs = list(op.outputs.items())
        for tag, pcoll in outs:
            receivers[tag] = Collect(pcoll)
            if len(outs) == 1 or tag == "None":
                receivers[None] = receivers[tag]
        self.main_out = outs[0][1] if len(outs) == 1 else op.outputs.get("None")
        maps: Any = side_maps  # duck-typed as Beam's SideInputMap
        self.runner = common.DoFnRunner(
            fn, args, kwargs, maps, windowing, tagged_receivers=receivers,
            step_name=op.name, transform_id=op.id, operation_name=op.name)  # fmt: skip
        with self.ctx.scoped(op, "start"):
            self.runner.setup()
        self.set_up = True
        sig = common.DoFnSignature(fn)
        method = sig.process_method.method_value
        self.fast = (
            op.kind == "pardo"
            and not side_maps
            and not args
            and not kwargs
            and _plain_defaults(sig.process_method.defaults)
            and not sig.is_stateful_dofn()
            and len(outs) == 1
            and not getattr(fn, "_process_batch_defined", False)
            and (isinstance(fn, core.CallableWrapperDoFn) or inspect.isgeneratorfunction(method))
        )
        # The user's callable the fast path calls: beam.Map's, ..., else the DoFn's process.
        self.shape, self.inner = _unwrap(fn) if self.fast else ("flatmap", method)
        self.pair = _pair_constant(self.inner) if self.shape == "map" else _NO_PAIR
        # What the fast path calls per element: the same callable, or its C equivalent.
        self.call = _compiled_pattern(self.inner) or self.inner
        self.handler = common._OutputHandler(
            windowing.windowfn, receivers[None] if None in receivers else Drop(), receivers,
            None, None, False, False, check_user_dofn_output=False)  # fmt: skip
        if op.kind == "sdf":
            self.provider = sig.get_restriction_provider()
            self.estimator = sig.get_watermark_estimator_provider()

    def process(self, batch: Batch) -> None:
        values, tmpl = batch
        with self.ctx.scoped(self.op, "process"):
            if self.fast and tmpl is not None:
                self._fast(values, tmpl)
            elif self.op.kind == "sdf":
                for wv in explode(batch):
                    self._sdf(wv)
            else:
                process = self.runner.process
                for wv in explode(batch):
                    process(wv)
        self._flush()

    def _fast(self, values: list[Any], tmpl: Any) -> None:
        shape = self.shape
        if self.pair is not _NO_PAIR:
            self._pairs(values, tmpl)
            return
        most = _SLICE_MOST if shape != "flatmap" else _OUT_BATCH
        for part in self._slices(values, most):
            try:
                out = self._apply(self.call, part)
            except BaseException as exn:
                if self.call is not self.inner:
                    # The same call through the user's own callable: it raises the same
                    # error, with their code in the traceback.
                    try:
                        self._apply(self.inner, part)
                    except BaseException as theirs:
                        self.runner._reraise_augmented(theirs)
                self.runner._reraise_augmented(exn)
            self._send(out, tmpl)

    def _apply(self, fn: Any, part: list[Any]) -> list[Any]:
        shape = self.shape
        if shape == "map":
            return list(map(fn, part))
        if shape == "maptuple":
            return list(itertools.starmap(fn, part))
        if shape == "filter":
            return list(filter(fn, part))
        # FlatMap: every non-None result iterated into one list, all in C's loops.
        return list(itertools.chain.from_iterable(filter(_NOT_NONE, map(fn, part))))

    def _pairs(self, values: list[Any], tmpl: Any) -> None:
        """`beam.Map(lambda x: (x, c))`: a lifted combine fused next takes the keys and `c`
        as they are (combine.py's add_keys; `c` is 1 in a wordcount, whose keys it then
        counts in C); any other consumer gets the pairs."""
        ctx, out, c = self.ctx, self.main_out, self.pair
        consumer = ctx.ops.get(ctx.plan.fused.get(out))
        add_keys = getattr(consumer, "add_keys", None)
        if add_keys is not None:
            ctx.counts[out] += len(values)
            add_keys(values, c, tmpl)
        else:
            self.emit(out, (list(zip(values, itertools.repeat(c))), tmpl))

    def _slices(self, values: list[Any], most: int) -> Iterator[list[Any]]:
        """`values` in slices of the op's current size (`values` itself when it fits), the
        size doubled after a slice processed in under _SLICE_AIM seconds and halved after
        one that took over four times that (the caller's work happens between the yields)."""
        clock = time.perf_counter
        step: int = getattr(self, "_slice", _SLICE_FIRST)
        i, n = 0, len(values)
        while i < n:
            started = clock()
            yield values if (i == 0 and step >= n) else values[i : i + step]
            i += step
            took = clock() - started
            if took < _SLICE_AIM:
                step = min(step * 2, most)
            elif took > 4 * _SLICE_AIM:
                step = max(step // 2, 1)
            self._slice = step

    def _send(self, out: list[Any], tmpl: Any) -> None:
        special = _special()
        if any(issubclass(t, special) for t in set(map(type, out))):
            plain = []
            for x in out:
                if isinstance(x, special):
                    self.handler.handle_process_outputs(tmpl, (x,))
                else:
                    plain.append(x)
            out = plain
            self._flush()
        if out:
            self.emit(self.main_out, (out, tmpl))

    def _sdf(self, wv: Any) -> None:
        el = wv.value
        files = plain_text_files(el) if len(wv.windows) == 1 else None
        if files is not None and self.main_out is not None:
            from cloudlet.dataflow.native.parallel import fan_out

            if fan_out(self.ctx, self.op.id, self.main_out, wv, files):
                return
            for path, _size in files:
                for lines in read_lines(path):
                    self.emit(self.main_out, (lines, wv))
            return
        provider = self.provider
        initial = provider.initial_restriction(el)
        for restriction in provider.split(el, initial):
            state = self.estimator.initial_estimator_state(el, restriction)
            size = provider.restriction_size(el, restriction)
            pending = [wv.with_value(((el, (restriction, state)), size))]
            while pending:
                residuals = self.runner.process_with_sized_restriction(pending.pop()) or []
                pending.extend(r.residual_value for r in residuals)

    def finish(self) -> None:
        with self.ctx.scoped(self.op, "finish"):
            self.runner.finish()
        self._flush()

    def _flush(self) -> None:
        for pcoll, items in self.collected.items():
            if items:
                self._flush_one(pcoll, items)

    def _flush_one(self, pcoll: str, items: list[Any]) -> None:
        batch = list(items)
        items.clear()
        # Elements that share one timestamp, window and pane go on as bare values.
        f = batch[0]
        ts, ws, pane = f.timestamp, f.windows, f.pane_info
        if all(w.timestamp == ts and w.windows == ws and w.pane_info == pane for w in batch):
            self.emit(pcoll, ([w.value for w in batch], f))
        else:
            self.emit(pcoll, (batch, None))

    def teardown(self) -> None:
        if self.set_up:
            self.set_up = False
            self.runner.teardown()
