"""The span tree every span format writes: run -> iteration -> layer -> primitive.

Planned and built from `trace.events` by `span_plan` (see docs/trace-schema.md); each
output format is then a small function of the tree, or of its chunks. Times are integer nanoseconds since the Unix epoch so that
every format rounds the same numbers the same way.

Which rows become primitive spans: `exec` rows of the primitive, ukernel and graph APIs
(`selection.span_rows`). Graph partitions are kept (as spans named `graph:<partition kind>`)
even though oneDNN also logs the primitives inside them: in a trace viewer the partition is
where the fusion shows, and its duration is the partition's own measurement.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from dnnprof.exporters.attributes import AttributeValue, layer_attributes, share_of
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


def nearest_multiple(ns: int, quantum_ns: int) -> int:
    """`ns` rounded to the nearest multiple of `quantum_ns` (half up). Monotonic: a format
    with coarser times that rounds both ends of every span keeps each child in its parent,
    which rounding a start and a duration each on its own does not."""
    return (ns + quantum_ns // 2) // quantum_ns * quantum_ns


def base_time_ns(trace: Trace, timeline: str) -> int:
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
        base_ms = time.time_ns() / 1e6
    return int(round(base_ms * 1000.0)) * 1000


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


def group_layers(prims: list[tuple[Span, str, str]]) -> list[Span]:
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


def iteration_span(kind: str, iteration: int, phase: str,
                   members: list[tuple[Span, str, str]]) -> Span:
    """The iteration span over primitives in time order, each with its layer and layer type.
    `kind`: "iteration", "outside" (a stretch of rows outside every iteration, one phase)
    or "whole" (a trace without iterations)."""
    number = iteration if kind == "iteration" else -1
    prims = [span for span, _, _ in members]
    attrs: dict[str, AttributeValue] = {
        "dnnprof.level": "iteration",
        "dnnprof.iteration": number,
        "dnnprof.primitives": len(prims),
        "dnnprof.exec_time_ms": _exec_ms(prims),
    }
    if phase:
        attrs["dnnprof.phase"] = phase
    # One name for every iteration (the number is an attribute): Jaeger's trace comparison
    # pairs spans by their names from the root down.
    if kind == "iteration":
        name = "iteration"
    elif kind == "outside":
        name = f"outside iterations ({phase})" if phase else "outside iterations"
    else:
        name = "iteration (whole trace)"
    children = group_layers(members)
    for child in children:
        if child.level == "layer":
            child.attributes["dnnprof.iteration_share_pct"] = share_of(
                float(child.attributes["dnnprof.exec_time_ms"]), float(attrs["dnnprof.exec_time_ms"])
            )
    return _envelope(name, "iteration", children, attrs)


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


def span_id(trace_id: str, index: int) -> str:
    """The 16-hex-digit id of the span at pre-order `index` of the trace (never all zeros)."""
    digest = hashlib.sha256(f"{trace_id}:{index}".encode()).hexdigest()[:16]
    return digest if digest != "0" * 16 else "0" * 15 + "1"


def walk_chunk(root: Span, chunk: list[Span]) -> Iterator[tuple[Span, Span, int]]:
    """(span, parent, depth) of some of the run's iteration spans and everything under
    them, in pre-order: a chunk of a tree that is made a chunk at a time."""
    for iteration in chunk:
        yield from iteration.walk(1, root)


def numbered(root: Span, chunks: Iterable[list[Span]]) -> Iterator[tuple[Span, int | None, int]]:
    """(span, its parent's index, its index): the run span, then the chunks' spans, each
    index the span's position in the whole tree's pre-order, whatever the chunks' size."""
    yield root, None, 0
    index = 0
    for chunk in chunks:
        indices = {id(root): 0}  # only within a chunk: a span's parent is in its own chunk
        for span, parent, _ in walk_chunk(root, chunk):
            index += 1
            indices[id(span)] = index
            yield span, indices[id(parent)], index
