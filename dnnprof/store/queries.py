"""The store's queries, written once: standard SQL that DuckDB and Spark both run unchanged.

Tables: `runs`, `layers`, `events` (dnnprof.store.schema). Parameters are `:name`
(dnnprof.store.engines turns them into each engine's own form). Only selections, joins
and window functions over stored values: every number is computed when a run is added
(or in Python afterwards), so both engines return the same rows, not merely close ones.
A series is one (model, variant, runner class): runs are only compared within one.
"""

from __future__ import annotations

from dnnprof.store.rows import STRUCTURE_FIELDS

SERIES_ORDER = "variant, runner, run_time, run_id"


def series_filter(alias: str = "", variant: bool = False, runner: bool = False) -> str:
    """`model = :model` and, when given, the variant and runner class."""
    prefix = f"{alias}." if alias else ""
    clauses = [f"{prefix}model = :model"]
    if variant:
        clauses.append(f"{prefix}variant = :variant")
    if runner:
        clauses.append(f"{prefix}runner = :runner")
    return " AND ".join(clauses)


def runs_in_store() -> str:
    """Per model, variant and runner class: how many runs, from when to when."""
    return """
        SELECT model, variant, runner, COUNT(*) AS runs,
               MIN(run_time) AS first_run, MAX(run_time) AS last_run,
               CAST(SUM(CASE WHEN conditions = 'unreliable' THEN 1 ELSE 0 END) AS BIGINT)
                   AS unreliable,
               CAST(SUM(CASE WHEN has_events THEN 1 ELSE 0 END) AS BIGINT) AS with_events
        FROM runs
        GROUP BY model, variant, runner
        ORDER BY model, variant, runner
    """


def newest_schema(table: str) -> str:
    """The newest schema version among a table's rows, and one run written with it."""
    return f"""
        SELECT schema_version, MIN(run_id) AS run_id FROM {table}
        GROUP BY schema_version ORDER BY schema_version DESC LIMIT 1
    """


def run_series(variant: bool, runner: bool) -> str:
    """Every run of a model (variant, runner class) in series order."""
    return f"""
        SELECT run_id, variant, runner, run_time, git_commit, git_branch, conditions,
               iterations, median_ms, layer_count, structure
        FROM runs
        WHERE {series_filter(variant=variant, runner=runner)}
        ORDER BY {SERIES_ORDER}
    """


def layer_series(variant: bool, runner: bool, layer: bool) -> str:
    """Each run's per-layer steady medians (only complete runs: those with a runs row)."""
    only_layer = " AND l.layer = :layer" if layer else ""
    return f"""
        SELECT r.variant, r.runner, l.run_id, l.layer, l.layer_index, l.median_ms
        FROM layers l JOIN runs r ON l.run_id = r.run_id
        WHERE {series_filter("r", variant, runner)}{only_layer}
        ORDER BY r.variant, r.runner, r.run_time, r.run_id, l.layer_index
    """


def _changed_runs(variant: bool, runner: bool) -> str:
    """CTEs `ordered` and `changed`: runs whose structure fingerprint differs from the one
    of the run before them in their series (LAG)."""
    window = "OVER (PARTITION BY variant, runner ORDER BY run_time, run_id)"
    return f"""
        WITH ordered AS (
            SELECT run_id, variant, runner, structure,
                   LAG(run_id) {window} AS previous_run,
                   LAG(structure) {window} AS previous_structure
            FROM runs
            WHERE {series_filter(variant=variant, runner=runner)}
        ),
        changed AS (
            SELECT run_id, previous_run, variant, runner FROM ordered
            WHERE previous_structure IS NOT NULL AND structure <> previous_structure
        )"""


def changed_runs(variant: bool, runner: bool) -> str:
    """Each run whose structure changed, and the run before it."""
    return _changed_runs(variant, runner) + """
        SELECT run_id, previous_run FROM changed ORDER BY run_id
    """


def structure_changes(variant: bool, runner: bool) -> str:
    """Layers that differ between a run and the one before it in its series, both sides.

    Only runs whose structure fingerprint changed are joined with their layers, so the
    `layers` table needs to hold just those runs and their predecessors (`changed_runs`).
    """
    fields = ("layer_index", "median_ms", *STRUCTURE_FIELDS)
    side = ", ".join(f"l.{f}" for f in fields)
    both = ",\n               ".join(f"a.{f} AS {f}, b.{f} AS previous_{f}" for f in fields)
    return _changed_runs(variant, runner) + f""",
        after_change AS (
            SELECT c.run_id, c.previous_run, c.variant, c.runner, l.layer, l.signature, {side}
            FROM changed c JOIN layers l ON l.run_id = c.run_id
        ),
        before_change AS (
            SELECT c.run_id, c.previous_run, c.variant, c.runner, l.layer, l.signature, {side}
            FROM changed c JOIN layers l ON l.run_id = c.previous_run
        )
        SELECT COALESCE(a.run_id, b.run_id) AS run_id,
               COALESCE(a.previous_run, b.previous_run) AS previous_run,
               COALESCE(a.variant, b.variant) AS variant,
               COALESCE(a.runner, b.runner) AS runner,
               COALESCE(a.layer, b.layer) AS layer,
               {both}
        FROM after_change a FULL OUTER JOIN before_change b
          ON a.run_id = b.run_id AND a.layer = b.layer
        WHERE a.signature IS NULL OR b.signature IS NULL OR a.signature <> b.signature
        ORDER BY run_id, layer
    """


def lookback_runs(count: int) -> str:
    """The latest `count` comparable runs (same model, variant, runner), newest first.

    Runs marked unreliable are left out, and so is the run being checked (:exclude).
    """
    return f"""
        SELECT run_id, run_time, git_commit, conditions, has_events, metadata, run_date
        FROM runs
        WHERE {series_filter(variant=True, runner=True)}
          AND run_id <> :exclude AND conditions <> 'unreliable'
        ORDER BY run_time DESC, run_id DESC
        LIMIT {int(count)}
    """


def run_events() -> str:
    """The stored steady exec events of the loaded runs, run by run, in log order."""
    return "SELECT * FROM events ORDER BY run_id, line"
