"""`dnnprof baseline save RUN --to PATH`: store a run's steady state as a check baseline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnnprof.cli import options
from dnnprof.vocabulary import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `baseline` and its one action, `save`."""
    actions = options.add_action_command(subparsers, "baseline",
                                         "create or update a stored baseline trace")
    save = actions.add_parser(
        "save",
        help="store a run's steady-state iterations as a baseline trace",
        description="Keep only the steady-state exec lines of RUN (small enough to commit) "
                    "and write them, with their iterations labelled, to PATH.",
    )
    save.add_argument("run", help="run folder, trace file or verbose log")
    save.add_argument("--to", required=True, type=Path, dest="to",
                      help="where to write the baseline (.parquet file or folder)")
    options.add_model(save, "name the layers from this zoo model's layer table (see check)")
    save.set_defaults(handler=run_save)


def run_save(args: argparse.Namespace) -> int:
    """Write the baseline, say how big it is and whether it can judge timing."""
    from dnnprof.check import load_config, load_input, save_baseline
    from dnnprof.check.stats import min_iterations
    from dnnprof.cli.outputs import check_paths

    check_paths([args.run], traces=[args.to])
    path = save_baseline(load_input(args.run, "run", args.model), args.to)
    size = path.stat().st_size
    stored = load_input(path, "baseline")
    iterations = int(stored.events["iteration"].nunique())
    print(f"baseline written to {path} ({size / 1024:.0f} KiB, {iterations} steady-state "
          "iterations)", file=sys.stderr)
    need = min_iterations(load_config().alpha / 2.0)
    if iterations < need:
        print(f"note: timing needs at least {need} measured iterations per run to reach a "
              "verdict; this baseline can only check structure", file=sys.stderr)
    return ExitCode.OK
