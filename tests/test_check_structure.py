"""Structural findings on real corpus pairs: exactly the expected ones, named by layer.

Each pair is checked twice: with module names (the corpus markers put back, as
`dnnprof trace` records them; the compiled model's names come from aligning the ResNet-50
layer table) and on the bare logs, where layers are named by kind, shape and occurrence.
The expected findings are listed once, by module, and translated for the bare logs with
the table below. Counts cross-checked against docs of the corpus
(the corpus README in tests/data/corpus): 53 convolutions, 158 reorders per eager
iteration, 33 conv+ReLU, 16 conv+add+ReLU after torch.compile freezing.
"""

from __future__ import annotations

from functools import cache

import pytest

import dnnprof
from dnnprof.check import CheckConfig, check_traces
from dnnprof.check.report import CheckReport
from dnnprof.reconstruct import reconstruct
from dnnprof.trace import Trace
from support.corpus import CORPUS
from support.truth_markers import META_TABLE_LOGS, with_markers

EAGER = "torch_resnet50_fp32_eager_b1"
EAGER_ALL = "torch_resnet50_fp32_eager_b1_verbose_all"
INT8 = "torch_resnet50_int8_fx_b1"
COMPILED = "torch_resnet50_compile_freezing_b1"
MXNET = "mxnet_resnet50_v1_fp32_b1"

# ResNet-50's oneDNN convolutions in execution order, with the identity the check gives
# them when a log has no layer names: convolution[<problem>]#<occurrence of that problem>.
RESNET50_CONVS = """
conv1                    mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3#0
layer1.0.conv1           mb1_ic64oc64_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0#0
layer1.0.conv2           mb1_ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1#0
layer1.0.conv3           mb1_ic64oc256_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0#0
layer1.0.downsample.0    mb1_ic64oc256_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0#1
layer1.1.conv1           mb1_ic256oc64_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0#0
layer1.1.conv2           mb1_ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1#1
layer1.1.conv3           mb1_ic64oc256_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0#2
layer1.2.conv1           mb1_ic256oc64_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0#1
layer1.2.conv2           mb1_ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1#2
layer1.2.conv3           mb1_ic64oc256_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0#3
layer2.0.conv1           mb1_ic256oc128_ih56oh28kh1sh2dh0ph0_iw56ow28kw1sw2dw0pw0#0
layer2.0.conv2           mb1_ic128oc128_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1#0
layer2.0.conv3           mb1_ic128oc512_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0#0
layer2.0.downsample.0    mb1_ic256oc512_ih56oh28kh1sh2dh0ph0_iw56ow28kw1sw2dw0pw0#0
layer2.1.conv1           mb1_ic512oc128_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0#0
layer2.1.conv2           mb1_ic128oc128_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1#1
layer2.1.conv3           mb1_ic128oc512_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0#1
layer2.2.conv1           mb1_ic512oc128_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0#1
layer2.2.conv2           mb1_ic128oc128_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1#2
layer2.2.conv3           mb1_ic128oc512_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0#2
layer2.3.conv1           mb1_ic512oc128_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0#2
layer2.3.conv2           mb1_ic128oc128_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1#3
layer2.3.conv3           mb1_ic128oc512_ih28oh28kh1sh1dh0ph0_iw28ow28kw1sw1dw0pw0#3
layer3.0.conv1           mb1_ic512oc256_ih28oh14kh1sh2dh0ph0_iw28ow14kw1sw2dw0pw0#0
layer3.0.conv2           mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1#0
layer3.0.conv3           mb1_ic256oc1024_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#0
layer3.0.downsample.0    mb1_ic512oc1024_ih28oh14kh1sh2dh0ph0_iw28ow14kw1sw2dw0pw0#0
layer3.1.conv1           mb1_ic1024oc256_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#0
layer3.1.conv2           mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1#1
layer3.1.conv3           mb1_ic256oc1024_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#1
layer3.2.conv1           mb1_ic1024oc256_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#1
layer3.2.conv2           mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1#2
layer3.2.conv3           mb1_ic256oc1024_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#2
layer3.3.conv1           mb1_ic1024oc256_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#2
layer3.3.conv2           mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1#3
layer3.3.conv3           mb1_ic256oc1024_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#3
layer3.4.conv1           mb1_ic1024oc256_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#3
layer3.4.conv2           mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1#4
layer3.4.conv3           mb1_ic256oc1024_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#4
layer3.5.conv1           mb1_ic1024oc256_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#4
layer3.5.conv2           mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1#5
layer3.5.conv3           mb1_ic256oc1024_ih14oh14kh1sh1dh0ph0_iw14ow14kw1sw1dw0pw0#5
layer4.0.conv1           mb1_ic1024oc512_ih14oh7kh1sh2dh0ph0_iw14ow7kw1sw2dw0pw0#0
layer4.0.conv2           mb1_ic512oc512_ih7oh7kh3sh1dh0ph1_iw7ow7kw3sw1dw0pw1#0
layer4.0.conv3           mb1_ic512oc2048_ih7oh7kh1sh1dh0ph0_iw7ow7kw1sw1dw0pw0#0
layer4.0.downsample.0    mb1_ic1024oc2048_ih14oh7kh1sh2dh0ph0_iw14ow7kw1sw2dw0pw0#0
layer4.1.conv1           mb1_ic2048oc512_ih7oh7kh1sh1dh0ph0_iw7ow7kw1sw1dw0pw0#0
layer4.1.conv2           mb1_ic512oc512_ih7oh7kh3sh1dh0ph1_iw7ow7kw3sw1dw0pw1#1
layer4.1.conv3           mb1_ic512oc2048_ih7oh7kh1sh1dh0ph0_iw7ow7kw1sw1dw0pw0#1
layer4.2.conv1           mb1_ic2048oc512_ih7oh7kh1sh1dh0ph0_iw7ow7kw1sw1dw0pw0#1
layer4.2.conv2           mb1_ic512oc512_ih7oh7kh3sh1dh0ph1_iw7ow7kw3sw1dw0pw1#2
layer4.2.conv3           mb1_ic512oc2048_ih7oh7kh1sh1dh0ph0_iw7ow7kw1sw1dw0pw0#2
"""
CONV_IDENTITY = {
    module: f"convolution[{problem.rsplit('#', 1)[0]}]#{problem.rsplit('#', 1)[1]}"
    for module, problem in (line.split() for line in RESNET50_CONVS.strip().splitlines())
}
ALL_CONVS = list(CONV_IDENTITY)
FC = "fc"
FC_IDENTITY = "matmul[1x2048:2048x1000]#0"

