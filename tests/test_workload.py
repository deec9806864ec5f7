"""The workload child, run for real as a script with ONEDNN_VERBOSE on.

Evidence is checked with plain string handling of the captured stdout (not with
dnnprof's parser), so these tests pin down what the child prints, independently of how
the analyzer reads it. Runs are small (resnet18 at 64-112 px, batch 1, 1 warm-up + 1-2
measured iterations, one thread so a busy 2-core machine does not stall OpenMP).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.ci import missing_dependency

WORKLOAD = Path(__file__).resolve().parents[1] / "dnnprof" / "profiler" / "workload.py"
# --no-layer-table skips the meta-device pass (seconds on a busy machine) where unused
SMALL = ["--batch", "1", "--warmup", "1", "--threads", "1", "--no-layer-table"]


class Run:
    """A finished workload run: exit status, stdout lines, stderr, and views over them."""

    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = proc.stdout.splitlines()

    @property
    def markers(self) -> list[list[str]]:
        return [line.split(",")[1:] for line in self.lines if line.startswith("#DNNPROF,")]

    def meta(self, key: str):
        values = [
            json.loads(line.split(",", 3)[3])
            for line in self.lines
            if line.startswith(f"#DNNPROF,meta,{key},")
        ]
        assert values, f"no meta {key!r} in the output"
        return values[-1]

    def exec_lines_by_iteration(self) -> dict[int, list[str]]:
        """Verbose exec lines inside each iter_begin/iter_end pair."""
        by_iteration: dict[int, list[str]] = {}
        current = None
        for line in self.lines:
            if line.startswith("#DNNPROF,iter_begin,"):
                current = int(line.split(",")[2])
                by_iteration[current] = []
            elif line.startswith("#DNNPROF,iter_end,"):
                current = None
            elif current is not None and _is_exec(line):
                by_iteration[current].append(line)
        return by_iteration

    def steady(self) -> list[str]:
        """Exec lines of the last measured iteration."""
        return self.exec_lines_by_iteration()[max(self.exec_lines_by_iteration())]


def _is_exec(line: str) -> bool:
    return line.startswith("onednn_verbose") and ",primitive,exec," in line


def _kind(line: str) -> str:
    fields = line.split(",")
    return fields[fields.index("exec") + 2]


def _conv_shapes(lines: list[str]) -> set[tuple[int, int]]:
    shapes = set()
    for line in lines:
        if _is_exec(line) and _kind(line) == "convolution":
            match = re.search(r"ic(\d+)oc(\d+)", line)
            shapes.add((int(match.group(1)), int(match.group(2))))
    return shapes


def run_workload(tmp_path: Path, *args: str, timeout: float = 600) -> Run:
    if importlib.util.find_spec("torch") is None:
        missing_dependency("the workload needs torch")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMP_NUM_THREADS")}
    env.update(ONEDNN_VERBOSE="1", ONEDNN_VERBOSE_TIMESTAMP="1")
    # cwd elsewhere and no PYTHONPATH: the script must find its own package.
    proc = subprocess.run(
        [sys.executable, str(WORKLOAD), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc)


def _ok(run: Run) -> Run:
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workload")


@pytest.fixture(scope="module")
def fp32_112(workdir) -> Run:
    return _ok(
        run_workload(
            workdir, *"--model resnet18 --input-size 112 --iters 2".split(), *SMALL, "--layer-table"
        )
    )


@pytest.mark.slow
def test_fp32_eager_lines_and_markers(fp32_112: Run) -> None:
    run = fp32_112
    assert run.meta("route") == "eager"
    assert run.meta("variant") == "fp32"
    assert run.meta("model") == "resnet18"
    assert run.meta("threads") == 1
    assert run.meta("input_shape") == [[1, 3, 112, 112]]
    table = run.meta("layer_table")
    assert table[0]["name"] == "conv1" and table[0]["params"]["kernel_size"] == [7, 7]

    phases = [m[1] for m in run.markers if m[0] == "phase"]
    assert phases == ["setup", "build", "run", "done"]
    iterations = [(m[0], int(m[1]), m[2]) for m in run.markers if m[0].startswith("iter_")]
    assert iterations == [
        ("iter_begin", 0, "warmup"),
        ("iter_end", 0, "warmup"),
        ("iter_begin", 1, "measure"),
        ("iter_end", 1, "measure"),
        ("iter_begin", 2, "measure"),
        ("iter_end", 2, "measure"),
    ]
    for marker in run.markers:
        if marker[0] == "iter_end":
            assert float(marker[4]) > 0

    # begin/end nest; every convolution lies inside a Conv2d leaf span; every oneDNN
    # timestamp lies after the marker before it (one clock for both).
    stack: list[tuple[str, str]] = []
    last_marker_ms = 0.0
    conv_lines = 0
    for line in run.lines:
        if line.startswith("#DNNPROF,"):
            fields = line.split(",")
            if fields[1] == "begin":
                stack.append((fields[2], fields[3]))
            elif fields[1] == "end":
                assert stack and stack[-1] == (fields[2], fields[3]), line
                stack.pop()
            if fields[1] in ("begin", "end", "iter_begin", "phase"):
                last_marker_ms = float(fields[-1])
            elif fields[1] == "iter_end":
                last_marker_ms = float(fields[4])
        elif _is_exec(line):
            assert float(line.split(",")[2]) >= last_marker_ms - 0.01, line
            if _kind(line) == "convolution":
                conv_lines += 1
                assert "forward_training" in line
                assert stack and stack[-1][1] == "Conv2d", line
    assert not stack
    assert conv_lines >= 3  # at least one conv per iteration went to oneDNN
    per_iteration = run.exec_lines_by_iteration()
    assert len(per_iteration[1]) == len(per_iteration[2]) > 0


@pytest.mark.slow
def test_structured_pruning_narrows_convolutions(workdir, fp32_112: Run) -> None:
    run = _ok(
        run_workload(
            workdir,
            *"--model resnet18 --input-size 112 --iters 1 --variant pruned".split(),
            *["--prune-mode", "structured", *SMALL],
        )
    )
    assert run.meta("variant") == "pruned"
    assert run.meta("prune")["mode"] == "structured"
    dense, pruned = _conv_shapes(fp32_112.steady()), _conv_shapes(run.steady())
    new_shapes = pruned - dense
    assert new_shapes, (dense, pruned)
    # half-width block convs: an output width the dense model never has
    assert min(oc for _, oc in pruned) < min(oc for _, oc in dense)


@pytest.mark.slow
def test_int8_lines_are_u8_s8_with_scales(workdir) -> None:
    run = _ok(
        run_workload(
            workdir,
            *"--model resnet18 --input-size 64 --iters 1 --variant int8 --calib 2".split(),
            *SMALL,
        )
    )
    assert run.meta("route") == "fx_int8"
    phases = [m[1] for m in run.markers if m[0] == "phase"]
    assert phases == ["setup", "build", "calibrate", "build", "run", "done"]
    steady = run.steady()
    convs = [line for line in steady if _kind(line) == "convolution"]
    assert convs
    for line in convs:
        assert ":u8:" in line and ":s8:" in line and "attr-scales" in line
        assert "forward_inference" in line
    # runtime leaf types come from the converted model
    assert any(row["type"] == "ConvReLU2d" for row in run.meta("leaf_modules"))


@pytest.mark.slow
def test_fused_has_post_ops_and_no_markers(workdir) -> None:
    run = _ok(
        run_workload(
            workdir, *"--model resnet10 --input-size 64 --iters 1 --variant fused".split(), *SMALL
        )
    )
    assert not any(m[0] in ("begin", "end") for m in run.markers)
    steady = run.steady()
    assert steady
    if run.meta("route") == "inductor":
        assert all(_kind(line) == "convolution" for line in steady), steady
        assert any("attr-post-ops:eltwise_relu" in line for line in steady)
        assert any("attr-post-ops:sum+eltwise_relu" in line for line in steady)
        assert all("forward_inference" in line for line in steady)
    else:  # jit fallback: optimize_for_inference makes relu/add separate primitives
        assert run.meta("route") == "jit"
        assert {"eltwise", "sum"} <= {_kind(line) for line in steady}


@pytest.mark.slow
def test_bf16_autocast(workdir, fp32_112: Run) -> None:
    run = _ok(
        run_workload(
            workdir, *"--model resnet18 --input-size 112 --iters 1 --variant bf16".split(), *SMALL
        )
    )
    assert run.meta("route") == "autocast"
    steady = run.steady()
    if run.meta("bf16_supported"):
        assert any(":bf16:" in line for line in steady), steady[:5]
    else:
        # No oneDNN bf16 on this CPU: ATen runs the bf16 convs itself, the fp32 ones vanish.
        assert any("bf16" in note for note in run.meta("notes"))
        assert not [line for line in steady if ":f32:" in line and _kind(line) == "convolution"]
        assert _conv_shapes(fp32_112.steady())


@pytest.mark.slow
def test_dlrm_and_mlp_reduced_differ(workdir) -> None:
    runs = {
        variant: _ok(
            run_workload(workdir, "--model", "dlrm", "--variant", variant, "--iters", "1", *SMALL)
        )
        for variant in ("fp32", "mlp_reduced")
    }

    def shapes(run: Run) -> set[str]:
        kinds = {"inner_product", "matmul"}
        return {line.split(",")[-2] for line in run.steady() if _kind(line) in kinds}

    for run in runs.values():
        assert run.meta("route") == "mkldnn"
        assert shapes(run)
    assert "mb1ic13oc512" in shapes(runs["fp32"])
    assert "mb1ic415oc512" in shapes(runs["fp32"])
    assert "mb1ic415oc128" in shapes(runs["mlp_reduced"])
    assert shapes(runs["fp32"]) != shapes(runs["mlp_reduced"])
    # every inner_product lies inside the span of its (swapped) Linear module
    open_types: list[str] = []
    for line in runs["fp32"].lines:
        if line.startswith(("#DNNPROF,begin,", "#DNNPROF,end,")):
            fields = line.split(",")
            if fields[1] == "begin":
                open_types.append(fields[3])
            else:
                open_types.pop()
        elif _is_exec(line) and _kind(line) == "inner_product":
            assert open_types and open_types[-1] == "MkldnnLinear", line


@pytest.mark.slow
def test_crash_exits_nonzero_and_keeps_markers(workdir) -> None:
    run = run_workload(
        workdir, *"--model resnet10 --input-size 64 --iters 3 --crash-after 1".split(), *SMALL
    )
    assert run.returncode == 3
    assert "Traceback" in run.stderr and "deliberate crash in iteration 1" in run.stderr
    iterations = [(m[0], m[1]) for m in run.markers if m[0].startswith("iter_")]
    assert iterations == [("iter_begin", "0"), ("iter_end", "0"), ("iter_begin", "1")]
    assert any(m[0] == "begin" for m in run.markers)
    assert "deliberate crash" in run.meta("error")


@pytest.mark.slow
def test_unknown_model_exits_2_with_the_list(workdir) -> None:
    run = run_workload(workdir, "--model", "resnet9000")
    assert run.returncode == 2
    assert "resnet50" in run.stderr and "dlrm" in run.stderr


def test_bad_variant_mix_exits_2(workdir) -> None:
    run = run_workload(workdir, "--model", "resnet18", "--variant", "int8,bf16")
    assert run.returncode == 2
    assert "exclude each other" in run.stderr


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported by a file outside functions and TYPE_CHECKING blocks."""
    names: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module or "")
                if node.module == "dnnprof":  # `from dnnprof import markers` names a module
                    names.update(f"dnnprof.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body + node.orelse + node.finalbody)

    visit(ast.parse(path.read_text()).body)
    return names


# The modules a workload child loads: each may import only the standard library, torch,
# the zoo and the others of this list (so none of them pulls in pandas).
CHILD_SIDE = {
    "dnnprof": WORKLOAD.parents[1] / "__init__.py",
    "dnnprof.profiler": WORKLOAD.parent / "__init__.py",
    "dnnprof.vocabulary": WORKLOAD.parents[1] / "vocabulary.py",
    "dnnprof.markers": WORKLOAD.parents[1] / "markers.py",
    "dnnprof.profiler.child": WORKLOAD.parent / "child.py",
    "dnnprof.profiler.workload": WORKLOAD,
    "dnnprof.profiler.torch_routes": WORKLOAD.parent / "torch_routes.py",
    "dnnprof.profiler.workload_ipex": WORKLOAD.parent / "workload_ipex.py",
    "dnnprof.profiler.workload_mxnet": WORKLOAD.parent / "workload_mxnet.py",
    "dnnprof.profiler.mxnet_routes": WORKLOAD.parent / "mxnet_routes.py",
    # imported by its bare name, as the children's sibling, when they run as scripts
    "script_path": WORKLOAD.parent / "script_path.py",
}


@pytest.mark.parametrize(
    "path",
    [*sorted((WORKLOAD.parent / "models").glob("*.py")), *CHILD_SIDE.values()],
    ids=lambda path: "/".join(path.parts[-2:]),
)
def test_child_side_imports_only_torch_and_stdlib(path: Path) -> None:
    """The child may run under an interpreter without pandas or dnnprof's dependencies."""
    for name in _top_level_imports(path):
        root = name.split(".")[0]
        allowed = root in sys.stdlib_module_names or root == "torch"
        allowed = allowed or name.startswith("dnnprof.profiler.models") or name == "__future__"
        # the stdlib-only helpers every child shares
        allowed = allowed or name in CHILD_SIDE
        assert allowed, f"{path.name} imports {name} at module level"


# ---------------------------------------------------------------- the zoo, in process


def test_resnet50_layer_table_is_v1_with_leaf_relus() -> None:
    models = pytest.importorskip("dnnprof.profiler.models")
    summary = models.summarize("resnet50", with_table=True)
    assert summary["params"] == 25_557_032
    rows = {row["name"]: row for row in summary["layer_table"]}
    assert summary["conv_layers"] == 53 and len(rows) == 159
    # v1: the stride sits on the first 1x1 conv of a down-sampling bottleneck
    assert rows["layer2.0.conv1"]["params"]["stride"] == [2, 2]
    assert rows["layer2.0.conv2"]["params"]["stride"] == [1, 1]
    assert rows["layer2.0.downsample.0"]["out_shape"] == [1, 512, 28, 28]
    names = [row["name"] for row in summary["layer_table"]]
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert names[-3:] == ["avgpool", "flatten", "fc"]


@pytest.mark.parametrize(
    "name, width",
    [("resnet18", None), ("mobilenet_v1", 0.25), ("alexnet", None), ("dlrm", None),
     ("bert_small", None)],
)  # fmt: skip
def test_structured_pruning_keeps_models_consistent(name: str, width: float | None) -> None:
    models = pytest.importorskip("dnnprof.profiler.models")
    spec = models.get_spec(name)
    model = models.build_model(name, width=width)
    inputs = spec.make_input(1, 64 if spec.input_kind == "image" else 8)
    before = models.count_flops(models.layer_table(model, inputs))
    summary = models.prune_model(model, 0.5, "structured")
    assert summary["widths"] and all(kept < width for _, width, kept in summary["widths"])
    after = models.count_flops(models.layer_table(model, inputs))  # shapes still chain
    assert after < before
