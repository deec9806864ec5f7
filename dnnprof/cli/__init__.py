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
                      cannot be written or that would overwrite an input, a collector
                      URL that is not one, a workload that refused to run, or a bug in
                      dnnprof itself (printed with its traceback; never 1)
    3    UNREACHABLE  an export to a collector failed (unreachable, or it refused the
                      spans; the trace and any file written are kept), or the workload
                      failed
    130  INTERRUPTED  Ctrl-C (what was captured so far is kept)

A dnnprof error (dnnprof.errors.DnnprofError) is printed as one line on stderr and ends
the command with its exit status; anything else is a bug: its traceback is printed and the
status is 2, so that a crash never reads as `check`'s "regression".

This docstring is the one list of exit statuses; docs (docs/reliability.md, docs/check.md)
link here rather than copy it. What dnnprof promises about its inputs and outputs, and
the tests that hold each promise: docs/reliability.md.
"""

from __future__ import annotations

from dnnprof.cli.app import build_parser, console_main, main

__all__ = ["build_parser", "console_main", "main"]
