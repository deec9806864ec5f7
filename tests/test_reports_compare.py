"""The comparison tables behind every report, on real corpus logs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from dnnprof.errors import InputError
from dnnprof.metadata import Reconstruction
from dnnprof.reports.compare import Comparison, bootstrap_speedup
from dnnprof.reports.variants import ROLES
from dnnprof.trace import Trace
from support.corpus_traces import REPORT_LOGS, corpus_log, labelled_trace

FP32, INT8, COMPILE, MXNET = (f"{m} {v}" for m, v in (
    ("resnet50", "fp32_eager"), ("resnet50", "int8_fx"), ("resnet50", "compile_freezing"),
    ("resnet50_v1", "mxnet_fp32"),
))


@pytest.fixture(scope="module")
def four() -> Comparison:
    return Comparison.from_traces([labelled_trace(name) for name in REPORT_LOGS])


def _row(table: pd.DataFrame, **where: str) -> pd.Series:
    mask = pd.Series(True, index=table.index)
    for key, value in where.items():
        mask &= table[key] == value
    assert mask.sum() == 1, (where, table)
    return table[mask].iloc[0]


def test_overview_counts_per_iteration_match_the_logs(four):
    overview = four.overview.set_index("variant")
    assert list(overview.index) == [FP32, INT8, COMPILE, MXNET]
    assert four.baseline.name == FP32 and overview.loc[FP32, "baseline"]
    assert (overview["measured_iterations"] == 3).all()
    # real-log-findings.md: exec lines and reorders per steady iteration
    assert overview["primitives_per_iter"].tolist() == [211, 54, 53, 202]
    assert overview["reorders_per_iter"].tolist() == [158, 0, 0, 28]
    assert four.latency_source == "wall"
    assert overview.loc[INT8, "median_ms"] == pytest.approx(15.595)


def test_speedup_has_a_bootstrap_interval_around_it(four):
    row = four.overview.set_index("variant").loc[INT8]
    assert row["speedup"] == pytest.approx(60.414 / 15.595)
    assert row["speedup_low"] <= row["speedup"] <= row["speedup_high"]
    assert row["samples"] == 3
    base = four.overview.set_index("variant").loc[FP32]
    assert base["speedup"] == 1.0 and math.isnan(base["speedup_low"])


def test_coverage_is_onednn_time_over_wall_time(four):
    overview = four.overview.set_index("variant")
    # corpus truth: iteration 1..3 exec sums against the Python wall times
    assert 0.5 < overview.loc[FP32, "coverage"] < 0.8
    assert 0.85 < overview.loc[MXNET, "coverage"] <= 1.0
    assert (overview["coverage"] <= 1.0).all()


def test_coverage_agrees_with_the_runner(four):
    from dnnprof.profiler.runner import coverage

    for variant in four.variants:
        variant.trace.metadata.warmup = 1
        runner = coverage(variant.trace)["median_share"]
        mine = four.overview.set_index("variant").loc[variant.name, "coverage"]
        assert mine == pytest.approx(runner), variant.name


def test_bootstrap_edge_cases():
    assert bootstrap_speedup([10, 10, 10], [5, 5, 5]) == (2.0, 2.0, 2.0)
    point, low, high = bootstrap_speedup([10.0], [5.0])
    assert point == 2.0 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(x) for x in bootstrap_speedup([], [1.0]))


def test_by_kind_matches_the_thesis_figures(four):
    kinds = four.by_kind
    assert _row(kinds, variant=FP32, kind="convolution")["calls_per_iter"] == 53
    assert _row(kinds, variant=FP32, kind="reorder")["calls_per_iter"] == 158
    assert _row(kinds, variant=INT8, kind="matmul")["calls_per_iter"] == 1
    assert _row(kinds, variant=MXNET, kind="batch_normalization")["calls_per_iter"] == 53
    int8_conv = _row(kinds, variant=INT8, kind="convolution")
    assert int8_conv["share"] > 0.95  # the thesis' "INT8 convolution ~95 %" holds here
    for variant, shares in kinds.groupby("variant")["share"]:
        assert shares.sum() == pytest.approx(1.0), variant
    assert (kinds["top_shape"] != "").all()


def test_layers_and_per_layer_speedup(four):
    layers = four.by_layer
    assert set(layers["variant"]) == {FP32, INT8}  # compiled/hybridized logs have no modules
    conv1 = _row(layers, variant=FP32, layer="conv1")
    assert conv1["calls_per_iter"] == 3 and conv1["reorders_per_iter"] == 2
    assert conv1["shape"].startswith("mb1_ic3oc64")
    speed = four.layer_speedup
    assert set(speed["variant"]) == {INT8}
    assert len(speed) == 53  # every conv; the functional fc is outside any layer
    assert (speed["speedup"] > 1).all()
    assert any("no layer labels" in n for n in four.notes["layers"])


def test_stages_from_layer_names_and_from_shapes(four):
    stages = four.by_stage
    for variant in (FP32, INT8, COMPILE, MXNET):
        mine = stages[stages["variant"] == variant]
        assert {"conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x"} <= set(mine["stage"])
    assert set(stages[stages["variant"] == FP32]["method"]) == {"layer names"}
    assert set(stages[stages["variant"] == COMPILE]["method"]) == {"convolution output sizes"}
    # conv calls per stage, ResNet-50: 1 + (3*3+1) + (4*3+1) + (6*3+1) + (3*3+1)
    compiled = stages[stages["variant"] == COMPILE].set_index("stage")["calls_per_iter"]
    assert compiled.to_dict() == {"conv1": 1, "conv2_x": 10, "conv3_x": 13, "conv4_x": 19,
                                  "conv5_x": 10}
    # both ways of finding stages agree on the same model
    by_name = stages[stages["variant"] == FP32].set_index("stage")["ms_per_iter"]
    assert by_name.sum() == pytest.approx(four.overview.set_index("variant").loc[
        FP32, "onednn_ms"], rel=0.1)


def test_stages_agree_with_the_trace_view(four):
    # by_stage adds hover detail to the reconstructor's view; the numbers must match it
    for variant in (FP32, INT8):
        view = four.variant(variant).trace.by_stage().set_index("stage")["mean_ms"]
        mine = four.by_stage[four.by_stage["variant"] == variant].set_index("stage")
        common = [s for s in view.index if s in mine.index]
        assert len(common) >= 5
        assert mine.loc[common, "ms_per_iter"].to_numpy() == pytest.approx(
            view.loc[common].to_numpy(), rel=1e-9)


def test_layers_agree_with_the_trace_view(four):
    view = four.variant(FP32).trace.by_layer().set_index("layer")["mean_ms"]
    mine = four.by_layer[four.by_layer["variant"] == FP32].set_index("layer")["ms_per_iter"]
    assert mine.loc[view.index].to_numpy() == pytest.approx(view.to_numpy())


def test_fusion_roles_and_fused_layers(four):
    summary = four.fusion_summary.set_index("variant")
    fused, alone, standalone = ROLES[0], ROLES[1], ROLES[2]
    assert summary.loc[INT8, fused] == 33 and summary.loc[INT8, alone] == 21
    assert summary.loc[COMPILE, fused] == 49
    assert "sum x16" in summary.loc[COMPILE, "post_ops"]
    assert summary.loc[MXNET, standalone] == 53 + 49 + 16
    fused_rows = four.fused_primitives
    conv1 = _row(fused_rows, variant=INT8, layer="conv1")
    assert conv1["became"] == "convolution + eltwise_relu"
    assert conv1["layer_type"] == "ConvReLU2d"
    changes = four.structural_changes
    assert any(INT8 in c and "['u8']" in c for c in changes)
    assert any(MXNET in c and "reorders 158 -> 28" in c for c in changes)


def test_reorders_types_isa_and_top(four):
    reorders = four.reorders.set_index("variant")
    assert reorders.loc[FP32, "reorders_per_iter"] == 158
    assert 0.1 < reorders.loc[FP32, "share"] < 0.3
    detail = four.reorder_detail
    assert _row(detail, variant=FP32, formats="abcd -> ABcd16b16a")["calls_per_iter"] == 52
    assert _row(four.dtypes, variant=INT8, dtypes="u8/s8/u8")["share"] == pytest.approx(1.0)
    assert _row(four.isas, variant=INT8, isa_name="avx512_core_vnni")["calls_per_iter"] == 54
    top = four.top_primitives(3)
    assert len(top) == 12 and (top["gflops"] > 10).all()
    assert top.groupby("variant")["ms_per_iter"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_timeline_is_one_iteration(four):
    timeline = four.timeline()
    sizes = timeline.groupby("variant").size().to_dict()
    assert sizes == {FP32: 211, INT8: 54, COMPILE: 53, MXNET: 202}
    assert (timeline.groupby("variant")["start_ms"].min() == 0).all()
    assert set(timeline["iteration"]) <= {1, 2, 3}


def test_json_is_strict_and_complete(four):
    text = json.dumps(four.to_json(), allow_nan=False)
    data = json.loads(text)
    assert data["baseline"] == FP32 and data["variants"][1] == INT8
    for key in ("overview", "by_kind", "by_layer", "layer_speedup", "by_stage", "fusion_summary",
                "reorders", "dtypes", "isas", "implementations", "top_primitives", "notes"):
        assert data[key], key


def test_baseline_choice():
    traces = [labelled_trace(name) for name in list(REPORT_LOGS)[:2]]
    comp = Comparison.from_traces(traces, baseline="int8")
    assert comp.baseline.name == INT8
    fp32 = comp.overview.set_index("variant").loc[FP32]
    assert fp32["speedup"] < 1
    with pytest.raises(InputError, match="matches none"):
        Comparison.from_traces(traces, baseline="bf16")


def test_duplicate_names_are_made_unique():
    name = "torch_resnet50_int8_fx_b1"
    comp = Comparison.from_traces([labelled_trace(name), labelled_trace(name)])
    assert comp.names == [INT8, f"{INT8} #2"]


def test_unlabelled_log_degrades_with_explanations():
    # not reconstructed: iterations and layers unknown, whole log counts as one iteration
    comp = Comparison.from_paths([corpus_log("torch_resnet50_int8_fx_b1")], layers=False)
    variant = comp.variants[0]
    assert not variant.iterations_known and not variant.layers_known
    assert comp.by_layer.empty and comp.layer_speedup.empty
    assert comp.latency_source == "oneDNN"
    notes = " ".join(comp.notes["overview"])
    assert "iterations are unknown" in notes
    assert "no wall times" in notes
    assert "one variant" in notes
    # the calibration passes are in the totals, and the report says so
    assert comp.overview["primitives_per_iter"].iloc[0] == 1232
    json.dumps(comp.to_json(), allow_nan=False)


def test_empty_trace_still_reports():
    import dnnprof

    empty = dnnprof.parse([])  # fp32 DLRM in PyTorch: no oneDNN call, empty log
    comp = Comparison.from_traces([empty, labelled_trace("torch_resnet50_int8_fx_b1")],
                                  names=["dlrm fp32", "int8"])
    assert any("no oneDNN primitive executed" in n for n in comp.notes["overview"])
    assert comp.by_kind["variant"].unique().tolist() == ["int8"]
    assert math.isnan(comp.overview.set_index("variant").loc["int8", "speedup"])
    json.dumps(comp.to_json(), allow_nan=False)


def test_load_run_folder_trace_file_and_log(tmp_path):
    trace = labelled_trace("torch_resnet50_compile_freezing_b1")
    run = tmp_path / "resnet50-compile-20260101"
    trace.save(run / "trace.parquet")
    stored = tmp_path / "t.parquet"
    trace.save(stored)
    comp = Comparison.from_paths([run, stored])
    assert comp.names == [f"{COMPILE}", f"{COMPILE} #2"]
    assert comp.overview["wall_ms"].notna().all()
    with pytest.raises(InputError, match="without trace.parquet"):
        Comparison.from_paths([tmp_path])
    with pytest.raises(InputError, match="no such log"):
        Comparison.from_paths([tmp_path / "missing.log"])


def test_reconstructed_raw_logs():
    comp = Comparison.from_paths([corpus_log("torch_resnet50_fp32_eager_b1"),
                                  corpus_log("torch_resnet50_int8_fx_b1")])
    assert all(v.iterations_known for v in comp.variants)
    overview = comp.overview.set_index("variant")
    assert overview["primitives_per_iter"].tolist() == [211, 54]
    assert overview["speedup"].iloc[1] > 2  # int8 oneDNN time against fp32's


def test_wall_times_from_reconstructed_markers():
    trace = labelled_trace("torch_resnet50_int8_fx_b1", wall=False)
    trace.metadata.reconstruction = Reconstruction(
        iterations={"wall_ms": {"1": 15.0, "2": 16.0, "3": 17.0, "0": 40.0}})
    comp = Comparison.from_traces([trace])
    assert comp.variants[0].wall_ms.tolist() == [15.0, 16.0, 17.0]
    assert comp.latency_source == "wall"


def test_trace_is_not_modified(four):
    original = labelled_trace("torch_resnet50_fp32_eager_b1")
    columns = list(original.events.columns)
    Comparison.from_traces([original]).to_json()
    assert list(original.events.columns) == columns
    assert isinstance(original, Trace)