# conv+ReLU modules (ConvReLU2d in the int8 model, conv + eltwise_relu after compile)
RELU_CONVS = """
conv1
layer1.0.conv1 layer1.0.conv2 layer1.1.conv1 layer1.1.conv2 layer1.2.conv1 layer1.2.conv2
layer2.0.conv1 layer2.0.conv2 layer2.1.conv1 layer2.1.conv2 layer2.2.conv1 layer2.2.conv2
layer2.3.conv1 layer2.3.conv2
layer3.0.conv1 layer3.0.conv2 layer3.1.conv1 layer3.1.conv2 layer3.2.conv1 layer3.2.conv2
layer3.3.conv1 layer3.3.conv2 layer3.4.conv1 layer3.4.conv2 layer3.5.conv1 layer3.5.conv2
layer4.0.conv1 layer4.0.conv2 layer4.1.conv1 layer4.1.conv2 layer4.2.conv1 layer4.2.conv2
""".split()
# Where torch.compile fused the residual add + ReLU (sum+eltwise_relu): the last conv of
# each block, which in a downsampling block is the downsample conv (it runs after conv3).
SUM_FUSED_CONVS = """
layer1.0.downsample.0 layer1.1.conv3 layer1.2.conv3
layer2.0.downsample.0 layer2.1.conv3 layer2.2.conv3 layer2.3.conv3
layer3.0.downsample.0 layer3.1.conv3 layer3.2.conv3 layer3.3.conv3 layer3.4.conv3 layer3.5.conv3
layer4.0.downsample.0 layer4.1.conv3 layer4.2.conv3
""".split()
# Spatial (7x7 stem and 3x3) convolutions: brg_conv_fwd / jit; the 36 others are 1x1.
SPATIAL_CONVS = ["conv1"] + [m for m in ALL_CONVS if m.endswith("conv2")]
POINTWISE_CONVS = [m for m in ALL_CONVS if m not in SPATIAL_CONVS]
FP32_PROP = "convolution forward_inference → forward_training"

