"""Scale: every command as a whole process on 1M-line and longer logs, against a baseline
measured in the same run on the same file.

For each size a log is built from a real corpus log (benchmarks/long_log.py: its measured
iterations repeated, with consistent oneDNN timestamps) in a temporary folder, then timed:

  * baseline   a bare `for line in f: line.split(',')` loop over the log (its own process);
  * parse      `dnnprof parse LOG -o trace.parquet --json` (parse, reconstruct, store, summary);
  * parse()    `dnnprof.parse(LOG)` alone, timed inside its process after a warm-up parse of
               its first 2,000 lines (no imports, no grammar build, no output);
  * report     `dnnprof report TRACE -o report.html`;
  * compare    `dnnprof compare SMALLEST TRACE -o compare.html` (against the smallest size);
  * check      `dnnprof check TRACE -b SMALLEST --junit junit.xml`;
  * chrome     `dnnprof export TRACE --chrome c.json` (its default selection);
  * jaeger     `dnnprof export TRACE --jaeger-json j.json`.

Each row gives wall seconds, peak RSS (the process's own, from wait4; Linux starts a
child's peak at its parent's size, so ~20 MB, this script's, is the floor: the split loop
alone peaks at ~10 MB), both as a ratio to the baseline of the same size, and the time ratio to the same command at the smallest size
(2.0 for twice the lines is linear). With `--repeat N` (default 3) every command and the
baseline run N times, interleaved, and a row gives the median time and the largest peak: a
shared machine's CPU speed moves between runs a second apart. The load average is printed
before and after: the machine may be shared, and a number taken under load says so.

The package is byte-compiled first, as an installed one is: without it, every process
would spend ~0.08 s compiling dnnprof's sources when PYTHONDONTWRITEBYTECODE is set.

    python benchmarks/scale.py [--lines 1000000 2000000] [--repeat 3] [--json-out FILE]
                               [--keep DIR] [--write-docs]

`--write-docs` writes the table to docs/performance.md and a log-log Plotly chart of time
and peak memory against lines to docs/performance.html, so that anyone sees the slope.

Logs and traces are written to a temporary folder (or --keep DIR) and never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from long_log import DEFAULT_SOURCE, write_long_log  # noqa: E402

DNNPROF = [sys.executable, "-m", "dnnprof"]
SPLIT_LOOP = "import sys\nwith open(sys.argv[1]) as f:\n    for line in f: line.split(',')\n"
# The first parse imports pandas, pyarrow and Lark and builds the grammar (about 0.5 s): a
# few lines of the same log parsed first keep that out of the parse loop's time.
PARSE_ONLY = (
    "import itertools, sys, time, dnnprof\n"
    "with open(sys.argv[1]) as f:\n    dnnprof.parse(list(itertools.islice(f, 2000)))\n"
    "started = time.perf_counter()\ntrace = dnnprof.parse(sys.argv[1])\n"
    "print(time.perf_counter() - started)\n"
)


@dataclass
class Row:
    """One measured command at one size."""

    lines: int
    command: str
    seconds: float
    peak_mb: float
    time_ratio: float = 0.0  # to the baseline of the same size
    rss_ratio: float = 0.0
    slope: float = 0.0  # seconds / seconds of the same command at the smallest size
    status: int = 0


def run(argv: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS in MB, exit status, stdout) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    return seconds, usage.ru_maxrss / 1024, process.returncode, stdout


def commands(log: Path, trace: Path, smallest: Path) -> list[tuple[str, list[str]]]:
    """The commands measured at one size, in order (parse first: it writes the trace)."""
    return [
        ("parse", [*DNNPROF, "parse", str(log), "-o", str(trace), "--json"]),
        ("parse()", [sys.executable, "-c", PARSE_ONLY, str(log)]),
        ("report", [*DNNPROF, "report", str(trace), "-o", "report.html"]),
        ("compare", [*DNNPROF, "compare", str(smallest), str(trace), "-o", "compare.html"]),
        ("check", [*DNNPROF, "check", str(trace), "-b", str(smallest), "--junit", "junit.xml"]),
        ("chrome", [*DNNPROF, "export", str(trace), "--chrome", "c.json"]),
        ("jaeger", [*DNNPROF, "export", str(trace), "--jaeger-json", "j.json"]),
    ]


BASELINE = "baseline (split loop)"


def measure(sizes: list[int], folder: Path, source: str, repeat: int = 1) -> list[Row]:
    """Every command at every size, `repeat` times interleaved (median time, largest peak);
    the smallest size's trace is the compare/check baseline."""
    rows: list[Row] = []
    first: dict[str, float] = {}
    smallest: Path | None = None
    for size in sorted(sizes):
        log, trace = folder / f"{size}.log", folder / f"{size}.parquet"
        lines = write_long_log(log, size, source)
        smallest = smallest or trace
        runs: dict[str, list[tuple[float, float, int]]] = {}
        for _ in range(repeat):
            base = run([sys.executable, "-c", SPLIT_LOOP, str(log)], folder)
            runs.setdefault(BASELINE, []).append(base[:3])
            for name, argv in commands(log, trace, smallest):
                seconds, peak_mb, status, stdout = run(argv, folder)
                if name == "parse()" and status == 0:
                    seconds = float(stdout.strip().splitlines()[-1])  # the parse alone
                runs.setdefault(name, []).append((seconds, peak_mb, status))
        base_s = statistics.median(s for s, _, _ in runs[BASELINE])
        base_mb = max(mb for _, mb, _ in runs[BASELINE])
        for name, measured in runs.items():
            seconds = statistics.median(s for s, _, _ in measured)
            peak_mb = max(mb for _, mb, _ in measured)
            failed = [st for _, _, st in measured if st not in (0, 1)]  # check exits 1
            status = failed[0] if failed else measured[0][2]
            row = Row(lines, name, seconds, peak_mb, seconds / base_s, peak_mb / base_mb,
                      status=status)
            first.setdefault(name, seconds)
            row.slope = seconds / first[name]
            rows.append(row)
            spread = ", ".join(f"{s:.2f}" for s, _, _ in measured)
            print(f"{lines:>10,} {name:<22} {seconds:8.2f} s {peak_mb:8.0f} MB "
                  f"x{row.time_ratio:5.1f} time, x{row.slope:4.2f} of the smallest"
                  + (f"  [{spread}]" if repeat > 1 else "")
                  + (f"  (exit {status})" if status not in (0, 1) else ""), flush=True)
        log.unlink()  # the next size's log takes the room
    return rows


