"""`dnnprof trace`: real runs of every PyTorch variant, evidence read from the parsed log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnnprof import markers
from dnnprof.profiler import runner
from dnnprof.profiler.runner import RunConfig, RunError, run
from dnnprof.trace import Trace
from dnnprof.vocabulary import ExitCode
from support.ci import missing_dependency

try:
    import torch  # noqa: F401  (only to know whether the workload can run here)
except ImportError:  # pragma: no cover
    torch = None

SMALL = {"model": "resnet18", "input_size": 64, "warmup": 1, "iters": 2}


@pytest.fixture(autouse=True)
def _needs_torch(request):
    # the tests over a fake workload (below) run the runner without any framework
    if torch is None and "fake_workload" not in request.fixturenames:
        missing_dependency("PyTorch is not installed in this interpreter")


def _run(tmp_path_factory, **overrides):
    params = {**SMALL, **overrides}
    config = RunConfig(runs_dir=tmp_path_factory.mktemp("runs"), **params)
    return run(config)


# At 64x64 ATen keeps most ResNet-18 convs out of oneDNN (its size heuristics), so the
# shape comparisons run at the model's own 224x224.
FULL_SIZE = {"input_size": 224, "iters": 1}


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    return _run(tmp_path_factory, **FULL_SIZE)


@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    return _run(tmp_path_factory, variants=["int8"])


def _steady(result):
    return result.trace.steady_exec()


def _conv_problems(result):
    ex = _steady(result)
    return ex.loc[ex["kind"] == "convolution", "problem"].astype(str).tolist()


def test_fp32_run_folder_and_layers(fp32):
    assert fp32.exit_code == 0, fp32.problems
    for name in ("verbose.log", "stderr.log", "trace.parquet", "summary.json"):
        assert (fp32.run_dir / name).exists(), name
    md = fp32.trace.metadata
    assert md["model"] == "resnet18" and md["variant"] == "fp32" and md["framework"] == "pytorch"
    assert md["timeline"] == "timestamps"  # ONEDNN_VERBOSE_TIMESTAMP was set for the child
    assert len(md["wall_ms"]) == 2
    ex = _steady(fp32)
    assert set(ex["prop"].astype(str)) >= {"forward_training"}  # eager convs, even in no_grad
    assert (ex["iteration"] >= 1).all()
    convs = ex[ex["kind"] == "convolution"]
    assert convs["layer"].astype(str).str.contains(r"conv|downsample").all()
    summary = json.loads((fp32.run_dir / "summary.json").read_text())
    assert summary["exec"] == md["counts"]["exec"] and summary["unparsed"] == 0
    assert 0 < md["coverage"]["median_share"] <= 1.5


def test_int8_evidence(int8):
    assert int8.exit_code == 0, int8.problems
    ex = _steady(int8)
    conv = ex[ex["kind"] == "convolution"]
    assert set(conv["src_dt"].astype(str)) <= {"u8", "s8"} and set(conv["wei_dt"].astype(str)) == {"s8"}
    assert conv["has_scales"].all()
    assert (conv["post_ops"].astype(str) == "eltwise_relu").any()
    assert set(conv["prop"].astype(str)) == {"forward_inference"}
    phases = set(int8.trace.events["phase"].astype(str))
    assert "calibrate" in phases or int8.trace.metadata.get("route") == "fx_int8"


def test_bf16_evidence(tmp_path_factory):
    result = _run(tmp_path_factory, variants=["bf16"])
    if result.trace.metadata["bf16_supported"] is False:
        # a CPU without oneDNN bf16 (no AVX-512 here): the runner must say so and fail,
        # never report an fp32 run as bf16
        assert result.exit_code == 1
        assert "no oneDNN bf16 support" in result.problems[0]
        assert "bf16" not in set(result.trace.exec_events["src_dt"].astype(str))
        return
    assert result.exit_code == 0, result.problems
    assert "bf16" in set(_steady(result)["src_dt"].astype(str))


def test_fused_evidence(tmp_path_factory):
    result = _run(tmp_path_factory, model="resnet10", variants=["fused"], iters=1)
    assert result.exit_code == 0, result.problems
    ex = _steady(result)
    assert (ex["post_ops"].astype(str) != "").any()
    assert set(ex.loc[ex["kind"] == "convolution", "prop"].astype(str)) == {"forward_inference"}


def test_pruning_structured_narrows_shapes_unstructured_does_not(fp32, tmp_path_factory):
    structured = _run(
        tmp_path_factory, pruned=0.5, prune_mode="structured", variants=["pruned"], **FULL_SIZE
    )
    unstructured = _run(
        tmp_path_factory, pruned=0.5, prune_mode="unstructured", variants=["pruned"], **FULL_SIZE
    )
    assert structured.exit_code == 0 and unstructured.exit_code == 0

    def oc_total(result):
        ex = _steady(result)
        conv = ex[(ex["kind"] == "convolution") & (ex["iteration"] == ex["iteration"].max())]
        return sum(int(p.split("oc")[1].split("_")[0]) for p in conv["problem"].astype(str))

    assert oc_total(structured) < oc_total(fp32)
    # unstructured pruning keeps every shape: the log cannot tell it from the dense model
    assert sorted(set(_conv_problems(unstructured))) == sorted(set(_conv_problems(fp32)))


def test_dlrm_versus_mlp_reduced(tmp_path_factory):
    full = _run(tmp_path_factory, model="dlrm", input_size=None)
    reduced = _run(tmp_path_factory, model="dlrm", input_size=None, variants=["mlp_reduced"])
    assert full.exit_code == 0 and reduced.exit_code == 0, (full.problems, reduced.problems)

    def ip(result):
        ex = _steady(result)
        return ex.loc[ex["kind"] == "inner_product", "problem"].astype(str)

    assert len(ip(full)) and len(ip(reduced))
    assert set(ip(full)) != set(ip(reduced))
    assert "oc512" in " ".join(ip(full)) and "oc512" not in " ".join(ip(reduced))
    assert full.trace.metadata["route"] == "mkldnn"


def test_unknown_model_lists_the_zoo(tmp_path):
    result = run(RunConfig(model="resnet9000", runs_dir=tmp_path))
    assert result.exit_code == 2
    assert "refused" in result.problems[0]
    log = (result.run_dir / "stderr.log").read_text()
    assert "resnet50" in log and "mobilenet" in log


def test_missing_framework_says_how_to_install(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = run(RunConfig(model="resnet18", python=str(bare / "bin" / "python"), runs_dir=tmp_path))
    assert result.exit_code != 0
    assert "pip install" in result.problems[0] and "torch" in result.problems[0]


def test_missing_backend_virtualenv(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNPROF_CACHE", str(tmp_path))
    monkeypatch.delenv("DNNPROF_MXNET_PYTHON", raising=False)
    with pytest.raises(RunError, match="backends.sh") as info:
        run(RunConfig(model="resnet18", framework="mxnet", runs_dir=tmp_path))
    assert info.value.exit_code == 2


def test_crash_mid_run_keeps_the_partial_trace(tmp_path):
    config = RunConfig(**SMALL, runs_dir=tmp_path, extra_args=["--crash-after", "1"])
    result = run(config)
    assert result.exit_code == 3 and result.child_returncode != 0
    assert "Traceback" in result.stderr_tail or "Error" in result.stderr_tail
    assert result.trace.metadata["counts"]["exec"] > 0  # iteration 0 was measured and kept
    assert (result.run_dir / "trace.parquet").exists()
    assert "failed" in result.problems[0]


def test_command_that_runs_no_onednn(tmp_path):
    result = run(RunConfig(command=[sys.executable, "-c", "print('hello')"], runs_dir=tmp_path))
    assert result.exit_code == 1
    assert "oneDNN executed nothing" in result.problems[0]
    assert result.trace.metadata["counts"]["foreign"] == 1


def test_wrapping_any_command_through_the_cli(tmp_path):
    script = (
        "import torch; c = torch.nn.Conv2d(3, 8, 5);"
        "[c(torch.randn(2, 3, 32, 32)) for _ in range(3)]"
    )
    out = subprocess.run(
        [sys.executable, "-m", "dnnprof", "trace", "--runs-dir", str(tmp_path), "--json",
         "--no-report", "--", sys.executable, "-c", script],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["kinds"]["convolution"]["calls"] == 3


def test_cli_int8_runs_as_in_the_readme(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "dnnprof", "trace", "resnet18", "--int8", "--input-size", "64",
         "--iters", "1", "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "convolution" in out.stdout and "int8" in out.stdout
    assert "run folder" in out.stderr


def test_ctrl_c_keeps_what_was_captured(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnnprof", "trace", "resnet18", "--input-size", "64",
         "--iters", "500", "--runs-dir", str(tmp_path), "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test runner started in the background inherits SIGINT ignored; a user's
        # terminal delivers Ctrl-C with the default action, which is what is tested
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    log = None
    while time.time() < deadline:
        logs = list(Path(tmp_path).glob("*/verbose.log"))
        if logs and "iter_end" in logs[0].read_text():
            log = logs[0]
            break
        time.sleep(0.5)
    assert log is not None, "the run never got to its first iteration"
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert (log.parent / "trace.parquet").exists()


def test_models_lists_the_zoo_with_params_input_and_flops():
    out = subprocess.run(
        [sys.executable, "-m", "dnnprof", "models"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert {"resnet50", "alexnet", "mobilenet_v1", "dlrm", "dlrm_mlp_reduced"} <= set(rows)
    resnet50 = rows["resnet50"].split()
    assert resnet50[1] == "25.6M" and float(resnet50[2]) == pytest.approx(7.7, abs=0.1)
    assert "1x3x224x224" in rows["resnet50"]


# ------------------------------------------- the runner over a fake workload (no framework)

# A child that speaks the workload protocol with dnnprof.profiler.child and prints a few
# oneDNN lines of the corpus: the runner's side of the protocol, tested without torch.
FAKE_WORKLOAD = """
import os
import stat
import sys
from dnnprof.profiler import child

