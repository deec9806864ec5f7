"""`dnnprof study ARGS`: the thesis' chapter-4 experiments, run by `studies.thesis2020.main`.

The study lives outside the library (studies/ in the dnnprof checkout, not installed with
the package), so its arguments are its own: everything after `study` is handed to it, and
`dnnprof study --help` prints the study's help.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from dnnprof.errors import InputError

STUDY = "studies.thesis2020"
CHECKOUT = Path(__file__).resolve().parents[2]  # the folder holding dnnprof/ and studies/


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `study`, which passes all its arguments on to the study."""
    parser = subparsers.add_parser(
        "study",
        help="run the thesis' chapter-4 experiments here and write findings.md + report.html "
        "(`dnnprof study --help` for its options)",
        # no option of its own, not even -h: every argument, dashed or not, is the study's
        add_help=False, prefix_chars="\0",
    )
    parser.add_argument("study_args", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=run, error_prefix="dnnprof study")


def run(args: argparse.Namespace) -> int:
    """The study's own `main(argv)`, under the name `dnnprof study`."""
    if importlib.util.find_spec("studies") is None:
        if not (CHECKOUT / "studies" / STUDY.split(".")[1]).is_dir():
            raise InputError(
                "the study is not installed with the package: run `dnnprof study` from a "
                "dnnprof checkout (pip install -e .), where studies/ sits beside dnnprof/"
            )
        sys.path.insert(0, str(CHECKOUT))  # the console script does not start in the checkout
    study = importlib.import_module(STUDY)
    return study.main(args.study_args, prog="dnnprof study")
