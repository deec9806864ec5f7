"""Stored traces: round trip, atomic writes, and clear errors for files we cannot read."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import dnnprof
from dnnprof.trace import FORMAT_VERSION, Trace, TraceFileError
from support.corpus import CORPUS


@pytest.fixture(scope="module")
def trace():
    return dnnprof.parse(CORPUS / "torch_resnet50_int8_fx_b1.log")


def test_round_trip_keeps_events_and_metadata(trace, tmp_path):
    path = trace.save(tmp_path / "t.parquet")
    back = dnnprof.load(path)
    assert back.metadata["format_version"] == FORMAT_VERSION
    assert back.metadata["onednn_version"] == trace.metadata["onednn_version"]
    assert list(back.events.columns) == list(trace.events.columns)
    for column in trace.events.columns:
        assert back.events[column].dtype == trace.events[column].dtype, column
    assert back.events.equals(trace.events)
    assert back.summary() == trace.summary()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_run_folder_is_accepted(trace, tmp_path):
    trace.save(tmp_path)
    assert dnnprof.load(tmp_path).summary()["exec"] == trace.summary()["exec"]


def test_newer_format_is_refused_with_reason(trace, tmp_path):
    path = trace.save(tmp_path / "t.parquet")
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"dnnprof_format"] = str(FORMAT_VERSION + 1).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(TraceFileError, match="newer dnnprof"):
        Trace.load(path)


def test_corrupt_truncated_foreign_and_missing(trace, tmp_path):
    path = trace.save(tmp_path / "t.parquet")
    data = path.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFileError, match="corrupt or truncated"):
        Trace.load(tmp_path / "cut.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(TraceFileError):
        Trace.load(tmp_path / "junk.parquet")
    pq.write_table(pq.read_table(path).replace_schema_metadata({}), tmp_path / "foreign.parquet")
    with pytest.raises(TraceFileError, match="not one written by dnnprof"):
        Trace.load(tmp_path / "foreign.parquet")
    with pytest.raises(TraceFileError, match="no such trace"):
        Trace.load(tmp_path / "missing.parquet")


def test_metadata_is_json(trace):
    json.dumps(trace.metadata.to_dict())


def test_views(trace):
    kinds = trace.by_kind(steady=False)
    assert list(kinds.columns) == ["calls", "total_ms", "mean_ms", "share"]
    assert kinds["share"].sum() == pytest.approx(1.0)
    top = trace.top(3, steady=False)
    assert len(top) == 3 and top["total_ms"].is_monotonic_decreasing
    conv = trace.top(50, steady=False)
    assert (conv.loc[conv["kind"] == "convolution", "gflops"] > 0).all()


def test_statistics_are_kept_where_readers_filter(trace, tmp_path):
    """A reader skipping row groups by line or iteration finds min/max there; the columns
    nobody filters by are written without them (they were a third of the write)."""
    from dnnprof.storage import STATISTICS_COLUMNS

    group = pq.ParquetFile(trace.save(tmp_path / "t.parquet")).metadata.row_group(0)
    with_stats = {group.column(i).path_in_schema for i in range(group.num_columns)
                  if group.column(i).statistics is not None
                  and group.column(i).statistics.has_min_max}
    assert with_stats == set(STATISTICS_COLUMNS)
    line = group.column(trace.events.columns.get_loc("line")).statistics
    assert (line.min, line.max) == (trace.events["line"].min(), trace.events["line"].max())


def test_only_categorical_columns_get_parquet_dictionaries(trace, tmp_path):
    """Dictionary-encoding a million distinct timestamps costs memory and time for nothing."""
    group = pq.ParquetFile(trace.save(tmp_path / "t.parquet")).metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings
                 for i in range(group.num_columns)}
    assert not any("DICTIONARY" in e for e in encodings["ts_ms"] + encodings["duration_ms"])
    assert any("DICTIONARY" in e for e in encodings["kind"])


def test_columns_without_missing_values_are_stored_as_required(trace, tmp_path):
    """No definition levels for columns with a value on every row; a column with a NaN
    stays optional and reads its NaNs back where they were."""
    events = trace.events
    schema = pq.read_schema(trace.save(tmp_path / "t.parquet"))
    missing = {name: bool(events[name].isna().any()) for name in events.columns}
    assert {name: schema.field(name).nullable for name in events.columns} == missing
    assert missing["flops"] and not missing["line"] and not missing["kind"]  # both kinds here
    back = dnnprof.load(tmp_path / "t.parquet").events
    assert back["flops"].isna().equals(events["flops"].isna())


def test_a_trace_without_events_is_stored_and_read_back(tmp_path):
    """A log with no oneDNN line (a command that ran none) is still a trace to keep."""
    empty = dnnprof.parse(["hello world\n"])
    assert empty.events.empty
    back = dnnprof.load(empty.save(tmp_path / "empty.parquet"))
    assert back.events.empty and list(back.events.columns) == list(empty.events.columns)
