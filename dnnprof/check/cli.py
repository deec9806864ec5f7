"""`dnnprof check` and `dnnprof baseline`: flags in, exit status out (0 pass, 1 regression, 2 input)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dnnprof.check.config import ConfigError, load_config, parse_fraction, with_overrides
from dnnprof.check.gate import check_traces
from dnnprof.check.inputs import CheckInputError, load_input, save_baseline
from dnnprof.check.report import EXIT_INPUT, EXIT_PASS, CheckReport
from dnnprof.check.stats import min_iterations
from dnnprof.check.steady import SteadyStateError


def add_check_commands(subparsers: Any) -> None:
    """Register `check` and `baseline` on the `dnnprof` subcommand parser."""
    check = subparsers.add_parser(
        "check",
        help="CI gate: compare a trace against a baseline (exit 0 pass, 1 regression, 2 input error)",
        description=(
            "Compare NEW against a stored baseline: timing with a rank test over steady-state "
            "iterations (significant AND beyond tolerance), structure exactly per layer "
            "(fusion, reorders, kinds, data types, implementation/ISA, shapes)."
        ),
    )
    check.add_argument("new", help="new trace: .parquet file, run folder, or verbose log")
    check.add_argument("-b", "--baseline", required=True,
                       help="baseline trace, run folder or log (see `dnnprof baseline save`)")
    check.add_argument("--tolerance", type=_fraction("--tolerance"),
                       help="allowed slowdown of the total, e.g. 5%% (default from config, 5%%)")
    check.add_argument("--layer-tolerance", type=_fraction("--layer-tolerance"),
                       help="allowed slowdown per layer (default 10%%)")
    check.add_argument("--alpha", type=_fraction("--alpha"),
                       help="significance level of the one-sided rank test (default 0.01)")
    check.add_argument("--model", metavar="NAME",
                       help="align traces without module names (logs, heuristic layers) with "
                            "this zoo model's layer table, e.g. resnet50")
    check.add_argument("--config", type=Path,
                       help="pyproject.toml or dnnprof.toml to read (default: nearest one)")
    check.add_argument("--ignore-layer", action="append", default=None, metavar="PATTERN",
                       help="skip layers matching this glob (or re:REGEX); repeatable")
    check.add_argument("--no-layer-timing", action="store_true",
                       help="judge timing on the whole iteration only")
    check.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    check.add_argument("--markdown", metavar="FILE",
                       help="write a markdown summary here ('-' for standard output)")
    check.add_argument("--json", action="store_true",
                       help="print the report as one JSON object instead of tables")
    check.add_argument("--max-rows", type=int, default=40,
                       help="findings listed at the terminal (default 40)")
    check.add_argument("--update-baseline", action="store_true",
                       help="accept NEW: report as usual, then overwrite the baseline with it "
                            "and exit 0")
    check.set_defaults(handler=run_check)

    baseline = subparsers.add_parser("baseline", help="create or update a stored baseline trace")
    actions = baseline.add_subparsers(dest="baseline_command", metavar="ACTION")
    save = actions.add_parser(
        "save",
        help="store a run's steady-state iterations as a baseline trace",
        description="Keep only the steady-state exec lines of RUN (small enough to commit) "
                    "and write them, with their iterations labelled, to PATH.",
    )
    save.add_argument("run", help="run folder, trace file or verbose log")
    save.add_argument("--to", required=True, type=Path, dest="to",
                      help="where to write the baseline (.parquet file or folder)")
    save.add_argument("--model", metavar="NAME",
                      help="name the layers from this zoo model's layer table (see check)")
    save.set_defaults(handler=run_baseline)
    baseline.set_defaults(handler=_baseline_usage(baseline))


def run_check(args: argparse.Namespace) -> int:
    """`dnnprof check NEW --baseline BASE`: print the verdict and return the exit status."""
    try:
        config = load_config(args.config)
        overrides: dict[str, Any] = {
            "tolerance": args.tolerance,
            "layer_tolerance": args.layer_tolerance,
            "alpha": args.alpha,
        }
        if args.no_layer_timing:
            overrides["layer_timing"] = False
        if args.ignore_layer:
            overrides["ignore_layers"] = [*config.ignore_layers, *args.ignore_layer]
        config = with_overrides(config, **overrides)
        new = load_input(args.new, "new", args.model)
        baseline_missing = args.update_baseline and not Path(args.baseline).exists()
        if baseline_missing:
            path = save_baseline(new, args.baseline)
            print(f"dnnprof: no baseline yet; {args.new} saved as the baseline at {path}",
                  file=sys.stderr)
            return EXIT_PASS
        baseline = load_input(args.baseline, "baseline", args.model)
        report = check_traces(baseline, new, config, str(args.baseline), str(args.new))
    except (CheckInputError, ConfigError, SteadyStateError) as exc:
        print(f"dnnprof check: {exc}", file=sys.stderr)
        return EXIT_INPUT
    _emit(report, args)
    if args.update_baseline:
        path = save_baseline(new, args.baseline)
        print(f"dnnprof: baseline updated: {path} now holds {args.new} "
              f"({report.new.iterations} iterations); commit it to accept the change",
              file=sys.stderr)
        return EXIT_PASS
    return report.exit_code


def run_baseline(args: argparse.Namespace) -> int:
    """`dnnprof baseline save RUN --to PATH`."""
    try:
        trace = load_input(args.run, "run", args.model)
        path = save_baseline(trace, args.to)
    except (CheckInputError, SteadyStateError) as exc:
        print(f"dnnprof baseline: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"dnnprof baseline: cannot write {args.to}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    size = path.stat().st_size
    stored = load_input(path, "baseline")
    iterations = int(stored.events["iteration"].nunique())
    print(f"baseline written to {path} ({size / 1024:.0f} KiB, {iterations} steady-state "
          "iterations)", file=sys.stderr)
    need = min_iterations(load_config().alpha / 2.0)
    if iterations < need:
        print(f"note: timing needs at least {need} measured iterations per run to reach a "
              "verdict; this baseline can only check structure", file=sys.stderr)
    return EXIT_PASS


def _emit(report: CheckReport, args: argparse.Namespace) -> None:
    if args.junit:
        from dnnprof.check.junit import write_junit

        write_junit(report, args.junit)
    if args.markdown:
        from dnnprof.check.markdown import markdown_summary

        text = markdown_summary(report)
        if args.markdown == "-":
            sys.stdout.write(text)
        else:
            target = Path(args.markdown)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    elif args.markdown != "-":
        from dnnprof.check.console import print_report

        print_report(report, max_rows=args.max_rows)


def _fraction(flag: str) -> Any:
    def convert(text: str) -> float:
        try:
            return parse_fraction(text, flag)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _baseline_usage(parser: argparse.ArgumentParser) -> Any:
    def usage(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_INPUT

    return usage
