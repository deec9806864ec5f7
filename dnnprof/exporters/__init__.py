"""Exporters: a Trace out to Jaeger (OTLP, or legacy Thrift), Jaeger JSON, Chrome trace-event
JSON, benchdnn cases or an events CSV.

One small interface (`base.Exporter`: a name, what it writes, `export(trace, destination,
options) -> ExportResult`), one module per format, and a registry from format name to
exporter. From Python:

    from dnnprof.exporters import export
    export(trace, "chrome_trace", "trace.json")
    export(trace, "otlp", "http://localhost:4317", span_iterations=5)

The registry names each exporter by module, and a module is imported only when its format
runs: importing this package loads neither pandas nor the OpenTelemetry SDK, so
`dnnprof --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from dnnprof.exporters.base import (
    Destination,
    Exporter,
    ExportError,
    ExportOptions,
    ExportResult,
)

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.exporters.benchdnn import write_benchdnn
    from dnnprof.exporters.chrome_trace import write_chrome_trace
    from dnnprof.exporters.events_csv import write_events_csv
    from dnnprof.exporters.jaeger_json import read_jaeger_json, write_jaeger_json
    from dnnprof.exporters.jaeger_legacy import export_jaeger_legacy
    from dnnprof.exporters.otlp import export_otlp
    from dnnprof.exporters.span_plan import build_span_tree
    from dnnprof.exporters.spans import Span, SpanTree
    from dnnprof.trace import Trace

# format name -> "module:class" of its exporter, file formats first
EXPORTERS: dict[str, str] = {
    "jaeger_json": "dnnprof.exporters.jaeger_json:JaegerJsonExporter",
    "chrome_trace": "dnnprof.exporters.chrome_trace:ChromeTraceExporter",
    "benchdnn": "dnnprof.exporters.benchdnn:BenchdnnExporter",
    "events_csv": "dnnprof.exporters.events_csv:EventsCsvExporter",
    "otlp": "dnnprof.exporters.otlp:OtlpExporter",
    "jaeger_legacy": "dnnprof.exporters.jaeger_legacy:JaegerLegacyExporter",
}
FORMATS = tuple(EXPORTERS)

# Functions and classes of the format modules, importable from the package as before; each
# module is loaded on first use (see `__getattr__`).
_LAZY = {
    "Span": "spans",
    "SpanTree": "spans",
    "build_span_tree": "span_plan",
    "write_jaeger_json": "jaeger_json",
    "read_jaeger_json": "jaeger_json",
    "write_chrome_trace": "chrome_trace",
    "write_benchdnn": "benchdnn",
    "write_events_csv": "events_csv",
    "export_otlp": "otlp",
    "export_jaeger_legacy": "jaeger_legacy",
}

__all__ = [
    "EXPORTERS",
    "FORMATS",
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "Exporter",
    "Span",
    "SpanTree",
    "build_span_tree",
    "export",
    "export_jaeger_legacy",
    "export_otlp",
    "get_exporter",
    "read_jaeger_json",
    "write_benchdnn",
    "write_chrome_trace",
    "write_events_csv",
    "write_jaeger_json",
]


def get_exporter(fmt: str) -> Exporter:
    """The exporter of a format name (one of FORMATS); imports its module now."""
    try:
        target = EXPORTERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    exporter_class = getattr(importlib.import_module(module_name), class_name)
    return exporter_class()


def export(
    trace: Trace,
    fmt: str,
    destination: Destination | None = None,
    options: ExportOptions | None = None,
    **fields: Any,
) -> ExportResult:
    """Export `trace` as format `fmt` to a file path or collector URL.

    `fields` are ExportOptions fields (service_name, span_iterations, iterations, protocol,
    timeout_s, retries, batch_size, headers), applied over `options` when both are given; a
    field given as None is left at its value (so unset command-line flags pass straight
    through). A network format takes None for its default endpoint. Raises ExportError
    (exit 3) when a collector cannot be reached or there is nothing to export, OutputError
    (exit 2) when a file cannot be written; the Trace itself is never modified.
    """
    chosen = options or ExportOptions()
    given = {name: value for name, value in fields.items() if value is not None}
    if given:
        chosen = dataclasses.replace(chosen, **given)
    return get_exporter(fmt).export(trace, destination, chosen)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dnnprof.exporters' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dnnprof.exporters.{module}"), name)
