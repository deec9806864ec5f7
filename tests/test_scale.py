"""Long logs: what keeps every command linear in the lines and bounded in memory.

No wall-clock assertions: each test checks a behaviour that makes the cost linear (work
done once per distinct iteration or descriptor, not per row; memory bounded by the
distinct descriptors; files written while their spans are still being made; a selection
and a message when an export would be too large for its viewer), and that the fast paths
give the answers a plain row-by-row computation gives on real corpus logs.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dnnprof
from dnnprof import views
from dnnprof.cli import main
from dnnprof.exporters import build_span_tree, chrome_trace, export, jaeger_json
from dnnprof.exporters.base import STREAMED, write_json_atomic, write_json_streamed
from dnnprof.exporters.selection import estimate, select_iterations, span_rows
from dnnprof.reconstruct import attribution, reconstruct
from dnnprof.reconstruct.columns import Labels
from dnnprof.reconstruct.summaries import iteration_phases
from support.corpus import CORPUS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from long_log import write_long_log  # noqa: E402

SOURCE = "torch_resnet50_fp32_eager_b1_verbose_all"  # every line type, 211 exec per iteration


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory) -> dnnprof.Trace:
    """About 40 iterations of a real run, timestamped, reconstructed without a layer table."""
    path = tmp_path_factory.mktemp("long") / "long.log"
    write_long_log(path, 25_000, SOURCE)
    return reconstruct(dnnprof.parse(path))


# ------------------------------------------------------------------- parse --


def test_a_timestamped_log_keeps_one_descriptor_per_distinct_line(tmp_path):
    short, long = tmp_path / "short.log", tmp_path / "long.log"
    write_long_log(short, 3_000, SOURCE)
    lines = write_long_log(long, 30_000, SOURCE)
    small, big = dnnprof.parse(short), dnnprof.parse(long)
    assert big.metadata.timeline == "timestamps" and big.metadata.counts.lines == lines
    # every exec:check message line has its own timestamp; each used to become a descriptor
    assert big.metadata.counts.messages > 9_000
    assert big.events["desc_id"].max() == small.events["desc_id"].max() < 300
    exec_rows = big.events[big.events["op"] == "exec"]
    assert exec_rows["ts_ms"].notna().all() and exec_rows["ts_ms"].is_monotonic_increasing


# ------------------------------------------------------------- reconstruct --


def test_each_distinct_pass_is_grouped_once(tmp_path, monkeypatch):
    calls = Counter()
    group_pass = attribution._group_pass

    def counted(shapes):
        calls["group"] += 1
        return group_pass(shapes)

    monkeypatch.setattr(attribution, "_group_pass", counted)
    path = tmp_path / "long.log"
    write_long_log(path, 25_000, SOURCE)
    trace = reconstruct(dnnprof.parse(path))
    iterations = trace.metadata.reconstruction.iterations["count"]
    assert iterations > 30
    assert calls["group"] <= 4  # warm-up, the repeated iteration, a build pass or two


def test_iteration_phases_are_the_majority_phase_of_each_iteration():
    rng = np.random.default_rng(7)
    iteration = np.repeat(np.arange(-1, 50), 40).astype(np.int32)
    phase = Labels.empty(len(iteration))
    names = ["warmup", "measure", "calibrate"]
    codes = rng.integers(0, 4, len(iteration))  # 0: no phase
    for row, code in enumerate(codes):
        if code:
            phase[row] = names[code - 1]
    numbers, found = iteration_phases(iteration, phase)
    for number, name in zip(numbers.tolist(), found, strict=True):
        rows = np.flatnonzero(iteration == number)  # the row-by-row way
        values = [phase[r] for r in rows if phase[r]]
        best = max(Counter(values).values())
        assert Counter(values)[name] == best
    assert -1 not in numbers.tolist()


def test_reconstructed_labels_are_compact_categoricals(long_trace):
    events = long_trace.events
    for column in ("phase", "layer", "layer_type", "fused_layers", "reorder_class", "attribution"):
        values = events[column]
        assert isinstance(values.dtype, pd.CategoricalDtype), column
        assert len(values.cat.categories) < 400, column  # bounded by the model, not the log
        assert list(values.cat.categories) == sorted(values.cat.categories), column


# ------------------------------------------------------------------- views --


def _by_layer_row_by_row(ex: pd.DataFrame) -> pd.DataFrame:
    """Per layer, from strings row by row: what `views.by_layer` computes with codes."""
    ex = ex[ex["layer"].astype(str) != ""]
    iterations = max(len({int(i) for i in ex["iteration"] if i >= 0}), 1)
    table: dict[str, dict] = {}
    for row in ex.itertuples():
        entry = table.setdefault(str(row.layer), {"layer_type": str(row.layer_type), "calls": 0,
                                                  "total": 0.0, "reorder": 0.0, "fused": []})
        entry["calls"] += 1
        entry["total"] += 0.0 if np.isnan(row.duration_ms) else row.duration_ms
        entry["reorder"] += row.duration_ms if row.is_reorder else 0.0
        for part in str(row.fused_layers).split("+"):
            if part and part not in entry["fused"]:
                entry["fused"].append(part)
    return pd.DataFrame([
        {"layer": name, "layer_type": e["layer_type"], "calls": e["calls"],
         "mean_ms": e["total"] / iterations, "reorder_ms": e["reorder"],
         "fused_layers": "+".join(e["fused"])}
        for name, e in table.items()
    ])


@pytest.mark.parametrize("model", [None, "resnet50"], ids=["heuristic", "aligned"])
@pytest.mark.parametrize("name", ["torch_resnet50_int8_fx_b1", "torch_resnet50_fp32_eager_b1"])
def test_views_by_codes_equal_the_row_by_row_answer(name, model):
    trace = reconstruct(dnnprof.parse(CORPUS / f"{name}.log"), model=model)
    for steady in (True, False):
        ex = trace.steady() if steady else trace.exec_events
        fast = views.by_layer(ex).set_index("layer")
        slow = _by_layer_row_by_row(ex).set_index("layer")
        assert sorted(fast.index) == sorted(slow.index)
        fast = fast.loc[slow.index]
        assert fast["layer_type"].tolist() == slow["layer_type"].tolist()
        assert fast["calls"].tolist() == slow["calls"].tolist()
        assert np.allclose(fast["mean_ms"], slow["mean_ms"])
        assert np.allclose(fast["reorder_ms"], slow["reorder_ms"])
        assert fast["fused_layers"].tolist() == slow["fused_layers"].tolist()
    by_iteration = trace.by_iteration()
    ex = trace.exec_events[trace.exec_events["iteration"] >= 0]
    for row in by_iteration.itertuples():
        rows = ex[ex["iteration"] == row.iteration]
        assert row.exec == len(rows)
        assert row.phase == rows["phase"].astype(str).mode().iloc[0]
    stage, _ = views.stages_of_rows(trace.steady())
    assert stage.notna().any()


# ------------------------------------------------------------------- check --


def test_check_names_units_once_per_distinct_iteration(long_trace, monkeypatch):
    from dnnprof.check import steady

    calls = Counter()
    block_units = steady._block_units

    def counted(*columns):
        calls["blocks"] += 1
        return block_units(*columns)

    monkeypatch.setattr(steady, "_block_units", counted)
    state = steady.steady_state(long_trace)
    assert len(state.iterations) > 30
    assert calls["blocks"] <= 2
    per_iteration = state.rows.groupby("iter")["unit"].apply(tuple)
    assert per_iteration.nunique() == 1  # every iteration named alike


# --------------------------------------------------------------- exporters --


def test_streamed_json_is_written_while_items_are_made(tmp_path):
    target = tmp_path / "out.json"
    seen_on_disk: list[int] = []

    def items():
        for number in range(10_000):
            if number in (5_000, 9_999):  # past the write buffer: the temp file holds batches
                seen_on_disk.append(sum(p.stat().st_size for p in tmp_path.iterdir()))
            yield {"n": number, "name": f"span {number}", "args": "x" * 500}

    document = {"head": 1, "traceEvents": STREAMED, "tail": {"x": [1, 2]}}
    write_json_streamed(target, document, items())
    assert seen_on_disk[0] > 1_000_000 and seen_on_disk[1] > seen_on_disk[0]
    whole = tmp_path / "whole.json"
    events = [{"n": n, "name": f"span {n}", "args": "x" * 500} for n in range(10_000)]
    write_json_atomic(whole, {**document, "traceEvents": events})
    assert target.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "whole.json"]


def test_the_size_estimate_counts_the_spans_before_any_is_built(long_trace):
    rows = span_rows(long_trace.events)
    for span_iterations, selection in ((None, "all"), (3, "steady"), (None, [2, 5])):
        chosen = select_iterations(rows, span_iterations, selection)
        tree = build_span_tree(long_trace, span_iterations, selection)
        assert estimate(rows, chosen).spans == len(tree)


def test_a_large_chrome_export_keeps_the_steady_selection_and_says_so(long_trace, tmp_path,
                                                                      monkeypatch):
    everything = export(long_trace, "chrome_trace", tmp_path / "all.json")
    assert len(everything.iterations) == long_trace.metadata.reconstruction.iterations["count"]
    monkeypatch.setattr(chrome_trace, "DEFAULT_MAX_BYTES", 1_000_000)  # ~1,200 spans
    cut = export(long_trace, "chrome_trace", tmp_path / "cut.json")
    assert cut.iterations == everything.iterations[-3:]  # the OTLP selection
    assert "--all-iterations" in cut.message and "MB" in cut.message
    document = json.loads((tmp_path / "cut.json").read_text())
    assert document["otherData"]["iterations"] == ",".join(map(str, cut.iterations))
    asked = export(long_trace, "chrome_trace", tmp_path / "asked.json", iterations="all")
    assert asked.iterations == everything.iterations and "warning" not in asked.message
    monkeypatch.setattr(chrome_trace, "PERFETTO_JSON_BYTES", 1_000_000)
    too_big = export(long_trace, "chrome_trace", tmp_path / "big.json", iterations="all")
    assert "warning" in too_big.message and "Perfetto" in too_big.message


def test_a_jaeger_file_past_the_ui_limit_says_so(long_trace, tmp_path, monkeypatch):
    usual = export(long_trace, "jaeger_json", tmp_path / "j.json")
    assert len(usual.iterations) == 3 and "warning" not in usual.message
    monkeypatch.setattr(jaeger_json, "JAEGER_UI_SPANS", 100)
    crowded = export(long_trace, "jaeger_json", tmp_path / "k.json")
    assert "warning" in crowded.message and "Jaeger's UI" in crowded.message
    (tree,) = jaeger_json.read_jaeger_json(tmp_path / "k.json")
    assert len(tree) == crowded.spans


def test_all_iterations_flag_exports_every_iteration(long_trace, tmp_path, capsys):
    stored = long_trace.save(tmp_path / "trace.parquet")
    target = tmp_path / "every.json"
    assert main(["export", str(stored), "--jaeger-json", str(target), "--all-iterations"]) == 0
    (tree,) = jaeger_json.read_jaeger_json(target)
    counted = long_trace.metadata.reconstruction.iterations["count"]
    assert len([i for i in tree.iterations if i >= 0]) == counted
    assert "warning" in capsys.readouterr().out  # thousands of spans: past Jaeger's UI


def test_the_scale_benchmark_measures_every_command_and_writes_its_docs(tmp_path, capsys):
    import scale

    rows = scale.measure([20_000], tmp_path, SOURCE, repeat=2)
    commands = [row.command for row in rows]
    assert commands == ["baseline (split loop)", "parse", "parse()", "report", "compare",
                        "check", "chrome", "jaeger"]
    assert all(row.status in (0, 1) and row.seconds > 0 and row.peak_mb > 0 for row in rows)
    assert all(row.time_ratio > 0 for row in rows[1:])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(commands)
    assert all(re.search(r"\[\d+\.\d\d, \d+\.\d\d\]$", line) for line in printed)  # both runs
    docs = tmp_path / "docs"
    docs.mkdir()
    table = scale.markdown(rows, (0.5, 0.5, 0.5), (0.6, 0.6, 0.6), repeat=2)
    scale.write_docs(rows, table, docs)
    text = (docs / "performance.md").read_text()
    assert "| 20,2" in text and "| parse() |" in text and "Load average before: 0.50" in text
    assert "run 2 times, interleaved: median seconds, largest peak" in text
    html = (docs / "performance.html").read_text()
    assert '"type":"log"' in html.replace(" ", "") and "peak RSS, MB" in html
    assert html.count('"name":"') >= len(commands)
