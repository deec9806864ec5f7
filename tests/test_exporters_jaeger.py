"""Round trips through a real Jaeger v2 (tests/support/jaeger.py): export a real run's Trace,
read it back through Jaeger's query API v3 (OTLP JSON), and compare with the Trace itself.

Under CI=true these must run: the `jaeger` fixture fails instead of skipping when the
binary is missing (build it with .ci/jaeger.sh)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time
import urllib.request
import uuid

import pytest

from dnnprof.cli import main
from dnnprof.exporters import (
    ExportError,
    build_span_tree,
    export,
    export_jaeger_legacy,
    export_otlp,
    selection,
    span_plan,
)
from dnnprof.exporters.jaeger_legacy import _exporter_class
from dnnprof.trace import Trace
from dnnprof.vocabulary import ExitCode
from support.ci import missing_dependency
from support.corpus import CORPUS
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


@pytest.mark.parametrize("chunk", [2, 1000], ids=["chunks-of-2-iterations", "one-chunk"])
def test_otlp_sends_large_traces_in_batches(jaeger, monkeypatch, chunk):
    """Every iteration, made `chunk` iterations at a time (span_plan), in batches of 100:
    Jaeger holds the tree built whole, every parent link included."""
    monkeypatch.setattr(span_plan, "CHUNK_ITERATIONS", chunk)
    monkeypatch.setattr(selection, "JAEGER_UI_SPANS", 1_000)
    trace = real_run("timestamps")
    result = export_otlp(
        trace,
        jaeger.otlp_grpc_endpoint,
        service_name=f"dnnprof-batches-{chunk}",
        iterations="all",
        span_iterations=None,
        batch_size=100,
    )
    expected = build_span_tree(trace, None, "all")
    assert result.spans == len(expected) > 1000 and result.counts == expected.counts()
    assert result.batches == -(-result.spans // 100)
    assert f"warning: {result.spans:,} spans in one trace; Jaeger's UI" in result.message
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


def test_legacy_jaeger_exporter_sends_every_iteration_a_chunk_at_a_time(jaeger, monkeypatch):
    try:
        _exporter_class()
    except ExportError as error:
        missing_dependency(str(error))
    monkeypatch.setattr(span_plan, "CHUNK_ITERATIONS", 2)
    trace = real_run("timestamps")
    # every iteration, warm-up included: Thrift's microseconds once put some warm-up spans'
    # ends 1 us past their parent's, which Jaeger's query service flags (@jaeger@warnings)
    result = export_jaeger_legacy(trace, jaeger.collector_thrift_http_endpoint,
                                  service_name="dnnprof-legacy-chunks", span_iterations=None,
                                  iterations="all")
    expected = build_span_tree(trace, None, "all", service_name="dnnprof-legacy-chunks")
    assert result.spans == len(expected) and len(result.iterations) > 2
    stored = jaeger.client.wait_for_trace(result.trace_id, min_spans=result.spans)
    assert_matches_tree(tree_from_otlp(stored), expected)


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


# ------------------------------------------------------- spans worth browsing --


@pytest.fixture(scope="module")
def fp32_and_int8(jaeger):
    """The FP32 and the INT8 run of ResNet-50 in one service, as a user compares them."""
    service = f"dnnprof-variants-{uuid.uuid4().hex[:8]}"
    results = {}
    for name in (FP32, INT8):
        results[name] = export_otlp(real_run("timestamps", name), jaeger.otlp_grpc_endpoint,
                                    service_name=service)
    for result in results.values():
        jaeger.client.wait_for_trace(result.trace_id, min_spans=result.spans)
    return service, results


def test_a_run_is_found_by_its_resource_attributes(jaeger, fp32_and_int8):
    service, results = fp32_and_int8
    fp32, int8 = results[FP32].trace_id, results[INT8].trace_id
    client = jaeger.client
    assert client.trace_ids(service) == sorted([fp32, int8])
    # the identity is on the resource (Jaeger's "process"), as every span's
    for span in otlp_spans(client.trace(int8)):
        assert span.resource["dnnprof.variant"] == "int8_fx"
        assert span.resource["dnnprof.model"] == "resnet50"
        assert span.resource["onednn.version"] == "v3.12.0"
        assert span.resource["dnnprof.framework_version"] == "2.13.0+cpu"
    assert client.find_by_attributes(service, {"dnnprof.variant": "int8_fx"}) == [int8]
    assert client.find_by_attributes(service, {"dnnprof.variant": "fp32_eager"}) == [fp32]
    both = {"dnnprof.model": "resnet50", "onednn.isa": otlp_spans(client.trace(fp32))[0].resource[
        "onednn.isa"], "onednn.threads": "2"}
    assert client.find_by_attributes(service, both) == sorted([fp32, int8])
    assert client.find_by_attributes(service, {"dnnprof.variant": "bf16"}) == []


def operation_paths(document, level):
    """Operation names from the root down to each span of `level`: what Jaeger's trace
    comparison pairs spans by."""
    tree = tree_from_otlp(document)
    paths = set()
    for span, _, _ in tree.walk():
        if span.level == level:
            paths.add(_path_to(tree.root, span))
    return paths


def _path_to(root, target, prefix=()):
    here = (*prefix, root.name)
    if root is target:
        return here
    for child in root.children:
        found = _path_to(child, target, here)
        if found:
            return found
    return ()


def test_fp32_and_int8_traces_share_their_layer_operation_names(jaeger, fp32_and_int8):
    service, results = fp32_and_int8
    client = jaeger.client
    fp32 = client.trace(results[FP32].trace_id)
    int8 = client.trace(results[INT8].trace_id)
    fp32_layers, int8_layers = operation_paths(fp32, "layer"), operation_paths(int8, "layer")
    assert len(fp32_layers) == 53 and fp32_layers == int8_layers
    assert ("resnet50", "iteration", "layer1.0.conv1") in fp32_layers
    operations = client.operations(service)
    assert {"resnet50", "iteration", "conv1", "layer4.2.conv3"} <= set(operations)
    # what differs is below the layers, where the fusion shows: INT8 fuses the ReLU
    fp32_kinds = {path[-1] for path in operation_paths(fp32, "primitive")}
    int8_kinds = {path[-1] for path in operation_paths(int8, "primitive")}
    assert "convolution+eltwise_relu" in int8_kinds - fp32_kinds


def reconstructed_in_jaeger(jaeger, name):
    """A captured log, its layers reconstructed from the model's table (as `dnnprof parse
    --model` does), sent over OTLP/HTTP and read back: its spans."""
    import dnnprof
    from dnnprof.reconstruct import reconstruct

    trace = reconstruct(dnnprof.parse(CORPUS / f"{name}.log"), model="resnet50")
    result = export_otlp(trace, jaeger.otlp_http_endpoint, protocol="http",
                         service_name=f"dnnprof-detail-{uuid.uuid4().hex[:8]}")
    return otlp_spans(jaeger.client.wait_for_trace(result.trace_id, min_spans=result.spans))


def by_level(spans, level):
    return [s for s in spans if s.attributes["dnnprof.level"] == level]


def test_span_detail_in_jaeger_shows_layers_primitives_and_fusion(jaeger):
    spans = reconstructed_in_jaeger(jaeger, INT8)
    assert spans[0].resource["dnnprof.variant"] == "int8"  # inferred from the log
    assert spans[0].resource["dnnprof.variant_inferred"] is True
    conv1 = next(s.attributes for s in by_level(spans, "layer") if s.name == "conv1")
    assert conv1["dnnprof.layer_type"] == "Conv2d"
    assert conv1["dnnprof.shape"] == "1x3x224x224 -> 1x64x112x112, kernel 7x7 stride 2"
    assert conv1["dnnprof.data_types"] == "src:u8 wei:s8 dst:u8"
    assert conv1["dnnprof.fused"] is True and conv1["dnnprof.fused_ops"] == "eltwise_relu"
    assert conv1["dnnprof.fused_layers"] == "bn1+relu"  # what the one primitive also computes
    assert conv1["dnnprof.gflops_per_s"] == pytest.approx(
        conv1["dnnprof.flops"] / (conv1["dnnprof.exec_time_ms"] * 1e6)
    )
    assert 0 < conv1["dnnprof.iteration_share_pct"] < 100
    conv = next(s.attributes for s in by_level(spans, "primitive")
                if s.attributes["dnnprof.layer"] == "conv1")
    assert conv["onednn.post_ops"] == "eltwise_relu" and conv["onednn.fused"] is True
    for key in ("onednn.kind", "onednn.impl", "onednn.isa", "onednn.prop_kind", "onednn.src_dt",
                "onednn.wei_dt", "onednn.dst_dt", "onednn.src_fmt", "onednn.wei_fmt",
                "onednn.problem", "dnnprof.shape"):
        assert conv[key], key


def test_span_detail_in_jaeger_shows_the_reorders(jaeger):
    spans = reconstructed_in_jaeger(jaeger, FP32)
    assert spans[0].resource["dnnprof.variant"] == "fp32"
    layers = [s.attributes for s in by_level(spans, "layer") if s.attributes["dnnprof.reorders"]]
    assert layers and all(a["dnnprof.reorder_time_ms"] > 0 for a in layers)
    reorders = [s.attributes for s in by_level(spans, "primitive") if s.attributes["onednn.reorder"]]
    assert sum(a["dnnprof.reorders"] for a in layers) <= len(reorders)
    assert all(s.name == "reorder" for s in by_level(spans, "primitive") if s.attributes["onednn.reorder"])
    assert {a.get("dnnprof.reorder_class") for a in reorders} - {None}


def test_export_prints_the_link_to_the_trace_in_the_jaeger_ui(jaeger, tmp_path, capsys):
    stored = labelled_corpus_trace(INT8).save(tmp_path / "int8.trace")
    status = main(["export", str(stored), "--otlp", jaeger.otlp_grpc_endpoint,
                   "--service-name", f"dnnprof-link-{uuid.uuid4().hex[:8]}",
                   "--query-url", jaeger.query_url])
    assert status == 0
    (link,) = re.findall(r"open (\S+)", capsys.readouterr().out)
    assert link.startswith(f"{jaeger.query_url}/trace/")
    trace_id = link.rsplit("/", 1)[1]
    assert otlp_spans(jaeger.client.wait_for_trace(trace_id))
    with urllib.request.urlopen(link, timeout=10) as page:  # the UI's route answers
        assert page.status == 200
