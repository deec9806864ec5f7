"""Chrome trace-event JSON (chrome://tracing, Perfetto's JSON importer, speedscope).

Every span is a complete ("X") event. Perfetto rejects events on one thread that overlap
without nesting, so two things are guaranteed here:

* Times are relative to the run's start and put on a 1/8 microsecond grid (125 ns). Such
  values are exact binary fractions: a viewer that adds `ts + dur` in floating point
  (chrome://tracing) or truncates `ts * 1000` to integer nanoseconds (Perfetto) gets exactly
  the numbers written, so a child that ends with its parent still ends inside it.
* Spans that would overlap without nesting (concurrent primitives, a graph partition logged
  around its own primitives) are moved to another track ("tid") of the same process; in the
  usual case everything sits on track 0 as one clean flame chart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnprof.exporters.base import (
    Destination,
    Exporter,
    ExportOptions,
    ExportResult,
    write_json_atomic,
)
from dnnprof.exporters.spans import Span, SpanTree, build_span_tree
from dnnprof.trace import Trace

GRID_NS = 125  # 1/8 us
PID = 1


def _grid(ns: int) -> int:
    """Nanoseconds -> eighths of a microsecond (round half up, monotonic)."""
    return (ns + GRID_NS // 2) // GRID_NS


@dataclass
class _Placed:
    span: Span
    depth: int
    start: int  # eighths of a microsecond from the run start
    end: int
    order: int
    track: int = 0


def assign_tracks(placed: list[_Placed]) -> list[_Placed]:
    """Give each event the first track on which it nests inside whatever is still open there.

    Events are visited by (start, longest first, depth), so a parent is placed before its
    children and they land on its track whenever they fit.
    """
    ordered = sorted(placed, key=lambda p: (p.start, -p.end, p.depth, p.order))
    stacks: list[list[int]] = []  # per track: end times of the open events, innermost last
    for item in ordered:
        for track, stack in enumerate(stacks):
            while stack and stack[-1] <= item.start and not (stack[-1] == item.start == item.end):
                stack.pop()
            if not stack or item.end <= stack[-1]:
                stack.append(item.end)
                item.track = track
                break
        else:
            stacks.append([item.end])
            item.track = len(stacks) - 1
    return ordered


def tree_to_chrome(tree: SpanTree) -> dict[str, Any]:
    """The trace-event document of a span tree (metadata events, then one X event per span)."""
    origin = tree.root.start_ns
    placed = [
        _Placed(span, depth, _grid(span.start_ns - origin), _grid(span.end_ns - origin), order)
        for order, (span, _, depth) in enumerate(tree.walk())
    ]
    ordered = assign_tracks(placed)
    tracks = sorted({p.track for p in ordered})
    events: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": PID,
            "tid": 0,
            "args": {"name": f"dnnprof: {tree.root.name}"},
        },
    ]
    for track in tracks:
        label = "oneDNN" if track == 0 else f"oneDNN (overlapping, {track})"
        events.append(
            {"name": "thread_name", "ph": "M", "pid": PID, "tid": track, "args": {"name": label}}
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": PID,
                "tid": track,
                "args": {"sort_index": track},
            }
        )
    for item in ordered:
        events.append(
            {
                "name": item.span.name,
                "cat": item.span.level,
                "ph": "X",
                "ts": item.start / 8,
                "dur": (item.end - item.start) / 8,
                "pid": PID,
                "tid": item.track,
                "args": item.span.attributes,
            }
        )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "dnnprof",
            "run": tree.root.name,
            "timeline": tree.timeline,
            "start_time_unix_ns": origin,
            "iterations": ",".join(str(i) for i in tree.iterations),
            "trace_id": tree.trace_id,
        },
    }


def write_chrome_trace(
    trace: Trace,
    path: str | os.PathLike[str],
    span_iterations: int | None = None,
    iterations: str | Sequence[int] = "all",
) -> Path:
    """Write the Trace as Chrome trace-event JSON. Unlike the Jaeger exports this keeps every
    iteration by default (warm-up included): Perfetto handles hundreds of thousands of events."""
    tree = build_span_tree(trace, span_iterations, iterations)
    return write_json_atomic(path, tree_to_chrome(tree))


class ChromeTraceExporter(Exporter):
    """Chrome trace-event JSON; every iteration unless the options select fewer."""

    name = "chrome_trace"
    writes = "Chrome trace-event JSON (open in https://ui.perfetto.dev or chrome://tracing)"

    def export(
        self, trace: Trace, destination: Destination | None, options: ExportOptions
    ) -> ExportResult:
        """Write the span tree of every iteration (by default) as one trace-event file."""
        started = time.perf_counter()
        path = self.file_path(destination)
        tree = build_span_tree(
            trace, options.limit(None), options.selection("all"), options.service_name
        )
        write_json_atomic(path, tree_to_chrome(tree))
        message = f"Chrome trace written to {path} (open in https://ui.perfetto.dev)"
        return ExportResult.of_tree(self.name, str(path), tree, started, message)
