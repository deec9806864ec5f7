"""Issue 12, part B: numbers and logs. One test per row of the adversarial pass (4-11, 15,
16, 18, 21-23, 26) and per shape of log users paste (tests/data/pasted/)."""

from __future__ import annotations

import io
import json
import math
import os
import random
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

import dnnprof
from dnnprof.check import check_traces
from dnnprof.check.stats import compare_samples, mann_whitney, min_iterations, min_p_value
from dnnprof.cli.console import describe_reconstruction, print_trace_summary
from dnnprof.display import html_text, json_text, markup_text, safe_text
from dnnprof.errors import TraceFileError
from dnnprof.parsers.flops import _taps_inside
from dnnprof.reconstruct import reconstruct
from dnnprof.reports.compare import Comparison
from dnnprof.reports.html import render_html
from dnnprof.trace import Trace
from support.corpus import CORPUS, DATA

EAGER = CORPUS / "torch_resnet50_fp32_eager_b1.log"
PASTED = DATA / "pasted"
PREFIX = (
    "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,forward_inference,"
    "src:f32:a:blocked:abcd::f0 wei:f32:a:blocked:Acdb16a::f0 bia:undef::undef::: "
    "dst:f32:a:blocked:aBcd16b::f0,attr-scratchpad:user,alg:convolution_direct,"
)
PROBLEM = "mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3"


def conv(time_text: str, problem: str = PROBLEM, impl: str = "jit:avx512_core") -> str:
    return PREFIX.replace("jit:avx512_core", impl) + problem + "," + time_text + "\n"


def _cli(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "dnnprof", *args], capture_output=True,
                          input=stdin, env=env, check=False, timeout=300)


def _strict_json(text: str):
    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def eager_lines() -> list[str]:
    return EAGER.read_text().splitlines(keepends=True)


@pytest.fixture(scope="module")
def eager_trace() -> Trace:
    return reconstruct(dnnprof.parse(EAGER))


# ------------------------------------------------------------------ row 4 ---

def _taps_by_loop(out_size, in_size, kernel, stride, dilation, pad):
    return sum(1 for o in range(out_size) for k in range(kernel)
               if 0 <= o * stride + k * (dilation + 1) - pad < in_size)


def test_row4_flops_in_closed_form_agree_with_counting_and_never_loop():
    rng = random.Random(4)
    for _ in range(3000):
        case = (rng.randint(1, 30), rng.randint(1, 30), rng.randint(1, 9), rng.randint(1, 5),
                rng.randint(0, 3), rng.randint(-4, 9))
        assert _taps_inside(*case) == _taps_by_loop(*case), case
    trace = dnnprof.parse([conv("1.0")])  # grammar built before timing the huge kernel
    started = time.perf_counter()
    trace = dnnprof.parse([conv("1.0", PROBLEM.replace("kh7", "kh999999999"))])
    assert time.perf_counter() - started < 1.0
    assert trace.summary()["exec"] == 1 and np.isfinite(trace.events["flops"].iloc[0])
    # a product beyond a float is no FLOP count, not an OverflowError
    trace = dnnprof.parse([conv("1.0", PROBLEM.replace("mb1_", "mb" + "9" * 400 + "_"))])
    assert trace.summary()["exec"] == 1 and np.isnan(trace.events["flops"].iloc[0])


# ------------------------------------------------------------------ row 5 ---

def test_row5_rank_test_p_value_cannot_overflow():
    for n in (515, 600, 5000, 10**6):
        assert 0.0 <= min_p_value(n, n) < 1e-300
    assert min_p_value(3, 3) == pytest.approx(1 / 20)  # exact where it fits
    assert min_iterations(0.005) == 5
    rng = np.random.default_rng(5)
    base, new = rng.normal(10, 1, 600), rng.normal(11, 1, 600)
    assert mann_whitney(base, new).p_slower < 1e-20
    assert compare_samples("total", base, new, 0.05, 0.01).verdict == "slower"


def _periodic_log(iterations: int, scale: float) -> list[str]:
    shapes = [PROBLEM, PROBLEM.replace("oc64", "oc32"), PROBLEM.replace("oc64", "oc16")]
    rng = np.random.default_rng(iterations)
    return [conv(f"{scale * (1 + k) * rng.uniform(0.95, 1.05):.4f}", shape)
            for _ in range(iterations) for k, shape in enumerate(shapes)]


