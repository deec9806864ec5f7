"""Report, compare and check read a narrowed trace (its exec rows, the columns they use) and
compute per distinct value instead of per row: the results are those of the whole trace and
of the row-by-row computations they replace, on the corpus.

The `_rowwise_*` functions are the computations as they were (a string per row, copies of
the steady rows), kept here as the reference.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import dnnprof
from dnnprof.check.gate import check, check_traces
from dnnprof.check.steady import STEADY_COLUMNS, steady_state
from dnnprof.check.timing import _shared_codes
from dnnprof.loader import SELECTION_COLUMNS, narrowed, open_trace
from dnnprof.reports import structure, tables
from dnnprof.reports.compare import Comparison
from dnnprof.reports.frames import concat, tops
from dnnprof.reports.variants import FUSABLE_KINDS, ROLES, TRACE_COLUMNS, primitive_roles
from dnnprof.trace import Trace
from dnnprof.views import RESNET_STAGES, stages_of_rows
from dnnprof.vocabulary import COMPUTE_KINDS, NON_STEADY_PHASES, REORDER
from support.corpus import CORPUS
from support.corpus_traces import REPORT_LOGS, labelled_trace


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> list:
    folder = tmp_path_factory.mktemp("narrow")
    return [labelled_trace(name).save(folder / f"{name}.parquet") for name in REPORT_LOGS]


@pytest.fixture(scope="module")
def whole() -> Comparison:
    return Comparison.from_traces([labelled_trace(name) for name in REPORT_LOGS])


@pytest.fixture(scope="module")
def narrow(stored) -> Comparison:
    return Comparison.from_paths(stored)


def _tables(comparison: Comparison) -> dict:
    every = comparison.to_json()
    for row in every["overview"]:
        row.pop("source")  # a file path on one side, the log's on the other
    every["timeline"] = comparison.timeline().to_dict(orient="list")
    return json.loads(json.dumps(every, default=str))


def test_a_narrowed_stored_trace_gives_every_table_of_the_whole_trace(whole, narrow):
    for variant in narrow.variants:
        events = variant.trace.events
        assert set(events.columns) <= set(TRACE_COLUMNS) | set(SELECTION_COLUMNS)
        assert (events["op"] == "exec").all()
    assert _tables(narrow) == _tables(whole)


def test_the_variant_layer_view_is_the_traces_by_layer(whole):
    for variant in whole.variants:
        pd.testing.assert_frame_equal(variant.layer_view, variant.trace.by_layer())


def test_the_variant_rows_are_the_steady_rows_in_line_order(whole):
    for variant in whole.variants:
        steady = variant.trace.steady()
        if variant.iterations_known:
            steady = steady[steady["iteration"] >= 0]
        expected = steady.sort_values("line", kind="stable")
        assert variant.steady.index.equals(expected.index)
        pd.testing.assert_series_equal(variant.steady["duration_ms"], expected["duration_ms"])


def _same(new: pd.DataFrame, old: pd.DataFrame) -> None:
    assert list(new.columns) == list(old.columns)
    assert json.dumps(new.to_dict(orient="records"), default=str) == json.dumps(
        old.to_dict(orient="records"), default=str)


def _rowwise_roles(rows: pd.DataFrame) -> pd.Series:
    kinds = rows["kind"]
    compute = kinds.isin(COMPUTE_KINDS)
    has_post = rows["post_ops"] != ""
    role = np.select(
        [compute & has_post, compute, kinds.isin(FUSABLE_KINDS), kinds == REORDER],
        list(ROLES[:4]), default=ROLES[4])
    return pd.Series(role, index=rows.index)


def test_roles_as_codes_are_the_role_texts(whole):
    for v in whole.variants:
        assert (primitive_roles(v.steady).astype(str) == _rowwise_roles(v.steady)).all()


def test_fusion_roles_and_summary_match_the_rowwise_ones(whole):
    frames = []
    for v in whole.variants:
        rows = v.steady.assign(role=_rowwise_roles(v.steady))
        grouped = rows.groupby("role", sort=False)
        table = pd.DataFrame({
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
        }).join(tops(rows, ["role"]))
        table = table.reindex([r for r in ROLES if r in table.index])
        frames.append(table.reset_index(names="role").assign(variant=v.name))
    old = concat(frames, ["variant", "role", "calls_per_iter", "ms_per_iter", "top_layer",
                          "top_shape"])
    _same(whole.fusion_roles, old)
    summary = whole.fusion_summary.set_index("variant")
    for v in whole.variants:
        kinds = v.steady["kind"].astype(str)
        fused = v.steady.loc[_rowwise_roles(v.steady) == ROLES[0], "post_ops"]
        names = fused.astype(str).str.split("+").explode().str.split(":").str[0]
        expected = ", ".join(f"{name} x{count / v.divisor:g}"
                             for name, count in names.value_counts().items())
        assert summary.loc[v.name, "post_ops"] == expected
        for kind in FUSABLE_KINDS:
            assert summary.loc[v.name, kind] == float((kinds == kind).sum()) / v.divisor
    assert any(summary["post_ops"] != "")  # the int8 variant fuses: the counts are exercised


def _rowwise_groups(rows: pd.DataFrame, keys: list[str], divisor: int) -> list[tuple]:
    """Per group of the keys' texts, in order of first row: the texts, calls and ms per
    iteration (the reference the grouped tables are held to)."""
    texts = rows.assign(**{key: rows[key].astype(str) for key in keys})
    totals = texts.groupby(keys, sort=False).agg(
        calls=("duration_ms", "size"), ms=("duration_ms", "sum"), first=("line", "min"))
    return [(*key, calls / divisor, ms / divisor)
            for key, calls, ms in zip(totals.index, totals["calls"], totals["ms"], strict=True)]


def test_fused_primitives_match_the_rowwise_ones(whole):
    new = structure.fused_primitives(whole.variants)
    assert len(new)
    for v in whole.variants:
        rows = v.steady[v.steady["kind"].isin(COMPUTE_KINDS)]
        merged = rows["fused_layers"].str.contains("+", regex=False)
        rows = rows[(rows["post_ops"].astype(str) != "") | merged]
        rows = rows.assign(fused=rows["fused_layers"].where(merged, "").str.replace("+", " + "))
        keys = ["layer_name", "kind", "shape", "post_ops", "fused"]
        expected = sorted(_rowwise_groups(rows, keys, v.divisor))
        mine = new[new["variant"] == v.name]
        assert sorted(zip(mine["layer"], mine["kind"], mine["shape"].astype(str),
                          mine["post_ops"], mine["fused_layers"], mine["calls_per_iter"],
                          mine["ms_per_iter"], strict=True)) == expected


def test_reorder_detail_matches_the_rowwise_one(whole):
    new = structure.reorder_detail(whole.variants)
    assert len(new)
    for v in whole.variants:
        rows = v.steady[v.steady["kind"] == REORDER]
        rows = rows.assign(
            formats=rows["src_fmt"].astype(str) + " -> " + rows["dst_fmt"].astype(str),
            types=rows["src_dt"].astype(str) + " -> " + rows["dst_dt"].astype(str),
        )
        expected = _rowwise_groups(rows, ["reorder_class", "formats", "types"], v.divisor)
        mine = new[new["variant"] == v.name]
        assert sorted(zip(mine["reorder_class"].astype(str), mine["formats"], mine["types"],
                          mine["calls_per_iter"], mine["ms_per_iter"], strict=True)
                      ) == sorted(expected)


def test_stages_match_the_rowwise_ones(whole):
    frames = []
    for v in whole.variants:
        stage, method = stages_of_rows(v.steady)
        staged = v.steady.assign(stage=stage).dropna(subset=["stage"])
        grouped = staged.groupby("stage")
        table = pd.DataFrame({
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
        }).join(tops(staged, ["stage"]))
        table = table.reindex([s for s in RESNET_STAGES if s in table.index])
        frames.append(table.reset_index(names="stage").assign(variant=v.name, method=method))
    old = concat(frames, ["variant", "stage", "ms_per_iter", "calls_per_iter",
                          "top_layer", "top_shape", "method"])
    _same(tables.by_stage(whole.variants), old)


# ------------------------------------------------------------------- check --

def _pair() -> tuple[Trace, Trace]:
    return (labelled_trace("torch_resnet50_fp32_eager_b1"),
            dnnprof.parse(CORPUS / "torch_resnet50_fp32_eager_b1_verbose_all.log"))


def test_shared_codes_are_the_factorized_texts():
    states = [steady_state(trace) for trace in _pair()]
    renames = ({}, {name: f"renamed {name}" for name in states[1].rows["unit"].unique()[:5]})
    for column, rename in (("unit", renames), ("kind", ({}, {})), ("signature", ({}, {}))):
        texts = [s.rows[column].astype(str).to_numpy(dtype=object) for s in states]
        texts[1] = np.array([rename[1].get(t, t) for t in texts[1]], dtype=object)
        expected_codes, expected_names = pd.factorize(np.r_[texts[0], texts[1]])
        codes, names = _shared_codes([s.rows[column] for s in states], rename)
        assert np.array_equal(codes, expected_codes), column
        assert list(names) == list(expected_names), column


def test_the_steady_rows_of_a_check_are_the_rowwise_selection():
    for trace in (*_pair(), labelled_trace("mxnet_resnet50_v1_fp32_b1")):
        state = steady_state(trace)
        ex = state.trace.exec_events
        rows = ex[ex["iteration"] >= 0]
        steady = Trace.steady_mask(rows)
        rows = rows[steady] if steady.any() else rows[~rows["phase"].isin(NON_STEADY_PHASES)]
        assert state.rows.index.equals(rows.index)
        assert set(state.rows.columns) == {*STEADY_COLUMNS, "iter", "unit", "signature"}


def test_a_check_of_narrowed_stored_traces_is_the_check_of_the_whole_ones(tmp_path):
    base, new = _pair()
    base_path = base.save(tmp_path / "base.parquet")
    new_path = dnnprof.open(CORPUS / "torch_resnet50_fp32_eager_b1_verbose_all.log").save(
        tmp_path / "new.parquet")
    narrow = check(new_path, baseline=base_path).to_dict()
    full = check_traces(Trace.load(base_path), Trace.load(new_path),
                        baseline_path=str(base_path), new_path=str(new_path)).to_dict()
    assert narrow == full


# ------------------------------------------------------------------ loader --

def test_open_with_columns_keeps_the_exec_rows_and_those_columns(tmp_path, stored):
    trace = open_trace(stored[0], columns=STEADY_COLUMNS)
    assert list(trace.events.columns) == [c for c in Trace.load(stored[0]).events.columns
                                          if c in {*STEADY_COLUMNS, *SELECTION_COLUMNS}]
    whole = narrowed(Trace.load(stored[0]), STEADY_COLUMNS)
    pd.testing.assert_frame_equal(trace.events, whole.events)
    # a log is parsed and reconstructed whole, then narrowed the same way
    log = open_trace(CORPUS / "torch_resnet50_fp32_eager_b1.log", columns=STEADY_COLUMNS)
    assert set(log.events.columns) == {*STEADY_COLUMNS, *SELECTION_COLUMNS}
    assert (log.events["op"] == "exec").all() and (log.events["iteration"] >= 0).any()


def test_a_stored_trace_without_iterations_is_read_whole(tmp_path):
    bare = dnnprof.parse(CORPUS / "torch_resnet50_fp32_eager_b1.log")
    path = bare.save(tmp_path / "bare.parquet")
    # the check reconstructs it from every row (markers, creations), so it gets them all
    kept = open_trace(path, layers=False, columns=STEADY_COLUMNS)
    assert len(kept.events) == len(bare.events)
    assert steady_state(kept).method == "reconstructed"
    # a report reconstructs it on opening, then narrows it
    opened = open_trace(path, columns=TRACE_COLUMNS)
    assert (opened.events["op"] == "exec").all() and (opened.events["iteration"] >= 0).any()


# --------------------------------------------------------------- bootstrap --

@pytest.mark.parametrize("sizes", [(3, 3), (7, 1595), (1596, 33), (2, 9)])
def test_the_bootstrap_in_blocks_draws_what_one_call_drew(monkeypatch, sizes):
    from dnnprof.reports import compare

    rng = np.random.default_rng(sizes[0])
    base, new = rng.random(sizes[0]) + 1, rng.random(sizes[1]) + 1
    draws = np.random.default_rng(0)
    ratios = (np.median(draws.choice(base, (4000, base.size)), axis=1)
              / np.median(draws.choice(new, (4000, new.size)), axis=1))
    low, high = np.percentile(ratios, [2.5, 97.5])
    expected = (float(np.median(base) / np.median(new)), float(low), float(high))
    monkeypatch.setattr(compare, "BOOTSTRAP_BLOCK", 1000)  # blocks of a few rows
    assert compare.bootstrap_speedup(base, new) == expected


def test_the_weighted_median_is_the_first_ratio_past_half_the_weight():
    from dnnprof.check.timing import _weighted_median

    rng = np.random.default_rng(3)
    n = 5000
    sample = rng.integers(0, 40, n)
    duration = rng.random(n)
    pooled = np.where(rng.random(n) < 0.05, 0.0, rng.random(n))
    rows = rng.random(n) < 0.8
    speeds = _weighted_median(sample, duration, pooled, rows, 41)
    for s in range(41):
        mine = rows & (sample == s) & (pooled > 0)
        if not mine.any():
            assert np.isnan(speeds[s])
            continue
        ratio, weight = duration[mine] / pooled[mine], pooled[mine]
        order = np.argsort(ratio, kind="stable")
        reached = np.cumsum(weight[order]) >= weight.sum() / 2.0
        assert speeds[s] == ratio[order][np.flatnonzero(reached)[0]]


def test_a_damaged_file_read_narrowed_is_reported_never_other_numbers(stored, tmp_path):
    import random

    from dnnprof.errors import TraceFileError

    data = stored[1].read_bytes()
    original = Trace.load(stored[1], columns=STEADY_COLUMNS, ops=("exec",)).events
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFileError, match="corrupt or truncated"):
        Trace.load(tmp_path / "cut.parquet", columns=STEADY_COLUMNS, ops=("exec",))
    footer = int.from_bytes(data[-8:-4], "little")
    rng, flipped, reported = random.Random(11), tmp_path / "flipped.parquet", 0
    for _ in range(60):
        damaged = bytearray(data)
        damaged[rng.randrange(4, len(data) - 8 - footer)] ^= 1 << rng.randrange(8)
        flipped.write_bytes(damaged)
        try:
            loaded = Trace.load(flipped, columns=STEADY_COLUMNS, ops=("exec",))
        except TraceFileError as exc:
            assert "\n" not in str(exc)
            reported += 1
            continue
        assert loaded.events.equals(original), "a flipped bit was read as other numbers"
    assert reported > 20
