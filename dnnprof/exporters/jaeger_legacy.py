"""The legacy Jaeger exporter (Thrift), for Jaeger deployments that predate OTLP ingestion.

OTLP is the default and the recommended path: Jaeger ingests OTLP natively since v1.35,
and the OpenTelemetry project removed `opentelemetry-exporter-jaeger` after 1.21.0. This
module needs the optional extra `opentelemetry-exporter-jaeger-thrift==1.21.0` and sends
the same span tree to either

* a Jaeger collector's Thrift HTTP endpoint, `http://HOST:14268/api/traces` (the default:
  delivery is confirmed, so a down collector is an ExportError), or
* a Jaeger agent's compact-Thrift UDP port, `udp://HOST:6831`. UDP gives no answer, so a
  missing agent cannot be detected: the spans are simply lost.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource

from dnnprof.exporters.base import (
    ExportError,
    ExportOptions,
    ExportResult,
    NetworkExporter,
    parse_endpoint,
)
from dnnprof.exporters.otlp import (
    send_batches,
    sending_options,
    sent_result,
    wait_reachable,
)
from dnnprof.exporters.sdk_spans import sdk_span_chunks
from dnnprof.exporters.span_plan import plan_span_tree
from dnnprof.trace import Trace

DEFAULT_ENDPOINT = "http://localhost:14268/api/traces"
EXTRA = "opentelemetry-exporter-jaeger-thrift==1.21.0 Deprecated"
# Environment-variable names the 1.21.0 exporter imports from the SDK; SDK releases after
# its removal dropped them. They are plain strings, restored here so the frozen exporter
# still imports against a current SDK.
LEGACY_SDK_NAMES = (
    "OTEL_EXPORTER_JAEGER_AGENT_HOST",
    "OTEL_EXPORTER_JAEGER_AGENT_PORT",
    "OTEL_EXPORTER_JAEGER_AGENT_SPLIT_OVERSIZED_BATCHES",
    "OTEL_EXPORTER_JAEGER_ENDPOINT",
    "OTEL_EXPORTER_JAEGER_PASSWORD",
    "OTEL_EXPORTER_JAEGER_TIMEOUT",
    "OTEL_EXPORTER_JAEGER_USER",
)
# Spans per call: each UDP datagram holds at most 65000 bytes, and the exporter splits a
# larger batch into datagrams itself; a collector takes a few MB per request.
BATCH_SIZE = {"udp": 100, "http": 512}


def _exporter_class() -> Any:
    """The 1.21.0 JaegerExporter class, or ExportError saying how to install it."""
    from opentelemetry.sdk import environment_variables

    for name in LEGACY_SDK_NAMES:
        if not hasattr(environment_variables, name):
            setattr(environment_variables, name, name)
    try:
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter
    except ImportError as error:
        raise ExportError(
            f"the legacy Jaeger exporter is not available ({error}). Install it with "
            f"`pip install {EXTRA}`, or use the default OTLP export "
            "(`--otlp http://HOST:4317`), which Jaeger v1.35 and later accept natively."
        ) from None
    return JaegerExporter


def _make(exporter_class: Any, **kwargs: Any) -> Any:
    # Its constructor warns that it is deprecated in favour of OTLP, which the user chose not
    # to use (and which this module's docstring and docs/exporters.md explain).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return exporter_class(**kwargs)


def export_jaeger_legacy(
    trace: Trace,
    endpoint: str | None = None,
    service_name: str = "dnnprof",
    span_iterations: int | None = 3,
    iterations: str | Sequence[int] = "steady",
    timeout_s: float = 10.0,
    retries: int = 3,
    query_url: str | None = None,
) -> ExportResult:
    """Send the span tree with the Thrift Jaeger exporter (collector HTTP or agent UDP);
    `query_url` is Jaeger's UI, for the link to the trace (see `otlp.ui_link`)."""
    parsed = parse_endpoint(
        endpoint or DEFAULT_ENDPOINT, expected="http://HOST:14268/api/traces or udp://HOST:6831"
    )
    exporter_class = _exporter_class()
    started = time.perf_counter()
    plan = plan_span_tree(trace, span_iterations, iterations, service_name)
    if parsed.scheme == "udp":
        transport = "udp"
        port = parsed.port or 6831
        exporter = _make(
            exporter_class,
            agent_host_name=parsed.host,
            agent_port=port,
            udp_split_oversized_batches=True,
        )
        url = parsed.url(port, "")
    else:  # http or https: parse_endpoint allows nothing else
        transport = "http"
        port = parsed.port or 14268
        url = parsed.url(port, parsed.path if parsed.path not in ("", "/") else "/api/traces")
        wait_reachable(
            parsed.host,
            port,
            retries + 1,
            timeout_s,
            what="the Jaeger collector",
            hint="Is a Jaeger collector running there (Thrift over HTTP, port 14268 by default)?",
        )
        exporter = _make(exporter_class, collector_endpoint=url, timeout=max(1, round(timeout_s)))
    # The Thrift translator copies every resource attribute into every span's tags, so the
    # resource carries the service name only.
    tree = plan.tree
    # Thrift keeps microseconds, rounding a span's start and its duration each on its own:
    # times on whole microseconds keep every child inside its parent
    spans = sdk_span_chunks(tree, plan.chunks(), Resource({"service.name": service_name}),
                            quantum_ns=1_000)
    loggers = ("opentelemetry.exporter.jaeger", "opentelemetry.sdk")
    describe = f"legacy Jaeger export to {url}"
    batches = send_batches(exporter, spans, len(tree), BATCH_SIZE[transport], retries, describe,
                           loggers)
    return sent_result(JaegerLegacyExporter.name, tree, url, f"jaeger-thrift-{transport}",
                       len(tree), batches, started, query_url)


class JaegerLegacyExporter(NetworkExporter):
    """Thrift spans to a Jaeger older than v1.35 (the optional `jaeger` extra)."""

    name = "jaeger_legacy"
    writes = "Thrift spans to a Jaeger collector (HTTP :14268) or agent (UDP :6831), pre-OTLP"

    def send(self, trace: Trace, endpoint: str | None, options: ExportOptions) -> ExportResult:
        """Send the last 3 steady iterations (by default) to the collector or agent."""
        return export_jaeger_legacy(trace, endpoint, **sending_options(options))
