"""Spans worth browsing, without a server: the names Jaeger lists and lines up, the run's
identity on the resource, the variant of a captured log, and what a layer or primitive span
says in its detail. tests/test_exporters_jaeger.py checks the same through a real Jaeger."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

import dnnprof
from dnnprof.cli import main
from dnnprof.exporters import build_span_tree, read_jaeger_json, write_jaeger_json
from dnnprof.exporters.attributes import human_shape, infer_variant
from dnnprof.exporters.otlp import ui_link
from dnnprof.reconstruct import reconstruct
from support.corpus import CORPUS
from support.traces import labelled_corpus_trace, make_trace, small_run

INT8 = "torch_resnet50_int8_fx_b1"
FP32 = "torch_resnet50_fp32_eager_b1"


def name_paths(tree, level):
    """Span names from the root down to every span of `level`."""
    out = set()

    def walk(span, prefix):
        path = (*prefix, span.name)
        if span.level == level:
            out.add(path)
        for child in span.children:
            walk(child, path)

    walk(tree.root, ())
    return out


def test_operation_names_are_the_same_for_every_variant_of_a_model():
    fp32 = build_span_tree(labelled_corpus_trace(FP32))
    int8 = build_span_tree(labelled_corpus_trace(INT8))
    assert fp32.root.name == int8.root.name == "resnet50"  # the model, not "resnet50 int8"
    assert {s.name for s in fp32.root.children} == {"iteration"}  # the number is an attribute
    assert [s.attributes["dnnprof.iteration"] for s in int8.root.children] == [1, 2, 3]
    assert name_paths(fp32, "layer") == name_paths(int8, "layer")
    assert len(name_paths(fp32, "layer")) == 53


def test_the_run_identity_is_on_the_resource_and_the_run_span():
    tree = build_span_tree(labelled_corpus_trace(INT8), service_name="resnet-ci")
    resource = tree.resource
    assert resource["service.name"] == "resnet-ci"
    expected = {
        "dnnprof.model": "resnet50", "dnnprof.variant": "int8_fx", "dnnprof.variant_inferred": False,
        "dnnprof.framework": "pytorch", "dnnprof.framework_version": "2.13.0+cpu",
        "dnnprof.batch": 1, "onednn.threads": 2, "onednn.version": "v3.12.0",
        "onednn.commit": "80afa71049cd69a3df32adcccb623b12cd7baa22",
        "dnnprof.version": dnnprof.__version__, "dnnprof.timeline": "synthetic",
    }
    assert {key: resource[key] for key in expected} == expected
    assert resource["onednn.isa"].startswith("Intel AVX-512")
    assert {key: tree.root.attributes[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("log", "variant"),
    [
        (FP32, "fp32"),
        (INT8, "int8"),
        ("mxnet_resnet50_v1_fp32_b1", "fp32"),
        # torch.compile with freezing: fp32 convolutions with the ReLU/add fused as post-ops
        ("torch_resnet50_compile_freezing_b1", "fused"),
    ],
)
def test_the_variant_of_a_captured_log_is_inferred_from_it(log, variant):
    # as `dnnprof parse` does it: iterations found without a model, then the steady ones
    # exported (the INT8 log's FP32 calibration pass is not what the run is about)
    trace = reconstruct(dnnprof.parse(CORPUS / f"{log}.log"))
    assert infer_variant(trace.steady_exec()) == variant
    tree = build_span_tree(trace)
    assert tree.resource["dnnprof.variant"] == variant
    assert tree.resource["dnnprof.variant_inferred"] is True


def test_infer_variant_weighs_by_time_and_bf16_wins_when_it_takes_most():
    rows = [
        {"duration_ms": 3.0, "src_dt": "bf16", "wei_dt": "bf16", "dst_dt": "bf16"},
        {"duration_ms": 1.0, "post_ops": "eltwise_relu"},  # an f32 conv
        {"duration_ms": 9.0, "kind": "reorder"},  # not compute: does not count
    ]
    assert infer_variant(make_trace(rows).exec_events) == "bf16"
    assert infer_variant(small_run().exec_events) == "fused"  # its convs carry a ReLU


def test_parse_takes_the_variant_and_the_model_from_the_command_line(tmp_path, capsys):
    stored = tmp_path / "int8.trace"
    log = str(CORPUS / f"{INT8}.log")
    assert main(["parse", log, "--model", "resnet50", "--variant", "int8-fx-calibrated",
                 "-o", str(stored), "--json"]) == 0
    tree = build_span_tree(dnnprof.load(stored))  # kept with the stored trace
    assert tree.root.name == "resnet50"
    assert tree.resource["dnnprof.variant"] == "int8-fx-calibrated"
    assert tree.resource["dnnprof.variant_inferred"] is False
    assert main(["parse", log, "-o", str(stored), "--json"]) == 0
    tree = build_span_tree(dnnprof.load(stored))
    assert tree.root.name == "run"  # no model given: still the same name for every log
    assert tree.resource["dnnprof.variant"] == "int8"


def test_jaeger_json_carries_the_resource_as_the_process(tmp_path):
    trace = labelled_corpus_trace(INT8)
    path = write_jaeger_json(trace, tmp_path / "t.json", service_name="resnet")
    (process,) = json.loads(path.read_text())["data"][0]["processes"].values()
    tags = {tag["key"]: tag["value"] for tag in process["tags"]}
    assert process["serviceName"] == "resnet"
    assert tags["dnnprof.variant"] == "int8_fx" and tags["onednn.version"] == "v3.12.0"
    (tree,) = read_jaeger_json(path)
    assert tree.resource == build_span_tree(trace, service_name="resnet").resource


@pytest.mark.parametrize(
    ("kind", "problem", "alg", "shape"),
    [
        ("convolution", "mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3", "",
         "1x3x224x224 -> 1x64x112x112, kernel 7x7 stride 2"),
        ("convolution", "mb1_g32ic32oc32_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1", "",
         "1x32x56x56 -> 1x32x56x56, kernel 3x3, 32 groups"),
        ("matmul", "1x2048:2048x1000", "", "1x2048 x 2048x1000 -> 1x1000"),
        ("inner_product", "mb1ic2048oc1000", "", "1x2048 -> 1x1000"),
        ("pooling", "mb1ic64_ih112oh56kh3sh2dh0ph1_iw112ow56kw3sw2dw0pw1", "pooling_max",
         "1x64x112x112 -> 1x64x56x56, kernel 3x3 stride 2"),
        ("eltwise", "1x64x112x112", "eltwise_relu", "1x64x112x112"),
        ("reorder", "", "", ""),
    ],
)
def test_human_shape(kind, problem, alg, shape):
    assert human_shape(kind, problem, alg) == shape


def test_layer_spans_say_what_the_layer_is_and_its_share_of_the_iteration():
    tree = build_span_tree(small_run())
    iteration = tree.root.children[0]
    conv1, reorder, relu = iteration.children
    attrs = conv1.attributes
    assert (attrs["dnnprof.layer_type"], attrs["dnnprof.fused_ops"]) == ("Conv2d", "eltwise_relu")
    assert attrs["dnnprof.shape"] == "1x16x28x28 -> 1x32x26x26, kernel 3x3"
    assert attrs["dnnprof.data_types"] == "src:f32 wei:f32 dst:f32"  # the conv, not its reorder
    assert attrs["dnnprof.reorders"] == 1 and attrs["dnnprof.reorder_time_ms"] == pytest.approx(0.0123)
    assert attrs["dnnprof.exec_time_ms"] == pytest.approx(0.0123 + 0.5117)
    assert attrs["dnnprof.gflops_per_s"] == pytest.approx(2 * 32 * 16 * 26 * 26 * 9 / (0.524 * 1e6))
    total = 0.0123 + 0.5117 + 0.002 + 0.0417
    assert attrs["dnnprof.iteration_share_pct"] == round(100 * 0.524 / total, 2)
    assert relu.attributes["dnnprof.iteration_share_pct"] == round(100 * 0.0417 / total, 2)
    assert "dnnprof.iteration_share_pct" not in reorder.attributes  # a primitive, no layer
    assert "dnnprof.flops" not in relu.attributes and "dnnprof.fused_ops" not in relu.attributes


def test_ui_link():
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    assert ui_link(trace_id, "http://jaeger.lab:8080/jaeger/", "http://x:1234") == (
        f"http://jaeger.lab:8080/jaeger/trace/{trace_id}"
    )
    assert ui_link(trace_id, None, "http://jaeger:4317") == f"http://jaeger:16686/trace/{trace_id}"
    assert ui_link(trace_id, None, "https://jaeger:4318/v1/traces") == (
        f"https://jaeger:16686/trace/{trace_id}"
    )
    assert ui_link(trace_id, None, "udp://[::1]:6831") == f"http://[::1]:16686/trace/{trace_id}"
    assert ui_link(trace_id, None, "http://collector:9999") == ""  # not Jaeger's own ports


def test_a_run_records_its_host_and_commit_and_the_resource_carries_them(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567"}
    done = subprocess.run(
        [sys.executable, "-m", "dnnprof", "trace", "--no-report", "--out", str(run_dir),
         "--", "cat", str(CORPUS / f"{INT8}.log")],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    trace = dnnprof.load(run_dir)
    assert trace.metadata.host == socket.gethostname()
    resource = build_span_tree(trace).resource
    assert resource["host.name"] == socket.gethostname()
    assert resource["dnnprof.git_commit"] == env["GITHUB_SHA"]
    assert resource["dnnprof.run_verdict"] == trace.metadata.conditions.verdict
    # a captured log says nothing of either
    captured = build_span_tree(dnnprof.parse(CORPUS / f"{INT8}.log")).resource
    assert not {"host.name", "dnnprof.git_commit", "dnnprof.run_verdict"} & set(captured)
