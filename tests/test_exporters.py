"""Exporters without a server: the same contract over every registered exporter, the span
tree, Chrome trace nesting, Jaeger JSON round trip, benchdnn cases, and the errors a user
sees when a collector is down or a file cannot be written."""

from __future__ import annotations

import csv
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest

import dnnprof
from dnnprof.errors import DnnprofError, OutputError
from dnnprof.exporters import (
    FORMATS,
    ExportError,
    ExportOptions,
    build_span_tree,
    export,
    export_jaeger_legacy,
    export_otlp,
    get_exporter,
    read_jaeger_json,
    write_benchdnn,
    write_chrome_trace,
    write_events_csv,
    write_jaeger_json,
)
from dnnprof.exporters.base import EndpointError
from dnnprof.exporters.benchdnn_drivers import DRIVER_KNOBS
from dnnprof.exporters.jaeger_legacy import _exporter_class
from dnnprof.trace import Trace
from dnnprof.vocabulary import PRIMITIVE_KINDS, ExitCode
from support.ci import missing_dependency
from support.traces import labelled_corpus_trace, make_trace, small_run, with_timestamps

INT8 = "torch_resnet50_int8_fx_b1"


def tree_shape(tree):
    """(depth, level, name) per span, pre-order: the structure without the times."""
    return [(depth, span.level, span.name) for span, _, depth in tree.walk()]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------- every registered exporter --


def _json_spans(path, trace):
    document = json.loads(path.read_text())
    (tree,) = read_jaeger_json(document)
    return len(tree)


def _chrome_spans(path, trace):
    document = json.loads(path.read_text())
    assert_perfectly_nested(document)
    return sum(event["ph"] == "X" for event in document["traceEvents"])


def _benchdnn_cases(path, trace):
    return len(_cases(path))


def _csv_rows(path, trace):
    with path.open(newline="") as source:
        rows = list(csv.DictReader(source))
    assert rows and {"line", "iteration", "layer", "duration_ms"} <= set(rows[0])
    assert len(rows) == int((trace.events["op"] != "marker").sum())
    return len(rows)


# file format -> reads the written file back, checks it, returns how many items it holds
FILE_CHECKS = {
    "jaeger_json": _json_spans,
    "chrome_trace": _chrome_spans,
    "benchdnn": _benchdnn_cases,
    "events_csv": _csv_rows,
}
ELTWISE_LINE = (
    "onednn_verbose,v1,primitive,exec,cpu,eltwise,jit:avx512_core,forward_inference,"
    "data:f32::blocked:abcd::f0 diff:undef::undef:::,,alg:eltwise_relu alpha:0 beta:0,"
    "2x64x28x28,0.1"
)
REORDER_ROW = {
    "duration_ms": 0.2,
    "kind": "reorder",
    "prop": "undef",
    "mds": "src:f32::blocked:abcd::f0 dst:f32::blocked:Acdb16a::f0",
    "problem": "64x3x7x7",
}
# the shapes of Trace an exporter must accept
SMALL_TRACES = {
    "run": lambda: small_run(),
    "synthetic": lambda: small_run(timestamps=False),
    "no-iterations": lambda: make_trace([{"duration_ms": 0.5}, REORDER_ROW]),
    "parsed-log": lambda: dnnprof.parse([ELTWISE_LINE]),
}


def test_the_registry_names_every_format_and_each_exporter_says_what_it_writes():
    assert set(FORMATS) == {
        "otlp", "jaeger_json", "chrome_trace", "benchdnn", "events_csv", "jaeger_legacy",
    }
    for fmt in FORMATS:
        exporter = get_exporter(fmt)
        assert exporter.name == fmt and exporter.writes
        assert exporter.to_file == (fmt in FILE_CHECKS)
    with pytest.raises(ValueError, match="unknown export format 'svg'.*chrome_trace"):
        get_exporter("svg")