HEADER = (
    "onednn_verbose,v1,info,oneDNN v3.12.0 (commit 80afa71049cd69a3df32adcccb623b12cd7baa22)",
    "onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,"
    "prop_kind,memory_descriptors,attributes,auxiliary,problem_desc,exec_time",
)
CONV = (
    "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,forward_training,"
    "src:f32:a:blocked:abcd::f0 wei:f32:a:blocked:Acdb16a::f0 bia:undef::undef::: "
    "dst:f32:a:blocked:aBcd16b::f0,attr-scratchpad:user,alg:convolution_direct,"
    "mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,2.71899"
)
mode = sys.argv[1]


def forward():
    child.module_begin("conv1", "Conv2d")
    print(CONV, flush=True)
    child.module_end("conv1", "Conv2d")


def body():
    print("\\n".join(HEADER), flush=True)
    child.emit_phase("setup")
    child.emit_metas({"model": "fake", "variant": "fp32", "route": "eager", "threads": 1,
                      "notes": ["a note"]})
    if mode == "bad-table":
        child.emit_meta("layer_table", "no-such-table.json")
    if mode == "refuse":
        raise child.UsageError("no such model: fake")
    if mode == "stdout-kind":
        print("stdout-is-a-" + ("file" if stat.S_ISREG(os.fstat(1).st_mode) else "stream"))
    child.emit_phase("run")
    child.timed_iterations(1, 2, forward, crash_after=1 if mode == "crash" else None)
    child.emit_phase("done")
    return 0


