"""A Trace's span tree as OpenTelemetry SDK spans, for the OTLP and legacy Jaeger senders.

The spans carry the tree's own start and end times (not the time of the export) and are
ended and handed over a chunk of iterations at a time, so that a long trace never holds
more than one chunk of SDK spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from dnnprof import __version__
from dnnprof.exporters.spans import Span, SpanTree, nearest_multiple, walk_chunk


class _Collect(SpanProcessor):
    """A span processor that keeps ended spans in a list (for explicit, synchronous export)."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def on_end(self, span: Any) -> None:
        self.spans.append(span)


def resource_for(tree: SpanTree, extra: dict[str, Any] | None = None) -> Resource:
    """The OTLP resource: the service, and the run's identity (model, variant, framework,
    oneDNN build, timeline ...), which Jaeger shows as the process and searches by."""
    attributes: dict[str, Any] = {
        "service.name": tree.service_name,
        "service.version": __version__,
        "dnnprof.timeline": tree.timeline,
    }
    attributes.update(tree.resource)
    attributes.update(extra or {})
    return Resource.create(attributes)


def sdk_span_chunks(tree: SpanTree, chunks: Iterable[list[Span]], resource: Resource,
                    quantum_ns: int = 1) -> Iterator[list[Any]]:
    """The tree as OpenTelemetry SDK ReadableSpans (one trace, parents linked), ended and
    handed over a chunk of iteration spans at a time (`SpanPlan.chunks`), the run span last;
    sets `tree.trace_id` to the SDK's id.

    `quantum_ns`: starts and ends rounded to the nearest multiple of it (`nearest_multiple`),
    for a receiver that keeps coarser times (Thrift: microseconds)."""
    provider = TracerProvider(
        resource=resource,
        sampler=ALWAYS_ON,
        span_limits=SpanLimits(max_span_attributes=512, max_attributes=512),
    )
    collect = _Collect()
    provider.add_span_processor(collect)
    tracer = provider.get_tracer("dnnprof.exporters", __version__)

    def start(span: Span, context: Context) -> Any:
        return tracer.start_span(span.name, context=context, kind=trace_api.SpanKind.INTERNAL,
                                 attributes=span.attributes,
                                 start_time=nearest_multiple(span.start_ns, quantum_ns))

    def end_of(span: Span) -> int:
        return nearest_multiple(span.end_ns, quantum_ns)

    # An empty Context for the root, so an application's current span is never the parent.
    root = start(tree.root, Context())
    tree.trace_id = format(root.get_span_context().trace_id, "032x")
    for chunk in chunks:
        live = {id(tree.root): root}
        order = []
        for span, parent, _ in walk_chunk(tree.root, chunk):
            live[id(span)] = start(span, trace_api.set_span_in_context(live[id(parent)]))
            order.append((live[id(span)], end_of(span)))
        for sdk_span, end_ns in reversed(order):  # children end before their parents
            sdk_span.end(end_time=end_ns)
        yield collect.spans
        collect.spans = []
    root.end(end_time=end_of(tree.root))
    yield collect.spans


def sdk_spans(tree: SpanTree, resource: Resource) -> list[Any]:
    """A whole tree as OpenTelemetry SDK ReadableSpans (see `sdk_span_chunks`)."""
    return [s for chunk in sdk_span_chunks(tree, [tree.root.children], resource) for s in chunk]
