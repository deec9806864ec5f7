"""Span exports of many iterations, made a chunk of iterations at a time (span_plan).

What is checked is behaviour, not time: the Jaeger JSON writer holds one chunk's spans at a
time (weak references to the spans it was given, and tracemalloc's peak against the whole
tree's), any chunk size gives the same bytes as the tree built whole, with intact parent
links, and the export says when a file is past what Jaeger's UI shows comfortably. The
round trips through a real Jaeger of chunked OTLP and legacy exports are in
test_exporters_jaeger.py.
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
import weakref
from collections import Counter
from pathlib import Path

import pytest
from test_exporters import assert_perfectly_nested, assert_same_tree

import dnnprof
from dnnprof.cli import main
from dnnprof.exporters import build_span_tree, export, jaeger_json, read_jaeger_json, span_plan
from dnnprof.exporters.base import write_json_atomic
from dnnprof.exporters.span_plan import SpanPlan
from dnnprof.reconstruct import reconstruct
from support.traces import labelled_corpus_trace, small_run, with_timestamps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from long_log import write_long_log  # noqa: E402

SOURCE = "torch_resnet50_fp32_eager_b1_verbose_all"  # 211 primitives per iteration
ALL = {"iterations": "all", "span_iterations": 0}  # what --all-iterations asks for


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory) -> dnnprof.Trace:
    """About 40 iterations of a real run, timestamped, reconstructed without a layer table."""
    path = tmp_path_factory.mktemp("long") / "long.log"
    write_long_log(path, 25_000, SOURCE)
    return reconstruct(dnnprof.parse(path))


def interleaved_run() -> dnnprof.Trace:
    """A run whose rows outside every iteration come between iterations, in three stretches
    of two phases: each stretch is an iteration span of its own, ordered by time."""
    trace = small_run(iterations=8)
    events = trace.events.copy()
    iteration = events["iteration"].to_numpy().copy()
    phase = events["phase"].astype(str).to_numpy().copy()
    for rows, name in ((slice(8, 12), "calibration"), (slice(16, 20), "tracing"),
                       (slice(28, 30), "tracing")):
        iteration[rows], phase[rows] = -1, name
    events["iteration"] = iteration
    events["phase"] = phase
    events["phase"] = events["phase"].astype("category")
    trace.events = events
    return trace


def chunked_export(trace, path, monkeypatch, size, fmt="jaeger_json", **options):
    monkeypatch.setattr(span_plan, "CHUNK_ITERATIONS", size)
    return export(trace, fmt, path, **(options or ALL))


# ------------------------------------------------- the same file, any chunk size --


@pytest.mark.parametrize("name", ["long", "interleaved", "int8"])
def test_jaeger_json_is_the_same_file_whatever_the_chunk_size(name, long_trace, tmp_path,
                                                              monkeypatch):
    trace = {"long": lambda: long_trace, "interleaved": interleaved_run,
             "int8": lambda: with_timestamps(labelled_corpus_trace("torch_resnet50_int8_fx_b1")),
             }[name]()  # timestamped: a synthetic timeline is placed at the time of the export
    whole_tree = build_span_tree(trace, None, "all")
    write_json_atomic(tmp_path / "whole.json", jaeger_json.jaeger_document(whole_tree))
    expected = (tmp_path / "whole.json").read_bytes()
    for size in (1, 3, 1000):
        result = chunked_export(trace, tmp_path / f"{size}.json", monkeypatch, size)
        assert (tmp_path / f"{size}.json").read_bytes() == expected, size
        assert result.spans == len(whole_tree) and result.counts == whole_tree.counts()
        assert result.trace_id == whole_tree.trace_id
    (read,) = read_jaeger_json(tmp_path / "1.json")
    assert_same_tree(whole_tree, read)  # shape, names, attributes and times
    spans = json.loads(expected)["data"][0]["spans"]
    ids = {span["spanID"] for span in spans}
    assert len(ids) == len(spans) == len(whole_tree)
    parents = [ref["spanID"] for span in spans for ref in span["references"]]
    assert len(parents) == len(spans) - 1 and set(parents) <= ids  # every parent link


def test_the_default_jaeger_file_is_one_chunk_and_keeps_its_ids(long_trace, tmp_path,
                                                                monkeypatch):
    """The last 3 steady iterations, cut into chunks of one, still give the file (and ids)
    of the tree built whole: the ids derive from the pre-order index in the whole tree."""
    tree = build_span_tree(long_trace)
    write_json_atomic(tmp_path / "whole.json", jaeger_json.jaeger_document(tree))
    chunked_export(long_trace, tmp_path / "one.json", monkeypatch, 1, iterations="steady")
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    assert tree.iterations == sorted(tree.iterations)[-3:] and len(tree.iterations) == 3


# ------------------------------------------------------------ written in chunks --


def test_the_jaeger_writer_holds_one_chunk_of_spans_at_a_time(long_trace, tmp_path,
                                                              monkeypatch):
    made: list[list[weakref.ref]] = []
    alive_when_made: list[int] = []
    chunks = SpanPlan.chunks

    def watched(plan, size=None):
        for chunk in chunks(plan, size):
            gc.collect()
            alive_when_made.append(sum(ref() is not None for refs in made for ref in refs))
            made.append([weakref.ref(span) for iteration in chunk
                         for span, _, _ in iteration.walk()])
            yield chunk

    monkeypatch.setattr(SpanPlan, "chunks", watched)
    result = chunked_export(long_trace, tmp_path / "all.json", monkeypatch, 3)
    sizes = [len(refs) for refs in made]
    assert len(made) == -(-result.counts["iteration"] // 3) > 10
    assert sum(sizes) == result.spans - 1  # every span but the run span, made once
    # when a chunk is made, only the one before it may still be referenced (by the writer's
    # loop variables): never the spans of the whole selection
    assert all(alive <= max(sizes) for alive in alive_when_made)
    assert max(alive_when_made) < result.spans // 5


def test_the_jaeger_writer_peak_memory_is_well_below_the_whole_tree(long_trace, tmp_path,
                                                                    monkeypatch):
    build_span_tree(long_trace, None, "all")  # warm caches, so neither side pays for them
    tracemalloc.start()
    try:
        tree = build_span_tree(long_trace, None, "all")
        whole = tracemalloc.get_traced_memory()[1]
        spans = len(tree)
        del tree
        gc.collect()
        tracemalloc.reset_peak()
        floor = tracemalloc.get_traced_memory()[0]
        chunked_export(long_trace, tmp_path / "all.json", monkeypatch, 2)
        chunked = tracemalloc.get_traced_memory()[1] - floor
    finally:
        tracemalloc.stop()
    assert spans > 8_000 and whole > 8_000 * 1_000  # over a KB a span, held all at once
    assert chunked < whole / 3, (chunked, whole)


def test_a_long_chrome_export_is_built_a_chunk_of_iterations_at_a_time(long_trace, tmp_path,
                                                                      monkeypatch):
    whole = export(long_trace, "chrome_trace", tmp_path / "whole.json", iterations="all")
    built = Counter()
    chunks = SpanPlan.chunks

    def counted(plan, size=None):
        for chunk in chunks(plan, size):
            built[len(chunk)] += 1
            yield chunk

    monkeypatch.setattr(SpanPlan, "chunks", counted)
    chunked = chunked_export(long_trace, tmp_path / "chunked.json", monkeypatch, 7,
                             "chrome_trace", iterations="all")
    assert max(built) == 7 and sum(n * count for n, count in built.items()) == len(
        whole.iterations)
    assert chunked.iterations == whole.iterations and chunked.counts == whole.counts
    assert chunked.spans == whole.spans and chunked.trace_id == whole.trace_id

    def complete(name):
        document = json.loads((tmp_path / name).read_text())
        assert_perfectly_nested(document)
        events = [e for e in document["traceEvents"] if e["ph"] == "X"]
        spans = sorted((e["name"], e["cat"], e["ts"], e["dur"], json.dumps(e["args"]))
                       for e in events)
        return document["otherData"], spans

    # every span, the run span's attributes included, at the same times
    assert complete("chunked.json") == complete("whole.json")


# --------------------------------------------------------- too large for its viewer --


def test_every_iteration_in_a_jaeger_file_says_it_is_past_jaegers_ui(long_trace, tmp_path,
                                                                     capsys):
    usual = export(long_trace, "jaeger_json", tmp_path / "usual.json")
    assert len(usual.iterations) == 3 and "warning" not in usual.message
    stored = long_trace.save(tmp_path / "trace.parquet")
    target = tmp_path / "every.json"
    assert main(["export", str(stored), "--jaeger-json", str(target), "--all-iterations"]) == 0
    out = capsys.readouterr().out
    (tree,) = read_jaeger_json(target)
    assert len(tree) > 5_000  # Jaeger's UI budget (selection.JAEGER_UI_SPANS)
    assert f"warning: {len(tree):,} spans in one trace; Jaeger's UI gets slow" in out
    assert "--span-iterations N" in out
