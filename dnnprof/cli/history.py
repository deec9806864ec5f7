"""`dnnprof history --store PATH --model M`: per-run times and change points from a store.

Per (variant, runner class): the steady median of every run, for the whole model and per
layer; the runs where timing stepped (a rank test over the run series; unreliable runs
left out) and every run whose structure changed (fusion, reorders, data types,
implementation/ISA).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dnnprof.cli import options
from dnnprof.vocabulary import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `history` and its flags."""
    parser = options.add_command(
        subparsers, "history", run,
        "a model's runs in a store: times per run, timing steps, structural changes",
        __doc__, error_prefix="dnnprof history")
    options.add_store(parser)
    parser.add_argument("--model", required=True, metavar="M", help="the model")
    parser.add_argument("--variant", metavar="V", help="only this variant")
    parser.add_argument("--layer", metavar="L", help="only this layer (and the whole model)")
    parser.add_argument("--runner", metavar="R", help="only this runner class")
    parser.add_argument("--min-change", metavar="FRACTION", type=options.fraction("--min-change"),
                        help="smallest step that counts, e.g. 5%% (the default)")
    parser.add_argument("--last", type=int, default=10, metavar="N",
                        help="runs listed at the terminal per series (default 10)")
    options.add_json(parser, "print the history as JSON")
    parser.add_argument("-o", "--output", type=Path, metavar="PAGE",
                        help="write an HTML page with the series and change points")
    options.add_engine(parser)


def run(args: argparse.Namespace) -> int:
    """Tables (or JSON) at the terminal, and the page when asked."""
    from dnnprof.store import Settings, model_history

    settings = Settings() if args.min_change is None else Settings(min_shift=args.min_change)
    found = model_history(args.store, args.model, variant=args.variant, layer=args.layer,
                    runner=args.runner, engine=args.engine, spark_master=args.spark_master,
                    settings=settings)
    if args.output:
        from dnnprof.store.page import write_history_page

        page = write_history_page(found, args.output)
        print(f"history page: {page}", file=sys.stderr)
    if args.json:
        print(json.dumps(found.to_dict(), indent=2, default=str))
    else:
        from dnnprof.cli.console import Terminal
        from dnnprof.store.console import print_history

        print_history(found, Terminal(), last=args.last)
    return ExitCode.OK