@pytest.mark.parametrize("shape", sorted(SMALL_TRACES))
@pytest.mark.parametrize("fmt", sorted(FILE_CHECKS))
def test_every_file_exporter_writes_a_valid_non_empty_file(tmp_path, fmt, shape):
    trace = SMALL_TRACES[shape]()
    path = tmp_path / "out" / f"export.{fmt}"
    result = export(trace, fmt, path)
    assert result.format == fmt and result.destination == str(path)
    assert path.stat().st_size > 0 and str(path) in result.message
    items = FILE_CHECKS[fmt](path, trace)
    assert items > 0
    assert items == (result.spans if fmt in ("jaeger_json", "chrome_trace") else result.items)
    assert not list(path.parent.glob(".*.tmp"))  # written through a rename, nothing left over


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in FILE_CHECKS])
def test_every_network_exporter_reports_an_unreachable_collector_as_exit_3(fmt):
    with pytest.raises(ExportError) as error:
        export(small_run(), fmt, f"http://127.0.0.1:{unused_port()}", retries=0, timeout_s=1)
    assert isinstance(error.value, DnnprofError)
    assert error.value.exit_code == ExitCode.UNREACHABLE == 3


@pytest.mark.parametrize("fmt", sorted(FILE_CHECKS))
def test_a_file_that_cannot_be_written_is_an_output_error_exit_2(tmp_path, fmt):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "out.json"  # a path under a regular file
    with pytest.raises(OutputError, match=f"cannot write {target}") as error:
        export(small_run(), fmt, target)
    assert error.value.exit_code == ExitCode.USAGE == 2


def test_a_file_format_needs_a_path():
    with pytest.raises(ValueError, match="chrome_trace export writes a file"):
        export(small_run(), "chrome_trace")


def test_export_defaults_are_the_format_functions_defaults(tmp_path):
    trace = small_run(iterations=6)
    pairs = (
        ("jaeger_json", write_jaeger_json), ("chrome_trace", write_chrome_trace),
        ("benchdnn", write_benchdnn), ("events_csv", write_events_csv),
    )
    for fmt, write in pairs:
        export(trace, fmt, tmp_path / f"a.{fmt}")
        write(trace, tmp_path / f"b.{fmt}")
        assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes(), fmt


def test_export_options_select_iterations_as_the_command_line_does(tmp_path):
    trace = small_run(iterations=6)
    assert export(trace, "jaeger_json", tmp_path / "d.json").iterations == [3, 4, 5]
    assert export(trace, "jaeger_json", tmp_path / "a.json", span_iterations=0).iterations == [
        1, 2, 3, 4, 5,
    ]
    options = ExportOptions(service_name="resnet", span_iterations=2)
    result = export(trace, "jaeger_json", tmp_path / "o.json", options, iterations="all")
    assert result.iterations == [4, 5] and result.service_name == "resnet"
    assert export(trace, "chrome_trace", tmp_path / "c.json").iterations == [0, 1, 2, 3, 4, 5]
    # unset command-line flags (None) take the defaults
    unset = export(trace, "jaeger_json", tmp_path / "u.json", service_name=None, protocol=None)
    assert unset.service_name == "dnnprof" and unset.iterations == [3, 4, 5]


