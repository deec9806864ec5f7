"""The reconstructor on small hand-written logs: the thesis' Figure 3.4, markers, the pieces."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dnnprof
from dnnprof.reconstruct import LayerTableError, available_models, model_table, reconstruct
from dnnprof.reconstruct.align import align, match_quality
from dnnprof.reconstruct.iterations import find_period
from dnnprof.reconstruct.layers import normalize_row, normalize_table
from dnnprof.reconstruct.primitives import describe

DATA = Path(__file__).parent / "data"
FIGURE = DATA / "thesis_alexnet_fig3_4.log"
MARKERS = DATA / "markers_tiny.log"

# The last column of the thesis' Figure 3.4, line by line ("" = the two unlabelled reorders).
FIGURE_3_4 = ["conv1", "conv1", "pooling1", "conv2", "conv2", "pooling2", "conv3", "conv3",
              "conv4", "conv4", "conv5", "conv5", "pooling3", "", "", "fc1", "fc1", "fc2", "fc2",
              "fc3"]


def _figure_names() -> list[str]:
    return [name.replace("pooling", "pool") for name in FIGURE_3_4]


# ------------------------------------------------------------- mode 3 ----


def test_heuristic_reproduces_thesis_figure_3_4():
    result = reconstruct(dnnprof.parse(FIGURE))
    assert result.metadata["reconstruction"]["mode"] == "heuristic"
    ex = result.exec_events
    layers = list(ex["layer"].astype(str))
    for ours, theirs, reorder in zip(layers, _figure_names(), ex["is_reorder"], strict=True):
        if theirs:
            assert ours == theirs
        else:  # the thesis left reorders unlabelled; we charge them to their consumer, flagged
            assert reorder and ours == "fc1"
    reorders = ex[ex["is_reorder"]]
    assert set(reorders["attribution"].astype(str)) == {"charged"}
    assert set(reorders["reorder_class"].astype(str)) == {"activation_layout"}
    table = result.by_layer()
    assert list(table["layer"]) == ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5",
                                    "pool3", "fc1", "fc2", "fc3"]
    fc1 = table.set_index("layer").loc["fc1"]
    assert fc1["calls"] == 4 and fc1["reorders"] == 2
    assert fc1["reorder_ms"] == pytest.approx(0.00317383 + 0.00390625)
    assert fc1["total_ms"] == pytest.approx(3.41992 + 0.00317383 + 0.00390625 + 0.00317383)


def test_heuristic_names_repeat_per_detected_iteration():
    lines = FIGURE.read_text().splitlines()
    result = reconstruct(dnnprof.parse(lines * 3))
    ex = result.exec_events
    assert list(ex["iteration"]) == [0] * 20 + [1] * 20 + [2] * 20
    assert list(ex["layer"].astype(str))[40:] == [n or "fc1" for n in _figure_names()]
    info = result.metadata["reconstruction"]
    assert info["iterations"]["period"] == 18  # non-reorders
    # identical iterations, identical times: the first is the warm-up only by convention
    assert info["iterations"]["warmup"] == [0] and info["iterations"]["measure"] == [1, 2]
    assert any("by convention" in w for w in info["warnings"])


def test_model_table_aligns_the_figure_log():
    result = reconstruct(dnnprof.parse(FIGURE), model="alexnet")
    info = result.metadata["reconstruction"]
    assert info["mode"] == "align" and info["score"] == 1.0
    layers = list(result.exec_events["layer"].astype(str))
    assert layers[:3] == ["features.0", "features.1", "features.2"]
    assert layers[13:16] == ["classifier.1"] * 3 and layers[16] == "classifier.2"
    assert layers[-1] == "classifier.6"
    assert info["fusion"]["layers_without_primitives"] == {"AdaptiveAvgPool2d": 1}


# ------------------------------------------------------------- mode 1 ----


def test_markers_give_exact_layers_iterations_and_phases():
    trace = dnnprof.parse(MARKERS)
    result = reconstruct(trace)
    info = result.metadata["reconstruction"]
    assert info["mode"] == "markers" and info["coverage"] == 1.0
    assert info["score"] == pytest.approx(7 / 10)  # 3 reorders ran outside every module
    ex = result.exec_events
    assert list(ex["iteration"]) == [0] * 4 + [1] * 3 + [2] * 3
    assert list(ex["phase"].astype(str)) == ["warmup"] * 4 + ["measure"] * 6
    assert list(ex["layer"].astype(str)[:5]) == ["block.conv", "block.conv", "fc", "fc", "block.conv"]
    by_line = dict(zip(ex["kind"].astype(str) + ex["line"].astype(str), ex["layer"].astype(str),
                       strict=True))
    assert [v for k, v in by_line.items() if k.startswith("convolution")] == ["block.conv"] * 3
    # the activation reorder ran between modules: charged to its consumer, the fc
    outside = ex[(ex["kind"] == "reorder") & (ex["problem"] == "1x16x8x8")]
    assert set(outside["layer"].astype(str)) == {"fc"}
    assert set(outside["attribution"].astype(str)) == {"charged"}
    weight = ex[(ex["kind"] == "reorder") & (ex["problem"] == "16x3x3x3")]
    assert list(weight["reorder_class"].astype(str)) == ["weight_prepack"]
    assert list(weight["layer"].astype(str)) == ["block.conv"]
    # the meta layer table tells what the fused conv covers
    conv = ex[ex["kind"] == "convolution"]
    assert set(conv["fused_layers"].astype(str)) == {"block.bn+block.relu"}
    assert info["iterations"]["wall_ms"] == {0: 1.5, 1: 1.0, 2: 1.1}
    assert list(result.by_iteration()["wall_ms"]) == [1.5, 1.0, 1.1]
    layers = result.by_layer()
    assert list(layers["layer"]) == ["block.conv", "fc"]
    assert layers.set_index("layer").loc["fc", "mean_ms"] == pytest.approx(0.0205 + 0.002)


def test_marker_rows_outside_iterations_keep_their_phase():
    lines = MARKERS.read_text().splitlines()
    conv = next(line for line in lines if ",convolution," in line)
    at = lines.index("#DNNPROF,phase,run,1795000000000.0")
    lines[at:at] = ["#DNNPROF,phase,calibrate,1795000000000.0", conv, conv]
    result = reconstruct(dnnprof.parse(lines))
    ex = result.exec_events
    calib = ex[ex["phase"] == "calibrate"]
    assert len(calib) == 2 and set(calib["iteration"]) == {-1}
    # no module markers there: aligned with the meta layer table instead
    assert set(calib["layer"].astype(str)) == {"block.conv"}
    assert set(calib["attribution"].astype(str)) == {"aligned"}


# ----------------------------------------------------------- the pieces --


def test_describe_decodes_descriptors():
    conv = describe("convolution", "g32mb1_ic32oc32_ih112oh112kh3sh1dh0ph1_iw112ow112kw3sw1dw0pw1",
                    post_ops="eltwise_relu", mds="bia:f32:a:blocked:a::f0")
    assert conv.category == "conv" and conv.dims["g"] == 32 and conv.dims["oh"] == 112
    assert conv.has_bias and (32, 1, 1, 3, 3) in conv.weights
    square = describe("convolution", "mb1_ic64oc64_ih56oh56kh1sh1ph0")  # w defaults to h
    assert square.dims["ow"] == 56 and square.dst == (1, 64, 56, 56)
    pool = describe("pooling_v2", "mb1ic64_ih112oh56kh3sh2dh0ph1_iw112ow56kw3sw2dw0pw1",
                    alg="pooling_max")
    assert pool.category == "pool" and pool.dst == (1, 64, 56, 56)
    ip = describe("inner_product", "mb1ic256ih6iw6oc4096")
    assert ip.dims == {"ic": 9216, "oc": 4096}
    mm = describe("matmul", "1x2048:2048x1000")
    assert mm.dims["ic"] == 2048 and mm.dims["oc"] == 1000 and mm.category == "linear"
    relu = describe("eltwise", "1x64x112x112", alg="eltwise_relu")
    assert relu.category == "act" and relu.dims["c"] == 64
    assert describe("binary", "1x8x4x4:1x8x4x4", alg="binary_add").category == "add"


def test_layer_rows_from_torch_and_mxnet():
    torch_row = normalize_row(0, {"name": "features.0", "type": "Conv2d", "out_shape": [1, 64, 55, 55],
                                  "in_shapes": [[1, 3, 224, 224]],
                                  "params": {"in_channels": 3, "out_channels": 64,
                                             "kernel_size": [11, 11], "stride": [4, 4],
                                             "padding": [2, 2], "groups": 1, "bias": True}})
    mxnet_row = normalize_row(1, {"name": "conv0", "op": "Convolution", "out_shape": [1, 64, 55, 55],
                                  "attrs": {"kernel": "(11, 11)", "stride": "(4, 4)",
                                            "pad": "(2, 2)", "num_filter": "64",
                                            "num_group": "1", "no_bias": "False"}})
    for row in (torch_row, mxnet_row):
        assert row.category == "conv" and row.bias is True
        assert {k: row.dims[k] for k in ("oc", "kh", "sw", "pw", "oh")} == {
            "oc": 64, "kh": 11, "sw": 4, "pw": 2, "oh": 55}
    prim = describe("convolution", "mb1_ic3oc64_ih224oh55kh11sh4dh0ph2_iw224ow55kw11sw4dw0pw2")
    assert match_quality(prim, torch_row) == 1.0 and match_quality(prim, mxnet_row) == 1.0
    relu = normalize_row(2, {"name": "r", "op": "Activation", "attrs": {"act_type": "relu"},
                             "out_shape": [1, 64, 55, 55]})
    assert match_quality(prim, relu) is None  # kinds differ: never matched


def test_alignment_skips_layers_and_extra_primitives():
    table = normalize_table([
        {"name": "c1", "type": "Conv2d", "out_shape": [1, 8, 4, 4],
         "params": {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1}},
        {"name": "bn", "type": "BatchNorm2d", "out_shape": [1, 8, 4, 4]},
        {"name": "c2", "type": "Conv2d", "out_shape": [1, 16, 4, 4],
         "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 1}},
        {"name": "fc", "type": "Linear", "params": {"in_features": 256, "out_features": 10}},
    ])
    prims = [
        describe("convolution", "mb1_ic3oc8_ih4oh4kh3sh1ph1"),
        describe("sum", "1x8x4x4"),  # no row in the table
        describe("convolution", "mb1_ic8oc16_ih4oh4kh1sh1ph0"),
    ]
    result = align(prims, table)
    assert result.layer_of == (0, -1, 2)  # bn and fc have no primitive
    assert result.score == 1.0


def test_period_of_the_steady_state_is_found_at_the_end():
    warm = [9, 1, 2, 3, 4]
    steady = [1, 2, 3, 4, 5]
    keys = np.array([7, 7, 7] + warm + steady * 3)
    period, start, end = find_period(keys)
    assert period == 5 and end == len(keys)
    assert find_period(np.array([1, 2, 3])) is None


def test_zoo_tables_ship_without_torch():
    assert {"resnet50", "alexnet", "mobilenet_v1", "mxnet_resnet50_v1"} <= set(available_models())
    rows = model_table("resnet50")
    assert len(rows) == 159 and rows[0]["name"] == "conv1"
    with pytest.raises(LayerTableError, match="known: "):
        model_table("resnet5")


def test_layer_table_file(tmp_path):
    import json

    table = tmp_path / "t.json"
    table.write_text(json.dumps(model_table("alexnet")))
    result = reconstruct(dnnprof.parse(FIGURE), layers=str(table))
    assert result.metadata["reconstruction"]["mode"] == "align"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LayerTableError, match="not JSON"):
        reconstruct(dnnprof.parse(FIGURE), layers=str(bad))


def test_views_of_an_unreconstructed_trace_are_empty():
    trace = dnnprof.parse(FIGURE)
    assert trace.by_layer().empty and trace.by_iteration().empty and trace.by_stage().empty
    assert trace.events["is_reorder"].sum() == 2  # flagged even before reconstruction
    assert "fused_layers" in trace.events and trace.events["fused_layers"].dtype == "category"


def test_input_trace_is_left_untouched():
    trace = dnnprof.parse(FIGURE)
    before = trace.events.copy()
    reconstruct(trace, model="alexnet")
    pd.testing.assert_frame_equal(trace.events, before)
    assert "reconstruction" not in trace.metadata


def test_reconstructing_twice_leaves_the_first_result_untouched():
    first = reconstruct(dnnprof.parse(FIGURE), model="alexnet")
    events, stored = first.events.copy(), first.metadata.to_dict()
    second = reconstruct(first)  # aligns with the table the first result's metadata keeps
    pd.testing.assert_frame_equal(first.events, events)
    assert first.metadata.to_dict() == stored
    assert second.metadata.reconstruction.mode == "align"
    second.metadata.layer_table.append({"name": "extra", "type": "ReLU"})
    assert first.metadata.to_dict() == stored


# ------------------------------------------------------------------ CLI --


def test_cli_parse_with_model_writes_events_csv(tmp_path, capsys):
    from dnnprof.cli import main

    out = tmp_path / "events.csv"
    assert main(["parse", str(FIGURE), "--model", "alexnet", "--events", str(out)]) == 0
    err = capsys.readouterr().err
    assert "aligned with layer table 'alexnet'" in err
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    for column in ("line", "iteration", "kind", "layer", "layer_type", "fused_layers",
                   "is_reorder", "duration_ms"):
        assert column in rows[0]
    assert rows[13]["line"] == "14" and rows[13]["is_reorder"] == "True"
    assert rows[13]["layer"] == "classifier.1"


def test_cli_unknown_model_says_what_to_do(capsys):
    from dnnprof.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["parse", str(FIGURE), "--model", "nosuchnet"])
    assert exc.value.code == 2
    assert "--layers table.json" in capsys.readouterr().err


def test_trace_pass_and_freeze_burst_are_the_build():
    """jit trace + freeze without markers: an unfused forward (the trace), a burst of weight
    conversions (the freeze), then identical fused iterations."""
    lines = MARKERS.read_text().splitlines()
    weight, conv, act, ip = (next(line for line in lines if f",{kind}," in line and key in line)
                             for kind, key in (("reorder", "16x3x3x3"), ("convolution", ""),
                                               ("reorder", "1x16x8x8"), ("inner_product", "")))
    conv = conv.replace(" attr-post-ops:eltwise_relu", "")
    relu = ("onednn_verbose,v1,primitive,exec,cpu,eltwise,jit:avx2,forward_inference,"
            "src:f32::blocked:acdb::f0 dst:f32::blocked:acdb::f0,attr-scratchpad:user,"
            "alg:eltwise_relu alpha:0 beta:0,1x16x8x8,0.001")
    trace_pass = [weight, conv, act, ip]  # eager-like: ReLU ran in ATen
    freeze = [weight] * 10
    iteration = [conv, relu, act, ip]  # optimized graph: ReLU is a oneDNN primitive
    result = reconstruct(dnnprof.parse(trace_pass + freeze + iteration * 4))
    ex = result.exec_events
    phases = list(ex["phase"].astype(str))
    assert phases[:14] == ["build"] * 14
    assert list(ex["iteration"])[14:] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert phases[14:18] == ["warmup"] * 4 and set(phases[18:]) == {"measure"}
    assert any("build's own forward" in w for w in result.metadata["reconstruction"]["warnings"])


def test_reordered_branches_are_swapped_and_fusion_reaches_the_add():
    """MXNet's fused graph runs a block's shortcut conv before its expand conv; the expand
    conv then carries `sum+eltwise_relu` for the add and ReLU after both branches."""
    table = normalize_table(model_table("mxnet_resnet50_v1"))
    names = [layer.name for layer in table]
    start = names.index("resnetv10_stage2_conv2_fwd")  # expand, bn, shortcut, bn, add, relu
    block = table[start : start + 6]
    shortcut = describe("convolution", "mb1_ic256oc512_ih56oh28kh1sh2dh0ph0_iw56ow28kw1sw2dw0pw0",
                        mds="bia:f32::blocked:a:f0")
    expand = describe("convolution", "mb1_ic128oc512_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0",
                      post_ops="sum+eltwise_relu", mds="bia:f32::blocked:a:f0")
    result = align([shortcut, expand], block)
    assert [block[j].name for j in result.layer_of] == [
        "resnetv10_stage2_conv3_fwd", "resnetv10_stage2_conv2_fwd"]
    assert result.score == 1.0
    covered = [[block[j].name.removeprefix("resnetv10_stage2_") for j in fused]
               for fused in result.fused]
    assert covered == [["batchnorm3_fwd"], ["batchnorm2_fwd", "_plus0", "activation0"]]
