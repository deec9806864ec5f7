"""The `dnnprof` command: one thin module per command over the public Python API.

Each command module (parse, trace, models, study, export, report, compare, check,
baseline) adds its flags and runs by calling dnnprof.parse/open/reconstruct/compare/
check/export; no analysis lives here. Building the argument parser imports none of the
analyzer (pandas, pyarrow, plotly, lark, numpy, OpenTelemetry, torch), so
`dnnprof --help` starts at once; each command imports what it needs when it runs.

Exit status, the same for every command (dnnprof.vocabulary.ExitCode):

    0    OK           done; `check`: no regression
    1    REGRESSION   `check`: a significant slowdown or a structural change;
                      `trace`: the log does not show the variant that was asked for
    2    USAGE        bad arguments, an unreadable or unusable input, an output that
                      cannot be written, a workload that refused to run
    3    UNREACHABLE  an export failed (collector unreachable, export file not written),
                      or the workload failed
    130  INTERRUPTED  Ctrl-C (what was captured so far is kept)

A dnnprof error (dnnprof.errors.DnnprofError) is printed as one line on stderr and ends
the command with its exit status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dnnprof.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
