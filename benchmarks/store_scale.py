"""The trace store at fleet scale: 10,000 runs, `dnnprof history` on DuckDB and on Spark.

The store is made from a real corpus run (torch ResNet-50, compiled, aligned with its
layer table) by tests/support/store_fleet.py: every layer's time in every iteration
jittered (log-normal, 3 %), each run's machine a little faster or slower (1 %), 10 % of the
runs busy (contention spikes on 40 % of layer-iterations, up to +80 %), 2 % unreliable
(times off by up to 7x); layer4.0.conv2 15 % slower from run 7,000 on, and from run 8,500
on layer1.0.conv1 lost its fused ReLU (which runs as its own eltwise primitive). The two
runs that carry a change are quiet: a busy run cannot be named the first slow one.

`dnnprof history --store STORE --model resnet50 --json` then runs as a user runs it, in a
fresh process, and this script reports its wall time and peak memory (the child's maximum
resident set), and checks its answer: exactly two change points, a timing step at run
7,000 naming layer4.0.conv2 and a structural change at run 8,500 naming the lost fusion.
History is timed on the store as CI writes it (one file per run and table: 20,000 files),
then after `dnnprof store compact` (one file per day and table, what a store this size
is meant to be kept as). DuckDB must answer the compacted store within 10 s and 1 GB; the
figures before compaction are reported, with a note when over. With --spark, Spark
(local[*]) is timed on the compacted store; its JVM is a child of the timed process, so its
memory is not in the figure.

    python benchmarks/store_scale.py [--runs 10000] [--store DIR] [--spark] [--json-out FILE]

A store left by an earlier run with the same --runs is reused (STORE.json beside it says
how it was made, and whether it was compacted already).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fleet generator lives with the test fixtures

from dnnprof.store import Store, compact_store  # noqa: E402
from support.store_fleet import FUSED_CONV, SLOW_LAYER, Events, fleet  # noqa: E402

LIMIT_S = 10.0
LIMIT_MB = 1024.0


def build(store_dir: Path, runs: int, events: Events) -> dict[str, Any]:
    """Write the fleet's runs through Store.add_rows (what `store add` does after parsing)."""
    start = time.perf_counter()
    store = Store(store_dir)
    for rows in fleet(runs, events):
        store.add_rows(rows)
    files = [p for p in store_dir.rglob("*.parquet")]
    return {"runs": runs, "build_s": round(time.perf_counter() - start, 1),
            "files": len(files),
            "size_mb": round(sum(p.stat().st_size for p in files) / 2**20, 1)}


def timed_history(store_dir: Path, engine: str, layout: str) -> dict[str, Any]:
    """`dnnprof history --json` in a fresh process: wall time, peak RSS, change points."""
    argv = [sys.executable, "-m", "dnnprof", "history", "--store", str(store_dir),
            "--model", "resnet50", "--json", "--engine", engine]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        # wait4: this child's own resource usage (its peak resident set), not all children's
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"history on {engine} failed ({child.returncode}):\n{stderr}")
    peak_mb = usage.ru_maxrss / 1024
    (series,) = json.loads(stdout)["series"]
    changes = [(c["kind"], c["position"], c["layers"], c["codes"])
               for c in series["change_points"]]
    return {"engine": engine, "layout": layout, "seconds": round(seconds, 2),
            "peak_mb": round(peak_mb),
            "runs": series["runs"], "changes": changes}


def verdict(result: dict[str, Any], events: Events) -> list[str]:
    """What is wrong with the answer (nothing: an empty list)."""
    expected = [("timing", events.slow_from, [SLOW_LAYER], ["slower"]),
                ("structure", events.lost_from, [FUSED_CONV, "layer1.0.relu1"],
                 ["fusion_lost", "layer_added"])]
    problems = []
    if [list(c) for c in result["changes"]] != [list(e) for e in expected]:
        problems.append(f"change points {result['changes']}, expected {expected}")
    if result["engine"] == "duckdb" and result["layout"] == "compacted":
        if result["seconds"] > LIMIT_S:
            problems.append(f"DuckDB took {result['seconds']} s (limit {LIMIT_S} s)")
        if result["peak_mb"] > LIMIT_MB:
            problems.append(f"DuckDB peaked at {result['peak_mb']} MB (limit {LIMIT_MB:.0f} MB)")
    return problems


def main() -> int:
    """Build (or reuse) the store, time history before and after compaction, check it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/dnnprof-store-scale"))
    parser.add_argument("--spark", action="store_true", help="time Spark (local[*]) too")
    parser.add_argument("--repeat", type=int, default=3, help="DuckDB timings (default 3)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    events = Events(slow_from=round(args.runs * 0.70), lost_from=round(args.runs * 0.85))
    stamp = args.store.with_name(args.store.name + ".json")  # beside the store, not in it
    report: dict[str, Any] = {"load_before": os.getloadavg()}
    if stamp.exists() and json.loads(stamp.read_text())["runs"] == args.runs:
        report["store"] = json.loads(stamp.read_text())
    elif args.store.exists():
        raise SystemExit(f"{args.store} exists but was not made for --runs {args.runs}: "
                         "remove it, or give another --store")
    else:
        report["store"] = build(args.store, args.runs, events)
        stamp.write_text(json.dumps(report["store"]))
    print(f"store: {report['store']}", flush=True)
    results = []
    if not report["store"].get("compacted"):  # one file per run per table, as CI adds them
        results += [timed_history(args.store, "duckdb", "one file per run")
                    for _ in range(args.repeat)]
        start = time.perf_counter()
        compact_store(Store(args.store).files)
        report["store"].update(compacted=True, compact_s=round(time.perf_counter() - start, 1),
                               files_compacted=len(list(args.store.rglob("*.parquet"))))
        stamp.write_text(json.dumps(report["store"]))
        print(f"compacted: {report['store']}", flush=True)
    results += [timed_history(args.store, "duckdb", "compacted") for _ in range(args.repeat)]
    if args.spark:
        results.append(timed_history(args.store, "spark", "compacted"))
    report["history"] = results
    report["load_after"] = os.getloadavg()
    problems = []
    for result in results:
        print(f"{result['engine']} ({result['layout']}): {result['seconds']} s, peak "
              f"{result['peak_mb']} MB, {result['runs']} runs, change points "
              f"{result['changes']}", flush=True)
        problems += verdict(result, events)
        if result["layout"] != "compacted" and result["seconds"] > LIMIT_S:
            print(f"note: {result['seconds']} s before compaction, over {LIMIT_S} s: a store "
                  "this size is meant to be compacted (docs/store.md)")
    print(f"load average before {report['load_before']}, after {report['load_after']}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
