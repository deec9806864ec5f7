"""The span tree every span format writes: run -> iteration -> layer -> primitive.

Built once from `trace.events` (see docs/trace-schema.md); each output format is then a
small function of the tree. Times are integer nanoseconds since the Unix epoch so that
every format rounds the same numbers the same way.

Which rows become primitive spans: `exec` rows of the primitive, ukernel and graph APIs
(`selection.span_rows`). Graph partitions are kept (as spans named `graph:<partition kind>`)
even though oneDNN also logs the primitives inside them: in a trace viewer the partition is
where the fusion shows, and its duration is the partition's own measurement.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dnnprof.exporters.attributes import (
    AttributeValue,
    PrimitiveAttributes,
    dimension_lookup,
    layer_attributes,
    primitive_name,
    resource_attributes,
    run_details,
    run_identity,
    run_name,
    share_of,
)
from dnnprof.exporters.base import ExportError
from dnnprof.exporters.selection import iteration_phases, select_iterations, span_mask
from dnnprof.trace import Trace

LEVELS = ("run", "iteration", "layer", "primitive")


@dataclass
class Span:
    """One node of the tree. `start_ns`/`end_ns` are nanoseconds since the Unix epoch."""

    name: str
    level: str
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    children: list[Span] = field(default_factory=list)
    row: int | None = None  # position in trace.events, for primitive spans

    @property
    def duration_ns(self) -> int:
        """end_ns - start_ns."""
        return self.end_ns - self.start_ns

    def walk(
        self, depth: int = 0, parent: Span | None = None
    ) -> Iterator[tuple[Span, Span | None, int]]:
        """(span, parent, depth) in pre-order; parents come before their children."""
        yield self, parent, depth
        for child in self.children:
            yield from child.walk(depth + 1, self)


@dataclass
class SpanTree:
    """The spans of one run, plus what was selected and how times were obtained."""

    root: Span
    timeline: str  # "timestamps" (oneDNN's own clock) or "synthetic" (exec times end to end)
    iterations: list[int]  # exported iteration numbers; [-1] when the trace has none
    iterations_total: int
    service_name: str = "dnnprof"
    trace_id: str = ""  # 32 hex digits; deterministic for file formats, see `trace_id_for`
    # the OTLP resource (Jaeger's "process"): the service and the run's identity
    resource: dict[str, AttributeValue] = field(default_factory=dict)

    def walk(self) -> Iterator[tuple[Span, Span | None, int]]:
        """(span, parent, depth) of every span in pre-order, from the run span down."""
        return self.root.walk()

    def spans(self) -> list[Span]:
        """Every span in pre-order."""
        return [span for span, _, _ in self.walk()]

    def __len__(self) -> int:
        return sum(1 for _ in self.walk())

    def counts(self) -> dict[str, int]:
        """Spans per level (run, iteration, layer, primitive)."""
        out = dict.fromkeys(LEVELS, 0)
        for span, _, _ in self.walk():
            out[span.level] = out.get(span.level, 0) + 1
        return out


# ----------------------------------------------------------------------- times --


def base_time_ns(trace: Trace, timeline: str, now_ns: int | None = None) -> int:
    """Epoch time of `start_ms == 0`, rounded to a whole microsecond.

    With real timestamps that is the first timestamp of the log. A synthetic timeline has no
    clock of its own: it is placed at the first marker time when the log has one, otherwise
    at the time of the export (so it shows up in a "last hour" search).
    Rounding to the microsecond keeps offsets exact in formats that store microseconds.
    """
    events = trace.events
    ts = events["ts_ms"].to_numpy(dtype=float)
    start = events["start_ms"].to_numpy(dtype=float)
    both = ~np.isnan(ts) & ~np.isnan(start)
    if timeline == "timestamps" and both.any():
        base_ms = float(np.median(ts[both] - start[both]))
    elif (~np.isnan(ts)).any():
        base_ms = float(np.nanmin(ts))
    else:
        base_ms = (time.time_ns() if now_ns is None else now_ns) / 1e6
    return int(round(base_ms * 1000.0)) * 1000


def _ns(ms: float) -> int:
    return 0 if math.isnan(ms) else int(round(ms * 1e6))


# ------------------------------------------------------------------------ tree --


def _envelope(
    name: str, level: str, children: list[Span], attrs: dict[str, AttributeValue]
) -> Span:
    return Span(
        name=name,
        level=level,
        start_ns=min(c.start_ns for c in children),
        end_ns=max(c.end_ns for c in children),
        attributes=attrs,
        children=children,
    )


def _exec_ms(spans: list[Span]) -> float:
    total = 0.0
    for span in spans:
        if span.level == "primitive":
            total += float(span.attributes.get("onednn.exec_time_ms", 0.0))
        else:
            total += float(span.attributes.get("dnnprof.exec_time_ms", 0.0))
    return total


def _layer_span(prims: list[Span], layer: str, layer_type: str) -> Span:
    attrs = layer_attributes([p.attributes for p in prims], layer, layer_type)
    return _envelope(layer, "layer", prims, attrs)


def _group_layers(prims: list[tuple[Span, str, str]]) -> list[Span]:
    """Primitives in time order -> layer spans (consecutive runs of one layer) and bare
    primitives (no layer). Consecutive runs, not one span per layer name, so that layer
    spans never overlap each other even when a layer is entered twice."""
    out: list[Span] = []
    group: list[Span] = []
    current: tuple[str, str] | None = None
    for span, layer, layer_type in prims:
        key = (layer, layer_type) if layer else None
        if key != current and group:
            out.append(_layer_span(group, *current))  # type: ignore[misc]
            group = []
        current = key
        if key is None:
            out.append(span)
        else:
            group.append(span)
    if group and current is not None:
        out.append(_layer_span(group, *current))
    return out


@dataclass
class _Group:
    """The primitives of one iteration span: an iteration, a stretch of rows outside every
    iteration (one phase), or the whole trace when it has no iterations."""

    kind: str  # "iteration" | "outside" | "whole"
    iteration: int
    phase: str
    members: list[tuple[Span, str, str]] = field(default_factory=list)  # span, layer, type


def _primitive_groups(
    trace: Trace, rows: pd.DataFrame, whole: bool, base_ns: int
) -> list[_Group]:
    """Primitive spans in time order, grouped by the iteration span they go under.

    Rows outside every iteration (calibration, tracing ... in an "all" export) are grouped
    by contiguous stretch of one phase, so that no group's time range overlaps another's.
    """
    attributes_of = PrimitiveAttributes(dimension_lookup(trace))
    ordered = rows.sort_values(["start_ms", "line"], kind="stable")
    # positions of the selected rows only (a dict over every row cost a GB at 10M lines)
    positions = iter(trace.events.index.get_indexer(ordered.index).tolist())
    phases = {} if whole else iteration_phases(rows)
    groups: dict[tuple[str, int], _Group] = {}
    current: _Group | None = None
    for row in ordered.itertuples():
        start_ns = base_ns + _ns(float(row.start_ms))
        span = Span(
            name=primitive_name(str(row.kind), str(row.api), str(row.post_ops)),
            level="primitive",
            start_ns=start_ns,
            end_ns=start_ns + max(_ns(float(row.duration_ms)), 0),
            attributes=attributes_of(row),
            row=next(positions),
        )
        iteration, phase = int(row.iteration), str(row.phase)
        if whole:
            key = ("whole", 0)
        elif iteration >= 0:
            key = ("iteration", iteration)
        elif current is None or current.kind != "outside" or current.phase != phase:
            key = ("outside", len(groups))  # a new stretch
        else:
            key = ("outside", current.iteration)
        if key not in groups:
            kind, number = key
            label = {"iteration": phases.get(number, ""), "outside": phase}.get(kind, "")
            groups[key] = _Group(kind, number, label)
        current = groups[key]
        current.members.append((span, str(row.layer), str(row.layer_type)))
    return list(groups.values())


def _iteration_span(group: _Group) -> Span:
    iteration = group.iteration if group.kind == "iteration" else -1
    prims = [span for span, _, _ in group.members]
    attrs: dict[str, AttributeValue] = {
        "dnnprof.level": "iteration",
        "dnnprof.iteration": iteration,
        "dnnprof.primitives": len(prims),
        "dnnprof.exec_time_ms": _exec_ms(prims),
    }
    if group.phase:
        attrs["dnnprof.phase"] = group.phase
    # One name for every iteration (the number is an attribute): Jaeger's trace comparison
    # pairs spans by their names from the root down.
    if group.kind == "iteration":
        name = "iteration"
    elif group.kind == "outside":
        name = f"outside iterations ({group.phase})" if group.phase else "outside iterations"
    else:
        name = "iteration (whole trace)"
    children = _group_layers(group.members)
    for child in children:
        if child.level == "layer":
            child.attributes["dnnprof.iteration_share_pct"] = share_of(
                float(child.attributes["dnnprof.exec_time_ms"]), float(attrs["dnnprof.exec_time_ms"])
            )
    return _envelope(name, "iteration", children, attrs)


def build_span_tree(
    trace: Trace,
    span_iterations: int | None = 3,
    iterations: str | Sequence[int] = "steady",
    service_name: str = "dnnprof",
    now_ns: int | None = None,
) -> SpanTree:
    """Build run -> iteration -> layer -> primitive spans from a Trace.

    Parent spans cover exactly their children (first start to last end); a layer span is a
    run of consecutive primitives with the same `layer`, and primitives without a layer sit
    directly under their iteration. Raises ExportError when nothing is left to export.
    """
    metadata = trace.metadata
    timeline = "timestamps" if metadata.timeline == "timestamps" else "synthetic"
    events = trace.events
    mask = span_mask(events)
    # the selection reads two columns; only the chosen rows are copied whole
    narrow = events.loc[mask, ["iteration", "phase"]]
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
    rows = events[mask]
    if rows.empty:
        raise ExportError(f"no exec lines in the selected iterations {chosen}")

    base_ns = base_time_ns(trace, timeline, now_ns)
    groups = _primitive_groups(trace, rows, chosen == [-1], base_ns)
    iteration_spans = sorted(
        (_iteration_span(group) for group in groups), key=lambda s: (s.start_ns, s.end_ns)
    )
    exported = sorted({int(span.attributes["dnnprof.iteration"]) for span in iteration_spans})
    identity = run_identity(metadata, rows)
    identity["dnnprof.timeline"] = timeline
    root_attrs: dict[str, AttributeValue] = {"dnnprof.level": "run", **identity}
    root_attrs.update(
        {
            **run_details(metadata),
            "dnnprof.iterations_total": iterations_total,
            "dnnprof.iterations_exported": ",".join(str(i) for i in exported),
            "dnnprof.exec_time_ms": _exec_ms(iteration_spans),
        }
    )
    tree = SpanTree(
        root=_envelope(run_name(metadata), "run", iteration_spans, root_attrs),
        timeline=timeline,
        iterations=exported,
        iterations_total=iterations_total,
        service_name=service_name,
        resource=resource_attributes(identity, service_name),
    )
    tree.trace_id = trace_id_for(trace, tree)
    return tree


def trace_id_for(trace: Trace, tree: SpanTree) -> str:
    """A trace id derived from the run's identity and the exported selection, so a file
    written twice from the same Trace is byte-identical."""
    identity = {
        "source": trace.metadata.source,
        "command": trace.metadata.command,
        "events": len(trace.events),
        # A synthetic timeline is placed at export time; only its length identifies it.
        "start": tree.root.start_ns if tree.timeline == "timestamps" else None,
        "duration": tree.root.duration_ns,
        "iterations": tree.iterations,
        "spans": len(tree),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def span_ids(tree: SpanTree) -> dict[int, str]:
    """id(span) -> 16-hex-digit span id, deterministic from the trace id and pre-order index."""
    ids: dict[int, str] = {}
    for index, (span, _, _) in enumerate(tree.walk()):
        digest = hashlib.sha256(f"{tree.trace_id}:{index}".encode()).hexdigest()[:16]
        ids[id(span)] = digest if digest != "0" * 16 else "0" * 15 + "1"
    return ids
