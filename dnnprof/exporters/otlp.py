"""OTLP export (gRPC 4317 / HTTP 4318) of a Trace's span tree, e.g. into Jaeger.

Spans are made with the OpenTelemetry SDK, with the start and end times of the tree (not the
time of the export), and handed to the OTLP exporter in batches by dnnprof itself rather
than through a BatchSpanProcessor: that way a failed batch is retried a bounded number of
times and then reported as an ExportError, instead of being logged and dropped in a
background thread.

The OpenTelemetry SDK is imported here and nowhere else (and by jaeger_legacy, which builds
on this module); the registry imports this module only when an OTLP export runs.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExportResult

from dnnprof.exporters.base import (
    ExportError,
    ExportOptions,
    ExportResult,
    NetworkExporter,
    parse_endpoint,
)
from dnnprof.exporters.sdk_spans import resource_for, sdk_span_chunks
from dnnprof.exporters.selection import jaeger_ui_note
from dnnprof.exporters.span_plan import plan_span_tree
from dnnprof.exporters.spans import SpanTree
from dnnprof.trace import Trace

DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http": "http://localhost:4318"}
DEFAULT_PORTS = {"grpc": 4317, "http": 4318}
HTTP_TRACES_PATH = "/v1/traces"
BATCH_SIZE = 512  # spans per request: well under the collectors' 4 MiB message limit
OTLP_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk")  # their errors, captured


# ------------------------------------------------------------------ transport --


def normalize_endpoint(endpoint: str | None, protocol: str) -> tuple[str, str, int]:
    """(URL to give the exporter, host, port) for an endpoint such as `localhost:4317`,
    `http://jaeger:4317` or `http://jaeger:4318` (HTTP gets `/v1/traces` appended).
    A URL that cannot be used is an EndpointError (exit 2)."""
    if protocol not in DEFAULT_ENDPOINTS:
        raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
    parsed = parse_endpoint(endpoint or DEFAULT_ENDPOINTS[protocol], ("http", "https"))
    port = parsed.port or DEFAULT_PORTS[protocol]
    path = ""
    if protocol == "http":
        path = parsed.path.rstrip("/")
        if not path.endswith(HTTP_TRACES_PATH):
            path += HTTP_TRACES_PATH
    return parsed.url(port, path), parsed.host, port


OTLP_HINT = (
    "Is Jaeger (or another OTLP collector) running and listening there? "
    "Jaeger takes OTLP on 4317 (gRPC) and 4318 (HTTP) when COLLECTOR_OTLP_ENABLED=true."
)


def wait_reachable(
    host: str,
    port: int,
    attempts: int,
    timeout_s: float,
    what: str = "the OTLP collector",
    hint: str = OTLP_HINT,
) -> None:
    """Connect to the collector's port, retrying with backoff; ExportError if it never answers.

    A down collector is the common failure, and the SDK exporters retry it silently for their
    whole timeout; checking the port first turns that into a quick, clear error.
    """
    delay = 0.25
    last: OSError | None = None
    for attempt in range(attempts):
        try:
            with socket.create_connection((host, port), timeout=min(timeout_s, 5.0)):
                return
        except OSError as error:
            last = error
        if attempt + 1 < attempts:
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
    reason = getattr(last, "strerror", None) or str(last)
    raise ExportError(
        f"cannot reach {what} at {host}:{port} ({reason}; {attempts} attempts). {hint} "
        "The trace itself is unchanged; re-run the export once the collector is up."
    )


def make_exporter(protocol: str, url: str, timeout_s: float, headers: dict[str, str] | None) -> Any:
    """The SDK's OTLP span exporter for this protocol (only that protocol's stack is loaded)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=url, insecure=url.startswith("http://"), timeout=timeout_s, headers=headers
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPExporter,
    )

    return HTTPExporter(endpoint=url, timeout=timeout_s, headers=headers)


