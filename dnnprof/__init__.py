"""dnnprof: where does a model's CPU time go inside oneDNN.

The public API, one function per step: `parse` a verbose log, `load` a stored trace or
`open` whatever the user points at; `dnnprof.reconstruct.reconstruct` its layers;
`compare` variants; `dnnprof.check.check` a new run against a baseline; `export` a trace
to another format. The `dnnprof` command (dnnprof.cli) is a thin shell over these.

Reconstruct and check are called through their packages: a function bound to a package's
own name (`dnnprof.check`) would be replaced by the package at its first import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.reports.compare import Comparison
    from dnnprof.trace import Trace

__all__ = ["__version__", "compare", "export", "load", "open", "parse"]

# Every function imports lazily: the workload children import dnnprof.profiler.* under
# interpreters that may lack pandas (an MXNet virtualenv), and `dnnprof --help` must start
# without loading the analyzer.


def parse(source: Any, **kwargs: Any) -> Trace:
    """Parse a verbose log (path, .gz path, or iterable of lines) into a Trace."""
    from dnnprof.parsers.stream import parse_to_trace

    return parse_to_trace(source, **kwargs)


def load(path: str | os.PathLike[str]) -> Trace:
    """Load a stored trace (Parquet file or run folder)."""
    from dnnprof.trace import Trace

    return Trace.load(path)


def open(path: str | os.PathLike[str], **kwargs: Any) -> Trace:  # noqa: A001 - the API name
    """A Trace from a log, a stored trace or a run folder (see dnnprof.loader.open_trace)."""
    from dnnprof.loader import open_trace

    return open_trace(path, **kwargs)


def compare(inputs: Sequence[str | os.PathLike[str]], baseline: str | None = None,
            layers: bool = True) -> Comparison:
    """Several runs (paths) side by side against a baseline variant (default: the first)."""
    from dnnprof.reports.compare import Comparison

    return Comparison.from_paths(inputs, baseline=baseline, layers=layers)


def export(trace: Trace, fmt: str, destination: Any = None, **options: Any) -> Any:
    """Write or send a trace in one format (see dnnprof.exporters.export)."""
    from dnnprof.exporters import export as write

    return write(trace, fmt, destination, **options)
