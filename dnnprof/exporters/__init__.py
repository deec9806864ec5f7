"""Exporters: the Trace's span tree (run -> iteration -> layer -> primitive) as OTLP spans,
Jaeger JSON, Chrome trace-event JSON, and benchdnn reproducer cases.

Each format is one module over the shared tree in `spans.py`; the OpenTelemetry packages are
imported only by the function that sends spans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dnnprof.exporters.spans import ExportError, Span, SpanTree, build_span_tree

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.exporters.otlp import ExportResult

__all__ = [
    "ExportError",
    "ExportResult",
    "Span",
    "SpanTree",
    "build_span_tree",
    "export_jaeger_legacy",
    "export_otlp",
    "read_jaeger_json",
    "write_benchdnn",
    "write_chrome_trace",
    "write_jaeger_json",
]


def export_otlp(trace: Any, endpoint: str | None = None, **kwargs: Any) -> ExportResult:
    """See dnnprof.exporters.otlp.export_otlp."""
    from dnnprof.exporters.otlp import export_otlp as run

    return run(trace, endpoint, **kwargs)


def export_jaeger_legacy(trace: Any, endpoint: str | None = None, **kwargs: Any) -> ExportResult:
    """See dnnprof.exporters.jaeger_legacy.export_jaeger_legacy."""
    from dnnprof.exporters.jaeger_legacy import export_jaeger_legacy as run

    return run(trace, endpoint, **kwargs)


def write_jaeger_json(trace: Any, path: Any, **kwargs: Any) -> Any:
    """See dnnprof.exporters.jaeger_json.write_jaeger_json."""
    from dnnprof.exporters.jaeger_json import write_jaeger_json as run

    return run(trace, path, **kwargs)


def read_jaeger_json(path: Any) -> Any:
    """See dnnprof.exporters.jaeger_json.read_jaeger_json."""
    from dnnprof.exporters.jaeger_json import read_jaeger_json as run

    return run(path)


def write_chrome_trace(trace: Any, path: Any, **kwargs: Any) -> Any:
    """See dnnprof.exporters.chrome_trace.write_chrome_trace."""
    from dnnprof.exporters.chrome_trace import write_chrome_trace as run

    return run(trace, path, **kwargs)


def write_benchdnn(trace: Any, path: Any, **kwargs: Any) -> Any:
    """See dnnprof.exporters.benchdnn.write_benchdnn."""
    from dnnprof.exporters.benchdnn import write_benchdnn as run

    return run(trace, path, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "ExportResult":
        from dnnprof.exporters.otlp import ExportResult

        return ExportResult
    raise AttributeError(f"module 'dnnprof.exporters' has no attribute {name!r}")
