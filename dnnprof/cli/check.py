"""`dnnprof check NEW --baseline BASE`: the CI gate (exit 0 pass, 1 regression, 2 input error).

Compare NEW against a stored baseline: timing with a rank test over steady-state
iterations (significant AND beyond tolerance), structure exactly per layer (fusion,
reorders, kinds, data types, implementation/ISA, shapes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnnprof.cli import options
from dnnprof.cli.store import add_check_flags
from dnnprof.display import json_text
from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover

    from dnnprof.check import CheckConfig, CheckReport


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `check` and its flags."""
    parser = options.add_command(
        subparsers, "check", run,
        "CI gate: compare a trace against a baseline (exit 0 pass, 1 regression, 2 input error)",
        __doc__, error_prefix="dnnprof check")
    parser.add_argument("new", help="new trace: .parquet file, run folder, or verbose log")
    baseline = parser.add_mutually_exclusive_group(required=True)
    baseline.add_argument("-b", "--baseline",
                          help="baseline trace, run folder or log (see `dnnprof baseline save`)")
    baseline.add_argument("--baseline-store", metavar="PATH",
                          help="a trace store: the baseline is the last K runs there of the "
                               "same model, variant and runner class (see `dnnprof store`)")
    parser.add_argument("--tolerance", type=options.fraction("--tolerance"),
                        help="allowed slowdown of the total, e.g. 5%% (default from config, 5%%)")
    parser.add_argument("--layer-tolerance", type=options.fraction("--layer-tolerance"),
                        help="allowed slowdown per layer (default 10%%)")
    parser.add_argument("--alpha", type=options.fraction("--alpha"),
                        help="significance level of the one-sided rank test (default 0.01)")
    options.add_model(parser, "align traces without module names (logs, heuristic layers) "
                      "with this zoo model's layer table, e.g. resnet50")
    parser.add_argument("--config", type=Path,
                        help="pyproject.toml or dnnprof.toml to read (default: nearest one)")
    parser.add_argument("--ignore-layer", action="append", default=None, metavar="PATTERN",
                        help="skip layers matching this glob (or re:REGEX); repeatable")
    parser.add_argument("--no-layer-timing", action="store_true",
                        help="judge timing on the whole iteration only")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--markdown", metavar="FILE",
                        help="write a markdown summary here ('-' for standard output)")
    options.add_json(parser, "print the report as one JSON object instead of tables")
    parser.add_argument("--max-rows", type=int, default=40,
                        help="findings listed at the terminal (default 40)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="accept NEW: report as usual, then overwrite the baseline with it "
                             "and exit 0")
    add_check_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Print the verdict and return the exit status (0 with --update-baseline)."""
    from dnnprof.check import check, load_input, save_baseline
    from dnnprof.cli.outputs import check_paths

    if args.baseline_store is not None:
        return _check_against_store(args)
    # --update-baseline writes the baseline, which must then not be NEW itself
    check_paths([args.new, args.baseline], files=[args.junit, args.markdown])
    if args.update_baseline:
        check_paths([args.new], traces=[args.baseline])
    config = _config(args)
    if args.update_baseline and not Path(args.baseline).exists():
        path = save_baseline(load_input(args.new, "new", args.model), args.baseline)
        print(f"dnnprof: no baseline yet; {args.new} saved as the baseline at {path}",
              file=sys.stderr)
        return ExitCode.OK
    report = check(args.new, baseline=args.baseline, config=config, model=args.model)
    _emit(report, args)
    if args.update_baseline:
        path = save_baseline(load_input(args.new, "new", args.model), args.baseline)
        print(f"dnnprof: baseline updated: {path} now holds {args.new} "
              f"({report.new.iterations} iterations); commit it to accept the change",
              file=sys.stderr)
        return ExitCode.OK
    return report.exit_code


def _check_against_store(args: argparse.Namespace) -> int:
    """NEW against the last K comparable runs of a store (adding NEW is `store add`'s job)."""
    from dnnprof.cli.outputs import check_paths
    from dnnprof.cli.store import check_against_store
    from dnnprof.errors import InputError

    if args.update_baseline:
        raise InputError("--update-baseline rewrites a baseline file; with --baseline-store, "
                         "accept NEW by adding it: `dnnprof store add NEW --store PATH`")
    check_paths([args.new], files=[args.junit, args.markdown])
    report = check_against_store(args, _config(args))
    _emit(report, args)
    return report.exit_code


def _config(args: argparse.Namespace) -> CheckConfig:
    """The configuration file's settings, overridden by the flags given."""
    from dnnprof.check.config import load_config, with_overrides

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
    return with_overrides(config, **overrides)


def _emit(report: CheckReport, args: argparse.Namespace) -> None:
    """JUnit and markdown files as asked, then JSON or the tables on standard output."""
    if args.junit:
        from dnnprof.check.junit import write_junit

        write_junit(report, args.junit)
    if args.markdown:
        from dnnprof.check.markdown import markdown_summary

        text = markdown_summary(report)
        if args.markdown == "-":
            sys.stdout.write(text)
        else:
            from dnnprof.files import write_text_atomic

            write_text_atomic(args.markdown, text)
    if args.json:
        print(json_text(report.to_dict()))
    elif args.markdown != "-":
        from dnnprof.check.console import print_report
        from dnnprof.cli.console import Terminal

        print_report(report, Terminal(), max_rows=args.max_rows)

