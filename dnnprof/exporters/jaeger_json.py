"""Jaeger JSON: the shape of Jaeger's query API (`GET /api/traces/{id}`), which the Jaeger UI
also opens from a file ("Upload JSON"). The reader takes the same shape, whether written by
dnnprof or fetched from a Jaeger server, and gives back the span tree.

    {"data": [{"traceID": "...", "spans": [{"traceID", "spanID", "operationName",
      "references": [{"refType": "CHILD_OF", "traceID", "spanID"}], "startTime": <epoch us>,
      "duration": <us>, "tags": [{"key", "type", "value"}], "logs": [], "processID": "p1",
      "warnings": null, "flags": 1}], "processes": {"p1": {"serviceName", "tags"}},
      "warnings": null}], "total": 0, "limit": 0, "offset": 0, "errors": null}

Times are whole microseconds, as in Jaeger's own model; start and duration are truncated
from the tree's nanoseconds the way Jaeger truncates the times of OTLP spans, so a file and
the same trace sent over OTLP show the same numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dnnprof import __version__
from dnnprof.exporters.attributes import AttributeValue
from dnnprof.exporters.base import (
    STREAMED,
    ExportOptions,
    FileExporter,
    Written,
    write_json_streamed,
)
from dnnprof.exporters.selection import JAEGER_UI_SPANS, jaeger_ui_note
from dnnprof.exporters.span_plan import SpanPlan, plan_span_tree
from dnnprof.exporters.spans import Span, SpanTree, numbered, span_id
from dnnprof.trace import Trace

INGESTION_TAGS = (
    "otel.library.name",
    "otel.library.version",
    "otel.scope.name",
    "otel.scope.version",
    "span.kind",
    "internal.span.format",
    "service.name",  # the legacy Thrift exporter copies resource attributes into every span
)
TAG_TYPES = {bool: "bool", int: "int64", float: "float64", str: "string"}


def _tag(key: str, value: AttributeValue) -> dict[str, Any]:
    return {"key": key, "type": TAG_TYPES.get(type(value), "string"), "value": value}


def _tags(attributes: dict[str, AttributeValue]) -> list[dict[str, Any]]:
    types = TAG_TYPES
    return [
        {"key": k, "type": types.get(type(v), "string"), "value": v} for k, v in attributes.items()
    ]


def jaeger_spans(trace_id: str, spans: Iterable[tuple[Span, int | None, int]]
                 ) -> Iterator[dict[str, Any]]:
    """The query API's span objects, made one at a time from `spans.numbered` (span, parent
    index, index): ids come from the trace id and the pre-order index."""
    for span, parent, index in spans:
        references = []
        if parent is not None:
            references.append(
                {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span_id(trace_id, parent)}
            )
        yield {
            "traceID": trace_id,
            "spanID": span_id(trace_id, index),
            "operationName": span.name,
            "references": references,
            "startTime": span.start_ns // 1000,
            "duration": span.duration_ns // 1000,
            "tags": _tags(span.attributes),
            "logs": [],
            "processID": "p1",
            "warnings": None,
            "flags": 1,
        }


def tree_to_jaeger(tree: SpanTree, spans: Any = None) -> dict[str, Any]:
    """One trace object of the query API's `data` list; `spans` (`STREAMED` when the file
    is written span by span) stands in place of its span list when given."""
    if spans is None:
        spans = list(jaeger_spans(tree.trace_id, numbered(tree.root, [tree.root.children])))
    # the process is the OTLP resource: the run's identity, which Jaeger's search filters by
    resource = {"service.version": __version__, "dnnprof.timeline": tree.timeline, **tree.resource}
    resource.pop("service.name", None)
    process_tags = [_tag(key, value) for key, value in resource.items()]
    return {
        "traceID": tree.trace_id,
        "spans": spans,
        "processes": {"p1": {"serviceName": tree.service_name, "tags": process_tags}},
        "warnings": None,
    }


def jaeger_document(tree: SpanTree, spans: Any = None) -> dict[str, Any]:
    """The whole file: the query API's envelope around one trace (see `tree_to_jaeger`)."""
    return {"data": [tree_to_jaeger(tree, spans)], "total": 0, "limit": 0, "offset": 0,
            "errors": None}


def _write(plan: SpanPlan, path: str | os.PathLike[str]) -> str:
    """Write the file span by span, the tree made CHUNK_ITERATIONS iterations at a time;
    returns a warning when Jaeger's UI would struggle with it."""
    tree = plan.tree
    spans = jaeger_spans(tree.trace_id, numbered(tree.root, plan.chunks()))
    write_json_streamed(path, jaeger_document(tree, STREAMED), spans)
    return jaeger_ui_note(len(tree), JAEGER_UI_SPANS)


