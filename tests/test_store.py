"""The trace store on disk: what `store add` writes, atomically, once per run id, under
concurrent writers; and the clear refusals (exit 2) of a store that cannot be used.

Every store here is real Parquet read back by real DuckDB; the runs are real corpus logs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dnnprof.cli import main
from dnnprof.metadata import RunConditions
from dnnprof.store import (
    RunContext,
    Store,
    StoreError,
    baseline_runs,
    compact_store,
    model_history,
)
from dnnprof.store.engines import open_engine
from dnnprof.store.rows import run_identity
from dnnprof.store.schema import MARKER
from dnnprof.vocabulary import ExitCode
from support.ci import missing_dependency
from support.corpus import CORPUS
from support.store_fleet import corpus_run

REPO = Path(__file__).resolve().parents[1]
LOG = CORPUS / "torch_resnet50_compile_freezing_b1.log"
INT8_LOG = CORPUS / "torch_resnet50_int8_fx_b1.log"


@pytest.fixture(autouse=True)
def _duckdb() -> None:
    try:
        import duckdb  # noqa: F401
    except ModuleNotFoundError:
        missing_dependency("duckdb is not installed (pip install -e '.[store]')")


def files_of(store: Path, table: str) -> list[Path]:
    return sorted((store / table).rglob("run-*.parquet"))


def cli(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


# ------------------------------------------------------------------ adding --

def test_add_writes_one_file_per_table_with_the_runs_numbers(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    trace = corpus_run()
    context = RunContext(commit="c0ffee", branch="main", runner="epyc-2", host="ci-7")
    result = store.add(trace, context, model="resnet50", variant="compiled")
    assert result.added
    for table in ("runs", "layers", "events"):
        (path,) = files_of(tmp_path / "store", table)
        assert path.parent.relative_to(tmp_path / "store" / table).parts[:2] == (
            "model=resnet50", "variant=compiled")
        assert path.name == f"run-{result.run_id}.parquet"
    run = pq.read_table(files_of(tmp_path / "store", "runs")[0]).to_pylist()[0]
    steady = trace.steady()
    totals = steady.groupby("iteration")["duration_ms"].sum().to_numpy()
    assert run["run_id"] == run_identity(trace)
    assert run["iterations"] == 3
    assert run["median_ms"] == pytest.approx(float(np.median(totals)))
    assert run["samples"] == pytest.approx(list(totals))
    assert (run["git_commit"], run["git_branch"], run["runner"], run["host"]) == (
        "c0ffee", "main", "epyc-2", "ci-7")
    assert run["conditions"] == "unknown"  # a captured log: no run conditions recorded
    layers = pq.read_table(files_of(tmp_path / "store", "layers")[0]).to_pandas()
    assert list(layers["layer"]) == list(trace.by_layer()["layer"])
    conv = layers.set_index("layer").loc["layer1.0.conv1"]
    assert conv["post_ops"] == "eltwise_relu" and conv["kinds"] == "convolution"
    assert conv["fused_layers"] == "layer1.0.bn1+layer1.0.relu1"
    assert conv["median_ms"] == pytest.approx(np.median(conv["samples"]))
    events = pq.read_table(files_of(tmp_path / "store", "events")[0])
    assert events.num_rows == len(steady)


def test_run_conditions_verdict_is_stored(tmp_path: Path) -> None:
    trace = corpus_run()
    busy = type(trace)(trace.events, trace.metadata.copy())
    busy.metadata.conditions = RunConditions(verdict="busy", cpu_model="AMD EPYC 9R14",
                                             threads=2)
    Store(tmp_path).add(busy, RunContext(), model="resnet50", variant="compiled",
                        run_id="busy-1")
    run = pq.read_table(files_of(tmp_path, "runs")[0]).to_pylist()[0]
    assert run["conditions"] == "busy"
    assert run["cpu_model"] == "AMD EPYC 9R14"
    assert run["runner"] == "AMD EPYC 9R14 x2"  # no runner class given: the recorded CPU


def test_store_add_twice_keeps_one_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "store"
    argv = ("store", "add", LOG, "--store", store, "--model", "resnet50", "--variant", "c")
    assert cli(*argv) == ExitCode.OK
    assert "added as run" in capsys.readouterr().out
    assert cli(*argv) == ExitCode.OK
    assert "already in the store" in capsys.readouterr().out
    # another time makes another date partition: the run id still finds the first file
    assert cli(*argv, "--time", "2024-02-29T12:00:00Z") == ExitCode.OK
    assert "already in the store" in capsys.readouterr().out
    for table in ("runs", "layers", "events"):
        assert len(files_of(store, table)) == 1
    assert cli("store", "ls", "--store", store, "--json") == ExitCode.OK
    listed = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["model"], r["variant"], r["runs"]) for r in listed] == [("resnet50", "c", 1)]


def test_commit_branch_and_runner_come_from_ci_variables_then_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    monkeypatch.setenv("GITHUB_REF_NAME", "feature/x")
    monkeypatch.setenv("DNNPROF_RUNNER", "gha-large")
    store = tmp_path / "store"
    assert cli("store", "add", LOG, "--store", store, "--model", "resnet50", "--variant", "c",
               "--time", "2025-03-01T08:30:00Z") == ExitCode.OK
    assert cli("store", "add", INT8_LOG, "--store", store, "--model", "resnet50",
               "--variant", "c", "--commit", "b" * 40, "--runner", "other") == ExitCode.OK
    rows = sorted((pq.read_table(p).to_pylist()[0] for p in files_of(store, "runs")),
                  key=lambda r: r["git_commit"])
    assert [(r["git_commit"][0], r["git_branch"], r["runner"]) for r in rows] == [
        ("a", "feature/x", "gha-large"), ("b", "feature/x", "other")]
    assert rows[0]["run_time"].isoformat() == "2025-03-01T08:30:00+00:00"
    assert files_of(store, "runs")[0].parent.name in ("run_date=2025-03-01",
                                                      f"run_date={rows[1]['run_time']:%Y-%m-%d}")


# --------------------------------------------------- atomic and concurrent --

WRITER = """
import sys
import dnnprof
from dnnprof.store import RunContext, Store
trace = dnnprof.load(sys.argv[1])
store = Store(sys.argv[2])
for number in sys.argv[3].split(","):
    store.add(trace, RunContext(runner="ci"), model="resnet50", variant="compiled",
              run_id=f"run-{number}")
