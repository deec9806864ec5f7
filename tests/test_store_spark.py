"""The same queries on Apache Spark (local mode, a real JVM) and on DuckDB: identical answers.

One SparkSession serves the whole test session (starting one takes seconds); the store is
small. Needs pyspark and Java 17+ (CI installs both; locally these tests skip without them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dnnprof.cli import main
from dnnprof.store import RunContext, Store, baseline_runs, compact_store, model_history
from support.ci import missing_dependency
from support.store_fleet import Events, corpus_run, fleet

MASTER = os.environ.get("DNNPROF_SPARK_MASTER", "local[2]")


@pytest.fixture(scope="session")
def spark() -> str:
    """A running local Spark, shared by every test here; its master URL."""
    for package, extra in (("pyspark", "spark"), ("duckdb", "store")):
        if importlib.util.find_spec(package) is None:
            missing_dependency(f"{package} is not installed (pip install -e '.[{extra}]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing_dependency("Spark needs Java 17+ (apt-get install openjdk-17-jre-headless)")
    from dnnprof.store.engines import spark_session

    spark_session(MASTER)
    return MASTER


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fleet (a slowdown from run 21, a lost fusion from run 31) plus four real runs with
    their events on another runner class; compacted before the last run was added, so both
    engines read part files and run files."""
    path = tmp_path_factory.mktemp("spark") / "store"
    target = Store(path)
    for rows in fleet(40, Events(slow_from=21, lost_from=31)):
        target.add_rows(rows)
    for day in (1, 2, 3, 4):
        if day == 4:
            compact_store(target.files)
        target.add(corpus_run(), RunContext(runner="ci", commit=f"{day}" * 40,
                                            time=pd.Timestamp(f"2025-02-0{day}", tz="UTC")),
                   model="resnet50", variant="compiled", run_id=f"night-{day}")
    return path


def test_history_is_the_same_on_both_engines(spark: str, store: Path) -> None:
    on_duckdb = model_history(store, "resnet50", engine="duckdb")
    on_spark = model_history(store, "resnet50", engine="spark", spark_master=spark)
    assert (on_duckdb.engine, on_spark.engine) == ("duckdb", "spark")
    assert len(on_spark.series) == 2
    for ours, theirs in zip(on_duckdb.series, on_spark.series, strict=True):
        pd.testing.assert_frame_equal(ours.runs, theirs.runs)
        pd.testing.assert_frame_equal(ours.layers, theirs.layers)
        assert ours.changes == theirs.changes
        assert ours.notes == theirs.notes
    fleet_series = on_spark.series[1]
    assert [(c.kind, c.position) for c in fleet_series.changes] == [("timing", 21),
                                                                   ("structure", 31)]


def test_store_listing_and_lookback_are_the_same_on_both_engines(spark: str,
                                                                 store: Path) -> None:
    pd.testing.assert_frame_equal(Store(store).runs_table("duckdb"),
                                  Store(store).runs_table("spark", spark))
    ours = baseline_runs(store, "resnet50", "compiled", "ci", 2, engine="duckdb")
    theirs = baseline_runs(store, "resnet50", "compiled", "ci", 2, engine="spark",
                           spark_master=spark)
    assert list(theirs.runs["run_id"]) == ["night-4", "night-3"]  # a run file, a part
    pd.testing.assert_frame_equal(ours.runs, theirs.runs)
    pd.testing.assert_frame_equal(ours.pooled.events, theirs.pooled.events)
    pd.testing.assert_frame_equal(ours.latest.events, theirs.latest.events)


def test_history_command_with_spark(spark: str, store: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    argv = ["history", "--store", str(store), "--model", "resnet50", "--variant", "compiled",
            "--runner", "ci-epyc-2vcpu", "--json"]
    assert main(argv) == 0
    on_duckdb = json.loads(capsys.readouterr().out)
    assert main([*argv, "--engine", "spark", "--spark-master", spark]) == 0
    on_spark = json.loads(capsys.readouterr().out)
    assert on_spark.pop("engine") == "spark" and on_duckdb.pop("engine") == "duckdb"
    assert on_spark == on_duckdb