def write_jaeger_json(
    trace: Trace,
    path: str | os.PathLike[str],
    service_name: str = "dnnprof",
    span_iterations: int | None = 3,
    iterations: str | Sequence[int] = "steady",
) -> Path:
    """Write the Trace's span tree as a Jaeger JSON file (same selection as the OTLP export)."""
    _write(plan_span_tree(trace, span_iterations, iterations, service_name), path)
    return Path(path)


class JaegerJsonExporter(FileExporter):
    """A Jaeger JSON file, with the same iterations as the OTLP export."""

    name = "jaeger_json"
    writes = "Jaeger JSON (Jaeger UI: Search > JSON File), the last 3 steady iterations"

    def write(self, trace: Trace, path: Path, options: ExportOptions) -> Written:
        """Write the span tree of the selected iterations as one Jaeger JSON file."""
        plan = plan_span_tree(
            trace, options.limit(3), options.selection("steady"), options.service_name
        )
        note = _write(plan, path)
        message = f"Jaeger JSON written to {path} (Jaeger UI: Search > JSON File)"
        return Written(message, note, plan.tree)


# ---------------------------------------------------------------------- reader --


def _tag_value(tag: dict[str, Any]) -> AttributeValue:
    value = tag.get("value")
    kind = tag.get("type", "string")
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "int64":
        return int(value)
    if kind == "float64":
        return float(value)
    return "" if value is None else str(value)


def trace_from_jaeger(data: dict[str, Any]) -> SpanTree:
    """One query-API trace object back to a SpanTree (times in ns, from microseconds)."""
    trace_id = str(data.get("traceID", ""))
    processes = data.get("processes") or {}
    nodes: dict[str, Span] = {}
    parents: dict[str, str | None] = {}
    service = "dnnprof"
    resource: dict[str, AttributeValue] = {}
    for raw in data.get("spans") or []:
        span_id = str(raw["spanID"])
        attributes = {tag["key"]: _tag_value(tag) for tag in raw.get("tags") or []}
        # Tags Jaeger and the legacy exporter add, not attributes of the exported span.
        for key in INGESTION_TAGS:
            attributes.pop(key, None)
        start_ns = int(raw["startTime"]) * 1000
        nodes[span_id] = Span(
            name=str(raw.get("operationName", "")),
            level=str(attributes.get("dnnprof.level", "")),
            start_ns=start_ns,
            end_ns=start_ns + int(raw.get("duration", 0)) * 1000,
            attributes=attributes,
        )
        parent = next(
            (
                str(ref["spanID"])
                for ref in raw.get("references") or []
                if ref.get("refType") == "CHILD_OF"
            ),
            None,
        )
        parents[span_id] = parent
        process = processes.get(raw.get("processID"), {})
        service = process.get("serviceName", service)
        resource = {tag["key"]: _tag_value(tag) for tag in process.get("tags") or []}
    return assemble_tree(nodes, parents, trace_id=trace_id, service=service,
                         resource={"service.name": service, **resource})


def assemble_tree(
    nodes: dict[str, Span],
    parents: dict[str, str | None],
    *,
    trace_id: str,
    service: str,
    resource: dict[str, AttributeValue],
) -> SpanTree:
    """A SpanTree from stored spans (by id, in stored order) and each one's parent id."""
    roots = [sid for sid in nodes if parents[sid] is None or parents[sid] not in nodes]
    if len(roots) != 1:
        raise ValueError(
            f"trace {trace_id}: expected one root span, found {len(roots)} "
            "(a partial trace, or spans of several runs under one trace id)"
        )
    position = {sid: i for i, sid in enumerate(nodes)}
    for sid in sorted(nodes, key=lambda s: (nodes[s].start_ns, position[s])):
        parent = parents[sid]
        if parent is not None and parent in nodes:
            nodes[parent].children.append(nodes[sid])
    root = nodes[roots[0]]
    exported = str(root.attributes.get("dnnprof.iterations_exported", ""))
    return SpanTree(
        root=root,
        timeline=str(root.attributes.get("dnnprof.timeline", "synthetic")),
        iterations=[int(i) for i in exported.split(",") if i.strip()],
        iterations_total=int(root.attributes.get("dnnprof.iterations_total", 0)),
        service_name=service,
        resource=resource,
        trace_id=trace_id,
    )


def read_jaeger_json(path: str | os.PathLike[str] | dict[str, Any]) -> list[SpanTree]:
    """Read a Jaeger JSON file (or an already-loaded document) into one SpanTree per trace."""
    if isinstance(path, dict):
        document = path
    else:
        with Path(path).open(encoding="utf-8") as source:
            document = json.load(source)
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError(f"{path}: not Jaeger JSON (no top-level 'data' list)")
    return [trace_from_jaeger(item) for item in data]
