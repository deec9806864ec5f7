"""From the stream's per-line arrays to a Trace: the events frame, the counts, the metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import __version__
from dnnprof.metadata import Counts, TraceMetadata
from dnnprof.parsers import columns
from dnnprof.parsers.lines import LineState
from dnnprof.trace import (
    EVENT_COLUMNS,
    FORMAT_VERSION,
    Trace,
    normalize_events,
    unusable_durations,
)
from dnnprof.vocabulary import CREATE_OPS

TIMESTAMPS = "timestamps"  # every exec line carried a oneDNN timestamp
SYNTHETIC = "synthetic"  # starts laid end to end from the exec times


@dataclass
class Parsed:
    """What the stream collected: one descriptor id and duration per line, sparse timestamps."""

    source: str
    state: LineState
    counts: Counts
    rows: list[columns.Row]  # one per descriptor
    per_line: np.ndarray  # descriptor id of each line, -1 for a line without an event
    durations: np.ndarray  # one per line
    ts_lines: np.ndarray  # the 0-based lines that carried a timestamp ...
    ts_values: np.ndarray  # ... and their timestamps
    unparsed: list[dict[str, Any]] = field(default_factory=list)
    foreign_samples: list[str] = field(default_factory=list)
    prefixed: int = 0  # verbose lines found behind a prefix (indentation, a logger's)

    def take_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """(per_line, durations), no longer held here: freed once the caller drops them."""
        taken = self.per_line, self.durations
        self.per_line = self.durations = np.zeros(0)
        return taken


def build_trace(parsed: Parsed) -> Trace:
    """The Trace of a parsed log (the counts of event rows are derived here, from the rows)."""
    per_line, line_durations = parsed.take_lines()
    lines = np.flatnonzero(per_line >= 0)
    desc_ids = per_line[lines]
    ts = _event_timestamps(per_line, lines, parsed.ts_lines, parsed.ts_values)
    durations = line_durations[lines]
    del per_line, line_durations  # 12 bytes a line, freed before the frame is built
    timed = np.array([columns.is_timed(r) for r in parsed.rows] or [False])
    _check_numbers(parsed.state, lines + 1, timed[desc_ids], durations, ts)
    exec_with_ts = _count_rows(parsed, desc_ids, ts)
    _say_if_nothing_found(parsed)
    exec_count = parsed.counts.exec
    timeline = TIMESTAMPS if exec_count and exec_with_ts == exec_count else SYNTHETIC
    frame = columns.expand(parsed.rows, desc_ids)
    frame["line"] = (lines + 1).astype(np.int32)
    frame["ts_ms"] = ts
    frame["duration_ms"] = durations
    frame["desc_id"] = desc_ids
    frame["start_ms"] = _start_times(ts, durations, timed[desc_ids], timeline)
    # built in schema order, so that normalising only adds the still-empty columns (a
    # reorder of a million-row frame would copy it whole); kept template fields go last
    order = [name for name in EVENT_COLUMNS if name in frame]
    order += [name for name in frame if name not in EVENT_COLUMNS]
    events = normalize_events(pd.DataFrame({name: frame[name] for name in order}, copy=False))
    return Trace(events, _metadata(parsed, timeline))


def _event_timestamps(
    per_line: np.ndarray, lines: np.ndarray, ts_lines: np.ndarray, ts_values: np.ndarray
) -> np.ndarray:
    """Each event row's timestamp (NaN: none) from the sparse per-line ones, through an
    int32 row number per line (half a per-line array of timestamps)."""
    ts = np.full(len(lines), np.nan)
    if len(lines) == len(per_line):  # every line is an event: its row is its line
        ts[ts_lines] = ts_values
    elif len(ts_lines):
        row_of_line = np.full(len(per_line), -1, dtype=np.int32)
        row_of_line[lines] = np.arange(len(lines), dtype=np.int32)
        rows = row_of_line[ts_lines]
        ts[rows[rows >= 0]] = ts_values[rows >= 0]
    return ts


def _check_numbers(
    state: LineState, line_numbers: np.ndarray, timed: np.ndarray, durations: np.ndarray,
    ts: np.ndarray,
) -> None:
    """Unusable times and timestamps become NaN (unknown), each class counted in a warning."""
    unknown = np.flatnonzero(timed & np.isnan(durations))
    if len(unknown):
        state.warn(f"{len(unknown)} exec/create lines have no time or one that is not a number "
                   f"(first at line {line_numbers[unknown[0]]}): kept as events with an "
                   "unknown duration, left out of every sum")
    unusable = np.flatnonzero(timed & unusable_durations(durations))
    if len(unusable):
        first = unusable[0]
        state.warn(f"{len(unusable)} times are infinite, negative or over a day (first at line "
                   f"{line_numbers[first]}: {durations[first]:g} ms): kept as events with an "
                   "unknown duration, left out of every sum")
        durations[unusable] = np.nan
    infinite = np.flatnonzero(np.isinf(ts))
    if len(infinite):
        state.warn(f"{len(infinite)} timestamps overflow (first at line "
                   f"{line_numbers[infinite[0]]}): read as missing")
        ts[infinite] = np.nan
    stamped = np.flatnonzero(~np.isnan(ts))
    backwards = stamped[1:][np.diff(ts[stamped]) < 0]
    if len(backwards):
        state.warn(f"timestamps go backwards {len(backwards)} times (first at line "
                   f"{line_numbers[backwards[0]]}): start times follow them as printed")


def _count_rows(parsed: Parsed, desc_ids: np.ndarray, ts: np.ndarray) -> int:
    """Fill the counts of event rows; returns how many exec rows carry a timestamp."""
    # The hot loop appends rows without touching counters; derive them from the rows.
    per_desc = np.bincount(desc_ids, minlength=len(parsed.rows))
    counts = parsed.counts
    counts.exec = counts.graph = counts.create = counts.messages = counts.markers = 0
    is_exec = np.zeros(max(len(parsed.rows), 1), dtype=bool)
    for i, (desc_row, count) in enumerate(zip(parsed.rows, per_desc.tolist(), strict=True)):
        op = desc_row[columns.OP]
        if op == "exec":
            if desc_row[columns.API] == "graph":
                counts.graph += count
            else:
                counts.exec += count
                is_exec[i] = True
        elif op in CREATE_OPS:
            counts.create += count
        elif op == "marker":
            counts.markers += count
        else:
            counts.messages += count
    return int((is_exec[desc_ids] & ~np.isnan(ts)).sum()) if len(ts) else 0


def _say_if_nothing_found(parsed: Parsed) -> None:
    """Warn when no line was oneDNN's (an empty file, another program's output, binary
    data): an empty trace is otherwise easy to take for a result."""
    counts = parsed.counts
    if counts.exec or counts.create or counts.graph or counts.messages or counts.info:
        return
    if counts.unparsed:  # oneDNN's lines, all in a form the grammar does not know
        return
    read = f"{counts.lines} lines read" if counts.lines else "the input is empty"
    parsed.state.warn(
        f"no oneDNN verbose lines found ({read}): is this the log of a run with "
        "ONEDNN_VERBOSE=1 (DNNL_VERBOSE=1 or MKLDNN_VERBOSE=1 before oneDNN 2.0)?"
    )


def _start_times(
    ts: np.ndarray, durations: np.ndarray, timed: np.ndarray, timeline: str
) -> np.ndarray:
    """Start of each event relative to the first: real timestamps, or exec times laid end to end."""
    if not len(ts):
        return ts
    if timeline == TIMESTAMPS:
        return ts - np.nanmin(ts)
    # synthetic: each exec/create starts where the previous one ended; markers and
    # messages sit at the current position
    step = np.where(timed & ~np.isnan(durations), durations, 0.0)
    return np.concatenate(([0.0], np.cumsum(step)[:-1]))


def _metadata(parsed: Parsed, timeline: str) -> TraceMetadata:
    state = parsed.state
    info = state.info
    threads = info.get("threads")
    return TraceMetadata(
        format_version=FORMAT_VERSION,
        dnnprof_version=__version__,
        source=parsed.source,
        onednn_version=info.get("onednn_version"),
        onednn_commit=info.get("onednn_commit"),
        product=info.get("product"),
        dialect=state.dialect or None,
        version_token=state.version_token or None,
        isa=info.get("isa"),
        runtime=info.get("runtime"),
        threads=int(threads) if threads and threads.isdigit() else None,
        templates={component: list(names) for component, names in state.templates.items()},
        templates_announced=sorted(state.announced),
        timeline=timeline,
        counts=parsed.counts,
        fields_kept_as_text=state.text_fields,
        unknown_kinds=sorted(state.unknown_kinds),
        unknown_fields=columns.kept_field_names(parsed.rows),
        unparsed_samples=parsed.unparsed,
        foreign_samples=parsed.foreign_samples,
        lines_with_prefix=parsed.prefixed,
        warnings=list(state.warnings),
    )
