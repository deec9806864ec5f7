"""History and the lookback check, on stores built from real corpus runs (DuckDB).

A fleet store holds noisy copies of a real ResNet-50 run (tests/support/store_fleet.py) with
a layer slowed from one run on and a fusion lost from another: history must name exactly
those two runs and nothing else. Real logs added with `dnnprof store add` give the real
structural differences between two builds, and the baseline of `check --baseline-store`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dnnprof.cli import main
from dnnprof.metadata import RunConditions
from dnnprof.store import RunContext, Store, model_history
from dnnprof.store.changepoints import find_steps, pettitt
from dnnprof.trace import Trace
from dnnprof.vocabulary import ExitCode
from support.ci import missing_dependency
from support.corpus import CORPUS
from support.store_fleet import (
    FUSED_CONV,
    SLOW_LAYER,
    UNFUSED_RELU,
    Events,
    corpus_run,
    fleet,
    lost_fusion,
)

LOG = CORPUS / "torch_resnet50_compile_freezing_b1.log"
INT8_LOG = CORPUS / "torch_resnet50_int8_fx_b1.log"
FLEET = Events(slow_from=31, lost_from=46)  # runs 1..60


@pytest.fixture(autouse=True)
def _duckdb() -> None:
    try:
        import duckdb  # noqa: F401
    except ModuleNotFoundError:
        missing_dependency("duckdb is not installed (pip install -e '.[store]')")


def cli(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


# ------------------------------------------------------------ change points --

def test_a_step_is_found_where_it_starts() -> None:
    rng = np.random.default_rng(3)
    values = np.exp(rng.normal(0, 0.03, 400))
    values[250:] *= 1.15
    (step,) = find_steps(values)
    assert step.index == 250
    assert step.shift == pytest.approx(0.15, abs=0.02)
    assert step.p_value < 1e-6


def test_noise_and_single_slow_runs_are_not_steps() -> None:
    rng = np.random.default_rng(4)
    values = np.exp(rng.normal(0, 0.05, 300))
    values[[40, 41, 150, 299]] *= 3.0  # a few runs on a busy machine
    assert find_steps(values) == []


def test_a_slow_run_next_to_the_step_does_not_move_it() -> None:
    rng = np.random.default_rng(5)
    values = np.exp(rng.normal(0, 0.02, 200))
    values[120:] *= 1.2
    values[119] *= 2.5  # slower than both levels, just before the step
    assert [s.index for s in find_steps(values)] == [120]


def test_two_steps_and_the_smallest_change_that_counts() -> None:
    rng = np.random.default_rng(6)
    values = np.exp(rng.normal(0, 0.01, 300))
    values[100:] *= 1.10
    values[200:] *= 0.97  # -3 %: real, but below the 5 % that counts by default
    assert [s.index for s in find_steps(values)] == [100]
    assert [s.index for s in find_steps(values, min_shift=0.02)] == [100, 200]


def test_too_short_a_series_has_no_step() -> None:
    assert pettitt(np.array([1.0, 2.0, 3.0]), min_segment=5) == (0, 1.0)
    assert find_steps(np.r_[np.ones(6), 2 * np.ones(4)]) == []  # 4 runs after: not yet


# ---------------------------------------------------------------- history --

@pytest.fixture(scope="module")
def fleet_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "store"
    store = Store(path)
    for rows in fleet(60, FLEET):
        store.add_rows(rows)
    return path


def test_history_names_the_slow_run_and_the_lost_fusion(fleet_store: Path) -> None:
    history = model_history(fleet_store, "resnet50")
    (series,) = history.series
    assert (series.variant, series.runner, len(series.runs)) == ("compiled", "ci-epyc-2vcpu", 60)
    timing, structure = series.changes
    assert (timing.kind, timing.position, timing.run_id) == ("timing", 31, "run-00031")
    assert timing.previous_run == "run-00030"
    assert timing.layers == [SLOW_LAYER] and timing.codes == ["slower"]
    assert "+1" in timing.details[0]  # about +15 %
    assert (structure.kind, structure.position, structure.run_id) == ("structure", 46,
                                                                      "run-00046")
    assert structure.layers == [FUSED_CONV, UNFUSED_RELU]
    assert structure.codes == ["fusion_lost", "layer_added"]
    assert "lost eltwise_relu" in structure.details[0]
    assert structure.git_commit == series.runs["git_commit"][45]
    # unreliable runs are shown, never used to find a step
    unreliable = series.runs["conditions"] == "unreliable"
    assert not series.runs.loc[unreliable, "used"].any()


def test_history_cli_tables_json_and_page(fleet_store: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    page = tmp_path / "history.html"
    assert cli("history", "--store", fleet_store, "--model", "resnet50", "-o", page) == 0
    out = capsys.readouterr().out
    assert "Change points" in out and "#31" in out and "#46" in out
    html = page.read_text()
    assert "plotly" in html.lower() and "run-00031" in html
    assert "lost eltwise_relu" in html and f"{SLOW_LAYER}: " in html
    assert cli("history", "--store", fleet_store, "--model", "resnet50", "--layer", SLOW_LAYER,
               "--json") == 0
    found = json.loads(capsys.readouterr().out)
    (series,) = found["series"]
    assert [(c["kind"], c["position"]) for c in series["change_points"]] == [("timing", 31)]
    assert {row["layer"] for row in series["layers"]} == {SLOW_LAYER}
    assert len(series["series"]) == 60 and series["series"][30]["run_id"] == "run-00031"


def test_history_of_real_builds_names_their_structural_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = tmp_path / "store"
    for log, when in ((LOG, "2025-05-01T10:00:00Z"), (INT8_LOG, "2025-05-02T10:00:00Z")):
        assert cli("store", "add", log, "--store", store, "--model", "resnet50", "--variant",
                   "nightly", "--runner", "ci", "--time", when) == 0
    capsys.readouterr()
    (change,) = model_history(store, "resnet50").changes
    assert change.kind == "structure" and change.position == 2
    codes = set(change.codes)
    # compiled fp32 -> int8 FX: narrower data types on the convolutions, and the int8 model
    # runs its classifier (fc) as a oneDNN matmul
    assert "dtype_narrowed" in codes and "layer_added" in codes
    narrowed = [d for c, d in zip(change.codes, change.details, strict=True)
                if c == "dtype_narrowed"]
    assert "conv1: f32/f32/f32 → u8/s8/u8" in narrowed


# --------------------------------------------------------- lookback check --

@pytest.fixture(scope="module")
def runs_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three stored runs of the real compiled ResNet-50 log, a day apart."""
    path = tmp_path_factory.mktemp("lookback") / "store"
    for day in (1, 2, 3):
        assert cli("store", "add", LOG, "--store", path, "--model", "resnet50", "--variant",
                   "compiled", "--runner", "ci", "--run-id", f"night-{day}", "--time",
                   f"2025-06-0{day}T02:00:00Z", "--commit", f"{day}" * 40) == 0
    return path


