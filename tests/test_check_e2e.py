"""End to end: `dnnprof trace` twice, a saved baseline, `dnnprof check` passing, then failing on lost fusion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.ci import require_torch

# batch 2 sends every ResNet conv through oneDNN even at 64x64 (ATen's size rule)
RUN = ["resnet10", "--input-size", "64", "--batch", "2", "--warmup", "2", "--iters", "10",
       "--threads", "1", "--no-report"]


def _dnnprof(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnnprof", *args], capture_output=True, text=True, check=False
    )


def _trace(out: Path, *extra: str) -> Path:
    result = _dnnprof("trace", *RUN, *extra, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require_torch()
    root = tmp_path_factory.mktemp("e2e")
    return {
        "first": _trace(root / "first"),
        "second": _trace(root / "second"),
        "fused": _trace(root / "fused", "--fused"),
        "root": root,
    }


def test_same_model_twice_passes_against_a_saved_baseline(runs):
    baseline = runs["root"] / "baseline.parquet"
    saved = _dnnprof("baseline", "save", str(runs["first"]), "--to", str(baseline))
    assert saved.returncode == 0, saved.stderr
    assert baseline.exists()
    # two separate runs on a shared 2-core machine can meet different background load,
    # so the tolerance is wide here; the gate's error rates are measured in test_check_stats
    check = _dnnprof(
        "check", str(runs["second"]), "--baseline", str(baseline), "--tolerance", "50%",
        "--json", "--junit", str(runs["root"] / "junit.xml"),
    )
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    assert (runs["root"] / "junit.xml").read_text().startswith("<?xml")


def test_fusion_removed_fails_with_the_structural_finding(runs):
    check = _dnnprof(
        "check", str(runs["first"]), "--baseline", str(runs["fused"]), "--tolerance", "30%",
        "--markdown", str(runs["root"] / "verdict.md"),
    )
    assert check.returncode == 1, check.stdout + check.stderr
    verdict = (runs["root"] / "verdict.md").read_text()
    # each lost fusion is named by its layer: conv1's ReLU was a post-op in the fused run
    assert "fused post-ops" in verdict
    assert "`conv1` | post-ops eltwise_relu → none (lost eltwise_relu)" in verdict
    assert "reorder" in verdict
