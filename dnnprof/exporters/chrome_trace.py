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

Which iterations: by default ("auto") every one while the file stays under
`DEFAULT_MAX_BYTES` (counted from the rows before any span is built), else the OTLP export's
selection, the last 3 steady iterations, with a message saying so; `iterations="all"` (the
command line's --all-iterations) writes everything, with a warning past what Perfetto's
JSON importer opens comfortably. The file is written event by event (`write_json_streamed`);
more than `span_plan.CHUNK_ITERATIONS` iterations are also built that many at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnprof.exporters import span_plan
from dnnprof.exporters.base import (
    STREAMED,
    ExportOptions,
    FileExporter,
    Written,
    write_json_streamed,
)
from dnnprof.exporters.selection import (
    PERFETTO_JSON_BYTES,
    STEADY_SELECTION,
    estimate,
    select_iterations,
    span_mask,
)
from dnnprof.exporters.span_plan import SpanPlan, plan_span_tree
from dnnprof.exporters.spans import Span, SpanTree, nearest_multiple, walk_chunk
from dnnprof.trace import Trace

GRID_NS = 125  # 1/8 us
PID = 1
AUTO = "auto"  # every iteration while the file stays small, else the steady selection
DEFAULT_MAX_BYTES = 50_000_000  # what "auto" writes whole: a few seconds, opens at once


def _grid(ns: int) -> int:
    """Nanoseconds -> eighths of a microsecond (round half up, monotonic)."""
    return nearest_multiple(ns, GRID_NS) // GRID_NS


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


def chrome_document(tree: SpanTree) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The document with `STREAMED` in place of its events, and the events, made one by one."""
    origin = tree.root.start_ns
    placed = [
        _Placed(span, depth, _grid(span.start_ns - origin), _grid(span.end_ns - origin), order)
        for order, (span, _, depth) in enumerate(tree.walk())
    ]
    ordered = assign_tracks(placed)
    return _document(tree, origin), _events(tree, ordered)


def _document(tree: SpanTree, origin: int) -> dict[str, Any]:
    return {
        "traceEvents": STREAMED,
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


def _events(tree: SpanTree, ordered: list[_Placed]) -> Iterator[dict[str, Any]]:
    yield from _track_events(tree.root.name, sorted({p.track for p in ordered}))
    yield from map(_complete_event, ordered)


def _track_events(run: str, tracks: list[int]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": PID,
            "tid": 0,
            "args": {"name": f"dnnprof: {run}"},
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
    return events


def _complete_event(item: _Placed) -> dict[str, Any]:
    return {
        "name": item.span.name,
        "cat": item.span.level,
        "ph": "X",
        "ts": item.start / 8,
        "dur": (item.end - item.start) / 8,
        "pid": PID,
        "tid": item.track,
        "args": item.span.attributes,
    }


def chosen_selection(
    trace: Trace, span_iterations: int | None, iterations: str | Sequence[int]
) -> tuple[int | None, str | Sequence[int], str]:
    """(span_iterations, iterations, note): "auto" resolved by the size of the whole export,
    and a note for the user when the file is cut to the steady selection or is too large."""
    events = trace.events
    rows = events.loc[span_mask(events), ["iteration", "phase", "layer"]]
    if isinstance(iterations, str) and iterations == AUTO:
        if span_iterations is not None:  # a count given alone: the last N of every iteration
            return span_iterations, "all", ""
        whole = estimate(rows, select_iterations(rows, None, "all"))
        if whole.bytes <= DEFAULT_MAX_BYTES:
            return None, "all", ""
        selection, count = STEADY_SELECTION
        return count, selection, (
            f"every iteration would be ~{whole.megabytes:,.0f} MB ({whole.spans:,} spans), "
            "more than Perfetto opens comfortably: wrote the last "
            f"{count} steady iterations, as --otlp does (--all-iterations writes every one)")
    fit = estimate(rows, select_iterations(rows, span_iterations, iterations))
    if fit.bytes > PERFETTO_JSON_BYTES:
        return span_iterations, iterations, (
            f"warning: ~{fit.megabytes:,.0f} MB ({fit.spans:,} spans) is more than Perfetto's "
            "JSON importer opens comfortably (a few hundred MB): select fewer iterations "
            "(--span-iterations N) or send the spans to Jaeger with --otlp")
    return span_iterations, iterations, ""


def _write(trace: Trace, path: str | os.PathLike[str], span_iterations: int | None,
           iterations: str | Sequence[int], service_name: str = "dnnprof") -> tuple[SpanTree, str]:
    limit, selection, note = chosen_selection(trace, span_iterations, iterations)
    plan = plan_span_tree(trace, limit, selection, service_name)
    if len(plan) > span_plan.CHUNK_ITERATIONS:
        return write_in_chunks(plan, path), note
    tree = plan.whole()
    document, chrome_events = chrome_document(tree)
    write_json_streamed(path, document, chrome_events)
    return tree, note


def write_chrome_trace(
    trace: Trace,
    path: str | os.PathLike[str],
    span_iterations: int | None = None,
    iterations: str | Sequence[int] = AUTO,
) -> Path:
    """Write the Trace as Chrome trace-event JSON: every iteration (warm-up included) while
    the file stays under DEFAULT_MAX_BYTES, else the last 3 steady ones (see the module doc)."""
    _write(trace, path, span_iterations, iterations)
    return Path(path)


class ChromeTraceExporter(FileExporter):
    """Chrome trace-event JSON; every iteration while small, unless the options select fewer."""

    name = "chrome_trace"
    writes = "Chrome trace-event JSON (open in https://ui.perfetto.dev or chrome://tracing)"

    def write(self, trace: Trace, path: Path, options: ExportOptions) -> Written:
        """Write the span tree of the selected iterations as one trace-event file."""
        tree, note = _write(trace, path, options.limit(None), options.selection(AUTO),
                            options.service_name)
        message = f"Chrome trace written to {path} (open in https://ui.perfetto.dev)"
        return Written(message, note, tree)


def write_in_chunks(plan: SpanPlan, path: str | os.PathLike[str]) -> SpanTree:
    """Write a planned span tree a chunk of iterations at a time (`SpanPlan.chunks`): memory
    holds one chunk's spans whatever the number of iterations. Tracks are assigned within
    each chunk (iterations follow one another); the run span and the track names are
    written last, once every chunk's tracks are known."""
    tree = plan.tree
    root, origin = tree.root, tree.root.start_ns
    tracks: set[int] = {0}

    def chunk_events() -> Iterator[dict[str, Any]]:
        for chunk in plan.chunks():
            placed = [_Placed(span, depth, _grid(span.start_ns - origin),
                              _grid(span.end_ns - origin), order)
                      for order, (span, _, depth) in enumerate(walk_chunk(root, chunk))]
            for item in assign_tracks(placed):
                tracks.add(item.track)
                yield _complete_event(item)
        yield _complete_event(_Placed(root, 0, 0, _grid(root.end_ns - origin), -1))
        yield from _track_events(root.name, sorted(tracks))

    write_json_streamed(path, _document(tree, origin), chunk_events())
    return tree
