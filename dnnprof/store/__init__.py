"""The fleet's trace store: many runs as one Hive-partitioned Parquet dataset (docs/store.md).

    store = Store("/data/dnnprof-store")              # or an fsspec URL
    store.add(trace, RunContext.from_environment())   # atomic, idempotent by run id
    model_history(store, "resnet50", variant="int8")  # per-run times and change points
    baseline_runs(store, "resnet50", "int8", runner)  # a check baseline: the last 10 runs

    schema        tables, columns, partitions, versions;  files  atomic writes, inventory
    context       commit, branch, runner class and time from flags, CI variables and git
    rows          a Trace as store rows (runs, layers, events)
    store         Store (add) and Reader (load tables into an engine, query them)
    compact       a partition's files merged into one (thousands of small files are slow)
    engines       DuckDB in-process (default) and Apache Spark, one result form
    queries       the SQL, written once for both engines
    changepoints  timing steps (Pettitt's rank test, binary segmentation)
    changes       structural changes named as `check` names them
    history       History: series and change points;  lookback  a check baseline
    page, console the HTML page and the terminal tables

The public names below load lazily (`dnnprof --help` must not load pandas). The two
functions are not called `history` and `lookback`: those names are the submodules'.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.store.history import History, Settings
    from dnnprof.store.lookback import Lookback
    from dnnprof.store.store import Store

_PUBLIC = {
    "SCHEMA_VERSION": "dnnprof.store.schema",
    "RunContext": "dnnprof.store.context",
    "StoreError": "dnnprof.store.files",
    "ENGINES": "dnnprof.store.engines",
    "DEFAULT_ENGINE": "dnnprof.store.engines",
    "DEFAULT_SPARK_MASTER": "dnnprof.store.engines",
    "Store": "dnnprof.store.store",
    "Reader": "dnnprof.store.store",
    "AddResult": "dnnprof.store.store",
    "run_rows": "dnnprof.store.rows",
    "runner_class": "dnnprof.store.rows",
    "find_steps": "dnnprof.store.changepoints",
    "History": "dnnprof.store.history",
    "ChangePoint": "dnnprof.store.history",
    "Settings": "dnnprof.store.history",
    "build_history": "dnnprof.store.history",
    "Lookback": "dnnprof.store.lookback",
    "DEFAULT_LOOKBACK": "dnnprof.store.lookback",
    "build_lookback": "dnnprof.store.lookback",
    "compact_store": "dnnprof.store.compact",
}
__all__ = sorted([*_PUBLIC, "baseline_runs", "model_history"])


def __getattr__(name: str) -> Any:
    """`dnnprof.store.Store` and the other public names, imported on first use."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'dnnprof.store' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def model_history(store: Store | str, model: str, *, variant: str | None = None,
            layer: str | None = None, runner: str | None = None, engine: str | None = None,
            spark_master: str | None = None, settings: Settings | None = None) -> History:
    """The history of a model in a store: per-run times and change points (engine: duckdb
    by default, or spark)."""
    from dnnprof.store.history import build_history
    from dnnprof.store.store import Store

    store = store if isinstance(store, Store) else Store(store)
    with store.reader(engine, spark_master) as reader:
        return build_history(reader, model, variant, layer, runner, settings)


def baseline_runs(store: Store | str, model: str, variant: str, runner: str,
             count: int | None = None, *, exclude: str = "", engine: str | None = None,
             spark_master: str | None = None) -> Lookback:
    """The last `count` comparable runs (default 10) as a check baseline (store.lookback)."""
    from dnnprof.store.lookback import build_lookback
    from dnnprof.store.store import Store

    store = store if isinstance(store, Store) else Store(store)
    with store.reader(engine, spark_master) as reader:
        return build_lookback(reader, model, variant, runner, count, exclude)
