"""The span tree planned from a few columns, then built a bounded number of iterations at a time.

A plan reads only the selected rows' times, iterations, phases and layers: the order of the
primitives, which iteration span each goes under (an iteration, a stretch of rows outside
every iteration, or the whole trace), the order of the iteration spans, every level's span
count, and so the run span with its final attributes and the trace id. The spans themselves
are then made `CHUNK_ITERATIONS` iteration spans at a time (`SpanPlan.chunks`): a writer or
a sender holds one chunk's spans (2-3 KB each), never every iteration of a long run.
`build_span_tree` is the same plan with every chunk attached to the run span.

Span ids follow from the trace id and a span's pre-order index in the whole tree
(`spans.numbered`), counted across chunks: any chunk size gives the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dnnprof.exporters.attributes import (
    AttributeValue,
    PrimitiveAttributes,
    dimension_lookup,
    primitive_name,
    resource_attributes,
    run_details,
    run_identity,
    run_name,
)
from dnnprof.exporters.base import ExportError
from dnnprof.exporters.selection import iteration_phases, select_iterations, span_mask
from dnnprof.exporters.spans import (
    LEVELS,
    Span,
    SpanTree,
    base_time_ns,
    iteration_span,
    trace_id_for,
)
from dnnprof.trace import Trace
from dnnprof.views import coded

CHUNK_ITERATIONS = 50  # iteration spans built at a time by the streaming writers and senders
# what `run_identity` reads to infer the variant when the trace does not name it
VARIANT_COLUMNS = ["kind", "src_dt", "wei_dt", "duration_ms", "post_ops"]


@dataclass
class PlannedTree(SpanTree):
    """The run span of a planned tree (its children are made chunk by chunk, not kept), with
    the span counts of the whole tree."""

    level_counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(self.level_counts.values())

    def counts(self) -> dict[str, int]:
        """Spans per level (run, iteration, layer, primitive) of the whole tree."""
        return dict(self.level_counts)


def span_times(rows: pd.DataFrame, base_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) in epoch nanoseconds of primitive rows: `start_ms` and `duration_ms`
    rounded to whole nanoseconds, an unknown time as 0 and a negative duration as 0."""

    def ns(ms: pd.Series) -> np.ndarray:
        values = ms.to_numpy(dtype=float) * 1e6
        return np.where(np.isnan(values), 0.0, np.rint(values)).astype(np.int64)

    start = base_ns + ns(rows["start_ms"])
    return start, start + np.maximum(ns(rows["duration_ms"]), 0)


@dataclass
class _Groups:
    """Iteration spans in output order: kind ("iteration" | "outside" | "whole"), number and
    phase of each, and the selected rows (positions in trace.events) under each, in time
    order: rows `bounds[k]:bounds[k+1]` of `positions` belong to the k-th."""

    kinds: list[str]
    numbers: list[int]
    phases: list[str]
    positions: np.ndarray
    bounds: np.ndarray