def test_importing_the_exporters_loads_neither_pandas_nor_the_otel_sdk():
    code = (
        "import sys, dnnprof.exporters as e\n"
        "heavy = ('pandas', 'numpy', 'opentelemetry')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "e.get_exporter('chrome_trace'); e.get_exporter('events_csv')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    package, file_formats = done.stdout.splitlines()
    assert package == "[]"
    assert "opentelemetry" not in file_formats  # the SDK is for the network exporters only


def test_the_exporters_and_the_trace_agree_on_the_steady_state():
    # A phase named "run" (other tools' markers) is steady for Trace.by_kind and for exports.
    trace = small_run(iterations=4)
    trace.events["phase"] = trace.events["phase"].astype(str).replace("measure", "run")
    steady_rows = trace.steady()
    assert sorted(steady_rows["iteration"].unique()) == [1, 2, 3]
    tree = build_span_tree(trace, span_iterations=None)
    assert tree.iterations == [1, 2, 3]
    assert tree.counts()["primitive"] == len(steady_rows)


def test_every_benchdnn_driver_of_the_vocabulary_has_its_knobs():
    drivers = {kind.driver for kind in PRIMITIVE_KINDS.values() if kind.driver}
    assert drivers == set(DRIVER_KNOBS)


# ------------------------------------------------------------------ span tree --


def test_tree_is_run_iteration_layer_primitive_with_steady_iterations_only():
    tree = build_span_tree(small_run())
    assert tree.iterations == [1, 2, 3]  # iteration 0 is the warm-up
    assert tree.timeline == "timestamps"
    assert tree.counts() == {"run": 1, "iteration": 3, "layer": 6, "primitive": 12}
    first = tree.root.children[0]
    assert [c.name for c in first.children] == ["conv1", "reorder", "relu"]
    assert [c.level for c in first.children] == [
        "layer",
        "primitive",
        "layer",
    ]  # no layer: direct child
    conv1 = first.children[0]
    assert [p.name for p in conv1.children] == ["reorder", "convolution+eltwise_relu"]
    assert conv1.attributes["dnnprof.reorders"] == 1
    assert conv1.attributes["dnnprof.fused"] is True
    assert tree.root.attributes["dnnprof.timeline"] == "timestamps"


def test_parents_cover_their_children_exactly():
    tree = build_span_tree(labelled_corpus_trace(INT8), None, "all")
    for span, _, _ in tree.walk():
        if span.children:
            assert span.start_ns == min(c.start_ns for c in span.children)
            assert span.end_ns == max(c.end_ns for c in span.children)


def test_span_iterations_and_iteration_selection():
    trace = small_run(iterations=6)
    assert build_span_tree(trace, span_iterations=2).iterations == [4, 5]
    assert build_span_tree(trace, span_iterations=None).iterations == [1, 2, 3, 4, 5]
    assert build_span_tree(trace, None, "all").iterations == [0, 1, 2, 3, 4, 5]
    assert build_span_tree(trace, None, [0, 2]).iterations == [0, 2]


def test_trace_without_iterations_or_layers_is_one_iteration_of_primitives():
    trace = make_trace([{"duration_ms": 0.5}, {"duration_ms": 0.25, "kind": "reorder"}])
    tree = build_span_tree(trace)
    assert tree.timeline == "synthetic"
    assert tree_shape(tree) == [
        (0, "run", "run"),  # no model: the run span's name is the same for every log
        (1, "iteration", "iteration (whole trace)"),
        (2, "primitive", "convolution"),
        (2, "primitive", "reorder"),
    ]
    assert tree.root.attributes["dnnprof.timeline"] == "synthetic"


def test_primitive_attributes_come_from_the_trace_row():
    trace = labelled_corpus_trace(INT8)
    tree = build_span_tree(trace)
    events = trace.events
    convs = [s for s in tree.spans() if s.attributes.get("onednn.kind") == "convolution"]
    assert convs
    for span in convs:
        row = events.iloc[span.row]
        assert span.attributes["onednn.impl"] == row["impl"]
        assert span.attributes["onednn.src_dt"] == "u8" and span.attributes["onednn.wei_dt"] == "s8"
        assert span.attributes["onednn.has_scales"] is True
        assert span.attributes["dnnprof.line"] == row["line"]
        assert span.attributes["dnnprof.layer"] == row["layer"]
        assert span.attributes["onednn.gflops_per_s"] == pytest.approx(
            row["flops"] / (row["duration_ms"] * 1e6)
        )
        assert span.duration_ns == round(row["duration_ms"] * 1e6)


def test_no_exec_lines_is_a_clear_error():
    trace = make_trace([{"duration_ms": 0.5, "op": "create"}])
    with pytest.raises(ExportError, match="no primitive exec lines"):
        build_span_tree(trace)


# ----------------------------------------------------------------- Chrome JSON --


def _nesting_errors(events, to_ns):
    """Events on one (pid, tid) that overlap without nesting, with times converted by to_ns."""
    tracks = defaultdict(list)
    for event in events:
        if event["ph"] == "X":
            start = to_ns(event["ts"])
            tracks[(event["pid"], event["tid"])].append(
                (start, start + to_ns(event["dur"]), event["name"])
            )
    errors = []
    for track, spans in tracks.items():
        stack = []
        for start, end, name in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1][1] <= start and not (stack[-1][1] == start == end):
                stack.pop()
            if stack and end > stack[-1][1]:
                errors.append(f"{track}: {name} [{start}, {end}] overlaps {stack[-1]}")
            stack.append((start, end, name))
    return errors


