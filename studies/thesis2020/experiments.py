"""The runs the study makes, each a `dnnprof trace` run folder (dnnprof.profiler.runner)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dnnprof.profiler.runner import RunConfig, RunResult, run

# (run name, RunConfig overrides): MobileNet v1 widths; ResNet depths; ResNet-50
# precisions; ResNet-50 pruning at 50 %; DLRM against its MLP-reduced form.
EXPERIMENTS: tuple[tuple[str, dict[str, Any]], ...] = (
    *((f"mobilenet_v1-w{w}", {"model": "mobilenet_v1", "width": w})
      for w in (0.25, 0.5, 0.75, 1.0)),
    *((name, {"model": name})
      for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")),
    ("resnet50-int8", {"model": "resnet50", "variants": ["int8"]}),
    ("resnet50-fused", {"model": "resnet50", "variants": ["fused"]}),
    ("resnet50-bf16", {"model": "resnet50", "variants": ["bf16"]}),
    ("resnet50-pruned-unstructured", {"model": "resnet50", "variants": ["pruned"], "pruned": 0.5}),
    ("resnet50-pruned-structured",
     {"model": "resnet50", "variants": ["pruned"], "pruned": 0.5, "prune_mode": "structured"}),
    ("dlrm", {"model": "dlrm"}),
    ("dlrm-mlp_reduced", {"model": "dlrm", "variants": ["mlp_reduced"]}),
)


def run_experiments(
    runs_dir: Path,
    warmup: int = 1,
    iters: int = 5,
    only: Sequence[str] | None = None,
    on_result: Callable[[str, RunResult], None] | None = None,
    wait_quiet: float | None = None,
    repeat: int = 1,
) -> list[Path]:
    """Run every experiment (or those whose name contains a word of `only`); their folders.

    A run that failed its variant's evidence (bf16 on a CPU without it) is kept: the study
    reports it as not measured, with the runner's reason. Every run records its conditions;
    `wait_quiet` waits for a quiet machine before each one, `repeat` runs each K times.
    """
    run_dirs = []
    for name, overrides in EXPERIMENTS:
        if only and not any(word in name for word in only):
            continue
        result = run(RunConfig(warmup=warmup, iters=iters, out=runs_dir / name,
                               wait_quiet=wait_quiet, repeat=repeat, **overrides))
        if on_result is not None:
            on_result(name, result)
        run_dirs.append(result.run_dir)
    return run_dirs