def _group_rows(selected: pd.DataFrame, positions: np.ndarray, whole: bool,
                base_ns: int) -> tuple[_Groups, np.ndarray, np.ndarray]:
    """Group the selected rows by the iteration span they go under, and order the groups by
    (start, end) as the run span lists them; also each group's start and end.

    Rows outside every iteration (calibration, tracing ... in an "all" export) are grouped
    by contiguous stretch (in time order) of one phase, so no group overlaps another."""
    ordered = selected.sort_values(["start_ms", "line"], kind="stable")
    order = ordered.index.to_numpy()  # positions in `selected`
    iteration = ordered["iteration"].to_numpy()
    phase, phase_names = coded(ordered["phase"])
    outside = (iteration < 0) & (not whole)
    previous = np.r_[False, outside[:-1]] & np.r_[False, phase[1:] == phase[:-1]]
    stretch = np.cumsum(outside & ~previous)  # 1, 2, ... along the rows outside iterations
    key = np.where(whole, 0, np.where(outside, -stretch, iteration))
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    group = np.argsort(np.argsort(first, kind="stable"))[group]  # numbered by first row
    start, end = span_times(ordered, base_ns)
    by_group = np.argsort(group, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(group))]
    starts = np.minimum.reduceat(start[by_group], bounds[:-1])
    ends = np.maximum.reduceat(end[by_group], bounds[:-1])
    rank = np.lexsort((ends, starts))  # the run span's order of its iteration spans
    placed = np.argsort(rank)[group]
    by_output = np.argsort(placed, kind="stable")
    output_bounds = np.r_[0, np.cumsum(np.bincount(placed))]
    heads = by_output[output_bounds[:-1]]  # the first row of each group, in output order
    phases = {} if whole else iteration_phases(selected)
    kinds, numbers, labels = [], [], []
    for row in heads.tolist():
        number = int(iteration[row])
        kind = "whole" if whole else "outside" if number < 0 else "iteration"
        kinds.append(kind)
        numbers.append(number)
        labels.append(str(phase_names[phase[row]]) if kind == "outside"
                      else phases.get(number, "") if kind == "iteration" else "")
    groups = _Groups(kinds, numbers, labels, positions[order[by_output]], output_bounds)
    return groups, starts[rank], ends[rank]


def _layer_runs(events: pd.DataFrame, groups: _Groups) -> int:
    """How many layer spans the groups make: runs of consecutive rows (within a group) of one
    non-empty (layer, layer type), as `spans.group_layers` cuts them."""
    layer, names = coded(events["layer"])
    kind, _ = coded(events["layer_type"])
    layer, kind = layer[groups.positions], kind[groups.positions]
    labelled = (names != "")[layer] if len(names) else np.zeros(len(layer), bool)
    key = layer.astype(np.int64) * (int(kind.max(initial=0)) + 1) + kind
    first = np.zeros(len(key), bool)
    first[groups.bounds[:-1]] = True
    continues = ~first & np.r_[False, labelled[:-1]] & np.r_[False, key[1:] == key[:-1]]
    return int((labelled & ~continues).sum())


class SpanPlan:
    """A span tree known before it is built: `tree` is the run span with its final attributes,
    counts and trace id; `chunks()` makes the iteration spans, with everything under them,
    a bounded number at a time."""

    def __init__(self, trace: Trace, tree: PlannedTree, groups: _Groups, base_ns: int):
        self.trace = trace
        self.tree = tree
        self.groups = groups
        self.base_ns = base_ns
        self.attributes_of = PrimitiveAttributes(dimension_lookup(trace))

    def __len__(self) -> int:
        """The number of iteration spans."""
        return len(self.groups.kinds)

    def chunks(self, size: int | None = None) -> Iterator[list[Span]]:
        """The iteration spans in the run span's order, complete with their layers and
        primitives, `size` (default CHUNK_ITERATIONS) at a time."""
        step = size or CHUNK_ITERATIONS
        for first in range(0, len(self), step):
            yield self._build(first, min(first + step, len(self)))

    def whole(self) -> SpanTree:
        """The whole tree in memory (what `build_span_tree` returns)."""
        planned = self.tree
        root = Span(planned.root.name, "run", planned.root.start_ns, planned.root.end_ns,
                    planned.root.attributes, [s for chunk in self.chunks(len(self)) for s in chunk])
        return SpanTree(root, planned.timeline, planned.iterations, planned.iterations_total,
                        planned.service_name, planned.trace_id, planned.resource)

    def _build(self, first: int, last: int) -> list[Span]:
        groups = self.groups
        bounds = groups.bounds[first : last + 1]
        positions = groups.positions[bounds[0] : bounds[-1]]
        rows = self.trace.events.iloc[positions]
        starts, ends = span_times(rows, self.base_ns)
        layer, layers = coded(rows["layer"])
        kind, kinds = coded(rows["layer_type"])
        members: list[tuple[Span, str, str]] = []
        for index, row in enumerate(rows.itertuples()):
            span = Span(primitive_name(str(row.kind), str(row.api), str(row.post_ops)),
                        "primitive", int(starts[index]), int(ends[index]),
                        self.attributes_of(row), row=int(positions[index]))
            members.append((span, str(layers[layer[index]]), str(kinds[kind[index]])))
        cuts = (bounds - bounds[0]).tolist()
        return [iteration_span(groups.kinds[k], groups.numbers[k], groups.phases[k],
                               members[cuts[k - first] : cuts[k - first + 1]])
                for k in range(first, last)]


