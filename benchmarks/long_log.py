"""Long verbose logs built from a real corpus log, for the scale benchmark.

The corpus log's lines before its first measured iteration (info lines, the warm-up with
its cache misses) are written once, then its measured iterations are repeated, whole, until
the log has at least the lines asked for. Every verbose line gets a oneDNN timestamp (as
`ONEDNN_VERBOSE_TIMESTAMP=1` prints it) on one consistent clock: each line starts where the
previous timed line ended plus a fixed framework gap, so the timeline of the long log is as
plausible as a real capture's. Only the timestamps are added: every other byte of a line is
the corpus'.

    python benchmarks/long_log.py OUT.log --lines 1000000 [--source NAME]

Logs go to a temporary directory and are never committed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "corpus"
DEFAULT_SOURCE = "torch_resnet50_fp32_eager_b1_verbose_all"
T0_MS = 1_795_230_460_000.0  # the long log's first timestamp (an arbitrary epoch time in ms)
GAP_MS = 0.0137  # framework time between two oneDNN calls
_TIMED_OPS = ("exec", "create")


def measured_ranges(source: str) -> tuple[int, list[tuple[int, int]]]:
    """(first measured line, [(first, last) per measured iteration]) from the corpus truth."""
    truth = json.loads((CORPUS / f"{source}.truth.json").read_text())
    measured = [(it["first_line"], it["last_line"]) for it in truth["iterations"]
                if it["kind"] == "measure"]
    return measured[0][0], measured


def _stamped(line: str, ts_ms: float) -> tuple[str, float]:
    """The line with a timestamp after its version token, and the time it takes (ms)."""
    marker, _, rest = line.partition(",")
    version, _, payload = rest.partition(",")
    if not version.startswith("v") or not payload:  # not a v1 verbose line: left as it is
        return line, 0.0
    stamped = f"{marker},{version},{ts_ms:.6f},{payload}"
    fields = payload.split(",", 2)
    timed = len(fields) > 1 and fields[1].split(":")[0] in _TIMED_OPS
    if not timed:
        return stamped, 0.0
    try:
        return stamped, float(payload.rsplit(",", 1)[1])
    except ValueError:
        return stamped, 0.0


def write_long_log(path: Path, lines: int, source: str = DEFAULT_SOURCE) -> int:
    """Write a log of at least `lines` lines (whole iterations) to `path`; returns its lines."""
    text = (CORPUS / f"{source}.log").read_text().splitlines()
    first_measured, measured = measured_ranges(source)
    prefix = text[:first_measured]
    iterations = [text[first : last + 1] for first, last in measured]
    clock = T0_MS
    written = 0
    with path.open("w", buffering=1 << 20) as out:

        def emit(block: list[str]) -> None:
            nonlocal clock, written
            chunk = []
            for line in block:
                stamped, took = _stamped(line, clock)
                chunk.append(stamped)
                if took:
                    clock += took + GAP_MS
            out.write("\n".join(chunk) + "\n")
            written += len(block)

        emit(prefix)
        k = 0
        while written < lines:
            emit(iterations[k % len(iterations)])
            k += 1
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write one long log."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="corpus log name (no .log)")
    args = parser.parse_args(argv)
    written = write_long_log(args.out, args.lines, args.source)
    print(f"{args.out}: {written} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