def test_row5_check_with_600_iterations_per_side_gives_a_verdict():
    base = reconstruct(dnnprof.parse(_periodic_log(601, 1.0)))
    new = reconstruct(dnnprof.parse(_periodic_log(601, 1.3)))
    report = check_traces(base, new)
    assert report.baseline.iterations >= 515 and report.new.iterations >= 515
    assert not report.passed and report.total.verdict == "slower"


def test_rows7_21_check_leaves_out_iterations_of_unknown_duration(tmp_path):
    base = reconstruct(dnnprof.parse(_periodic_log(21, 1.0)))
    lines = _periodic_log(21, 1.0)
    lines[31] = lines[31].rsplit(",", 1)[0] + ",xx\n"  # one line of iteration 10 without a time
    report = check_traces(base, reconstruct(dnnprof.parse(lines)))
    assert report.passed and report.new.iterations == report.baseline.iterations - 1
    assert any("1 iteration(s) left out" in note for note in report.notes)
    nothing = tmp_path / "nothing.log"
    nothing.write_text("".join(line.rsplit(",", 1)[0] + ",nan\n" for line in lines))
    base_path = base.save(tmp_path / "base.parquet")
    out = _cli("check", str(nothing), "--baseline", str(base_path))
    assert out.returncode == 2 and b"unknown duration" in out.stderr


# --------------------------------------------------------------- rows 6, 23 ---

def test_rows6_23_log_text_never_reaches_rich_markup_or_the_terminal(tmp_path):
    hostile = tmp_path / "hostile.log"
    hostile.write_text(
        conv("1.0", impl="jit:[/]") + conv("2.0", impl="x[/bold]y")
        + conv("3.0", impl="brg\x1b]0;pwned\x07\x1b[31mred\x1b[2J")
        + PREFIX.replace("convolution", "conv[/]") + PROBLEM + ",4.0\n"
    )
    out = _cli("parse", str(hostile))
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "\x1b" not in text and "\x07" not in text
    assert "[/bold]" in text and "\\x1b" in text  # shown as written, escapes visible
    # the same through the API printer, into a terminal-like console
    buffer = io.StringIO()
    print_trace_summary(dnnprof.parse(hostile), console=Console(file=buffer, width=200))
    assert "\x1b]0;" not in buffer.getvalue() and "conv[/]" in buffer.getvalue()


def test_display_helpers():
    assert safe_text("a\x1b[31mb\u202ec\n") == "a\\x1b[31mb\\u202ec\\n"
    assert safe_text("plain text") == "plain text" and safe_text(None) == ""
    assert safe_text("line 1\x1b\nline 2", lines=True) == "line 1\\x1b\nline 2"
    assert markup_text("x[/]\x1b") == "x\\[/]\\x1b"
    assert html_text("<b>\u202e</b>") == "&lt;b&gt;\\u202e&lt;/b&gt;"
    assert _strict_json(json_text({"a": math.nan, "b": [math.inf, np.float64("nan"), 1.5]})) == {
        "a": None, "b": [None, None, 1.5]}


# --------------------------------------------------------------- rows 7, 8 ---

@pytest.fixture(scope="module")
def unusable_traces(eager_lines) -> dict[str, Trace]:
    traces = {}
    for value in ("nan", "inf", "1e309", "-1.5"):
        lines = [line.rsplit(",", 1)[0] + f",{value}\n" if ",exec," in line else line
                 for line in eager_lines]
        traces[value] = reconstruct(dnnprof.parse(lines))
    return traces


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-1.5"])
def test_rows7_8_unusable_durations_crash_no_consumer(unusable_traces, value, tmp_path):
    trace = unusable_traces[value]
    assert trace.unknown_durations == 844 and trace.events["duration_ms"].isna().all()
    assert trace.summary()["total_exec_ms"] == 0.0
    assert any("unknown duration" in w for w in trace.metadata.warnings)
    html = render_html(Comparison.from_traces([trace]))  # row 7: report
    assert "<html" in html
    for fmt in ("chrome_trace", "jaeger_json"):  # row 8: exporters
        dnnprof.export(trace, fmt, tmp_path / f"{fmt}.json")
        json.loads((tmp_path / f"{fmt}.json").read_text())
    saved = trace.save(tmp_path / "t.parquet")
    assert Trace.load(saved).unknown_durations == 844


def test_rows7_8_a_stored_trace_with_infinite_durations_loads_with_them_unknown(tmp_path):
    trace = dnnprof.parse([conv("1.5"), conv("2.5")])
    trace.events["duration_ms"] = [math.inf, -3.0]  # as another writer might have stored them
    path = trace.save(tmp_path / "t.parquet")
    loaded = Trace.load(path)
    assert loaded.unknown_durations == 2
    assert any("infinite, negative" in w for w in loaded.metadata.warnings)
    dnnprof.export(loaded, "chrome_trace", tmp_path / "c.json")


