"""Export throughput: spans per second for OTLP into a real Jaeger and for each file format,
each against a baseline measured in the same run.

Input: the int8 ResNet-50 corpus log, parsed and reconstructed as `dnnprof parse --model
resnet50` does, with its steady state repeated to `--iterations` iterations (about 120 spans
per iteration), every iteration exported (`iterations="all"`), so each export is large
enough to time and to need many OTLP batches.

Measured, best of `--repeat` (the machine is shared; the best run is the least disturbed):
  * baseline: building the span tree alone (what every span format starts from);
  * OTLP gRPC and HTTP to a Jaeger v2 this script starts on loopback (the launcher
    of tests/support/jaeger.py), end to end, and its own baseline: tree + OpenTelemetry SDK
    spans without sending; after each export Jaeger is asked whether it holds every span;
  * legacy Thrift HTTP to the same Jaeger, when the `jaeger` extra is installed;
  * Jaeger JSON and Chrome trace files (spans/s), benchdnn cases (exec rows/s, against
    grouping the distinct primitives alone), and the events CSV (events/s).

Every export goes through the public API, `dnnprof.exporters.export(trace, format, ...)`.

    python benchmarks/export_throughput.py [--iterations 120] [--repeat 3] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the Jaeger launcher lives with the test fixtures

import dnnprof  # noqa: E402
from dnnprof.exporters import ExportError, build_span_tree, export  # noqa: E402
from dnnprof.exporters.benchdnn import distinct_primitives  # noqa: E402
from dnnprof.exporters.sdk_spans import resource_for, sdk_spans  # noqa: E402
from dnnprof.reconstruct import reconstruct  # noqa: E402
from dnnprof.trace import Trace, normalize_events  # noqa: E402
from support.jaeger import (  # noqa: E402
    JaegerServer,
    find_jaeger_binary,
    otlp_spans,
    start_jaeger,
)

CORPUS = Path(os.environ.get("DNNPROF_CORPUS", REPO / "tests" / "data" / "corpus"))
SOURCE_LOG = CORPUS / "torch_resnet50_int8_fx_b1.log"
ALL = {"span_iterations": None, "iterations": "all"}  # build_span_tree: no limit
EVERY_ITERATION = {"span_iterations": 0, "iterations": "all"}  # the same as export options


def load_input(iterations: int) -> Trace:
    """The corpus run, reconstructed, with its measured iterations repeated to `iterations`."""
    trace = reconstruct(dnnprof.parse(SOURCE_LOG), model="resnet50")
    events = trace.events
    steady_iterations = sorted(
        int(i) for i in events.loc[events["phase"].astype(str) == "measure", "iteration"].unique()
    )
    block = events[events["iteration"].isin(steady_iterations)]
    # Lay each copy after the previous one on the same (synthetic) timeline.
    block_ms = float((block["start_ms"] + block["duration_ms"].fillna(0.0)).max()
                     - block["start_ms"].min())
    end_ms = float((events["start_ms"] + events["duration_ms"].fillna(0.0)).max())
    last_line = int(events["line"].max())
    last_iteration = int(events["iteration"].max())
    copies = [events]
    while last_iteration + 1 < iterations:
        copy = block.copy()
        copy["iteration"] = (
            copy["iteration"] - steady_iterations[0] + last_iteration + 1
        ).astype(np.int32)
        copy["start_ms"] = copy["start_ms"] - block["start_ms"].min() + end_ms
        copy["line"] = (copy["line"] - block["line"].min() + last_line + 1).astype(np.int32)
        copy = copy[copy["iteration"] < iterations]
        copies.append(copy)
        end_ms += block_ms
        last_line = int(copy["line"].max())
        last_iteration = int(copy["iteration"].max())
    frame = pd.concat(copies, ignore_index=True)
    for column in frame.columns:  # concat turns categoricals with differing categories to object
        if frame[column].dtype == object:
            frame[column] = frame[column].astype(str).astype("category")
    return Trace(normalize_events(frame), trace.metadata.copy())


def best_of(repeat: int, action: Callable[[], Any]) -> tuple[float, float, Any]:
    """(best seconds, median seconds, last result) over `repeat` calls."""
    times: list[float] = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times), result


def row(name: str, unit: str, count: int, best: float, median: float,
        baseline: str | None = None) -> dict[str, Any]:
    return {"export": name, "unit": unit, "count": count, "best_s": best, "median_s": median,
            "per_second": count / best, "per_second_median": count / median,
            "baseline": baseline}


def measure_files(trace: Trace, spans: int, repeat: int, folder: Path) -> list[dict[str, Any]]:
    rows = []
    best, median, _ = best_of(repeat, lambda: build_span_tree(trace, **ALL))
    rows.append(row("span tree only", "spans", spans, best, median))
    for name, fmt in (("Jaeger JSON file", "jaeger_json"), ("Chrome JSON file", "chrome_trace")):
        path = folder / f"{fmt}.json"
        best, median, _ = best_of(
            repeat, lambda fmt=fmt, path=path: export(trace, fmt, path, **EVERY_ITERATION)
        )
        rows.append(row(name, "spans", spans, best, median, "span tree only"))
    exec_rows = int(distinct_primitives(trace)["calls"].sum())
    best, median, _ = best_of(repeat, lambda: distinct_primitives(trace))
    rows.append(row("distinct primitives only", "exec rows", exec_rows, best, median))
    best, median, _ = best_of(repeat, lambda: export(trace, "benchdnn", folder / "b.txt"))
    rows.append(row("benchdnn cases file", "exec rows", exec_rows, best, median,
                    "distinct primitives only"))
    best, median, result = best_of(repeat, lambda: export(trace, "events_csv", folder / "e.csv"))
    rows.append(row("events CSV file", "events", result.items, best, median))
    return rows


def measure_jaeger(trace: Trace, spans: int, repeat: int, server: JaegerServer,
                   legacy: bool) -> list[dict[str, Any]]:
    def tree_and_sdk_spans() -> list[Any]:
        tree = build_span_tree(trace, **ALL)
        return sdk_spans(tree, resource_for(tree))

    rows = []
    best, median, _ = best_of(repeat, tree_and_sdk_spans)
    rows.append(row("span tree + OTel SDK spans (no send)", "spans", spans, best, median,
                    "span tree only"))
    exports = [
        ("OTLP gRPC -> local Jaeger",
         lambda: export(trace, "otlp", server.otlp_grpc_endpoint, service_name="bench-grpc",
                        **EVERY_ITERATION)),
        ("OTLP HTTP -> local Jaeger",
         lambda: export(trace, "otlp", server.otlp_http_endpoint, protocol="http",
                        service_name="bench-http", **EVERY_ITERATION)),
    ]
    if legacy:
        exports.append(
            ("legacy Thrift HTTP -> local Jaeger",
             lambda: export(trace, "jaeger_legacy", server.collector_thrift_http_endpoint,
                            service_name="bench-legacy", **EVERY_ITERATION)))
    for name, action in exports:
        best, median, result = best_of(repeat, action)
        # Throughput only counts if Jaeger has them all: ask its query API.
        stored = otlp_spans(
            server.client.wait_for_trace(result.trace_id, min_spans=result.spans, timeout_s=120)
        )
        assert len(stored) == result.spans == spans, (name, len(stored), spans)
        entry = row(name, "spans", spans, best, median, "span tree + OTel SDK spans (no send)")
        entry["batches"] = result.batches
        rows.append(entry)
    return rows


def legacy_available() -> bool:
    from dnnprof.exporters.jaeger_legacy import _exporter_class

    try:
        _exporter_class()
    except ExportError:
        return False
    return True


def print_table(rows: list[dict[str, Any]]) -> None:
    by_name = {r["export"]: r for r in rows}
    print(f"{'export':40} {'unit':>9} {'count':>7} {'best/s':>10} {'median/s':>10} "
          f"{'vs baseline':>12}  baseline")
    for r in rows:
        base = by_name.get(r["baseline"]) if r["baseline"] else None
        ratio = f"{r['per_second'] / base['per_second']:.2f}x" if base else ""
        r["ratio_to_baseline"] = r["per_second"] / base["per_second"] if base else None
        print(f"{r['export']:40} {r['unit']:>9} {r['count']:>7} {r['per_second']:>10,.0f} "
              f"{r['per_second_median']:>10,.0f} {ratio:>12}  {r['baseline'] or ''}")


def main() -> int:
    """Run the measurements, print a table and one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=120,
                        help="iterations after repeating the steady state")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per export (best kept)")
    parser.add_argument("--no-jaeger", action="store_true", help="file formats only")
    parser.add_argument("--json-out", type=Path, help="also write the JSON result here")
    args = parser.parse_args()

    trace = load_input(args.iterations)
    tree = build_span_tree(trace, **ALL)
    spans = len(tree)
    exec_rows = int((trace.events["op"].astype(str) == "exec").sum())
    n_iterations = int(trace.events.loc[trace.events["iteration"] >= 0, "iteration"].nunique())
    print(f"input: {SOURCE_LOG.name}, {n_iterations} iterations, {exec_rows} exec rows, "
          f"{spans} spans {tree.counts()}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", file=sys.stderr)

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dnnprof-export-bench-") as tmp:
        folder = Path(tmp)
        rows = measure_files(trace, spans, args.repeat, folder)
        binary = None if args.no_jaeger else find_jaeger_binary()
        if binary is None:
            notes.append("OTLP not measured: " + ("--no-jaeger" if args.no_jaeger else
                         "no Jaeger v2 binary (build it with .ci/jaeger.sh)"))
        else:
            legacy = legacy_available()
            if not legacy:
                notes.append("legacy Thrift not measured: the `jaeger` extra is not installed")
            server = start_jaeger(binary, folder)
            try:
                rows += measure_jaeger(trace, spans, args.repeat, server, legacy)
            finally:
                server.stop()

    print_table(rows)
    for note in notes:
        print(f"note: {note}")
    result = {
        "input": {"log": SOURCE_LOG.name, "iterations": n_iterations,
                  "exec_rows": exec_rows, "spans": spans, "counts": tree.counts()},
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()[0]},
        "repeat": args.repeat,
        "rows": rows,
        "notes": notes,
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