def assert_perfectly_nested(document):
    events = document["traceEvents"]
    exact = _nesting_errors(events, lambda us: Fraction(str(us)) * 1000)
    # Perfetto's JSON importer: int64(ts_us * 1000.0), separately for ts and dur.
    perfetto = _nesting_errors(events, lambda us: int(float(us) * 1000.0))
    assert exact == [] and perfetto == []


@pytest.mark.parametrize("timestamps", [False, True], ids=["synthetic", "timestamps"])
def test_chrome_trace_of_a_real_run_is_perfectly_nested(tmp_path, timestamps):
    trace = labelled_corpus_trace(INT8)
    if timestamps:
        trace = with_timestamps(trace)
    path = write_chrome_trace(trace, tmp_path / "trace.json")
    document = json.loads(path.read_text())
    assert_perfectly_nested(document)
    complete = [e for e in document["traceEvents"] if e["ph"] == "X"]
    tree = build_span_tree(trace, None, "all")
    assert len(complete) == len(tree)
    assert sum(e["cat"] == "primitive" for e in complete) == int(
        (trace.events["op"] == "exec").sum()
    )
    assert {e["tid"] for e in complete} == {0}  # a sequential run is one flame chart
    assert document["otherData"]["timeline"] == ("timestamps" if timestamps else "synthetic")
    conv_dts = {
        e["args"]["onednn.src_dt"]
        for e in complete
        if e["args"].get("onednn.kind") == "convolution"
    }
    assert conv_dts == {"f32", "u8"}  # fp32 calibration passes, then the int8 model


