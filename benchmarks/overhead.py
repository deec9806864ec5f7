"""What profiling costs: per-iteration wall time without verbose, with verbose, with verbose + markers.

All three run in this one invocation, interleaved (A B C A B C ...) so that a noisy
neighbour hits them alike; each figure is the median of the measured iterations
(`wall_ms` of the workload's own `iter_end` markers, perf_counter around the forward).
Target: layer markers add <= 5 % over verbose alone.

    python benchmarks/overhead.py [--model resnet50] [--iters 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dnnprof.markers import ITER_END, Marker  # noqa: E402
from dnnprof.profiler.runner import VERBOSE_ENV, WORKLOAD  # noqa: E402
from dnnprof.vocabulary import MEASURE  # noqa: E402

CONFIGS = {
    "no verbose": ({}, ["--no-markers"]),
    "verbose": (VERBOSE_ENV, ["--no-markers"]),
    "verbose + markers": (VERBOSE_ENV, []),
}


def one_run(model: str, iters: int, input_size: int | None, env_extra: dict, flags: list[str]) -> list[float]:
    """Measured iterations' wall times (ms) of one workload run."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("VERBOSE") and "VERBOSE_" not in k}
    env.update(env_extra)
    env["PYTHONPATH"] = str(REPO)
    argv = [sys.executable, str(WORKLOAD), "--model", model, "--warmup", "2", "--iters", str(iters),
            "--no-layer-table", *flags]
    if input_size:
        argv += ["--input-size", str(input_size)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    walls = []
    for line in out.stdout.splitlines():
        marker = Marker.from_line(line)
        # iter_end's fields, its time split off: index, phase, wall ms
        if marker is not None and marker.event == ITER_END and marker.field(1) == MEASURE:
            walls.append(float(marker.field(2)))
    return walls


def main() -> int:
    """Measure the three configurations and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--input-size", type=int)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name, (env_extra, flags) in CONFIGS.items():
            samples[name] += one_run(args.model, args.iters, args.input_size, env_extra, flags)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["no verbose"]
    verbose = medians["verbose"]
    markers = medians["verbose + markers"]
    print(f"{args.model}: median per-iteration wall time over {args.rounds} x {args.iters} iterations")
    for name, value in medians.items():
        print(f"  {name:<18} {value:9.2f} ms   x{value / base:.3f} of no-verbose")
    ratio = markers / verbose
    verdict = "OK" if ratio <= 1.05 else "MISSED"
    print(f"  markers over verbose alone: x{ratio:.3f} (target <= 1.05) {verdict}")
    print(json.dumps({"model": args.model, "medians_ms": medians, "markers_over_verbose": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
