"""`dnnprof store add RUN... --store PATH`, `store ls`, `store compact`, and the store side
of `dnnprof check NEW --baseline-store PATH`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from dnnprof.cli import options
from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.check import CheckConfig, CheckReport


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `store` and its actions, `add` and `ls`."""
    actions = options.add_action_command(
        subparsers, "store", "a fleet's trace store: add runs, list them, compact (docs/store.md)",
        "A directory (or fsspec URL) of Hive-partitioned Parquet: one file per run, so that "
        "many CI jobs add runs at once without rewriting anything.")
    add = actions.add_parser(
        "add", help="add runs to a store (atomic; adding a run twice keeps one)",
        description="Add each run folder, stored trace or verbose log to the store. Commit, "
                    "branch and runner class default to the CI system's variables "
                    "(GITHUB_SHA, CI_COMMIT_SHA, ...; DNNPROF_RUNNER), then git.",
    )
    add.add_argument("inputs", nargs="+", metavar="RUN_OR_TRACE",
                     help="run folder, stored trace (.parquet) or verbose log")
    options.add_store(add)
    add.add_argument("--commit", metavar="SHA", help="commit measured (default: CI, git)")
    add.add_argument("--branch", metavar="B", help="branch (default: CI, git)")
    add.add_argument("--time", metavar="T",
                     help="when it ran: ISO 8601 or epoch seconds (default: the run's start)")
    options.add_runner(add, "runner class runs are compared within (default: $DNNPROF_RUNNER, "
                       "the CI runner's label, else the recorded CPU and threads)")
    options.add_model(add, "the model (default: the run's); also aligns a log to its layers")
    options.add_variant(add, "the variant (default: the run's)")
    add.add_argument("--run-id", metavar="ID",
                     help="the run's id (default: a digest of its events); one input only")
    add.add_argument("--no-events", action="store_true",
                     help="store runs and layers only (`check --baseline-store` needs events)")
    options.add_json(add, "print one JSON object per run")
    add.set_defaults(handler=run_add)
    ls = actions.add_parser("ls", help="list a store's models, variants and runner classes")
    options.add_store(ls)
    options.add_engine(ls)
    options.add_json(ls, "print JSON instead of a table")
    ls.set_defaults(handler=run_ls)
    compact = actions.add_parser(
        "compact", help="merge each partition's run files into one (faster reads)",
        description="Each day's runs of a model and variant become one part file per "
                    "table; readers see every run throughout, and adds may go on meanwhile. "
                    "Run it now and then (nightly) on a store that receives many runs.",
    )
    options.add_store(compact)
    compact.add_argument("--model", metavar="M", help="only this model's partitions")
    compact.set_defaults(handler=run_compact)


def run_add(args: argparse.Namespace) -> int:
    """Open each input as a trace and add it; one line (or JSON object) per run."""
    import dnnprof
    from dnnprof.errors import InputError
    from dnnprof.store import RunContext, Store

    if args.run_id and len(args.inputs) > 1:
        raise InputError("--run-id names one run: give one input with it")
    store = Store(args.store)
    context = RunContext.from_environment(args.commit, args.branch, args.runner, args.time)
    for path in args.inputs:
        trace = dnnprof.open(path, model=args.model, role="run")
        result = store.add(trace, context, model=args.model, variant=args.variant,
                           run_id=args.run_id, events=not args.no_events)
        if args.json:
            print(json.dumps({"input": path, **result.__dict__}))
        else:
            verb = "added" if result.added else "already in the store"
            print(f"{path}: {verb} as run {result.run_id} ({result.model}/{result.variant})")
    return ExitCode.OK


def run_compact(args: argparse.Namespace) -> int:
    """Compact, then one line per table: files before and after."""
    from dnnprof.store import Store, compact_store

    for done in compact_store(Store(args.store).files, args.model):
        print(f"{done.table}/: {done.files_before} files -> {done.files_after} "
              f"({done.runs} runs)")
    return ExitCode.OK


def run_ls(args: argparse.Namespace) -> int:
    """A table (or JSON) of the store's runs per model, variant and runner class."""
    from dnnprof.cli.console import Terminal
    from dnnprof.store import Store
    from dnnprof.store.console import print_runs

    store = Store(args.store)
    runs = store.runs_table(args.engine, args.spark_master)
    if args.json:
        runs = runs.assign(first_run=runs["first_run"].map(lambda t: t.isoformat()),
                           last_run=runs["last_run"].map(lambda t: t.isoformat()))
        print(json.dumps({"store": store.location, "runs": runs.to_dict("records")},
                         indent=2))
    else:
        print_runs(runs, store.location, Terminal())
    return ExitCode.OK


def add_check_flags(parser: argparse.ArgumentParser) -> None:
    """`check`'s flags for a baseline from a store (--baseline-store is in its group)."""
    parser.add_argument("--lookback", type=int, metavar="K",
                        help="with --baseline-store: how many earlier runs (default 10)")
    options.add_variant(parser, "with --baseline-store: NEW's variant (default: NEW's own)")
    options.add_runner(parser, "with --baseline-store: NEW's runner class (default as in "
                       "`store add`)")
    options.add_engine(parser)


def check_against_store(args: argparse.Namespace, config: CheckConfig) -> CheckReport:
    """`check NEW --baseline-store PATH`: timing against the last K comparable runs pooled,
    structure (and iterations run) against the latest of them."""
    from dataclasses import replace

    from dnnprof.check import check_traces, load_input
    from dnnprof.errors import InputError
    from dnnprof.store import RunContext, baseline_runs, runner_class
    from dnnprof.store.rows import run_identity

    new = load_input(args.new, "new", args.model)
    model = args.model or new.metadata.model
    variant = args.variant or new.metadata.variant
    if not model or not variant:
        raise InputError(f"new {args.new}: the trace does not say which model and variant it "
                         "ran; pass --model and --variant to find its runs in the store")
    runner = RunContext.from_environment(runner=args.runner).runner or runner_class(new)
    found = baseline_runs(args.baseline_store, model, variant, runner, args.lookback,
                          exclude=run_identity(new), engine=args.engine,
                          spark_master=args.spark_master)
    latest = found.runs.iloc[0]
    timing = check_traces(found.pooled, new, config, f"{args.baseline_store}: "
                          f"{found.describe()}", str(args.new))
    structure = check_traces(found.latest, new, config, f"{args.baseline_store}: run "
                             f"{latest['run_id']}", str(args.new))
    findings = ([f for f in timing.findings if f.check == "timing"]
                + [f for f in structure.findings if f.check != "timing"])
    notes = [*timing.notes, f"timing: against {found.describe()}, pooled; structure: "
             f"against the latest of them, run {latest['run_id']}"]
    return replace(timing, findings=findings, notes=notes,
                   compared_layers=structure.compared_layers)
