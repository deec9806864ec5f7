"""`dnnprof study`: the thesis' chapter-4 experiments, run on this machine with dnnprof itself."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from dnnprof.profiler.runner import RunConfig, RunResult, run

# (run name, RunConfig overrides): MobileNet v1 widths; ResNet depths; ResNet-50
# precisions; ResNet-50 pruning at 50 %; DLRM vs its MLP-reduced form.
EXPERIMENTS: tuple[tuple[str, dict], ...] = (
    *((f"mobilenet_v1-w{w}", {"model": "mobilenet_v1", "width": w}) for w in (0.25, 0.5, 0.75, 1.0)),
    *((name, {"model": name}) for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")),
    ("resnet50-int8", {"model": "resnet50", "variants": ["int8"]}),
    ("resnet50-fused", {"model": "resnet50", "variants": ["fused"]}),
    ("resnet50-bf16", {"model": "resnet50", "variants": ["bf16"]}),
    ("resnet50-pruned-unstructured", {"model": "resnet50", "variants": ["pruned"], "pruned": 0.5}),
    (
        "resnet50-pruned-structured",
        {"model": "resnet50", "variants": ["pruned"], "pruned": 0.5, "prune_mode": "structured"},
    ),
    ("dlrm", {"model": "dlrm"}),
    ("dlrm-mlp_reduced", {"model": "dlrm", "variants": ["mlp_reduced"]}),
)


def run_study(
    runs_dir: Path,
    out_dir: Path,
    warmup: int = 1,
    iters: int = 5,
    only: list[str] | None = None,
    command: str | None = None,
    on_result: Callable[[str, RunResult], None] | None = None,
) -> tuple[Path, Path | None]:
    """Run every experiment (or those named in `only`), then write findings.md and report.html."""
    from dnnprof.reports.study import write_study

    run_dirs = []
    for name, overrides in EXPERIMENTS:
        if only and not any(word in name for word in only):
            continue
        config = RunConfig(warmup=warmup, iters=iters, out=runs_dir / name, **overrides)
        result = run(config)
        if on_result is not None:
            on_result(name, result)
        # a run that failed its evidence (bf16 on a CPU without it) is kept: the study
        # reports it as not measured, with the runner's reason
        run_dirs.append(result.run_dir)
    return write_study(run_dirs, out_dir, command=command or shlex.join(["dnnprof", "study"]))
