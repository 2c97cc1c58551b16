"""The native engine's operations: what each planned op does to a batch of elements.

A *batch* is `(values, template)`. With a template (a WindowedValue whose value is unused),
every value shares its timestamp, windows and pane: the fast path, with no per-element
wrapping (the global window, in practice). Without one (`None`), `values` are WindowedValues.

Every op has `start()` (bundle start; `setup` on first use), `process(batch)`, `finish()`
(bundle end) and `teardown()`. Ops send their output with `emit(pcoll, batch)`, which the
executor routes to the fused consumer, a materialized store, or nowhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from cloudlet.dataflow.native.shuffle import GroupTable

__all__ = ["Emit", "build_op"]

Batch = tuple[list[Any], Any]
Emit = Callable[[str, Batch], None]
BATCH = 2048


def _beam() -> Any:
    from apache_beam.utils import windowed_value

    return windowed_value


class BaseOp:
    def __init__(self, op: Any, ctx: Any, emit: Emit) -> None:
        self.op = op
        self.ctx = ctx
        self.emit = emit
        self.set_up = False

    def start(self) -> None:
        self.set_up = True

    def process(self, batch: Batch) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def teardown(self) -> None:
        pass


def explode(batch: Batch) -> list[Any]:
    """The batch as WindowedValues."""
    values, tmpl = batch
    if tmpl is None:
        return values
    wv = tmpl.with_value
    return [wv(v) for v in values]


class ImpulseOp(BaseOp):
    def process(self, batch: Batch) -> None:
        wvm = _beam()
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.timestamp import MIN_TIMESTAMP

        (out,) = self.op.outputs.values()
        tmpl = wvm.WindowedValue(None, MIN_TIMESTAMP, (GlobalWindow(),))
        self.emit(out, ([b""], tmpl))


class FlattenOp(BaseOp):
    def process(self, batch: Batch) -> None:
        (out,) = self.op.outputs.values()
        self.emit(out, batch)


class WindowOp(BaseOp):
    def start(self) -> None:
        if not self.set_up:
            from apache_beam.portability.api import beam_runner_api_pb2 as rpb
            from apache_beam.transforms import window as w

            payload = rpb.WindowIntoPayload.FromString(self.op.proto.spec.payload)
            self.fn = w.WindowFn.from_runner_api(payload.window_fn, self.ctx.context)
            self.by_time = type(self.fn) in (
                w.GlobalWindows, w.FixedWindows, w.SlidingWindows, w.Sessions)  # fmt: skip
        super().start()

    def process(self, batch: Batch) -> None:
        from apache_beam.transforms.window import WindowFn

        wvm = _beam()
        (out,) = self.op.outputs.values()
        values, tmpl = batch
        assign = self.fn.assign
        if tmpl is not None and self.by_time:
            ctx = WindowFn.AssignContext(tmpl.timestamp, element=None, window=tmpl.windows[0])
            windows = tuple(assign(ctx))
            self.emit(out, (values, wvm.WindowedValue(None, tmpl.timestamp, windows)))
            return
        result = []
        for wv in explode(batch):
            for window in wv.windows:
                ctx = WindowFn.AssignContext(wv.timestamp, element=wv.value, window=window)
                result.append(wvm.WindowedValue(wv.value, ctx.timestamp, tuple(assign(ctx))))
        self.emit(out, (result, None))


class KeyWithVoidOp(BaseOp):
    """CombineGlobally's KeyWithVoid: every element x becomes (None, x), metadata kept."""

    def process(self, batch: Batch) -> None:
        (out,) = self.op.outputs.values()
        values, tmpl = batch
        if tmpl is not None:
            self.emit(out, ([(None, v) for v in values], tmpl))
        else:
            self.emit(out, ([wv.with_value((None, wv.value)) for wv in values], None))


class ReshuffleOp(FlattenOp):
    """Identity in batch: elements keep their timestamps and windows."""


class GroupByKeyOp(BaseOp):
    """Groups by the key's deterministic encoded bytes (1, True and 1.0 are three keys)."""

    def start(self) -> None:
        if not self.set_up:
            (pc,) = self.op.inputs
            self.windowing = self.ctx.windowing(pc)
            self.table = GroupTable(self.ctx.key_coder(pc), self.ctx.spill)
            self.default = self.windowing.is_default()
        super().start()

    def process(self, batch: Batch) -> None:
        values, tmpl = batch
        if self.default:
            self.table.add_values(values if tmpl is not None else [wv.value for wv in values])
        else:
            self.table.add_windowed(explode(batch))

    def take(self) -> Any:
        """The table so far (a worker hands it to the parent), leaving this one empty."""
        return self.table.take()

    def merge(self, table: Any) -> None:
        self.table.merge(table)

    def absorb(self, table: Any) -> None:
        """`merge` (which spills past the memory budget): the shuffle's receiving side."""
        self.table.merge(table)

    def output(self) -> Iterator[Batch]:
        """The grouped elements, in batches; called once all input is in."""
        wvm = _beam()
        if self.default:
            tmpl = _on_time_global()
            for chunk in self.table.grouped(BATCH):
                yield chunk, tmpl
            return
        from apache_beam.transforms import trigger

        driver = trigger.create_trigger_driver(self.windowing, True)
        out: list[Any] = []
        for key, wvs in self.table.grouped_windowed():
            out.extend(driver.process_entire_key(key, wvs))
            if len(out) >= BATCH:
                yield out, None
                out = []
        if out:
            yield out, None
        del wvm


def _on_time_global() -> Any:
    wvm = _beam()
    from apache_beam.transforms.window import GlobalWindow

    pane = wvm.PaneInfo(True, True, wvm.PaneInfoTiming.ON_TIME, 0, 0)
    return wvm.WindowedValue(None, GlobalWindow().max_timestamp(), (GlobalWindow(),), pane)


def build_op(op: Any, ctx: Any, emit: Emit) -> BaseOp:
    from cloudlet.dataflow.native.combine import CombineOp
    from cloudlet.dataflow.native.pardo import ParDoOp

    kinds: dict[str, type[BaseOp]] = {
        "impulse": ImpulseOp,
        "flatten": FlattenOp,
        "window": WindowOp,
        "reshuffle": ReshuffleOp,
        "key_with_void": KeyWithVoidOp,
        "gbk": GroupByKeyOp,
        "combine": CombineOp,
        "pardo": ParDoOp,
        "sdf": ParDoOp,
    }
    return kinds[op.kind](op, ctx, emit)


_ = itertools