# ------------------------------------------------------------- rows 9-11, 22 ---

def _rewrite(path, **columns):
    """The stored trace with some columns replaced (None drops one), metadata kept."""
    table = pq.read_table(path)
    for name, values in columns.items():
        index = table.schema.get_field_index(name)
        table = (table.remove_column(index) if values is None
                 else table.set_column(index, name, pa.array(values)))
    pq.write_table(table, path)


def _with_metadata(path, raw: bytes):
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"dnnprof"] = raw
    pq.write_table(table.replace_schema_metadata(meta), path)


@pytest.fixture()
def stored(tmp_path):
    path = tmp_path / "t.parquet"
    dnnprof.parse([conv("1.5"), conv("2.5"), conv("3.5")]).save(path)
    return path


def test_row9_flipped_bits_load_or_fail_with_trace_file_error(stored):
    data = bytearray(stored.read_bytes())
    for offset in range(8, len(data) - 8, max(1, len(data) // 150)):
        flipped = bytearray(data)
        flipped[offset] ^= 0x10
        stored.write_bytes(flipped)
        try:
            Trace.load(stored).summary()
        except TraceFileError:
            pass


@pytest.mark.parametrize("raw", [b"[1,2,3]", b"null", b"42", b'"text"', b"{broken"])
def test_row10_metadata_that_is_not_an_object_is_a_trace_file_error(stored, raw):
    _with_metadata(stored, raw)
    with pytest.raises(TraceFileError, match="metadata"):
        Trace.load(stored)


def test_row10_metadata_fields_of_the_wrong_type_are_ignored_and_named(stored):
    _with_metadata(stored, json.dumps({
        "format_version": 1, "warnings": 5, "counts": {"lines": "x", "exec": 3},
        "wall_ms": "abc", "threads": True, "unparsed_samples": ["not a dict"],
        "reconstruction": {"iterations": [1], "mode": "markers"},
    }).encode())
    trace = Trace.load(stored)
    assert trace.metadata.counts.exec == 3 and trace.metadata.counts.lines == 0
    assert trace.metadata.wall_ms is None and trace.metadata.reconstruction.iterations == {}
    named = " ".join(trace.metadata.warnings)
    for field in ("warnings", "counts.lines", "wall_ms", "threads", "reconstruction.iterations"):
        assert field in named
    print_trace_summary(trace, console=Console(file=io.StringIO()))
    describe_reconstruction(trace)


def test_row11_a_text_line_column_is_a_trace_file_error(stored):
    _rewrite(stored, line=["a", "b", "c"])
    with pytest.raises(TraceFileError, match="damaged trace data"):
        Trace.load(stored)


def test_row11_text_durations_are_a_trace_file_error(stored):
    _rewrite(stored, duration_ms=["1.5", "x", "2"])
    with pytest.raises(TraceFileError, match="damaged trace data"):
        Trace.load(stored)


@pytest.mark.parametrize("column", ["op", "kind", "duration_ms"])
def test_row22_a_trace_without_its_core_columns_is_refused(stored, column):
    _rewrite(stored, **{column: None})
    with pytest.raises(TraceFileError, match=f"no {column} column"):
        Trace.load(stored)


def test_row22_report_of_such_a_trace_exits_2(stored, tmp_path):
    _rewrite(stored, op=None)
    out = _cli("report", str(stored), "-o", str(tmp_path / "r.html"))
    assert out.returncode == 2 and b"no op column" in out.stderr
    assert b"Traceback" not in out.stderr


# ----------------------------------------------------------------- row 15 ---

def test_row15_stdin_with_a_bad_byte_under_the_c_locale(tmp_path):
    code = ("import sys, dnnprof; t = dnnprof.parse(sys.stdin); t.save(sys.argv[1]); "
            "print(t.summary()['exec'], t.summary()['foreign'])")
    log = (conv("1.0").encode() + b"caf\xff output\n" + conv("2.0").replace(
        "jit:", "j\xe9t:").encode("latin-1"))
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.parquet")], input=log,
                         capture_output=True, env=env, check=False, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.split() == [b"2", b"1"]
    impls = set(Trace.load(tmp_path / "t.parquet").events["impl"].astype(str))
    assert "j\ufffdt:avx512_core" in impls


# ----------------------------------------------------------------- row 16 ---

def test_row16_one_iteration_is_one_pass_without_a_steady_state(eager_lines):
    one = reconstruct(dnnprof.parse(eager_lines[429:640]))  # measured iteration 2 alone
    iterations = one.metadata.reconstruction.iterations
    assert iterations["count"] == 1 and iterations["measure"] == [] and iterations["warmup"] == []
    assert one.summary()["steady"] is None and not one.has_steady_state
    assert one.summary()["total_exec_ms"] == pytest.approx(40.6252, abs=1e-3)  # the truth
    assert "one pass, no steady state" in describe_reconstruction(one)[1]


@pytest.mark.parametrize("cut, code", [(540, "iterations_missing"), (120, "layers_missing"),
                                       (None, "iterations_missing")])
def test_row16_check_of_a_truncated_run_fails(eager_lines, eager_trace, cut, code):
    part = eager_lines[429:640] if cut is None else eager_lines[:cut]
    report = check_traces(eager_trace, reconstruct(dnnprof.parse(part)))
    assert not report.passed
    assert any(f.code == code and f.severity == "error" for f in report.findings)


def test_row16_check_of_the_full_run_against_itself_has_no_coverage_finding(eager_trace):
    report = check_traces(eager_trace, eager_trace)
    assert not [f for f in report.findings if f.check == "coverage"]


def test_row16_truncated_run_exits_1_from_the_command_line(eager_lines, eager_trace, tmp_path):
    baseline = eager_trace.save(tmp_path / "base.parquet")
    cut = tmp_path / "cut.log"
    cut.write_text("".join(eager_lines[:540]))
    out = _cli("check", str(cut), "--baseline", str(baseline))
    assert out.returncode == 1 and b"iterations" in out.stdout


# ----------------------------------------------------------------- row 18 ---

def test_row18_export_of_a_large_trace_does_not_crash(eager_lines, tmp_path):
    trace = dnnprof.parse(eager_lines * 12)  # ~10,000 events
    for fmt in ("chrome_trace", "jaeger_json"):
        dnnprof.export(trace, fmt, tmp_path / f"{fmt}.json")
        assert (tmp_path / f"{fmt}.json").stat().st_size > 100_000


# ----------------------------------------------------------------- row 21 ---

def test_row21_odd_numbers_are_kept_flagged_and_left_out_of_sums():
    times = ["1.5", "-1.5", "nan", "inf", "1e309", "1_000", "\u0661\u0662", "2.5", "9e99"]
    trace = dnnprof.parse([conv(t) for t in times])
    summary = trace.summary()
    assert summary["exec"] == len(times) and summary["unparsed"] == 0
    assert summary["unknown_durations"] == 7
    assert summary["total_exec_ms"] == pytest.approx(4.0)
    warnings = " ".join(summary["warnings"])
    assert "'1_000'" in warnings and "negative" in warnings
    _strict_json(json_text(summary))


def test_row21_timestamps_going_backwards_are_warned():
    stamped = [conv(t).replace("onednn_verbose,v1,", f"onednn_verbose,v1,{ts},")
               for t, ts in (("1.0", "1000.0"), ("1.0", "1002.0"), ("1.0", "999.0"),
                             ("1.0", "1" * 400))]
    trace = dnnprof.parse(stamped)
    warnings = " ".join(trace.metadata.warnings)
    assert "timestamps go backwards 1 times (first at line 3)" in warnings
    assert "overflow" in warnings and np.isfinite(trace.events["start_ms"]).all()


def test_row21_parse_json_is_valid_json(tmp_path):
    log = tmp_path / "odd.log"
    log.write_text("".join(conv(t) for t in ("nan", "inf", "-1")))
    out = _cli("parse", str(log), "--json", "--no-layers")
    assert out.returncode == 0, out.stderr.decode()
    data = _strict_json(out.stdout.decode())
    assert data["unknown_durations"] == 3 and data["kinds"]["convolution"]["mean_ms"] is None


# ----------------------------------------------------------------- row 26 ---

def test_row26_bidi_overrides_are_neutralised_in_html(eager_trace):
    trace = Trace(eager_trace.events.copy(), eager_trace.metadata.copy())
    trace.events["layer"] = trace.events["layer"].cat.rename_categories(
        lambda name: f"{name}\u202egnp.exe" if name else name)
    html = render_html(Comparison.from_traces([trace]))
    assert "\u202e" not in html and "\\u202egnp.exe" in html


# ------------------------------------------------------------ pasted logs ---

def test_pasted_exec_lines_without_a_time_are_events_of_unknown_duration():
    trace = dnnprof.parse(PASTED / "no_time.log")
    summary = trace.summary()
    assert summary["unparsed"] == 0 and summary["exec"] == 4 and summary["create"] == 3
    assert summary["unknown_durations"] == 3
    gpu = trace.events[trace.events["engine"] == "gpu"]
    assert list(gpu["kind"].astype(str)) == ["convolution", "eltwise"]
    assert gpu["duration_ms"].isna().all()
    assert list(gpu["problem"].astype(str))[0] == "mb16_ic16oc16_ih7oh7kh3sh1dh0ph1_iw7ow7kw3sw1dw0pw1"
    start = trace.events[trace.events["cache"] == "start"].iloc[0]
    assert start["op"] == "create" and start["problem"] == "mb2ic1oc1"
    assert any("without a time field" in w for w in summary["warnings"])


def test_pasted_create_nested_lines_count_as_creates():
    trace = dnnprof.parse(PASTED / "no_time.log")
    nested = trace.events[trace.events["op"] == "create_nested"]
    assert len(nested) == 1 and nested["duration_ms"].iloc[0] == pytest.approx(0.526123)
    assert trace.summary()["messages"] == 0


def test_pasted_times_that_are_not_numbers_are_kept():
    trace = dnnprof.parse(PASTED / "bad_time.log")
    summary = trace.summary()
    assert summary["exec"] == 4 and summary["unparsed"] == 0 and summary["unknown_durations"] == 2
    assert summary["total_exec_ms"] == pytest.approx(3.0)
    assert any("'0.141846.'" in w for w in summary["warnings"])


def test_pasted_graph_op_lines_and_partitions_under_primitive():
    trace = dnnprof.parse(PASTED / "graph_ops.log")
    summary = trace.summary()
    assert summary["graph"] == 3 and summary["unparsed"] == 0 and summary["exec"] == 0
    graph = trace.events[trace.events["api"] == "graph"]
    assert list(graph["kind"].astype(str)) == ["_gen_index", "concat", "sdp"]
    assert list(graph["src_dt"].astype(str)) == ["f32", "f32", "f32"]
    assert list(graph["dst_dt"].astype(str)) == ["s32", "f32", "f32"]
    assert list(graph["attrs"].astype(str))[:2] == ["axis:2", "axis:1,keep_dims:0"]
    assert summary["graph_exec_ms"] == pytest.approx(0.193115 + 0.0125 + 0.02768)


def test_pasted_graph_lines_of_the_3_3_era_without_a_template():
    trace = dnnprof.parse(PASTED / "graph_v33.log")
    summary = trace.summary()
    assert summary["graph"] == 1 and summary["exec"] == 1 and summary["unparsed"] == 0
    graph = trace.events[trace.events["api"] == "graph"].iloc[0]
    assert graph["kind"] == "convolution_post_ops" and graph["duration_ms"] == 5.44092
    assert graph["impl"] == ""


def test_pasted_decimal_comma_times_are_read_as_decimals_with_a_warning():
    trace = dnnprof.parse(PASTED / "decimal_comma.log")
    assert trace.summary()["unparsed"] == 0
    assert list(trace.events["duration_ms"]) == [0.0539, 9.4747, 8.9012, 1.25]
    conv_rows = trace.events[trace.events["kind"] == "convolution"]
    assert set(conv_rows["problem"].astype(str)) == {
        "mb48_ic48oc192_ih32oh32kh1sh1dh0ph0_iw32ow32kw1sw1dw0pw0"}
    assert conv_rows["flops"].notna().all()
    assert sum("decimal comma" in w for w in trace.metadata.warnings) == 1


def test_a_legitimate_integer_problem_and_time_is_not_a_decimal_comma():
    line = ("dnnl_verbose,exec,cpu,eltwise,jit:avx2,forward_inference,data_f32::blocked:a:f0 "
            "diff_undef::undef::f0,,alg:eltwise_relu alpha:0 beta:0,1000,2\n")
    trace = dnnprof.parse([line])
    assert list(trace.events["duration_ms"]) == [2.0]
    assert list(trace.events["problem"].astype(str)) == ["1000"]


def test_pasted_lines_behind_a_prefix_are_not_foreign():
    trace = dnnprof.parse(PASTED / "prefixed.log")
    summary = trace.summary()
    assert (summary["exec"], summary["messages"], summary["info"]) == (4, 2, 1)
    assert summary["foreign"] == 1 and summary["lines"] == 8
    assert trace.metadata.lines_with_prefix == 7
    assert trace.metadata.foreign_samples == ["a framework print without any verbose line"]