def plan_span_tree(trace: Trace, span_iterations: int | None = 3,
                   iterations: str | Sequence[int] = "steady",
                   service_name: str = "dnnprof") -> SpanPlan:
    """Plan run -> iteration -> layer -> primitive spans of the selected iterations (see
    `build_span_tree`). Raises ExportError when nothing is left to export."""
    metadata = trace.metadata
    timeline = "timestamps" if metadata.timeline == "timestamps" else "synthetic"
    events = trace.events
    mask = span_mask(events)
    narrow = events.loc[mask, ["iteration", "phase"]]  # the selection reads two columns
    if narrow.empty:
        raise ExportError(
            f"{metadata.source or 'the trace'}: no primitive exec lines to export "
            "(was oneDNN verbose at level 1 or higher when the log was captured?)"
        )
    chosen = select_iterations(narrow, span_iterations, iterations)
    numbers = narrow["iteration"].to_numpy()
    iterations_total = len(np.unique(numbers[numbers >= 0])) or 1
    if chosen != [-1]:
        mask &= np.isin(events["iteration"].to_numpy(), chosen)
    positions = np.flatnonzero(mask)
    if not len(positions):
        raise ExportError(f"no exec lines in the selected iterations {chosen}")
    columns = events.columns.get_indexer(["start_ms", "duration_ms", "line", "iteration", "phase"])
    selected = events.iloc[positions, columns].reset_index(drop=True)
    base_ns = base_time_ns(trace, timeline)
    groups, starts, ends = _group_rows(selected, positions, chosen == [-1], base_ns)
    exec_ms = np.nan_to_num(events["duration_ms"].to_numpy(dtype=float)[groups.positions])
    total_ms = 0.0
    for a, b in zip(groups.bounds[:-1].tolist(), groups.bounds[1:].tolist(), strict=True):
        total_ms += float(np.add.accumulate(exec_ms[a:b])[-1])  # in order, as the spans add up
    identity = run_identity(metadata, events.loc[mask, VARIANT_COLUMNS])
    identity["dnnprof.timeline"] = timeline
    exported = sorted(set(groups.numbers))
    root_attrs: dict[str, AttributeValue] = {"dnnprof.level": "run", **identity}
    root_attrs.update({
        **run_details(metadata),
        "dnnprof.iterations_total": iterations_total,
        "dnnprof.iterations_exported": ",".join(str(i) for i in exported),
        "dnnprof.exec_time_ms": total_ms,
    })
    root = Span(run_name(metadata), "run", int(starts.min()), int(ends.max()), root_attrs)
    counts = dict(zip(LEVELS, (1, len(groups.kinds), _layer_runs(events, groups),
                               len(positions)), strict=True))
    tree = PlannedTree(root, timeline, exported, iterations_total, service_name,
                       resource=resource_attributes(identity, service_name),
                       level_counts=counts)
    tree.trace_id = trace_id_for(trace, tree)
    return SpanPlan(trace, tree, groups, base_ns)


def build_span_tree(
    trace: Trace,
    span_iterations: int | None = 3,
    iterations: str | Sequence[int] = "steady",
    service_name: str = "dnnprof",
) -> SpanTree:
    """Build run -> iteration -> layer -> primitive spans from a Trace, whole.

    Parent spans cover exactly their children (first start to last end); a layer span is a
    run of consecutive primitives with the same `layer`, and primitives without a layer sit
    directly under their iteration. Raises ExportError when nothing is left to export.
    """
    return plan_span_tree(trace, span_iterations, iterations, service_name).whole()
