"""`dnnprof report` and `dnnprof compare` at the terminal: every line within 80 columns, names
and human shapes whole, wider terminals showing more columns (run as whole processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnnprof.metadata import RunConditions
from dnnprof.reports.console import short_names
from support.corpus_traces import corpus_log, labelled_trace

FP32, INT8 = "torch_resnet50_fp32_eager_b1", "torch_resnet50_int8_fx_b1"
MXNET = "mxnet_resnet50_v1_fp32_b1"
UNRELIABLE = "2 CPU hogs kept both cores busy while timed"


def _dnnprof(*args: str, cwd: Path, columns: int | None = 80) -> str:
    """stdout of one dnnprof process; not a terminal, so rich takes COLUMNS (80 without it)."""
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    out = subprocess.run([sys.executable, "-m", "dnnprof", *args], capture_output=True,
                         text=True, check=False, env=env, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _too_wide(text: str, width: int = 80) -> list[str]:
    return [line for line in text.splitlines() if len(line) > width]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """fp32 and int8 ResNet-50 run folders with the model's layer names; int8 measured on
    an unreliable machine."""
    root = tmp_path_factory.mktemp("runs")
    for name in (FP32, INT8):
        trace = labelled_trace(name)
        if name == INT8:
            trace.metadata.conditions = RunConditions(verdict="unreliable",
                                                      reasons=[UNRELIABLE])
        trace.save(root / name / "trace.parquet")
    return root


@pytest.fixture(scope="module")
def compared(runs) -> dict[int, str]:
    """`dnnprof compare fp32/ int8/` at 80 and 160 columns."""
    args = ("compare", str(runs / FP32), str(runs / INT8), "-o", str(runs / "cmp.html"))
    return {width: _dnnprof(*args, cwd=runs, columns=width) for width in (80, 160)}


def test_compare_fits_80_columns_and_names_what_a_user_needs(compared):
    out = compared[80]
    assert not _too_wide(out), "\n".join(_too_wide(out))
    # the banner: the unreliable variant, and why, before any number
    assert out.startswith("Run conditions: resnet50 int8_fx was measured on an unreliable")
    assert "2 CPU hogs kept both cores busy" in " ".join(out.split())
    # variants by what tells them apart, with the run verdict and the speedup interval
    assert "names shown without resnet50" in out
    assert "fp32_eager" in out and "int8_fx" in out and "unreliable" in out
    assert "3.87x [" in out
    for text in ("convolution", "reorder",  # kinds
                 "layer3.0.conv2", "layer4.0.downsample.0", "conv 3×3 256→256 @14×14 s1",
                 "conv 1×1 1024→2048 @7×7 s2",  # layers and their shapes
                 "conv1", "conv2_x", "conv5_x", "fc",  # stages
                 "Primitives per iteration by role", "eltwise_relu x33",
                 "Reorders per iteration", "u8/s8/u8 100%", "Top primitives",
                 "Structural changes against the baseline", "Notes"):
        assert text in out, text
    assert "mb1_ic" not in out  # full descriptors stay in --json and the HTML report


def test_a_wide_terminal_shows_the_columns_80_drops(compared):
    narrow, wide = compared[80], compared[160]
    assert not _too_wide(wide, 160)
    assert max(len(line) for line in wide.splitlines()) > 80
    # oneDNN version and time, iterations, layer types, which layers run a primitive
    for text in ("oneDNN ms", "iters", "v3.12.0", "Conv2d", "layer3.0.conv2, layer3.1"):
        assert text in wide and text not in narrow, text


def test_a_log_without_columns_set_is_drawn_for_80(runs):
    out = _dnnprof("report", str(corpus_log(MXNET)), "-o", str(runs / "mx.html"), cwd=runs,
                   columns=None)
    assert not _too_wide(out), "\n".join(_too_wide(out))
    assert f"Variants (latency from oneDNN time): {MXNET}" in out
    for text in ("batch_normalization", "inner_product", "pooling_v2",  # kinds
                 "Slowest 15 of 56 layers", "conv28", "conv 1×1 512→1024 @14×14 s2",
                 "conv4_x", "Top primitives", "brgconv:avx512_core"):
        assert text in out, text
    assert "Run conditions:" not in out and "mb1_ic" not in out


def test_many_variants_split_into_tables_that_fit(runs):
    logs = [str(corpus_log(name)) for name in (
        FP32, INT8, "torch_resnet50_compile_freezing_b1", MXNET,
        "torch_resnet50_fp32_eager_b1_verbose_all")]
    out = _dnnprof("compare", *logs, "-o", str(runs / "five.html"), cwd=runs)
    assert not _too_wide(out), "\n".join(_too_wide(out))
    assert "oneDNN time by kind per iteration: ms (calls) (1/2)" in out
    assert "ResNet stages (ms per iteration) (2/2)" in out
    for short in ("torch_fp32_eager", "torch_int8_fx", "mxnet_v1_fp32"):
        assert short in out, short


def test_short_names():
    assert short_names([FP32, INT8]) == ({FP32: "fp32_eager", INT8: "int8_fx"},
                                         ["torch", "resnet50", "b1"])
    # a shared word goes wherever it stands; the separators of what is left stay
    assert short_names(["resnet50 fp32_eager", "resnet50_v1 mxnet_fp32"]) == (
        {"resnet50 fp32_eager": "eager", "resnet50_v1 mxnet_fp32": "v1 mxnet"},
        ["resnet50", "fp32"])
    # nothing left, nothing shared, or one name: the names as they are
    for names in (["a_b", "b_a"], ["x", "x #2"], ["fp32", "fp16"], ["one"]):
        assert short_names(names) == ({name: name for name in names}, [])
