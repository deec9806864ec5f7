"""`dnnprof models`: the model zoo, listed by the workload under an interpreter with torch."""

from __future__ import annotations

import argparse
import subprocess
import sys

from dnnprof.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `models`."""
    parser = options.add_command(subparsers, "models", run, "list the model zoo",
                                 error_prefix="dnnprof models")
    parser.add_argument("--python", help="interpreter with torch")


def run(args: argparse.Namespace) -> int:
    """List the zoo; the workload's own exit status (with an install hint when it failed)."""
    from dnnprof.profiler.runner import WORKLOAD, RunConfig, child_env, resolve_python

    python = resolve_python(RunConfig(python=args.python))
    listing = subprocess.run(
        [python, str(WORKLOAD), "--list-models"], env=child_env(RunConfig()), check=False
    )
    if listing.returncode != 0:
        print("dnnprof models: listing needs PyTorch: pip install 'dnnprof[torch]'",
              file=sys.stderr)
    return listing.returncode