def test_chrome_trace_moves_overlapping_spans_to_other_tracks(tmp_path):
    t0 = 1_795_230_460_000.0
    rows = [
        # a graph partition logged around the primitives it ran, as oneDNN Graph does
        {"api": "graph", "kind": "convolution_post_ops", "ts_ms": t0, "duration_ms": 1.0},
        {"kind": "convolution", "ts_ms": t0 + 0.1, "duration_ms": 0.5},
        {"kind": "eltwise", "ts_ms": t0 + 0.7, "duration_ms": 0.2},
        # two primitives from concurrent threads, overlapping without nesting
        {"kind": "reorder", "ts_ms": t0 + 2.0, "duration_ms": 0.3},
        {"kind": "reorder", "ts_ms": t0 + 2.1, "duration_ms": 0.3},
        # tiny durations on the 1/8 us grid edge
        {"kind": "sum", "ts_ms": t0 + 3.0000001, "duration_ms": 0.0000001},
        {"kind": "sum", "ts_ms": t0 + 3.0000002, "duration_ms": 0.0001234},
    ]
    trace = make_trace(rows)
    document = json.loads(write_chrome_trace(trace, tmp_path / "t.json").read_text())
    assert_perfectly_nested(document)
    complete = [e for e in document["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == 2 + len(rows)
    by_name = defaultdict(list)
    for event in complete:
        by_name[event["name"]].append(event)
    partition = by_name["graph:convolution_post_ops"][0]
    inside = by_name["convolution"][0]
    assert inside["tid"] == partition["tid"]  # nested in the partition, same track
    reorders = by_name["reorder"]
    assert reorders[0]["tid"] != reorders[1]["tid"]
    names = {e["args"]["name"] for e in document["traceEvents"] if e["name"] == "thread_name"}
    assert len(names) == 2


# ----------------------------------------------------------------- Jaeger JSON --


def assert_same_tree(expected, actual, tolerance_ns=1000):
    exp_spans = list(expected.walk())
    act_spans = list(actual.walk())
    assert [(d, s.level, s.name) for s, _, d in exp_spans] == [
        (d, s.level, s.name) for s, _, d in act_spans
    ]
    origin_exp, origin_act = expected.root.start_ns, actual.root.start_ns
    for (exp, exp_parent, _), (act, act_parent, _) in zip(exp_spans, act_spans, strict=True):
        assert act.attributes == pytest.approx(exp.attributes)
        assert abs(act.duration_ns - exp.duration_ns) < tolerance_ns
        assert abs((act.start_ns - origin_act) - (exp.start_ns - origin_exp)) < tolerance_ns
        assert (exp_parent is None) == (act_parent is None)
        if exp_parent is not None:
            assert act_parent.name == exp_parent.name


@pytest.mark.parametrize("timestamps", [False, True], ids=["synthetic", "timestamps"])
def test_jaeger_json_round_trips_through_its_reader(tmp_path, timestamps):
    trace = labelled_corpus_trace(INT8)
    if timestamps:
        trace = with_timestamps(trace)
    path = write_jaeger_json(trace, tmp_path / "trace.json", service_name="resnet")
    document = json.loads(path.read_text())
    (data,) = document["data"]
    assert data["processes"]["p1"]["serviceName"] == "resnet"
    assert all(len(s["spanID"]) == 16 and s["traceID"] == data["traceID"] for s in data["spans"])
    (tree,) = read_jaeger_json(path)
    expected = build_span_tree(trace)
    assert tree.trace_id == expected.trace_id and tree.service_name == "resnet"
    assert tree.timeline == expected.timeline and tree.iterations == expected.iterations == [
        1,
        2,
        3,
    ]
    assert tree.iterations_total == 4
    assert_same_tree(expected, tree)


def test_jaeger_json_is_deterministic(tmp_path):
    trace = small_run()
    first = write_jaeger_json(trace, tmp_path / "a.json").read_bytes()
    second = write_jaeger_json(trace, tmp_path / "b.json").read_bytes()
    assert first == second


def test_jaeger_json_reader_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"traceEvents": []}')
    with pytest.raises(ValueError, match="not Jaeger JSON"):
        read_jaeger_json(path)


# -------------------------------------------------------------------- benchdnn --


def _cases(path):
    return [line for line in path.read_text().splitlines() if line.startswith("--")]


def test_benchdnn_one_case_per_distinct_primitive(tmp_path):
    trace = labelled_corpus_trace(INT8)
    path = write_benchdnn(trace, tmp_path / "cases.txt")
    text = path.read_text()
    cases = _cases(path)
    execs = trace.events[trace.events["op"] == "exec"]
    distinct = (
        execs[["engine", "kind", "prop", "mds", "attrs", "aux", "problem"]]
        .astype(str)
        .drop_duplicates()
    )
    assert len(cases) == len(distinct)
    assert len(set(cases)) == len(cases)
    assert "PLACEHOLDER" in text and "0.5" in text.split("\n\n")[0]
    header_calls = sum(
        int(line.split("calls=")[1].split()[0]) for line in text.splitlines() if "calls=" in line
    )
    assert header_calls == len(execs)
    int8_conv = [c for c in cases if c.startswith("--conv") and "--dt=u8:s8:u8" in c]
    assert int8_conv and all(
        "--dir=FWD_I" in c and "--attr-scales=src0:common:0.5" in c for c in int8_conv
    )


def _one_case(tmp_path, line: str) -> str:
    trace = dnnprof.parse([line])
    (case,) = _cases(write_benchdnn(trace, tmp_path / "c.txt"))
    return case


def test_benchdnn_case_matches_the_reference_int8_conv(tmp_path):
    line = (
        "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_vnni,forward_inference,"
        "src:u8::blocked:acdb::f0 wei:s8:a:blocked:AcdB32a4b::f8:zpm1 bia:f32:a:blocked:a::f0 "
        "dst:u8::blocked:acdb::f0,attr-scratchpad:user attr-scales:src0:0:f32+dst:0:f32+wei:1:f32 "
        "attr-zero-points:src0:0:s32 attr-post-ops:eltwise_relu,alg:convolution_direct,"
        "mb4_ic16oc32_ih28oh26kh3sh1dh0ph0_iw28ow26kw3sw1dw0pw0,0.04"
    )
    assert _one_case(tmp_path, line) == (
        "--conv --reset --allow-enum-tags-only=0 --engine=cpu --dir=FWD_I --alg=direct "
        "--dt=u8:s8:u8 --bia-dt=f32 --stag=acdb --wtag=any --dtag=acdb "
        "--attr-post-ops=eltwise_relu --attr-scales=src0:common:0.5+dst:common:0.5+wei:per_oc "
        "--attr-zero-points=src0:common:1 --attr-scratchpad=user "
        "mb4_ic16oc32_ih28oh26kh3sh1dh0ph0_iw28ow26kw3sw1dw0pw0"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (  # oneDNN v2.4 (MXNet), dnnl_verbose with timestamps
            "dnnl_verbose,1795230264995.295898,exec,cpu,pooling_v2,jit:avx512_core,forward_inference,"
            "src_f32::blocked:acdb:f0 dst_f32::blocked:acdb:f0 ws_undef::undef::f0,,alg:pooling_max,"
            "mb1ic64_ih112oh56kh3sh2dh0ph1_iw112ow56kw3sw2dw0pw1,0.13",
            "--pool --reset --allow-enum-tags-only=0 --engine=cpu --dir=FWD_I --alg=max --dt=f32:f32 "
            "--tag=acdb mb1ic64_ih112oh56kh3sh2dh0ph1_iw112ow56kw3sw2dw0pw1",
        ),
        (  # v2 batch norm with the old scale-shift flag
            "dnnl_verbose,exec,cpu,batch_normalization,bnorm_jit:avx512_core,forward_inference,"
            "data_f32::blocked:acdb:f0 diff_undef::undef::f0,,flags:GS,mb1ic64ih112iw112,0.1",
            "--bnorm --reset --allow-enum-tags-only=0 --engine=cpu --dir=FWD_I --flags=GCH --dt=f32 "
            "--tag=acdb mb1ic64ih112iw112",
        ),
        (  # v3 reorder with compensation on the destination
            "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:s8::blocked:abcd::f0 "
            "dst:s8:p:blocked:AcdB64a4b::f8:zpm1,attr-scratchpad:user,,512x512x3x3,7.8",
            "--reorder --reset --allow-enum-tags-only=0 --engine=cpu --sdt=s8 --ddt=s8 --stag=abcd "
            "--dtag=AcdB64a4b --oflag=zp_comp:1 --attr-scratchpad=user 512x512x3x3",
        ),
        (  # v3 matmul with a masked bias and fpmath
            "onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx512_core_bf16,undef,"
            "src:f32::blocked:ab::f0 wei:f32:a:blocked:BA16a64b2a::f0 bia:f32::blocked:ab::f0_mask2 "
            "dst:f32::blocked:ab::f0,attr-fpmath:bf16 attr-post-ops:sum,,1x512:512x1000,0.1",
            "--matmul --reset --allow-enum-tags-only=0 --engine=cpu --dt=f32:f32:f32 --bia-dt=f32 "
            "--bia_mask=2 --stag=ab --wtag=any --dtag=ab --attr-post-ops=sum --attr-fpmath=bf16 "
            "1x512:512x1000",
        ),
        (  # v3 eltwise
            "onednn_verbose,v1,primitive,exec,cpu,eltwise,jit:avx512_core,forward_inference,"
            "data:f32::blocked:abcd::f0 diff:undef::undef:::,,alg:eltwise_gelu_erf alpha:0 beta:0,"
            "2x64x28x28,0.1",
            "--eltwise --reset --allow-enum-tags-only=0 --engine=cpu --dir=FWD_I --alg=eltwise_gelu_erf "
            "--alpha=0 --beta=0 --dt=f32 --tag=abcd 2x64x28x28",
        ),
        (  # v0 mkldnn_verbose: no engine, formats only
            "mkldnn_verbose,exec,convolution,jit:avx2,forward_inference,fsrc:nChw8c fwei:OIhw8i8o "
            "fbia:x fdst:nChw8c,alg:convolution_direct,mb1_g1ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1,0.5",
            "--conv --reset --allow-enum-tags-only=0 --engine=cpu --dir=FWD_I --alg=direct "
            "--bia-dt=undef --stag=nChw8c --wtag=OIhw8i8o --dtag=nChw8c "
            "mb1_g1ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1",
        ),
    ],
    ids=["v2-pool", "v2-bnorm", "v3-reorder", "v3-matmul", "v3-eltwise", "v0-conv"],
)
def test_benchdnn_cases_for_each_dialect(tmp_path, line, expected):
    assert _one_case(tmp_path, line) == expected