"""


def _writer(trace_file: Path, store: Path, numbers: list[int]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(trace_file), str(store),
         ",".join(str(n) for n in numbers)], env=env, stderr=subprocess.PIPE, text=True)


def _complete_runs(store: Path) -> set[str]:
    """Runs with their runs row; every one must also have its layers and events."""
    runs = {p.name for p in files_of(store, "runs")}
    for table in ("layers", "events"):
        assert runs <= {p.name for p in files_of(store, table)}, f"a visible run lacks {table}"
    return runs


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus run saved as a trace: quick for child processes to load."""
    return corpus_run().save(tmp_path_factory.mktemp("trace") / "run.parquet")


def test_killed_add_leaves_the_store_readable(tmp_path: Path, trace_file: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "store"
    caught_mid_write = 0
    for attempt in range(8):
        writer = _writer(trace_file, store, list(range(attempt * 100, attempt * 100 + 100)))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and writer.poll() is None:
            if files_of(store, "runs") and list(store.rglob(".run-*.tmp")):
                break  # a file is being written right now
            time.sleep(0.001)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        unfinished = list(store.rglob(".run-*.tmp"))
        visible = _complete_runs(store)
        invisible = {p.name for p in files_of(store, "layers")} - visible
        caught_mid_write += bool(unfinished or invisible)
        # the store reads as usual: half-written runs are not there
        assert cli("store", "ls", "--store", store, "--json") == ExitCode.OK
        listed = json.loads(capsys.readouterr().out)["runs"]
        assert listed[0]["runs"] == len(visible)
        if caught_mid_write >= 2:
            break
    assert caught_mid_write, "no kill landed during a write: the test proved nothing"
    # adding the same runs again completes them, and nothing is there twice
    numbers = sorted(int(p.stem.split("-")[2]) for p in files_of(store, "layers"))
    finisher = _writer(trace_file, store, numbers)
    assert finisher.wait(timeout=300) == 0, finisher.stderr.read()
    assert _complete_runs(store) == {f"run-run-{n}.parquet" for n in numbers}


def test_concurrent_adds_keep_every_run_once(tmp_path: Path, trace_file: Path) -> None:
    store = tmp_path / "store"
    shared = list(range(12))  # every writer adds these, in its own order
    orders = [shared[::-1] + [100 + 10 * k + i for i in range(3)] if k % 2 == 0 else shared
              for k in range(4)]
    writers = [_writer(trace_file, store, order) for order in orders]
    for writer in writers:
        assert writer.wait(timeout=600) == 0, writer.stderr.read()
    expected = {f"run-run-{n}.parquet" for n in shared}
    expected |= {f"run-run-{100 + 10 * k + i}.parquet" for k in (0, 2) for i in range(3)}
    assert _complete_runs(store) == expected
    assert len(files_of(store, "runs")) == len(expected)  # one file per run, no duplicate
    assert not list(store.rglob("*.tmp"))
    assert json.loads((store / MARKER).read_text())["schema_version"] == 1


# -------------------------------------------------------------- bad input --

@pytest.fixture
def one_run_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    Store(store).add(corpus_run(), RunContext(runner="ci"), model="resnet50",
                     variant="compiled")
    return store


def _refused(capsys: pytest.CaptureFixture, *argv: str | Path) -> str:
    assert cli(*argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    err = _refused(capsys, "history", "--store", tmp_path / "nowhere", "--model", "resnet50")
    assert "no store at" in err and "dnnprof store add" in err
    err = _refused(capsys, "store", "ls", "--store", tmp_path)
    assert "is not a dnnprof store" in err


def test_foreign_files_in_the_store(one_run_store: Path, capsys: pytest.CaptureFixture) -> None:
    stray = one_run_store / "runs" / "model=resnet50" / "notes.txt"
    stray.write_text("mine")
    err = _refused(capsys, "history", "--store", one_run_store, "--model", "resnet50")
    assert "runs/model=resnet50/notes.txt" in err and "move them out" in err
    stray.unlink()
    (one_run_store / "layers" / "summary.parquet").write_bytes(b"PAR1")
    err = _refused(capsys, "store", "ls", "--store", one_run_store)
    assert "layers/summary.parquet" in err


def test_store_of_a_newer_schema(one_run_store: Path, capsys: pytest.CaptureFixture) -> None:
    marker = one_run_store / MARKER
    marker.write_text(json.dumps({"schema_version": 7}))
    err = _refused(capsys, "history", "--store", one_run_store, "--model", "resnet50")
    assert "newer dnnprof (store schema 7" in err and "upgrade dnnprof" in err
    err = _refused(capsys, "store", "add", LOG, "--store", one_run_store, "--model", "resnet50",
                   "--variant", "c")
    assert "store schema 7" in err


def test_run_of_a_newer_schema(one_run_store: Path, capsys: pytest.CaptureFixture) -> None:
    (path,) = files_of(one_run_store, "runs")
    table = pq.read_table(path)
    newer = table.set_column(table.schema.get_field_index("schema_version"), "schema_version",
                             pa.array([2], pa.int32()))
    pq.write_table(newer, path)
    err = _refused(capsys, "history", "--store", one_run_store, "--model", "resnet50")
    assert f"run {path.stem.removeprefix('run-')} in runs/ was written with store schema 2" in err


def test_unknown_model_variant_layer_and_runner(one_run_store: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    err = _refused(capsys, "history", "--store", one_run_store, "--model", "resnet18")
    assert "model 'resnet18' has no runs" in err and "models there: resnet50" in err
    err = _refused(capsys, "history", "--store", one_run_store, "--model", "resnet50",
                   "--variant", "int8")
    assert "no 'int8' runs (variants: compiled)" in err
    err = _refused(capsys, "history", "--store", one_run_store, "--model", "resnet50",
                   "--layer", "layer9.conv")
    assert "layer 'layer9.conv'" in err
    err = _refused(capsys, "check", LOG, "--baseline-store", one_run_store, "--model",
                   "resnet50", "--variant", "compiled", "--runner", "elsewhere")
    assert "no earlier runs" in err and "runner class 'elsewhere'" in err


def test_unusable_adds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    err = _refused(capsys, "store", "add", LOG, "--store", folder, "--model", "resnet50",
                   "--variant", "c")
    assert "neither empty nor a dnnprof store" in err
    err = _refused(capsys, "store", "add", LOG, "--store", tmp_path / "s")
    assert "does not say which model" in err and "--model" in err
    err = _refused(capsys, "store", "add", LOG, "--store", tmp_path / "s", "--model",
                   "resnet50", "--variant", "c", "--time", "yesterday")
    assert "--time 'yesterday'" in err
    err = _refused(capsys, "store", "add", LOG, "--store", tmp_path / "s", "--model",
                   "resnet50", "--variant", "../../etc")
    assert "variant '../../etc'" in err
    with pytest.raises(StoreError, match="unknown engine 'oracle'"):
        open_engine("oracle")


# -------------------------------------------------------------- compaction --

def test_compaction_merges_files_and_every_run_stays_once(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = tmp_path / "store"
    target = Store(store)
    for number in range(6):  # two days, three runs each
        when = pd.Timestamp(f"2025-04-0{1 + number // 3}T0{number}:00", tz="UTC")
        target.add(corpus_run(), RunContext(runner="ci", time=when), model="resnet50",
                   variant="compiled", run_id=f"r{number}")
    before = model_history(store, "resnet50")
    kept_aside = tmp_path / "r4.parquet"
    kept_aside.write_bytes(files_of(store, "runs")[4].read_bytes())
    assert cli("store", "compact", "--store", store) == ExitCode.OK
    assert "runs/: 6 files -> 2 (6 runs)" in capsys.readouterr().out
    for table in ("runs", "layers", "events"):
        assert [p.name.startswith("part-") for p in (store / table).rglob("*.parquet")] == [
            True, True]
    after = model_history(store, "resnet50")
    pd.testing.assert_frame_equal(before.series[0].runs, after.series[0].runs)
    pd.testing.assert_frame_equal(before.series[0].layers, after.series[0].layers)
    found = baseline_runs(store, "resnet50", "compiled", "ci", 2)
    assert list(found.runs["run_id"]) == ["r5", "r4"]
    assert found.pooled.events["iteration"].nunique() == 6
    # a run in a part file and in its own file (a compaction that died half-way) counts once
    partition = store / "runs" / "model=resnet50" / "variant=compiled" / "run_date=2025-04-02"
    (partition / "run-r4.parquet").write_bytes(kept_aside.read_bytes())
    assert len(model_history(store, "resnet50").series[0].runs) == 6
    assert cli("store", "add", LOG, "--store", store, "--model", "resnet50", "--variant",
               "compiled", "--run-id", "r1") == ExitCode.OK
    assert "already in the store" in capsys.readouterr().out
    assert cli("store", "compact", "--store", store) == ExitCode.OK
    assert "runs/: 3 files -> 2 (6 runs)" in capsys.readouterr().out
    (store / ".dnnprof-compact.lock").write_text("123\n")
    err = _refused(capsys, "store", "compact", "--store", store)
    assert "another compaction is running" in err


def test_a_store_at_an_fsspec_url(tmp_path: Path) -> None:
    """Object storage goes through fsspec: its in-memory file system stands in for S3 here
    (writes through fsspec, DuckDB reads through the same file system)."""
    url = f"memory://dnnprof-test/{tmp_path.name}/store"
    store = Store(url)
    for number in range(3):
        added = store.add(corpus_run(), RunContext(runner="ci"), model="resnet50",
                          variant="compiled", run_id=f"r{number}")
        assert added.added and added.path.startswith("runs/model=resnet50/")
    assert not store.add(corpus_run(), RunContext(runner="ci"), model="resnet50",
                         variant="compiled", run_id="r1").added
    assert list(store.runs_table()["runs"]) == [3]
    compact_store(store.files)
    assert store.files.find_run("runs/model=resnet50/variant=compiled", "r2").startswith(
        "runs/model=resnet50/variant=compiled/run_date=")
    history = model_history(url, "resnet50")
    assert list(history.series[0].runs["run_id"]) == ["r0", "r1", "r2"]
    found = baseline_runs(url, "resnet50", "compiled", "ci", 2)
    assert found.pooled.events["iteration"].nunique() == 6


def test_docs_describe_every_stored_column() -> None:
    from dnnprof.store.schema import LAYER_COLUMNS, RUN_COLUMNS

    docs = (REPO / "docs" / "store.md").read_text()
    for column in (*RUN_COLUMNS, *LAYER_COLUMNS):
        assert f"| `{column.name}` | {column.sql} | {column.doc} |" in docs
    assert (REPO / "docs" / "store-history.png").is_file()