# (check, code, detail) -> layers, for a baseline INT8 model whose new run is FP32 eager:
# the int8 path fell back to fp32.
INT8_FALLBACK_TO_FP32 = {
    ("fusion", "fusion_lost", "post-ops eltwise_relu → none (lost eltwise_relu)"): RELU_CONVS,
    ("reorders", "reorders_added", "0 → 2 reorders per iteration"): ["conv1"],
    ("reorders", "reorders_added", "0 → 3 reorders per iteration"): ALL_CONVS[1:],
    ("dtype", "dtype_fallback", "convolution u8/s8/u8 → f32/f32/f32"): ALL_CONVS,
    ("impl", "isa_downgrade",
     "convolution brg_conv_fwd:avx512_core_vnni → jit:avx512_core; " + FP32_PROP): SPATIAL_CONVS,
    ("impl", "isa_downgrade",
     "convolution brgconv_1x1:avx512_core_vnni → jit_1x1:avx512_core; " + FP32_PROP):
        POINTWISE_CONVS,
    ("kinds", "kind_removed", "no longer runs in oneDNN: matmul [1x2048:2048x1000]"): [FC],
}
# The same pair the other way round: INT8 replaces an FP32 eager baseline. All improvements
# (info) except the matmul that now runs in oneDNN (a warning: new work in oneDNN).
FP32_TO_INT8 = {
    ("fusion", "fusion_gained", "post-ops none → eltwise_relu (gained eltwise_relu)"): RELU_CONVS,
    ("reorders", "reorders_removed", "2 → 0 reorders per iteration"): ["conv1"],
    ("reorders", "reorders_removed", "3 → 0 reorders per iteration"): ALL_CONVS[1:],
    ("dtype", "dtype_narrowed", "convolution f32/f32/f32 → u8/s8/u8"): ALL_CONVS,
    ("impl", "isa_upgrade",
     "convolution jit:avx512_core → brg_conv_fwd:avx512_core_vnni; "
     "convolution forward_training → forward_inference"): SPATIAL_CONVS,
    ("impl", "isa_upgrade",
     "convolution jit_1x1:avx512_core → brgconv_1x1:avx512_core_vnni; "
     "convolution forward_training → forward_inference"): POINTWISE_CONVS,
    ("kinds", "kind_added", "new in oneDNN: matmul [1x2048:2048x1000]"): [FC],
}
# Baseline torch.compile + freezing (fused, channels-last, weights pre-packed), new run
# eager: every fusion lost, every reorder back, and the eager kernels.
FUSED_TO_EAGER = {
    ("fusion", "fusion_lost", "post-ops eltwise_relu → none (lost eltwise_relu)"): RELU_CONVS,
    ("fusion", "fusion_lost", "post-ops sum+eltwise_relu → none (lost eltwise_relu, sum)"):
        SUM_FUSED_CONVS,
    ("reorders", "reorders_added", "0 → 2 reorders per iteration"): ["conv1"],
    ("reorders", "reorders_added", "0 → 3 reorders per iteration"): ALL_CONVS[1:],
    ("impl", "impl_changed",
     "convolution brg_conv_fwd:avx512_core → jit:avx512_core; " + FP32_PROP): SPATIAL_CONVS,
    ("impl", "impl_changed",
     "convolution brgconv_1x1:avx512_core → jit_1x1:avx512_core; " + FP32_PROP):
        POINTWISE_CONVS,
}


@cache
def named(name: str) -> Trace:
    """The log with its markers put back, reconstructed: module names, as a run records them."""
    lines = list(with_markers(name, layer_table=name in META_TABLE_LOGS))
    return reconstruct(dnnprof.parse(lines))


@cache
def bare(name: str) -> Trace:
    """The log as stored in the corpus, parsed only."""
    return dnnprof.parse(CORPUS / f"{name}.log")


