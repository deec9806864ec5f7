"""dnnprof's own exceptions, each carrying the exit status a command ends with.

Standard library only. A command catches `DnnprofError`, prints its message and exits with
its `exit_code`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dnnprof.vocabulary import ExitCode


class DnnprofError(Exception):
    """An error dnnprof explains to the user; the message says what to do next."""

    exit_code: int = ExitCode.USAGE


class InputError(DnnprofError):
    """A log, trace or run folder that cannot be read or used (exit 2)."""


class TraceFileError(InputError):
    """A stored trace that cannot be read; the message says why and what to do."""


class LogReadError(InputError, OSError):
    """A verbose log that cannot be read (missing, unreadable, broken compression)."""


class OutputError(DnnprofError):
    """An output that cannot be written (exit 2, never 1: 1 means "regression")."""