class _KeepMessages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a record that cannot be formatted still means "it failed"
            self.messages.append(str(record.msg))
        if record.levelno >= logging.ERROR:
            self.errors += 1

    def clear(self) -> None:
        self.messages.clear()
        self.errors = 0


@contextmanager
def captured_exporter_logs(names: Sequence[str]) -> Iterator[_KeepMessages]:
    """Collect the exporter's own warnings (they carry the server's error) instead of letting
    them print tracebacks; the caller turns them into one ExportError."""
    handler = _KeepMessages()
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
        if lg.level == logging.NOTSET or lg.level > logging.WARNING:
            lg.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        for lg, (propagate, level) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.propagate = propagate
            lg.setLevel(level)


def send_batches(
    exporter: Any,
    chunks: Iterable[list[Any]],
    total: int,
    batch_size: int,
    retries: int,
    describe: str,
    logger_names: Sequence[str],
) -> int:
    """Export `total` spans, coming a chunk at a time, in batches of `batch_size`, each retried
    up to `retries` times; returns the batch count. The exporter is shut down afterwards,
    whether or not everything was sent."""
    count = max(1, -(-total // batch_size))
    sent = number = 0
    pending: list[Any] = []
    try:
        with captured_exporter_logs(logger_names) as logs:
            for chunk in chain(chunks, [None]):  # None: the end, send what is left
                pending.extend(chunk or [])
                while len(pending) >= batch_size or (chunk is None and (pending or not number)):
                    batch, pending = pending[:batch_size], pending[batch_size:]
                    number += 1
                    failure = _send_batch(exporter, batch, retries, logs)
                    if failure is not None:
                        raise ExportError(
                            f"{describe}: batch {number} of {count} failed after "
                            f"{retries + 1} attempts ({sent} of {total} spans were sent): "
                            f"{failure}. The trace itself is unchanged; check the collector and "
                            "re-run the export."
                        )
                    sent += len(batch)
    finally:
        exporter.shutdown()
    return number


def _send_batch(exporter: Any, batch: list[Any], retries: int, logs: _KeepMessages) -> str | None:
    """Send one batch, retrying with a growing delay: None once sent, else the last error."""
    delay = 0.5
    for attempt in range(retries + 1):
        logs.clear()
        try:
            result = exporter.export(batch)
        except Exception as error:  # transport errors some exporters raise instead
            logs.messages.append(f"{type(error).__name__}: {error}")
            result = SpanExportResult.FAILURE
        # The legacy Jaeger exporter reports SUCCESS even when the collector answered
        # with an HTTP error; it only logs it.
        if result == SpanExportResult.SUCCESS and not logs.errors:
            return None
        if attempt < retries:
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    return logs.messages[-1] if logs.messages else "the exporter reported FAILURE"


def export_otlp(
    trace: Trace,
    endpoint: str | None = None,
    protocol: str = "grpc",
    service_name: str = "dnnprof",
    span_iterations: int | None = 3,
    iterations: str | Sequence[int] = "steady",
    timeout_s: float = 10.0,
    retries: int = 3,
    batch_size: int = BATCH_SIZE,
    headers: dict[str, str] | None = None,
    query_url: str | None = None,
) -> ExportResult:
    """Send the Trace's spans (run -> iteration -> layer -> primitive) to an OTLP collector.

    `protocol` is "grpc" (default endpoint http://localhost:4317) or "http"
    (http://localhost:4318, `/v1/traces` appended). By default only steady-state iterations
    are sent, the last `span_iterations` of them (None: all), so that a trace stays within
    what the Jaeger UI shows comfortably. `timeout_s` bounds each request, `retries` the
    extra attempts per batch (and for the first connection). Raises ExportError with the
    reason when the collector is unreachable or refuses the data. The message and the
    result's `link` give the trace's page in the Jaeger UI (see `ui_link`).
    """
    started = time.perf_counter()
    url, host, port = normalize_endpoint(endpoint, protocol)
    plan = plan_span_tree(trace, span_iterations, iterations, service_name)
    wait_reachable(host, port, retries + 1, timeout_s)
    tree = plan.tree
    spans = sdk_span_chunks(tree, plan.chunks(), resource_for(tree))
    exporter = make_exporter(protocol, url, timeout_s, headers)
    describe = f"OTLP/{protocol} export to {url}"
    batches = send_batches(exporter, spans, len(tree), batch_size, retries, describe,
                           OTLP_LOGGERS)
    return sent_result(OtlpExporter.name, tree, url, protocol, len(tree), batches, started,
                       query_url)


QUERY_PORT = 16686  # Jaeger's query service: its UI and its API
# What a Jaeger deployment listens on: OTLP gRPC and HTTP, Thrift over HTTP and over UDP.
# A collector on one of these is taken for Jaeger itself, with its query service beside it.
JAEGER_PORTS = frozenset({4317, 4318, 14268, 6831})


def ui_link(trace_id: str, query_url: str | None, collector_url: str) -> str:
    """The trace's page in the Jaeger UI: `<query_url>/trace/<id>`; without a query URL,
    port 16686 of the collector's host when the collector listens on one of Jaeger's own
    ports; '' when there is no telling where the UI is."""
    if query_url:
        base = query_url if "://" in query_url else "http://" + query_url
    else:
        parts = urlsplit(collector_url)
        if parts.port not in JAEGER_PORTS or not parts.hostname:
            return ""
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        scheme = "https" if parts.scheme == "https" else "http"
        base = f"{scheme}://{host}:{QUERY_PORT}"
    return f"{base.rstrip('/')}/trace/{trace_id}"


def sent_result(
    fmt: str, tree: SpanTree, url: str, protocol: str, spans: int, batches: int,
    started: float, query_url: str | None,
) -> ExportResult:  # fmt: skip
    """What a network export sent; its message is one line for the user: how many spans of
    each level went where, the trace id, and the trace's page in the Jaeger UI when known;
    a second line warns past what Jaeger's UI shows comfortably."""
    link = ui_link(tree.trace_id, query_url, url)
    counts = tree.counts()
    message = (
        f"spans sent to {url} ({protocol}): {spans} spans ({counts['iteration']} iterations, "
        f"{counts['layer']} layers, {counts['primitive']} primitives) in "
        f"{time.perf_counter() - started:.2f}s; service {tree.service_name}, "
        f"trace id {tree.trace_id}" + (f"; open {link}" if link else "")
    )
    note = jaeger_ui_note(spans)
    message += f"\n  {note}" if note else ""
    return ExportResult.of_tree(
        fmt, url, tree, started, message,
        protocol=protocol, spans=spans, batches=batches, link=link,
    )  # fmt: skip


class OtlpExporter(NetworkExporter):
    """OTLP spans (gRPC or HTTP) to a collector such as Jaeger."""

    name = "otlp"
    writes = "OTLP spans to a collector such as Jaeger (gRPC :4317 or HTTP :4318)"

    def send(self, trace: Trace, endpoint: str | None, options: ExportOptions) -> ExportResult:
        """Send the last 3 steady iterations (by default) to the collector at `endpoint`."""
        return export_otlp(
            trace,
            endpoint,
            protocol=options.protocol,
            batch_size=options.batch_size or BATCH_SIZE,
            headers=options.headers,
            **sending_options(options),
        )


def sending_options(options: ExportOptions) -> dict[str, Any]:
    """The arguments every network export takes, from `options`: the service, the last 3
    steady iterations by default, the timeout, the retries and Jaeger's UI."""
    return {
        "service_name": options.service_name,
        "span_iterations": options.limit(3),
        "iterations": options.selection("steady"),
        "timeout_s": options.timeout_s,
        "retries": options.retries,
        "query_url": options.query_url,
    }
