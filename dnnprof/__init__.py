"""dnnprof: where does a model's CPU time go inside oneDNN."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.trace import Trace

__all__ = ["__version__", "load", "open", "parse"]

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
