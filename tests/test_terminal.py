"""The terminal answers "which layer?": slowest layers, stages and what ran outside oneDNN,
every line within 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnnprof.parsers.shapes import layer_shape, primitive_shape
from support.ci import require_torch

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
INT8_LOG = CORPUS / "torch_resnet50_int8_fx_b1.log"


def _dnnprof(*args: str, columns: int = 80, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run([sys.executable, "-m", "dnnprof", *args], capture_output=True,
                         text=True, check=False, env=env, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_human_shapes():
    assert primitive_shape(
        "convolution", "mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1"
    ) == "conv 3×3 256→256 @14×14 s1"
    assert primitive_shape(
        "convolution", "g32mb1_ic32oc32_ih112oh112kh3sh1dh0ph1_iw112ow112kw3sw1dw0pw1"
    ) == "dwconv 3×3 32 @112×112 s1"
    assert primitive_shape("inner_product", "mb1ic2048oc1000") == "fc 2048→1000"
    # a line cut after the kernel (found by tests/test_parser_fuzz.py): no stride, no crash
    assert primitive_shape("convolution", "mb1_ic64oc256_ih56oh56kh1") == "conv 1 64→256 @56 s1"
    assert primitive_shape("reorder", "64x3x7x7") == "reorder 64×3×7×7"
    assert primitive_shape("eltwise", "1x64x56x56") == "eltwise 64 @56×56"
    conv1 = {"type": "Conv2d", "out_shape": [1, 64, 112, 112], "params": {
        "in_channels": 3, "out_channels": 64, "kernel_size": [7, 7], "stride": [2, 2],
        "groups": 1}}
    assert layer_shape(conv1) == "conv 7×7 3→64 @112×112 s2"
    assert layer_shape({"type": "Linear", "params": {"in_features": 512,
                                                     "out_features": 1000}}) == "fc 512→1000"


def test_parse_fits_80_columns_and_names_the_layers():
    out = _dnnprof("parse", str(INT8_LOG), "--model", "resnet50").stdout
    assert _widest(out) <= 80, "\n".join(line for line in out.splitlines() if len(line) > 80)
    assert "Slowest 10 of 54 layers" in out
    for text in ("layer4.0.downsample.0", "conv 1×1 1024→2048 @7×7 s2", "bn+relu",
                 "ResNet stages", "conv5_x", "Layers outside oneDNN", "layer1.0.relu3",
                 "conv 3×3 256→256 @14×14 s1"):
        assert text in out, text
    # a captured log: no markers, so the wall time outside oneDNN is unknown, and said so
    assert "their wall time is unknown" in out
    assert "mb1_ic" not in out  # full descriptors stay in --json, the report and --events


def test_a_wide_terminal_shows_more_columns():
    narrow = _dnnprof("parse", str(INT8_LOG), "--model", "resnet50").stdout
    wide = _dnnprof("parse", str(INT8_LOG), "--model", "resnet50", columns=140).stdout
    assert "Conv2d" in wide and "Conv2d" not in narrow
    assert _widest(wide) <= 140


@pytest.fixture(scope="module")
def aten_run(tmp_path_factory):
    """FP32 eager ResNet-18 at 64x64: ATen runs every convolution but conv1 itself."""
    require_torch()
    root = tmp_path_factory.mktemp("aten")
    out = _dnnprof("trace", "resnet18", "--input-size", "64", "--warmup", "1", "--iters", "3",
                   "--no-report", "--no-conditions", "--out", str(root / "run"))
    return out.stdout, root / "run"


def test_layers_outside_onednn_with_their_share_of_wall_time(aten_run):
    import dnnprof
    from dnnprof.cli.layer_tables import outside_onednn

    _, run_dir = aten_run
    trace = dnnprof.open(run_dir)
    inside = set(trace.by_layer()["layer"])
    outside = outside_onednn(trace)
    assert not inside & set(outside["layer"])
    convs = outside[outside["layer_type"] == "Conv2d"]
    # which convolutions ATen keeps is its own size rule: at 64x64 most of them
    assert len(convs) >= 10 and "layer1.0.conv1" in set(convs["layer"])
    assert outside["wall_ms"].notna().all() and (outside["wall_ms"] >= 0).all()
    share = outside["share"].sum()
    coverage = trace.metadata.coverage["median_share"]
    # what ran outside oneDNN and what ran inside make up (about) the iteration
    assert 0.3 < share < 1.05 and share + coverage == pytest.approx(1.0, abs=0.35)


def test_trace_prints_the_outside_list_within_80_columns(aten_run):
    import dnnprof
    from dnnprof.cli.layer_tables import outside_onednn

    out, run_dir = aten_run
    assert _widest(out) <= 80, "\n".join(line for line in out.splitlines() if len(line) > 80)
    # which outside layer is slowest moves from run to run: take it from the run itself
    outside = outside_onednn(dnnprof.open(run_dir))
    slowest = outside.sort_values("wall_ms", ascending=False)["layer"].iloc[0]
    assert "Layers outside oneDNN" in out and f"{slowest} " in out
    assert "of each iteration's wall time" in out
    assert "Slowest 1 of 1 layers" in out and "conv 7×7 3→64 @32×32 s2" in out


def test_a_damaged_descriptor_keeps_its_text():
    # found by the fuzz test: `ic` mangled to `i0`, so a convolution without input channels
    from dnnprof.parsers.shapes import primitive_shape

    damaged = "mb1_i0256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1"
    assert primitive_shape("convolution", damaged) == f"conv {damaged}"
    assert primitive_shape("convolution", damaged.replace("i0", "ic")) == "conv 3×3 256→256 @14×14 s1"


def test_a_layer_type_without_any_marker_span_says_so_instead_of_nan():
    # found on `dnnprof trace resnet50 --int8`: its ReLUs are fused away, no span times them
    import numpy as np
    import pandas as pd

    from dnnprof.cli.layer_tables import _outside_summary

    outside = pd.DataFrame({"layer": ["maxpool", "relu1", "relu2"],
                            "layer_type": ["MaxPool2d", "ReLU", "ReLU"],
                            "wall_ms": [0.09, np.nan, np.nan], "share": [0.01, np.nan, np.nan]})
    (line,) = _outside_summary(outside, timed=True)
    assert "MaxPool2d 1 (1%)" in line and "ReLU 2 (no marker span)" in line
    assert "nan" not in line.lower()