sys.exit(child.guarded_main("fake.py", body))
"""


@pytest.fixture
def fake_workload(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE_WORKLOAD)

    def run_fake(mode: str, **kwargs):
        config = RunConfig(command=[sys.executable, str(script), mode], out=tmp_path / mode)
        return run(config, **kwargs)

    return run_fake


def test_runner_reads_the_childs_markers(fake_workload):
    lines = []
    result = fake_workload("ok", on_line=lines.append)
    assert result.exit_code == ExitCode.OK, (result.problems, result.stderr_tail)
    metadata = result.trace.metadata
    assert (metadata.model, metadata.variant, metadata.route) == ("fake", "fp32", "eager")
    assert metadata.notes == ["a note"] and metadata.threads == 1
    assert len(metadata.wall_ms) == 3 and metadata.counts.exec == 3
    assert metadata.reconstruction_mode == "markers"
    assert metadata.coverage is not None
    decoded = [markers.Marker.from_line(line) for line in lines]
    assert all(marker is not None for marker in decoded)  # only marker lines reach on_line
    assert [m.field(0) for m in decoded if m.event == markers.PHASE] == ["setup", "run", "done"]
    assert sum(m.event == markers.ITER_END for m in decoded) == 3
    stored = Trace.load(result.run_dir)
    assert stored.metadata.model == "fake" and stored.metadata.problems == []
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["problems"] == [] and summary["coverage"]["median_share"] > 0


def test_the_child_writes_straight_into_the_log(fake_workload):
    # A pipe read and parsed line by line woke dnnprof for every verbose line and made a
    # two-thread workload wait for a CPU 20-27 % of its timed iterations on two CPUs.
    lines = []
    result = fake_workload("stdout-kind", on_line=lines.append)
    assert result.exit_code == ExitCode.OK, (result.problems, result.stderr_tail)
    log = (result.run_dir / "verbose.log").read_text()
    assert "stdout-is-a-file\n" in log
    phases = [markers.Marker.from_line(line).field(0) for line in lines
              if markers.Marker.from_line(line).event == markers.PHASE]
    assert phases == ["setup", "run", "done"]  # the markers were still followed live
    assert result.trace.metadata.counts.exec == 3 and len(result.trace.metadata.wall_ms) == 3


def test_a_refusing_child_is_a_usage_error_with_its_reason(fake_workload):
    result = fake_workload("refuse")
    assert result.exit_code == ExitCode.USAGE and result.child_returncode == 2
    assert result.problems[0] == "the workload refused to run: fake.py: error: no such model: fake"


def test_a_crashing_child_keeps_what_it_measured(fake_workload):
    result = fake_workload("crash")
    assert result.exit_code == 3 and result.child_returncode == 3
    assert "deliberate crash in iteration 1" in result.stderr_tail
    stored = Trace.load(result.run_dir)
    assert stored.metadata.counts.exec == 2  # warm-up 0 and iteration 1's forward
    assert "failed" in stored.metadata.problems[0]


def test_an_unusable_layer_table_leaves_a_warning_not_a_lost_run(fake_workload):
    result = fake_workload("bad-table")
    assert result.exit_code == ExitCode.OK, result.problems
    assert any("layer reconstruction failed" in w for w in result.trace.metadata.warnings)
    assert (result.run_dir / "trace.parquet").exists()


def test_a_reconstruction_bug_surfaces_after_the_run_is_saved(fake_workload, monkeypatch, tmp_path):
    def broken(trace, layers=None):
        raise RuntimeError("a bug in reconstruction")

    monkeypatch.setattr(runner, "reconstruct", broken)
    with pytest.raises(RuntimeError, match="a bug in reconstruction"):
        fake_workload("ok")
    # the measured run was saved before reconstruction started
    stored = Trace.load(tmp_path / "ok")  # the fixture's run folder for mode "ok"
    assert stored.metadata.model == "fake" and stored.metadata.counts.exec == 3
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["exec"] == 3