def test_benchdnn_writes_unconvertible_kinds_as_comments(tmp_path):
    line = (
        "onednn_verbose,v1,primitive,exec,cpu,gemm_api,,undef,src_f32::blocked:ab:f0,,,2x3:3x4,0.1"
    )
    trace = dnnprof.parse([line])
    text = write_benchdnn(trace, tmp_path / "c.txt").read_text()
    assert _cases(tmp_path / "c.txt") == []
    assert "no driver for primitive kind 'gemm_api'" in text


# ------------------------------------------------------------ collector down --


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_collector_down_is_a_quick_clear_error_and_leaves_the_trace_file_intact(tmp_path, protocol):
    stored = small_run().save(tmp_path / "run.trace")
    before = hashlib.sha256(stored.read_bytes()).hexdigest()
    trace = Trace.load(stored)
    port = unused_port()
    started = time.monotonic()
    with pytest.raises(ExportError) as error:
        export_otlp(trace, f"http://127.0.0.1:{port}", protocol=protocol, retries=2, timeout_s=2)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert f"127.0.0.1:{port}" in message and "3 attempts" in message
    assert "Jaeger" in message and "trace itself is unchanged" in message
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == before


def test_legacy_collector_down_is_a_clear_error():
    try:
        _exporter_class()
    except ExportError as error:  # the optional extra; CI installs it, so there this fails
        missing_dependency(str(error))
    port = unused_port()
    with pytest.raises(ExportError, match=f"Jaeger collector at 127.0.0.1:{port}"):
        export_jaeger_legacy(small_run(), f"http://127.0.0.1:{port}/api/traces", retries=1)


def test_legacy_exporter_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.jaeger.thrift", None)
    with pytest.raises(
        ExportError, match="pip install opentelemetry-exporter-jaeger-thrift==1.21.0"
    ):
        export_jaeger_legacy(small_run(), "http://127.0.0.1:1/api/traces")


def test_bad_endpoint_is_a_clear_error():
    with pytest.raises(EndpointError, match="expected http://HOST:PORT") as raised:
        export_otlp(small_run(), "ftp://somewhere")
    assert raised.value.exit_code == 2  # the user's to fix, not a collector that is down


def test_synthetic_timeline_without_any_clock_is_placed_at_export_time():
    trace = make_trace([{"duration_ms": 0.5}])
    assert np.isnan(trace.events["ts_ms"]).all()
    before = time.time_ns()
    tree = build_span_tree(trace)
    assert before - 1000 <= tree.root.start_ns <= time.time_ns()
