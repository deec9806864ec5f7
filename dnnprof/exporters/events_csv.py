"""Events CSV: one row per event with its log line and the reconstructor's labels (iteration,
phase, layer, fusion, reorder class), for a spreadsheet or a diff against ground truth."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from dnnprof.exporters.base import ExportOptions, FileExporter, Written
from dnnprof.files import atomic_path
from dnnprof.trace import Trace

EVENT_CSV_COLUMNS = ("line", "op", "iteration", "phase", "kind", "layer", "layer_type",
                     "fused_layers", "is_reorder", "reorder_class", "attribution", "duration_ms")


def write_events_csv(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """One CSV row per event (markers excluded) with its line, iteration and layer labels."""
    target = Path(path)
    _write(trace, target)
    return target


def _write(trace: Trace, target: Path) -> int:
    """Write the CSV atomically (OutputError if it cannot be); returns how many rows it has."""
    events = trace.events
    events = events[events["op"] != "marker"]
    frame = events[[c for c in EVENT_CSV_COLUMNS if c in events]]
    with atomic_path(target) as temp:
        frame.to_csv(temp, index=False, quoting=csv.QUOTE_MINIMAL, float_format="%.6g")
    return len(frame)


class EventsCsvExporter(FileExporter):
    """One CSV row per event with the reconstructor's labels (every event, no selection)."""

    name = "events_csv"
    writes = "CSV, one row per event: line, iteration, phase, kind, layer, fusion, duration"

    def write(self, trace: Trace, path: Path, options: ExportOptions) -> Written:
        """Write every event but the markers; the span selection options do not apply."""
        return Written(f"events written to {path}", items=_write(trace, path))
