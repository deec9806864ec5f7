"""Round trips through a real Jaeger v2 (tests/support/jaeger.py): export a real run's Trace,
read it back through Jaeger's query API v3 (OTLP JSON), and compare with the Trace itself.

Under CI=true these must run: the `jaeger` fixture fails instead of skipping when the
binary is missing (build it with .ci/jaeger.sh)."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from dnnprof.exporters import (
    ExportError,
    build_span_tree,
    export,
    export_jaeger_legacy,
    export_otlp,
)
from dnnprof.exporters.jaeger_legacy import _exporter_class
from dnnprof.trace import Trace
from dnnprof.vocabulary import ExitCode
from support.ci import missing_dependency
from support.jaeger import jaeger_binary_or_skip, otlp_spans, start_jaeger, tree_from_otlp
from support.traces import labelled_corpus_trace, with_timestamps

pytestmark = pytest.mark.slow

INT8 = "torch_resnet50_int8_fx_b1"
FP32 = "torch_resnet50_fp32_eager_b1"
NS_PER_US = 1000  # the tolerance: Jaeger's Badger store and Thrift keep microseconds


def real_run(timeline: str, name: str = INT8):
    trace = labelled_corpus_trace(name)
    return with_timestamps(trace) if timeline == "timestamps" else trace


def canonical(tree):
    """key -> (parent key, level, name, attributes, start offset ns, duration ns).

    Keys do not depend on sibling order (a store keeping microseconds can tie two siblings):
    a primitive is its log line, a layer or iteration its level, name and first line."""

    def first_line(span):
        if span.level == "primitive":
            return int(span.attributes["dnnprof.line"])
        return min(first_line(child) for child in span.children)

    keys = {}
    out = {}
    origin = tree.root.start_ns
    for span, parent, _ in tree.walk():
        key = (span.level, span.name, first_line(span))
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
        assert abs(g_offset - offset) <= NS_PER_US, key
        assert abs(g_duration - duration) <= NS_PER_US, key


def assert_matches_trace(document, trace, iterations):
    """The primitive spans against the Trace's rows, independently of the tree builder."""
    spans = otlp_spans(document)
    (root,) = [s for s in spans if not s.parent_span_id]
    events = trace.events
    rows = events[(events["op"] == "exec") & events["iteration"].isin(iterations)]
    primitive_spans = [s for s in spans if s.attributes.get("dnnprof.level") == "primitive"]
    assert len(primitive_spans) == len(rows)
    by_line = rows.set_index("line")
    origin_ms = rows["start_ms"].min()
    by_id = {s.span_id: s for s in spans}
    for span in primitive_spans:
        attrs = span.attributes
        row = by_line.loc[attrs["dnnprof.line"]]
        assert attrs["onednn.kind"] == row["kind"] and attrs["onednn.impl"] == row["impl"]
        assert attrs["dnnprof.iteration"] == row["iteration"]
        assert abs(span.duration_ns - row["duration_ms"] * 1e6) <= NS_PER_US
        offset_ns = span.start_ns - root.start_ns
        assert abs(offset_ns - (row["start_ms"] - origin_ms) * 1e6) <= NS_PER_US
        # every parent is in the trace and one level up
        parent = by_id[span.parent_span_id]
        assert parent.trace_id == span.trace_id == root.trace_id
        assert parent.attributes["dnnprof.level"] == ("layer" if row["layer"] else "iteration")


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
    assert client.trace_ids(service) == [result.trace_id]  # one trace per run
    spans = otlp_spans(stored)
    assert (
        len(spans) == result.spans == 1 + 3 + result.counts["layer"] + result.counts["primitive"]
    )
    resource = spans[0].resource
    assert resource["service.name"] == service and resource["dnnprof.timeline"] == timeline

    stored_tree = tree_from_otlp(stored)
    expected = build_span_tree(trace, service_name=service)
    assert stored_tree.service_name == service
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
    assert_matches_tree(tree_from_otlp(stored), expected)


@pytest.mark.parametrize("transport", ["thrift-http", "thrift-compact-udp"])
def test_legacy_jaeger_exporter_round_trip(jaeger, transport):
    """The legacy Thrift exporter into v2's `jaeger` receiver, read back through API v3."""
    try:
        _exporter_class()
    except ExportError as error:  # the optional extra; CI installs it, so there this fails
        missing_dependency(str(error))
    trace = real_run("timestamps")
    if transport == "thrift-http":
        endpoint = jaeger.collector_thrift_http_endpoint
    else:
        host, port = jaeger.agent_compact_udp
        endpoint = f"udp://{host}:{port}"
    service = f"dnnprof-legacy-{transport}"
    result = export_jaeger_legacy(trace, endpoint, service_name=service)
    stored = jaeger.client.wait_for_trace(result.trace_id, min_spans=result.spans)
    assert jaeger.client.trace_ids(service) == [result.trace_id]
    assert_matches_tree(tree_from_otlp(stored), build_span_tree(trace, service_name=service))
    assert_matches_trace(stored, trace, [1, 2, 3])


# ------------------------------------------------------------ a server of its own --


@pytest.fixture
def jaeger_binary():
    return jaeger_binary_or_skip()


def test_badger_store_keeps_the_spans_across_a_restart(jaeger_binary, tmp_path):
    trace = real_run("timestamps")
    store = tmp_path / "badger"
    server = start_jaeger(jaeger_binary, tmp_path, storage="badger", badger_dir=store)
    try:
        result = export_otlp(trace, server.otlp_grpc_endpoint, service_name="dnnprof-badger")
        server.client.wait_for_trace(result.trace_id, min_spans=result.spans)
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log_tail()  # a clean shutdown, store closed

    restarted = start_jaeger(jaeger_binary, tmp_path, storage="badger", badger_dir=store)
    try:
        assert restarted.ports != server.ports  # a new process, not the old one answering
        client = restarted.client
        assert "dnnprof-badger" in client.services()
        assert client.trace_ids("dnnprof-badger") == [result.trace_id]
        stored = client.trace(result.trace_id)
    finally:
        restarted.stop()
    expected = build_span_tree(trace, service_name="dnnprof-badger")
    assert_matches_tree(tree_from_otlp(stored), expected)
    assert_matches_trace(stored, trace, [1, 2, 3])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_jaeger_that_does_not_answer_is_exit_3_and_the_trace_file_stays(
    jaeger_binary, tmp_path, protocol
):
    """A real Jaeger, stopped (SIGSTOP): its ports accept connections, nothing answers."""
    stored = labelled_corpus_trace(INT8).save(tmp_path / "run.trace")
    before = hashlib.sha256(stored.read_bytes()).hexdigest()
    server = start_jaeger(jaeger_binary, tmp_path)
    endpoint = server.otlp_grpc_endpoint if protocol == "grpc" else server.otlp_http_endpoint
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(ExportError) as error:
            export(Trace.load(stored), "otlp", endpoint, protocol=protocol, timeout_s=1, retries=1)
        elapsed = time.monotonic() - started
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()
    assert error.value.exit_code == ExitCode.UNREACHABLE == 3
    message = str(error.value)
    assert "batch 1 of 1 failed after 2 attempts (0 of" in message
    assert "trace itself is unchanged" in message
    assert elapsed < 30
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == before
