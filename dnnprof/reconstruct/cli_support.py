"""`dnnprof parse` options for the reconstructor: --model, --layers, --events, --no-layers.

`dnnprof.cli` calls `add_parse_options(parser)` while building the `parse` subcommand and
`apply_reconstruction(trace, args)` right after parsing the log.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from dnnprof.trace import Trace

EVENT_CSV_COLUMNS = ("line", "op", "iteration", "phase", "kind", "layer", "layer_type",
                     "fused_layers", "is_reorder", "reorder_class", "attribution", "duration_ms")


def add_parse_options(parser: argparse.ArgumentParser) -> None:
    """Add the reconstruction flags to the `parse` subcommand."""
    group = parser.add_argument_group("layer reconstruction")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--model", metavar="NAME",
                        help="align the log with this zoo model's layer table (e.g. resnet50)")
    source.add_argument("--layers", metavar="TABLE.json",
                        help="align the log with this layer table (JSON list of layer rows)")
    group.add_argument("--events", metavar="EVENTS.csv",
                       help="write one row per event: line, iteration, phase, kind, layer, "
                            "layer_type, fused_layers, is_reorder, reorder_class, duration_ms")
    group.add_argument("--no-layers", action="store_true",
                       help="skip the reconstruction (iterations and layers stay unknown)")


def apply_reconstruction(trace: Trace, args: argparse.Namespace) -> Trace:
    """Reconstruct as the flags ask, report the outcome on stderr, write --events if asked."""
    from dnnprof.reconstruct import LayerTableError, reconstruct

    if not getattr(args, "no_layers", False):
        try:
            trace = reconstruct(trace, layers=getattr(args, "layers", None),
                                model=getattr(args, "model", None))
        except LayerTableError as exc:
            print(f"dnnprof: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        if not getattr(args, "json", False):
            for line in describe(trace):
                print(line, file=sys.stderr)
    if getattr(args, "events", None):
        path = write_events_csv(trace, args.events)
        if not getattr(args, "json", False):
            print(f"events written to {path}", file=sys.stderr)
    return trace


def describe(trace: Trace) -> list[str]:
    """A few lines saying how layers and iterations were found, and any warnings."""
    info = trace.metadata.get("reconstruction")
    if not info:
        return []
    iterations = info.get("iterations", {})
    score = info.get("score")
    table = info.get("layer_table", {}).get("source") or ""
    how = {"markers": "from dnnprof markers", "align": f"aligned with layer table {table}",
           "heuristic": "grouped heuristically (no markers, no layer table)"}[info["mode"]]
    lines = [
        f"layers: {how}"
        + (f", score {score:.2f}" if score is not None else "")
        + (f", {info['coverage']:.0%} of steady exec lines attributed" if info.get("coverage") is not None else ""),
        f"iterations: {len(iterations.get('warmup', []))} warm-up + "
        f"{len(iterations.get('measure', []))} measured ({iterations.get('source')})",
    ]
    lines += [f"warning: {w}" for w in info.get("warnings", [])]
    return lines


def write_events_csv(trace: Trace, path: str | Path) -> Path:
    """One CSV row per event (markers excluded) with its line, iteration and layer labels."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    events = trace.events
    events = events[events["op"] != "marker"]
    frame = events[[c for c in EVENT_CSV_COLUMNS if c in events]].copy()
    frame.to_csv(target, index=False, quoting=csv.QUOTE_MINIMAL, float_format="%.6g")
    return target
