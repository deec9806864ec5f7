"""Stored traces small enough to commit: a ResNet-50 trace of 5 steady-state iterations
stays under 200 KB, both as `dnnprof parse -o` writes it and as a baseline, and loads back
identical."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import dnnprof
from dnnprof.check import baseline_trace, check_traces
from dnnprof.reconstruct import reconstruct
from support.check_logs import replicated_log

LIMIT = 200 * 1024
EAGER = "torch_resnet50_fp32_eager_b1"  # the biggest per iteration: 211 exec lines
EAGER_ALL = "torch_resnet50_fp32_eager_b1_verbose_all"  # plus create and exec:check lines


@pytest.mark.parametrize("name", [EAGER, EAGER_ALL])
def test_resnet50_five_iterations_fit_in_200_kb(name: str, tmp_path: Path) -> None:
    log = replicated_log(name, 5, tmp_path / f"{name}.log")
    trace = reconstruct(dnnprof.parse(log))
    measured = trace.events[trace.events["phase"] == "measure"]
    assert measured["iteration"].nunique() == 5

    full = trace.save(tmp_path / "full.parquet")
    slim = baseline_trace(trace).save(tmp_path / "baseline.parquet")
    sizes = {"full trace": full.stat().st_size, "baseline": slim.stat().st_size}
    print(f"\n{name}, 5 measured iterations: " +
          ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items()))
    assert sizes["full trace"] <= LIMIT
    assert sizes["baseline"] <= LIMIT

    loaded = dnnprof.load(full)
    pd.testing.assert_frame_equal(loaded.events, trace.events)
    assert loaded.metadata["counts"] == trace.metadata["counts"]
    assert loaded.metadata["reconstruction"]["mode"] == trace.metadata["reconstruction"]["mode"]


def test_baseline_keeps_the_steady_state_and_judges_like_the_full_trace(tmp_path: Path) -> None:
    log = replicated_log(EAGER, 5, tmp_path / "eager.log")
    trace = dnnprof.parse(log)
    stored = baseline_trace(trace)
    path = stored.save(tmp_path / "baseline.parquet")
    loaded = dnnprof.load(path)
    pd.testing.assert_frame_equal(loaded.events, stored.events)
    assert loaded.metadata["baseline"]["iterations"] == 5
    assert len(loaded.events) == 5 * 211
    assert set(loaded.events["phase"].astype(str)) == {"measure"}

    from_full = check_traces(trace, trace)
    from_baseline = check_traces(loaded, trace)
    assert from_baseline.total.median_base_ms == pytest.approx(from_full.total.median_base_ms)
    assert [f for f in from_baseline.findings if f.check != "timing"] == []
    assert from_baseline.exit_code == 0
