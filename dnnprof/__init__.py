"""dnnprof: where does a model's CPU time go inside oneDNN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.trace import Trace

__all__ = ["parse", "load", "__version__"]


def parse(source: Any, **kwargs: Any) -> Trace:
    """Parse a verbose log (path, .gz path, or iterable of lines) into a Trace."""
    # Imported lazily: the workload child imports dnnprof.profiler.* under interpreters
    # that may lack pandas (an MXNet virtualenv), so the package root must stay light.
    from dnnprof.parsers.stream import parse_to_trace

    return parse_to_trace(source, **kwargs)


def load(path: Any) -> Trace:
    """Load a stored trace (Parquet file or run folder)."""
    from dnnprof.trace import Trace

    return Trace.load(path)