def structural(report: CheckReport) -> dict[tuple[str, str, str], list[str]]:
    """Every non-timing finding, grouped as the expectations are written."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for finding in report.findings:
        if finding.check != "timing":
            found.setdefault((finding.check, finding.code, finding.detail), []).append(finding.layer)
    return found


def by_identity(expected: dict[tuple[str, str, str], list[str]]) -> dict:
    """The expectations with layers named as a log without layer names names them."""
    names = {**CONV_IDENTITY, FC: FC_IDENTITY}
    return {key: [names[layer] for layer in layers] for key, layers in expected.items()}


def test_expectations_agree_with_the_corpus_facts() -> None:
    assert len(ALL_CONVS) == 53 and len(set(CONV_IDENTITY.values())) == 53
    assert len(RELU_CONVS) == 33 and len(SUM_FUSED_CONVS) == 16
    assert len(SPATIAL_CONVS) == 17 and len(POINTWISE_CONVS) == 36
    reorders = 2 + 3 * len(ALL_CONVS[1:])
    assert reorders == 158  # per steady eager iteration


@pytest.mark.parametrize("traces", [named, bare], ids=["module-names", "bare-logs"])
def test_int8_baseline_fp32_new_is_a_fallback(traces) -> None:
    report = check_traces(traces(INT8), traces(EAGER))
    expected = INT8_FALLBACK_TO_FP32 if traces is named else by_identity(INT8_FALLBACK_TO_FP32)
    assert structural(report) == expected
    assert report.exit_code == 1
    assert {f.severity for f in report.findings if f.check in ("fusion", "reorders", "dtype", "impl")} == {"error"}
    # 3 measured iterations per corpus log: timing is not judged, and the report says so
    assert [(f.code, f.layer) for f in report.findings if f.check == "timing"] == [
        ("timing_insufficient", "(total)")]


@pytest.mark.parametrize("traces", [named, bare], ids=["module-names", "bare-logs"])
def test_fp32_baseline_int8_new_reports_improvements_and_passes(traces) -> None:
    report = check_traces(traces(EAGER), traces(INT8))
    expected = FP32_TO_INT8 if traces is named else by_identity(FP32_TO_INT8)
    assert structural(report) == expected
    assert report.exit_code == 0
    assert [f.layer for f in report.warnings if f.check != "timing"] == [
        FC if traces is named else FC_IDENTITY]


@pytest.mark.parametrize("traces", [named, bare], ids=["module-names", "bare-logs"])
def test_fused_baseline_eager_new_loses_every_fusion(traces) -> None:
    report = check_traces(traces(COMPILED), traces(EAGER))
    expected = FUSED_TO_EAGER if traces is named else by_identity(FUSED_TO_EAGER)
    assert structural(report) == expected
    assert report.exit_code == 1


def test_compiled_trace_without_names_is_matched_to_a_named_one() -> None:
    # the compiled graph fires no module hooks; pairing by kind and shape still names
    # each finding after the eager run's module
    report = check_traces(bare(COMPILED), named(EAGER))
    assert structural(report) == FUSED_TO_EAGER
    assert any("matched by primitive kind and shape" in note for note in report.notes)


@pytest.mark.parametrize("pair", [(EAGER, EAGER_ALL), (EAGER_ALL, EAGER), (MXNET, MXNET)])
def test_same_model_same_variant_has_no_structural_finding(pair) -> None:
    # two separate runs of fp32 eager (ONEDNN_VERBOSE=1 and =all): same structure
    report = check_traces(bare(pair[0]), bare(pair[1]))
    assert structural(report) == {}
    assert report.exit_code == 0


def test_ignored_layers_are_left_out() -> None:
    config = CheckConfig(ignore_layers=["layer4.*", FC])
    report = check_traces(named(INT8), named(EAGER), config)
    layers = {f.layer for f in report.findings}
    assert not any(layer.startswith("layer4.") or layer == FC for layer in layers)
    assert "layer3.5.conv3" in layers
    assert FC in report.ignored_layers


# ------------------------- edits of a real log: the findings no pair above has --

def _edited(name: str, edit) -> Trace:
    """The bare log with `edit(line)` applied to every line."""
    text = (CORPUS / f"{name}.log").read_text().splitlines()
    return dnnprof.parse([edit(line) + "\n" for line in text])


STEM = "mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3"
DOWNSAMPLE4 = "mb1_ic1024oc2048_ih14oh7kh1sh2dh0ph0_iw14ow7kw1sw2dw0pw0"


def test_isa_downgrade_and_reference_fallback_and_shape_change() -> None:
    def edit(line: str) -> str:
        if "brg_conv_fwd:avx512_core_vnni" in line and STEM in line:
            return line.replace("brg_conv_fwd:avx512_core_vnni", "ref:any")
        if DOWNSAMPLE4 in line:
            return line.replace("brgconv_1x1:avx512_core_vnni", "brgconv_1x1:avx2_vnni")
        return line.replace("1x2048:2048x1000", "1x2048:2048x10")

    report = check_traces(bare(INT8), _edited(INT8, edit))
    assert structural(report) == {
        ("impl", "impl_ref_fallback", "convolution brg_conv_fwd:avx512_core_vnni → ref:any"):
            [CONV_IDENTITY["conv1"]],
        ("impl", "isa_downgrade",
         "convolution brgconv_1x1:avx512_core_vnni → brgconv_1x1:avx2_vnni"):
            [CONV_IDENTITY["layer4.0.downsample.0"]],
        ("shape", "shape_changed", "matmul 1x2048:2048x1000 → 1x2048:2048x10"): [FC_IDENTITY],
    }
    assert report.exit_code == 1


def test_one_layer_falling_back_to_fp32_is_named() -> None:
    def edit(line: str) -> str:
        if DOWNSAMPLE4 in line and "src:u8" in line:
            return line.replace("src:u8", "src:f32").replace("wei:s8", "wei:f32")
        return line

    report = check_traces(bare(INT8), _edited(INT8, edit))
    assert structural(report) == {
        ("dtype", "dtype_fallback", "convolution u8/s8/u8 → f32/f32/u8"):
            [CONV_IDENTITY["layer4.0.downsample.0"]],
    }
    assert [f.severity for f in report.errors] == ["error"]
