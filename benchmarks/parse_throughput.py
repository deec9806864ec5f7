"""Parse throughput and memory, each against a baseline measured in the same run.

Builds a 1,000,000-line log by repeating a corpus log, the same number of lines with a
oneDNN timestamp on every line (benchmarks/long_log.py, the scale benchmark's log), and a
200,000-line log in which every descriptor is distinct, then measures:
  * lines/s of `dnnprof.parse` to a complete Trace (imports and the grammar build excluded),
  * lines/s of a bare `for line in f: line.split(',')` loop over the same file,
  * their ratio, and the peak RSS of a process that only parses the log.
Targets (issue 11): ratio >= 0.7 and peak memory <= 300 MB for the 1M-line logs;
>= 15,000 lines/s (all distinct).

    python benchmarks/parse_throughput.py [--lines 1000000] [--distinct 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from long_log import write_long_log  # noqa: E402

CORPUS = REPO / "tests" / "data" / "corpus"
SOURCE_LOG = CORPUS / "torch_resnet50_fp32_eager_b1_verbose_all.log"


def build_repetitive(path: Path, n_lines: int) -> None:
    """Repeat a real corpus log (all line types) until n_lines."""
    lines = SOURCE_LOG.read_text().splitlines(keepends=True)
    with path.open("w") as out:
        written = 0
        while written < n_lines:
            chunk = lines[: n_lines - written]
            out.writelines(chunk)
            written += len(chunk)


def build_distinct(path: Path, n_lines: int) -> None:
    """Real exec lines whose problem descriptors are made distinct (a new minibatch each)."""
    exec_lines = [
        line for line in SOURCE_LOG.read_text().splitlines()
        if ",primitive,exec,cpu," in line and "_ic" in line
    ]
    with path.open("w") as out:
        for i in range(n_lines):
            line = exec_lines[i % len(exec_lines)]
            out.write(re.sub(r",mb1_", f",mb{i + 2}_", line, count=1) + "\n")


def split_loop(path: Path) -> float:
    """Seconds for the bare baseline loop."""
    start = time.perf_counter()
    with path.open() as handle:
        for line in handle:
            line.split(",")
    return time.perf_counter() - start


def parse_in_child(path: Path) -> dict[str, float]:
    """Parse in a fresh process (so peak RSS is the parser's own) and report time and memory."""
    code = f"""
import json, resource, time
import dnnprof
import dnnprof.parsers.stream  # imports (pandas) and the grammar build are start-up,
from dnnprof.parsers.grammar import grammar_parser  # not throughput
grammar_parser()
start = time.perf_counter()
trace = dnnprof.parse({str(path)!r})
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rows": len(trace.events),
    "unparsed": trace.summary()["unparsed"],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(path: Path, n_lines: int, label: str) -> dict[str, float]:
    """Baseline and parser on the same file, baseline first then parser, twice; best of each."""
    base = min(split_loop(path) for _ in range(2))
    runs = [parse_in_child(path) for _ in range(2)]
    best = min(runs, key=lambda r: r["seconds"])
    result = {
        "log": label,
        "lines": n_lines,
        "parse_lines_per_s": n_lines / best["seconds"],
        "split_lines_per_s": n_lines / base,
        "ratio": base / best["seconds"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "unparsed": best["unparsed"],
    }
    return result


def main() -> int:
    """Run both measurements and print a table plus JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=200_000)
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        repetitive = Path(tmp) / "repetitive.log"
        stamped = Path(tmp) / "timestamped.log"
        distinct = Path(tmp) / "distinct.log"
        build_repetitive(repetitive, args.lines)
        stamped_lines = write_long_log(stamped, args.lines)
        build_distinct(distinct, args.distinct)
        results = [
            measure(repetitive, args.lines, "repetitive"),
            measure(stamped, stamped_lines, "timestamped"),
            measure(distinct, args.distinct, "all-distinct"),
        ]
    targets = {"repetitive": (500_000, 0.7), "timestamped": (500_000, 0.7),
               "all-distinct": (15_000, None)}
    print(f"{'log':<13} {'lines':>9} {'parse l/s':>11} {'split l/s':>11} {'ratio':>6} {'peak MB':>8}  target")
    for r in results:
        speed, ratio = targets[r["log"]]
        target = f">= {speed:,} l/s" + (f", ratio >= {ratio}" if ratio else "")
        ok = r["parse_lines_per_s"] >= speed and (ratio is None or r["ratio"] >= ratio)
        if r["log"] != "all-distinct":
            target += ", <= 300 MB"
            ok = ok and r["peak_rss_mb"] <= 300
        print(
            f"{r['log']:<13} {r['lines']:>9,} {r['parse_lines_per_s']:>11,.0f} "
            f"{r['split_lines_per_s']:>11,.0f} {r['ratio']:>6.2f} {r['peak_rss_mb']:>8.0f}  "
            f"{target} {'OK' if ok else 'MISSED'}"
        )
    print(json.dumps(results))
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
