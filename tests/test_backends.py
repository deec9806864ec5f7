"""The MXNet and IPEX back-ends, run for real through the runner; evidence read from the Trace.

Each framework lives in its own virtualenv (`.ci/backends.sh`): where it is missing these
tests skip locally and fail under CI=true. Runs are small: resnet18 at 64x64, batch 1,
1 warm-up + 1 measured iteration, one thread (the machine is shared: OpenMP barriers stall
when another process takes the second core).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from dnnprof.profiler.runner import FRAMEWORK_WORKLOAD, RunConfig, RunError, resolve_python, run
from support.ci import missing_dependency

pytestmark = pytest.mark.slow

SMALL = {"model": "resnet18", "input_size": 64, "warmup": 1, "iters": 1, "threads": 1}
RESNET18_CONVS = 20  # 1 stem + 16 in the blocks + 3 downsample 1x1
RESNET18_BLOCKS = 8  # one residual add each


@functools.cache  # one probe per interpreter (a failed probe raises, so is not cached)
def _framework_python(framework: str, module: str) -> str:
    try:
        python = resolve_python(RunConfig(framework=framework))
    except RunError as exc:
        missing_dependency(str(exc))
    # a half-built virtualenv has a python but not the framework
    probe = subprocess.run(
        [python, "-c", f"import {module}"], capture_output=True, text=True, timeout=600
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        missing_dependency(f"{python} cannot import {module} ({last}); run bash .ci/backends.sh")
    return python


class Runs:
    """Runs of one framework, made on first use and shared by the tests of this module."""

    def __init__(self, framework: str, python: str, runs_dir: Path) -> None:
        self.framework, self.python, self.runs_dir = framework, python, runs_dir
        self._done: dict[tuple, object] = {}

    def __call__(self, variant: str, *extra: str, **overrides):
        key = (variant, extra, tuple(sorted(overrides.items())))
        if key not in self._done:
            config = RunConfig(
                framework=self.framework, python=self.python, variants=[variant],
                runs_dir=self.runs_dir, extra_args=list(extra), **{**SMALL, **overrides},
            )  # fmt: skip
            self._done[key] = run(config)
        return self._done[key]


@pytest.fixture(scope="module")
def mxnet(tmp_path_factory):
    return Runs("mxnet", _framework_python("mxnet", "mxnet"), tmp_path_factory.mktemp("mxnet"))


@pytest.fixture(scope="module")
def ipex(tmp_path_factory):
    python = _framework_python("ipex", "intel_extension_for_pytorch")
    return Runs("ipex", python, tmp_path_factory.mktemp("ipex"))


def _ok(result):
    assert result.exit_code == 0, (result.problems, result.stderr_tail)
    return result.trace.steady_exec()


def _kinds(steady) -> dict[str, int]:
    return steady["kind"].astype(str).value_counts().to_dict()


def _post_ops(steady) -> dict[str, int]:
    ops = steady["post_ops"].astype(str)
    return ops[ops != ""].value_counts().to_dict()


def _convs(steady):
    return steady[steady["kind"].astype(str) == "convolution"]


# ---------------------------------------------------------------------------- MXNet


def test_mxnet_fp32_hybridized_runs_every_op_in_onednn(mxnet):
    result = mxnet("fp32")
    steady = _ok(result)
    meta = result.trace.metadata
    assert meta["framework"] == "mxnet" and meta["framework_version"] == "1.9.1"
    assert meta["route"] == "hybridized"
    # MXNet 1.9's own oneDNN: v2 line format, read from DNNL_VERBOSE
    assert meta["dialect"] == "dnnl"
    assert meta["onednn_version"] == "v2.4.4"
    kinds = _kinds(steady)
    assert kinds["convolution"] == RESNET18_CONVS
    assert kinds["batch_normalization"] == RESNET18_CONVS
    assert kinds["sum"] == RESNET18_BLOCKS  # the residual adds are oneDNN primitives here
    assert kinds["eltwise"] >= RESNET18_BLOCKS and kinds["inner_product"] == 1
    assert not _post_ops(steady)
    assert set(_convs(steady)["prop"].astype(str)) == {"forward_inference"}
    # the layer table (Gluon symbol nodes) names every convolution
    layers = _convs(steady)["layer"].astype(str)
    assert layers.str.match(r"resnetv1\d+_.*conv\d+_fwd$").all(), layers.tolist()


def test_mxnet_fused_folds_batchnorm_and_relu_into_post_ops(mxnet):
    result = mxnet("fused")
    steady = _ok(result)
    assert result.trace.metadata["route"] == "optimize_for_mkldnn"
    kinds = _kinds(steady)
    assert kinds["convolution"] == RESNET18_CONVS
    assert "batch_normalization" not in kinds and "sum" not in kinds
    post_ops = _post_ops(steady)
    assert post_ops.get("sum+eltwise_relu") == RESNET18_BLOCKS
    assert post_ops.get("eltwise_relu", 0) >= 1


def test_mxnet_int8_quantize_net(mxnet):
    result = mxnet("int8")
    steady = _ok(result)
    trace = result.trace
    assert trace.metadata["route"] == "quantize_net"
    convs = _convs(steady)
    assert len(convs) == RESNET18_CONVS
    assert set(convs["src_dt"].astype(str)) <= {"u8", "s8"}
    assert set(convs["wei_dt"].astype(str)) == {"s8"}
    # oneDNN 2.x int8 scaling: the old output-scale attribute
    assert convs["attrs"].astype(str).str.contains("attr-oscale").all()
    assert _post_ops(steady).get("sum+eltwise_relu") == RESNET18_BLOCKS
    fc = steady[steady["kind"].astype(str) == "inner_product"]
    assert set(fc["wei_dt"].astype(str)) == {"s8"}
    # naive calibration ran the float model first, in its own phase
    ex = trace.exec_events
    calibration = ex[(ex["phase"].astype(str) == "calibrate") & (ex["kind"] == "convolution")]
    assert len(calibration) >= RESNET18_CONVS
    assert set(calibration["src_dt"].astype(str)) == {"f32"}


def test_mxnet_imperative_naive_engine_gives_block_markers(mxnet):
    result = mxnet("fp32", "--imperative")
    steady = _ok(result)
    assert result.trace.metadata["route"] == "imperative"
    convs = _convs(steady)
    assert len(convs) == RESNET18_CONVS
    # every convolution falls inside its own Conv2D block's begin/end markers
    assert set(convs["attribution"].astype(str)) == {"marker"}
    assert set(convs["layer_type"].astype(str)) == {"Conv2D"}
    assert (
        convs["layer"]
        .astype(str)
        .str.match(r"features\.\d+(\.\d+\.(body|downsample)\.\d+)?$")
        .all()
    )


def test_mxnet_bf16_says_why_it_cannot_run_or_runs_bf16(mxnet):
    result = mxnet("bf16")
    if result.child_returncode == 2:  # a CPU without AVX-512: refused, and why
        assert "bf16 is not available on this CPU" in result.stderr_tail
        assert "AVX-512" in result.stderr_tail
        assert result.trace.exec_events.empty  # refused before MXNet started
    else:
        steady = _ok(result)
        assert "bf16" in set(_convs(steady)["src_dt"].astype(str))


def test_mxnet_crash_keeps_the_partial_trace(mxnet):
    result = mxnet("fp32", "--crash-after", "0", "--no-layer-table", warmup=0)
    assert result.exit_code == 3 and result.child_returncode == 3
    assert "deliberate crash in iteration 0" in result.stderr_tail
    assert not result.trace.exec_events.empty  # what iteration 0 ran is kept
    assert (result.run_dir / "verbose.log").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "dlrm"], "choose from resnet18, resnet34"),
        (["--model", "resnet18", "--variant", "pruned"], "torch zoo only"),
        (["--model", "resnet18", "--variant", "int8", "--imperative"], "fp32 only"),
        (["--model", "mobilenet_v1", "--width", "0.3"], "0.75, 0.5, 0.25"),
    ],
)
def test_mxnet_usage_errors_exit_2(argv, message):
    python = _framework_python("mxnet", "mxnet")
    proc = subprocess.run(
        [python, str(FRAMEWORK_WORKLOAD["mxnet"]), *argv],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


# ---------------------------------------------------------------------------- IPEX


def test_ipex_fp32_prepacked_eager_with_module_markers(ipex):
    result = ipex("fp32")
    steady = _ok(result)
    meta = result.trace.metadata
    assert meta["framework"] == "ipex" and str(meta["framework_version"]).startswith("2.8")
    assert meta["route"] == "ipex_eager"
    assert meta["dialect"] == "onednn_v1"
    convs = _convs(steady)
    assert len(convs) == RESNET18_CONVS
    # ipex.optimize(sample_input=...) pre-packs the weights: no per-call weight reorders
    assert _kinds(steady).get("reorder", 0) == 0
    assert set(convs["attribution"].astype(str)) == {"marker"}


def test_ipex_fused_jit_has_post_ops(ipex):
    result = ipex("fused")
    steady = _ok(result)
    assert result.trace.metadata["route"] == "ipex_jit"
    assert len(_convs(steady)) == RESNET18_CONVS
    post_ops = _post_ops(steady)
    assert post_ops.get("sum+eltwise_relu") == RESNET18_BLOCKS
    assert post_ops.get("eltwise_relu", 0) >= 1


def test_ipex_int8_static_quantization(ipex):
    result = ipex("int8")
    steady = _ok(result)
    assert result.trace.metadata["route"] == "ipex_int8"
    convs = _convs(steady)
    assert len(convs) == RESNET18_CONVS
    assert set(convs["src_dt"].astype(str)) <= {"u8", "s8"}
    assert set(convs["wei_dt"].astype(str)) == {"s8"}
    assert convs["has_scales"].all()
    assert _post_ops(steady).get("sum+eltwise_relu") == RESNET18_BLOCKS
    matmul = steady[steady["kind"].astype(str) == "matmul"]
    assert set(matmul["wei_dt"].astype(str)) == {"s8"}


def test_ipex_bf16_says_why_it_cannot_run_or_runs_bf16(ipex):
    result = ipex("bf16")
    if result.child_returncode == 2:  # a CPU without oneDNN bf16 support: refused, and why
        assert "bf16 is not available on this CPU" in result.stderr_tail
        assert result.trace.metadata.get("bf16_supported") is False
    else:
        steady = _ok(result)
        assert "bf16" in set(_convs(steady)["src_dt"].astype(str))