def compile_package() -> None:
    """Byte-compile dnnprof as an installation does (see the module doc)."""
    import compileall

    compileall.compile_dir(Path(__file__).resolve().parents[1] / "dnnprof", quiet=1)


def markdown(rows: list[Row], load_before: tuple[float, ...], load_after: tuple[float, ...],
             repeat: int = 1) -> str:
    """The results as a markdown table, with the load they were taken under."""
    out = [
        f"Load average before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} CPUs)."
        + (f" Each command run {repeat} times, interleaved: median seconds, largest peak."
           if repeat > 1 else ""),
        "",
        "| lines | command | seconds | peak MB | time / split loop | RSS / split loop "
        "| time / smallest size |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        out.append(f"| {row.lines:,} | {row.command} | {row.seconds:.2f} | {row.peak_mb:.0f} | "
                   f"{row.time_ratio:.1f} | {row.rss_ratio:.1f} | {row.slope:.2f} |")
    return "\n".join(out) + "\n"


def chart(rows: list[Row], path: Path) -> None:
    """Seconds and peak MB against lines, log-log, one line per command."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("wall seconds", "peak RSS, MB"))
    for command in dict.fromkeys(row.command for row in rows):
        mine = [row for row in rows if row.command == command and row.status in (0, 1)]
        lines = [row.lines for row in mine]
        for column, values in ((1, [r.seconds for r in mine]), (2, [r.peak_mb for r in mine])):
            figure.add_scatter(x=lines, y=values, name=command, legendgroup=command,
                               showlegend=column == 1, mode="lines+markers", row=1, col=column)
    figure.update_xaxes(type="log", title_text="lines")
    figure.update_yaxes(type="log")
    figure.update_layout(title="dnnprof commands against log length (benchmarks/scale.py)")
    figure.write_html(path, include_plotlyjs="cdn")


def write_docs(rows: list[Row], table: str, docs: Path) -> None:
    """docs/performance.md (the table and how it was made) and docs/performance.html."""
    sizes = ", ".join(f"{size:,}" for size in dict.fromkeys(row.lines for row in rows))
    (docs / "performance.md").write_text(
        "# Performance: every command against log length\n\n"
        "Written by `python benchmarks/scale.py --write-docs --lines ...` (see its docstring "
        "and docs/scale.md); the chart of these rows, log-log, is "
        "[performance.html](performance.html).\n\n"
        f"Sizes measured: {sizes} lines.\n\n{table}")
    chart(rows, docs / "performance.html")


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 2_000_000])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of every command per size (median time, largest peak)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="corpus log (no .log)")
    parser.add_argument("--json-out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the traces")
    parser.add_argument("--write-docs", action="store_true",
                        help="write docs/performance.md and docs/performance.html")
    args = parser.parse_args(argv)
    compile_package()
    load_before = os.getloadavg()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        rows = measure(args.lines, args.keep, args.source, args.repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="dnnprof-scale-") as folder:
            rows = measure(args.lines, Path(folder), args.source, args.repeat)
    table = markdown(rows, load_before, os.getloadavg(), args.repeat)
    print()
    print(table)
    if args.write_docs:
        write_docs(rows, table, Path(__file__).resolve().parents[1] / "docs")
    if args.json_out:
        args.json_out.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    failed = [r for r in rows if r.status not in (0, 1)]  # check exits 1 on a regression
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