def test_lookback_check_passes_an_unchanged_run(runs_store: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    assert cli("check", LOG, "--baseline-store", runs_store, "--model", "resnet50",
               "--variant", "compiled", "--runner", "ci", "--json") == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "pass"
    assert report["baseline"]["iterations"] == 9  # 3 runs x 3 steady iterations, pooled
    assert "3 stored runs" in report["baseline"]["path"]
    assert report["timing"]["total"]["verdict"] == "unchanged"


def test_lookback_check_fails_a_lost_fusion_and_a_slowdown(
    runs_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    unfused = lost_fusion(corpus_run()).save(tmp_path / "unfused.parquet")
    assert cli("check", unfused, "--baseline-store", runs_store, "--model", "resnet50",
               "--variant", "compiled", "--runner", "ci", "--json") == ExitCode.REGRESSION
    report = json.loads(capsys.readouterr().out)
    lost = [f for f in report["findings"] if f["code"] == "fusion_lost"]
    assert [f["layer"] for f in lost] == [FUSED_CONV]
    run = corpus_run()
    slower = run.events.copy()
    slower["duration_ms"] = slower["duration_ms"] * 1.25
    slow = Trace(slower, run.metadata.copy()).save(tmp_path / "slow.parquet")
    assert cli("check", slow, "--baseline-store", runs_store, "--model", "resnet50",
               "--variant", "compiled", "--runner", "ci", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["timing"]["total"]["verdict"] == "slower"
    assert {f["code"] for f in report["findings"] if f["severity"] == "error"} == {
        "timing_regression"}
    # one stored run has too few iterations to judge 3 new ones: said, not guessed
    assert cli("check", slow, "--baseline-store", runs_store, "--model", "resnet50",
               "--variant", "compiled", "--runner", "ci", "--json", "--lookback", "1") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["baseline"]["iterations"] == 3
    assert report["timing"]["total"]["verdict"] == "insufficient"


def test_lookback_leaves_out_unreliable_runs_and_the_run_itself(
    runs_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = Path(shutil.copytree(runs_store, tmp_path / "store"))  # this test adds to it
    run = corpus_run()
    noisy = Trace(run.events.assign(duration_ms=run.events["duration_ms"] * 3),
                  run.metadata.copy())
    noisy.metadata.conditions = RunConditions(verdict="unreliable")
    Store(store).add(noisy, RunContext(runner="ci"), model="resnet50", variant="compiled",
                     run_id="night-4")
    # the new run is in the store too (CI adds, then checks): it is not its own baseline
    assert cli("store", "add", LOG, "--store", store, "--model", "resnet50", "--variant",
               "compiled", "--runner", "ci") == 0
    capsys.readouterr()
    assert cli("check", LOG, "--baseline-store", store, "--model", "resnet50", "--variant",
               "compiled", "--runner", "ci", "--json") == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert "3 stored runs" in report["baseline"]["path"]
    assert "latest night-3" in report["baseline"]["path"]
