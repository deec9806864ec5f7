"""Round trips through a real Jaeger (tests/support/jaeger.py): export a real run's Trace,
read it back through Jaeger's HTTP query API, and compare with the Trace itself.

Under CI=true these must run: the `jaeger` fixture fails instead of skipping when the
binary is missing (build it with .ci/jaeger.sh)."""

from __future__ import annotations

import pytest

from dnnprof.exporters import (
    ExportError,
    build_span_tree,
    export_jaeger_legacy,
    export_otlp,
    read_jaeger_json,
)
from dnnprof.exporters.jaeger_legacy import _exporter_class
from support.ci import missing_dependency
from support.traces import labelled_corpus_trace, with_timestamps

pytestmark = pytest.mark.slow

INT8 = "torch_resnet50_int8_fx_b1"
US = 1.0  # tolerance, microseconds


def real_run(timeline: str):
    trace = labelled_corpus_trace(INT8)
    return with_timestamps(trace) if timeline == "timestamps" else trace


def canonical(tree):
    """key -> (parent key, level, name, attributes, start offset ns, duration ns).

    Keys do not depend on sibling order (Jaeger returns spans in no particular order and
    truncates times to microseconds, which can tie two siblings): a primitive is its log
    line, a layer or iteration its name and first line."""

    def first_line(span):
        if span.level == "primitive":
            return int(span.attributes["dnnprof.line"])
        return min(first_line(child) for child in span.children)

    keys = {}
    out = {}
    origin = tree.root.start_ns
    for span, parent, _ in tree.walk():
        key = (
            (span.level, span.name, first_line(span))
            if span.children
            else ("primitive", first_line(span))
        )
        keys[id(span)] = key
        out[key] = (
            keys[id(parent)] if parent is not None else None,
            span.level,
            span.name,
            span.attributes,
            span.start_ns - origin,
            span.duration_ns,
        )
    return out


def assert_matches_tree(stored_tree, expected_tree):
    got, want = canonical(stored_tree), canonical(expected_tree)
    assert set(got) == set(want)  # same spans: shape and counts
    assert stored_tree.counts() == expected_tree.counts()
    for key, (parent, level, name, attrs, offset, duration) in want.items():
        g_parent, g_level, g_name, g_attrs, g_offset, g_duration = got[key]
        assert (g_parent, g_level, g_name) == (parent, level, name)  # parent links
        assert g_attrs == pytest.approx(attrs), key
        assert abs(g_offset - offset) <= US * 1000, key
        assert abs(g_duration - duration) <= US * 1000, key


def assert_matches_trace(stored, trace, iterations):
    """The primitive spans against the Trace's rows, independently of the tree builder."""
    spans = stored["spans"]
    root = next(s for s in spans if not s["references"])
    events = trace.events
    rows = events[(events["op"] == "exec") & events["iteration"].isin(iterations)]
    primitive_spans = [s for s in spans if _tags(s).get("dnnprof.level") == "primitive"]
    assert len(primitive_spans) == len(rows)
    by_line = rows.set_index("line")
    origin_ms = rows["start_ms"].min()
    by_id = {s["spanID"]: s for s in spans}
    for span in primitive_spans:
        tags = _tags(span)
        row = by_line.loc[tags["dnnprof.line"]]
        assert tags["onednn.kind"] == row["kind"] and tags["onednn.impl"] == row["impl"]
        assert tags["dnnprof.iteration"] == row["iteration"]
        assert abs(span["duration"] - row["duration_ms"] * 1000) <= US
        assert (
            abs((span["startTime"] - root["startTime"]) - (row["start_ms"] - origin_ms) * 1000)
            <= US
        )
        # every parent is in the trace and one level up
        (ref,) = span["references"]
        assert ref["refType"] == "CHILD_OF" and ref["traceID"] == stored["traceID"]
        parent_level = _tags(by_id[ref["spanID"]])["dnnprof.level"]
        assert parent_level == ("layer" if row["layer"] else "iteration")


def _tags(span):
    return {tag["key"]: tag["value"] for tag in span["tags"]}


@pytest.mark.parametrize("timeline", ["synthetic", "timestamps"])
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_otlp_round_trip_through_jaeger(jaeger, protocol, timeline):
    trace = real_run(timeline)
    endpoint = jaeger.otlp_grpc_endpoint if protocol == "grpc" else jaeger.otlp_http_endpoint
    service = f"dnnprof-{protocol}-{timeline}"
    result = export_otlp(trace, endpoint, protocol=protocol, service_name=service)
    assert result.iterations == [1, 2, 3] and result.timeline == timeline

    client = jaeger.client
    stored = client.wait_for_trace(result.trace_id, min_spans=result.spans)
    assert service in client.services()
    assert [t["traceID"] for t in client.traces(service)] == [result.trace_id]  # one trace per run
    assert (
        len(stored["spans"])
        == result.spans
        == 1 + 3 + result.counts["layer"] + result.counts["primitive"]
    )
    (process,) = stored["processes"].values()
    assert process["serviceName"] == service
    assert {"key": "dnnprof.timeline", "type": "string", "value": timeline} in process["tags"]

    (stored_tree,) = read_jaeger_json({"data": [stored]})
    expected = build_span_tree(trace, service_name=service)
    assert stored_tree.root.attributes["dnnprof.timeline"] == timeline
    assert stored_tree.root.attributes["dnnprof.model"] == "resnet50"
    assert_matches_tree(stored_tree, expected)
    assert_matches_trace(stored, trace, [1, 2, 3])


def test_otlp_sends_large_traces_in_batches(jaeger):
    trace = real_run("timestamps")
    result = export_otlp(
        trace,
        jaeger.otlp_grpc_endpoint,
        service_name="dnnprof-batches",
        iterations="all",
        span_iterations=None,
        batch_size=100,
    )
    expected = build_span_tree(trace, None, "all")
    assert result.spans == len(expected) > 1000
    assert result.batches == -(-result.spans // 100)
    stored = jaeger.client.wait_for_trace(result.trace_id, min_spans=result.spans)
    (stored_tree,) = read_jaeger_json({"data": [stored]})
    assert_matches_tree(stored_tree, expected)


@pytest.mark.parametrize("transport", ["collector-http", "agent-udp"])
def test_legacy_jaeger_exporter_round_trip(jaeger, transport):
    try:
        _exporter_class()
    except ExportError as error:  # the optional extra; CI installs it, so there this fails
        missing_dependency(str(error))
    trace = real_run("timestamps")
    if transport == "collector-http":
        endpoint = jaeger.collector_thrift_http_endpoint
    else:
        host, port = jaeger.agent_compact_udp
        endpoint = f"udp://{host}:{port}"
    service = f"dnnprof-legacy-{transport}"
    result = export_jaeger_legacy(trace, endpoint, service_name=service)
    stored = jaeger.client.wait_for_trace(result.trace_id, min_spans=result.spans)
    assert [t["traceID"] for t in jaeger.client.traces(service)] == [result.trace_id]
    (stored_tree,) = read_jaeger_json({"data": [stored]})
    assert_matches_tree(stored_tree, build_span_tree(trace, service_name=service))
    assert_matches_trace(stored, trace, [1, 2, 3])
