"""The reconstructor on the real corpus logs, scored against their ground truth.

Mode 1 re-inserts the removed markers from each log's truth; mode 2 uses the log as stored
(markers stripped) plus a layer table; iterations are detected without markers there.
Logs without module labels (compiled, hybridized) are scored on what the truth allows: the
positional layer of each non-reorder primitive (see support.truth_markers).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from dnnprof.reconstruct import reconstruct
from support.corpus import CORPUS
from support.truth_markers import (
    TRUTH_LOGS,
    mode_accuracy,
    parsed,
    parsed_with_markers,
    truth,
)

pytestmark = pytest.mark.skipif(not (CORPUS / f"{TRUTH_LOGS[0]}.truth.json").exists(),
                                reason="corpus not available")

MODEL_OF = {name: ("mxnet_resnet50_v1" if name.startswith("mxnet") else "resnet50")
            for name in TRUTH_LOGS}


@cache
def mode1(name: str):
    """Markers put back; a layer table only where the log carries it as a meta marker."""
    return reconstruct(parsed_with_markers(name))


@cache
def mode2(name: str, source: str):
    """Markers stripped; the layer table from the truth file or from the shipped zoo table."""
    if source == "truth":
        return reconstruct(parsed(name), layers=truth(name)["layer_table"])
    return reconstruct(parsed(name), model=MODEL_OF[name])


@pytest.mark.parametrize("name", TRUTH_LOGS)
def test_mode1_markers_attribute_99_percent(name):
    result = mode1(name)
    acc = mode_accuracy(result, name, with_marker_lines=True)
    expected_mode = "markers" if truth(name)["labels"]["module"] else "align"
    assert result.metadata["reconstruction"]["mode"] == expected_mode
    assert acc["layer_accuracy"] >= 0.99, acc["wrong"]
    assert acc["iteration_accuracy"] == 1.0
    assert acc["phase_accuracy"] == 1.0


@pytest.mark.parametrize("source", ["truth", "zoo"])
@pytest.mark.parametrize("name", TRUTH_LOGS)
def test_mode2_alignment_attributes_99_percent(name, source):
    result = mode2(name, source)
    info = result.metadata["reconstruction"]
    assert info["mode"] == "align"
    assert info["score"] >= 0.99
    acc = mode_accuracy(result, name)
    assert acc["layer_accuracy"] >= 0.99, acc["wrong"]


@pytest.mark.parametrize("name", TRUTH_LOGS)
def test_iterations_and_phases_without_markers(name):
    result = mode2(name, "zoo")
    acc = mode_accuracy(result, name)
    assert acc["iteration_accuracy"] == 1.0
    assert acc["phase_accuracy"] == 1.0
    iterations = result.metadata["reconstruction"]["iterations"]
    assert iterations["source"] == "periodicity"
    assert iterations["warmup"] == [0] and iterations["measure"] == [1, 2, 3]


def test_warmup_separated_structurally_int8():
    """Calibration (fp32), build (weight quantisation) and the int8 warm-up are told apart."""
    result = mode2("torch_resnet50_int8_fx_b1", "zoo")
    ex = result.exec_events
    by_phase = ex.groupby(ex["phase"].astype(str))["line"].size().to_dict()
    assert by_phase == {"calibrate": 844, "build": 109, "warmup": 117, "measure": 162}
    assert set(ex.loc[ex["phase"] == "calibrate", "src_dt"].astype(str)) == {"f32"}
    # the steady state the views use is the 3 measured int8 iterations only
    steady = result.steady_exec()
    assert len(steady) == 162 and set(steady["iteration"]) == {1, 2, 3}
    warm = ex[(ex["phase"] == "warmup") & ex["is_reorder"]]
    assert set(warm["reorder_class"].astype(str)) == {"weight_prepack"}
    build = ex[ex["phase"] == "build"]
    assert set(build["reorder_class"].astype(str)) <= {"weight_prepack", "boundary"}


def test_warmup_prepack_compiled():
    """torch.compile: 53 weight prepacks in the warm-up, none later, none per call."""
    result = mode2("torch_resnet50_compile_freezing_b1", "zoo")
    ex = result.exec_events
    reorders = ex[ex["is_reorder"]]
    assert len(reorders) == 53
    assert set(reorders["iteration"]) == {0}
    assert set(reorders["reorder_class"].astype(str)) == {"weight_prepack"}
    # each prepack is charged to the conv whose weights it converts
    for problem, layer in zip(reorders["problem"].astype(str), reorders["layer"].astype(str),
                              strict=True):
        conv = ex[(ex["layer"] == layer) & (ex["kind"] == "convolution")]["problem"].iloc[0]
        oc, ic = (int(x) for x in problem.split("x")[:2])
        assert f"ic{ic}oc{oc}_" in conv


def test_warmup_by_cache_misses_and_by_time():
    """verbose=all: the warm-up has the create:cache_miss lines; plain eager: it is slower."""
    everything = mode2("torch_resnet50_fp32_eager_b1_verbose_all", "zoo")
    notes = everything.metadata["reconstruction"]["warnings"]
    assert not any("taken as warm-up" in n for n in notes)  # found structurally
    plain = mode2("torch_resnet50_fp32_eager_b1", "zoo")
    notes = plain.metadata["reconstruction"]["warnings"]
    assert any("taken as warm-up" in n for n in notes)  # same primitives: decided by time


@pytest.mark.parametrize("name", ["torch_resnet50_int8_fx_b1", "torch_resnet50_compile_freezing_b1"])
def test_fused_convolution_covers_conv_bn_relu(name):
    result = mode2(name, "zoo")
    steady = result.steady_exec()
    convs = steady[steady["kind"] == "convolution"]
    fused = dict(zip(convs["layer"].astype(str), convs["fused_layers"].astype(str), strict=False))
    assert fused["conv1"] == "bn1+relu"
    assert fused["layer1.0.conv1"] == "layer1.0.bn1+layer1.0.relu1"
    assert fused["layer1.0.conv3"] == "layer1.0.bn3"  # folded bias, no post-op
    info = result.metadata["reconstruction"]["fusion"]
    assert info["fused_by_type"]["BatchNorm2d"] == 53  # every batch-norm folded away
    if "compile" in name:
        # inductor: residual add + ReLU as post-op `sum+eltwise_relu` on the later conv
        assert fused["layer1.0.downsample.0"] == "layer1.0.downsample.1+layer1.0.relu3"
        assert fused["layer1.1.conv3"] == "layer1.1.bn3+layer1.1.relu3"
        assert info["fused_by_type"]["ReLU"] == 49
    else:
        # FX int8: ConvReLU2d fuses ReLU; the add+ReLU of each block stays in ATen
        assert info["fused_by_type"]["ReLU"] == 33
        assert info["layers_without_primitives"]["ReLU"] == 16
    layers = result.by_layer()
    assert (layers["layer_type"] == "Conv2d").sum() == 53


def test_fusion_reported_in_marker_mode():
    result = mode1("torch_resnet50_int8_fx_b1")
    convs = result.steady_exec()
    convs = convs[convs["kind"] == "convolution"]
    fused = dict(zip(convs["layer"].astype(str), convs["fused_layers"].astype(str), strict=False))
    assert fused["layer2.0.conv1"] == "layer2.0.bn1+layer2.0.relu1"
    # the fc matmul runs outside any leaf module in FX; its marker stack still says fc
    matmul = convs = result.steady_exec()
    assert set(matmul.loc[matmul["kind"] == "matmul", "layer"].astype(str)) == {"fc"}


def test_functional_fc_outside_leaf_markers_found_in_the_table():
    """With leaf-only hooks FX's fc matmul runs outside every module marker: the layer table
    row between its neighbours that fits it takes it (not the conv before it)."""
    import dnnprof
    from support.truth_markers import with_markers

    name = "torch_resnet50_int8_fx_b1"
    lines = with_markers(name, leaf_only=True)
    result = reconstruct(dnnprof.parse(list(lines)), layers=truth(name)["layer_table"])
    assert result.metadata["reconstruction"]["mode"] == "markers"
    ex = result.exec_events
    matmul = ex[ex["kind"] == "matmul"]
    assert len(matmul) == 4
    assert set(matmul["layer"].astype(str)) == {"fc"}
    assert set(matmul["attribution"].astype(str)) == {"aligned"}


def test_batch_norm_outside_onednn_eager():
    """Eager PyTorch runs batch-norm, ReLU, pooling and fc in ATen: no primitives, no fusion."""
    result = mode2("torch_resnet50_fp32_eager_b1", "zoo")
    info = result.metadata["reconstruction"]["fusion"]
    assert info["fused_layers"] == 0
    assert info["layers_without_primitives"] == {
        "BatchNorm2d": 53, "ReLU": 49, "MaxPool2d": 1, "AdaptiveAvgPool2d": 1, "Linear": 1}
    layers = result.by_layer()
    assert len(layers) == 53 and set(layers["layer_type"]) == {"Conv2d"}
    # every conv carries its own reorders: weight per call, input and output conversions
    steady = result.steady_exec()
    classes = steady.loc[steady["is_reorder"], "reorder_class"].astype(str).value_counts()
    assert classes.to_dict() == {"weight_per_call": 159, "boundary": 315}
    assert layers["reorder_ms"].gt(0).all()


def test_mxnet_separate_bn_relu_and_sum():
    result = mode2("mxnet_resnet50_v1_fp32_b1", "truth")
    steady = result.steady_exec()
    types = steady.groupby(steady["kind"].astype(str))["layer_type"].agg(lambda s: set(s.astype(str)))
    assert types["batch_normalization"] == {"BatchNorm"}
    assert types["eltwise"] == {"Activation"}
    assert types["sum"] == {"elemwise_add"}  # the residual add is a oneDNN sum
    assert types["pooling_v2"] == {"Pooling"}
    assert types["inner_product"] == {"FullyConnected"}
    assert result.metadata["reconstruction"]["fusion"]["fused_layers"] == 0
    per_iteration = steady[steady["iteration"] == 1]
    assert (per_iteration["kind"] == "sum").sum() == 16
    layers = result.by_layer()
    assert len(layers) == 174
    classes = set(steady.loc[steady["is_reorder"], "reorder_class"].astype(str))
    assert classes == {"activation_layout", "boundary"}


def test_mxnet_against_the_pytorch_table():
    """The same network from another framework aligns with the zoo's PyTorch table: the
    residual sums have no row there and stay with the layer before them."""
    result = reconstruct(parsed("mxnet_resnet50_v1_fp32_b1"), model="resnet50")
    info = result.metadata["reconstruction"]
    assert info["mode"] == "align" and info["score"] >= 0.99
    steady = result.steady_exec()
    sums = steady[steady["kind"] == "sum"]
    assert set(sums["attribution"].astype(str)) == {"nearest"}
    assert set(sums["layer"].astype(str).str.rsplit(".", n=1).str[-1]) <= {"bn3", "1"}


@pytest.mark.parametrize("wrong", ["alexnet", "vgg16", "mobilenet_v1", "bert_base"])
def test_wrong_model_warns_with_score(wrong):
    result = reconstruct(parsed("torch_resnet50_int8_fx_b1"), model=wrong)
    info = result.metadata["reconstruction"]
    assert info["mode"] == "heuristic"
    assert info["rejected_alignment_score"] < 0.6
    warning = next(w for w in info["warnings"] if "does not fit" in w)
    assert f"'{wrong}'" in warning and "alignment score" in warning
    assert f"{info['rejected_alignment_score']:.2f}" in warning
    names = set(result.exec_events["layer"].astype(str))
    assert "conv1" in names and not any(n.startswith("layer1") for n in names)


def test_deeper_model_flags_missing_convolutions():
    result = reconstruct(parsed("torch_resnet50_compile_freezing_b1"), model="resnet101")
    info = result.metadata["reconstruction"]
    assert info["table_coverage"] < 0.75
    assert any("of the convolutions in layer table 'resnet101'" in w for w in info["warnings"])


def test_stages_and_iterations_views():
    result = mode2("torch_resnet50_fp32_eager_b1", "zoo")
    stages = result.by_stage()
    assert list(stages["stage"]) == ["conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x"]
    assert list(stages["layers"]) == [1, 10, 13, 19, 10]
    steady = result.steady_exec()
    assert np.isclose(stages["total_ms"].sum(), steady["duration_ms"].sum())
    iterations = result.by_iteration()
    assert list(iterations["phase"]) == ["warmup", "measure", "measure", "measure"]
    assert list(iterations["exec"]) == [211] * 4
    # heuristic names, staged by output size, give the same totals
    heuristic = reconstruct(parsed("torch_resnet50_fp32_eager_b1"))
    assert np.allclose(heuristic.by_stage()["total_ms"], stages["total_ms"])
    marked = mode1("torch_resnet50_int8_fx_b1").by_iteration()
    assert marked["wall_ms"].notna().all()  # iter_end markers carry the Python wall time


def test_reconstructed_trace_survives_storage(tmp_path):
    from dnnprof.trace import Trace

    result = mode2("torch_resnet50_compile_freezing_b1", "zoo")
    path = result.save(tmp_path / "t.parquet")
    loaded = Trace.load(path)
    for column in ("layer", "fused_layers", "reorder_class", "attribution", "phase"):
        assert list(loaded.events[column].astype(str)) == list(result.events[column].astype(str))
    assert loaded.events["is_reorder"].dtype == bool
    assert loaded.metadata["reconstruction"]["mode"] == "align"
    assert loaded.by_layer().equals(result.by_layer())
