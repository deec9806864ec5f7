"""Streaming log parser: lines in, a Trace out, memoised on each line's descriptor.

A real run repeats a few hundred distinct descriptors thousands of times, so the
hot loop only splits off the time (and timestamp), looks the rest of the line up
in a dict and appends four numbers. The grammar runs once per distinct descriptor.
"""

from __future__ import annotations

import gzip
import io
import os
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import __version__
from dnnprof.errors import LogReadError
from dnnprof.parsers.events import (
    Descriptor,
    Event,
    ExecEvent,
    InfoEvent,
    MarkerEvent,
    MemoryDesc,
    MessageEvent,
    Unparsed,
)
from dnnprof.parsers.lines import LINE_STARTS, VERBOSE_MARKERS, Classified, LineState, classify
from dnnprof.trace import (
    CATEGORICAL_COLUMNS,
    EVENT_COLUMNS,
    FORMAT_VERSION,
    Trace,
    normalize_events,
)

UNPARSED_SAMPLES = 200
MAX_LINE_CHARS = 1 << 20  # longer lines become Unparsed without being parsed
_NAN = float("nan")


@contextmanager
def open_text(source: Any) -> Iterator[Iterable[str]]:
    """Lines of a path (plain or .gz), a binary file object, or an iterable of str/bytes."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with path.open("rb") as probe:
                gzipped = probe.read(2) == b"\x1f\x8b"
            raw = gzip.open(path, "rb") if gzipped else path.open("rb")
        except OSError as exc:
            raise LogReadError(f"cannot read {path}: {exc.strerror or exc}") from None
        # binary read + 'replace': garbage bytes become U+FFFD instead of an exception;
        # iterating the wrapper directly keeps the per-line cost in C
        with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:
            try:
                yield text
            except (OSError, EOFError) as exc:
                # a truncated .gz: what was read stays, the caller is told where it stopped
                raise LogReadError(f"{path}: read failed part-way ({exc})") from None
        return
    if isinstance(source, (io.RawIOBase, io.BufferedIOBase)):
        yield io.TextIOWrapper(source, encoding="utf-8", errors="replace")
        return
    yield (item.decode("utf-8", "replace") if isinstance(item, bytes) else item for item in source)


class TraceBuilder:
    """Accumulates parsed lines column-wise; `finish()` returns the Trace."""

    def __init__(self, source: str = "<lines>") -> None:
        self.source = source
        self.state = LineState()
        self._timed_memo: dict[str, int] = {}  # line without ts and time -> descriptor id
        self._other_memo: dict[str, int] = {}  # whole raw message line -> descriptor id
        self._descs: list[tuple[Any, ...]] = []
        self._desc_ids = array("i")  # one entry per line: descriptor id, or -1
        self._durations = array("d")  # one entry per line
        self._ts_rows = array("i")  # timestamps are rare enough to keep sparse
        self._ts_values = array("d")
        self._ts_prefix = ""  # e.g. "onednn_verbose,v1," once a timestamped line is seen
        self.counts = dict.fromkeys(
            ("lines", "exec", "create", "graph", "messages", "info", "markers", "foreign",
             "unparsed", "blank"), 0,
        )
        self.unparsed: list[dict[str, Any]] = []
        self.foreign_samples: list[str] = []
        self._last_line_complete = True
        self._exec_with_ts = 0  # set by _recount

    # ---------------------------------------------------------------- input --

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Parse an iterable of lines (with or without their newline)."""
        # Every line appends exactly one descriptor id (-1: no event) and one duration,
        # so a row's line number is its position: the hot path appends nothing else.
        memo_get = self._timed_memo.get
        other_get = self._other_memo.get
        add_desc = self._desc_ids.append
        add_dur = self._durations.append
        slow = self._slow
        raw = "\n"
        for raw in lines:
            head, _, tail = raw.rpartition(",")
            idx = memo_get(head)
            if idx is not None:
                try:
                    duration = float(tail)  # float() ignores the trailing newline
                except ValueError:
                    slow(raw)
                    continue
                add_dur(duration)
                add_desc(idx)
                continue
            idx = other_get(raw)  # repeated untimed lines (exec:check messages)
            if idx is not None:
                add_dur(_NAN)
                add_desc(idx)
                continue
            slow(raw)
        self._last_line_complete = raw.endswith("\n")

    def feed(self, line: str) -> None:
        """Parse one line."""
        self.feed_lines((line,))

    @property
    def line_no(self) -> int:
        """Lines consumed so far."""
        return len(self._desc_ids)

    def _slow(self, raw: str) -> None:
        line_no = len(self._desc_ids) + 1
        line = raw.rstrip("\r\n")
        idx, duration, ts = self._slow_event(line_no, line)
        if idx >= 0 and duration != duration and ts != ts and self._descs[idx][_OP] != "marker":
            self._other_memo[raw] = idx  # an untimed message: the whole raw line is its key
        self._durations.append(duration)
        self._desc_ids.append(idx)
        if ts == ts:  # not NaN
            self._ts_rows.append(line_no - 1)
            self._ts_values.append(ts)

    def _slow_event(self, line_no: int, line: str) -> tuple[int, float, float]:
        """Parse a line the memo did not know: (descriptor id or -1, duration, timestamp)."""
        counts = self.counts
        none = (-1, _NAN, _NAN)
        if not line.startswith(LINE_STARTS):
            if not line.strip():
                counts["blank"] += 1
                return none
            cut = _find_marker(line)
            if cut < 0:
                counts["foreign"] += 1
                if len(self.foreign_samples) < 20:
                    self.foreign_samples.append(line[:200])
                return none
            # output glued in front of a verbose line (unflushed prints): keep the verbose part
            counts["foreign"] += 1
            self.state.warn("foreign output glued to verbose lines (interleaved stdout)")
            line = line[cut:]
        if len(line) >= MAX_LINE_CHARS:
            self._add_unparsed(line_no, line, f"line longer than {MAX_LINE_CHARS} characters")
            return none
        prefix = self._ts_prefix
        if prefix and line.startswith(prefix) and line[len(prefix) : len(prefix) + 1].isdigit():
            comma = line.find(",", len(prefix))
            if comma > 0:
                head, _, tail = (prefix + line[comma + 1 :]).rpartition(",")
                idx = self._timed_memo.get(head)
                if idx is not None:
                    try:
                        return idx, float(tail), float(line[len(prefix) : comma])
                    except ValueError:
                        pass
        return self._record(line_no, line, classify(line_no, line, self.state))

    def _record(self, line_no: int, line: str, result: Classified) -> tuple[int, float, float]:
        event = result.event
        if result.descriptor is not None:
            key = _descriptor_key(line, result.ts_ms is not None)
            if result.ts_ms is not None and not self._ts_prefix:
                self._ts_prefix = _ts_prefix_of(line)
            idx = self._timed_memo.get(key)
            if idx is None:
                idx = self._new_desc(_descriptor_columns(result.descriptor))
                self._timed_memo[key] = idx
            return idx, result.duration_ms, _nan_if_none(result.ts_ms)
        if isinstance(event, Unparsed):
            self._add_unparsed(line_no, event.text, event.reason)
        elif isinstance(event, InfoEvent):
            self.counts["info"] += 1
        elif isinstance(event, MarkerEvent):
            return self._new_desc(_marker_columns(event)), _NAN, _nan_if_none(event.ts_ms)
        elif isinstance(event, MessageEvent):
            return self._new_desc(_message_columns(event)), _NAN, _nan_if_none(event.ts_ms)
        return -1, _NAN, _NAN

    def _add_unparsed(self, line_no: int, text: str, reason: str) -> None:
        self.counts["unparsed"] += 1
        if len(self.unparsed) < UNPARSED_SAMPLES:
            self.unparsed.append({"line": line_no, "reason": reason, "text": text[:300]})

    def _new_desc(self, columns: dict[str, Any]) -> int:
        # a tuple, not the dict: an all-distinct log keeps one per line
        self._descs.append(tuple([columns.get(name, default) for name, default in _DESC_FIELDS]))
        return len(self._descs) - 1

    # --------------------------------------------------------------- output --

    def finish(self) -> Trace:
        """Build the Trace from everything fed so far."""
        # a Ctrl-C can land between a line's two appends: keep only whole lines
        del self._durations[len(self._desc_ids) :]
        del self._desc_ids[len(self._durations) :]
        per_line = np.frombuffer(self._desc_ids, dtype=np.int32)
        rows = np.flatnonzero(per_line >= 0)
        desc_ids = per_line[rows].copy()
        ts = np.full(len(per_line), np.nan)
        ts[np.frombuffer(self._ts_rows, dtype=np.int32)] = np.frombuffer(self._ts_values)
        ts = ts[rows]
        durations = np.frombuffer(self._durations, dtype=np.float64)[rows].copy()
        self._count_rows(desc_ids, ts)
        columns = _expand_descriptors(self._descs, desc_ids)
        columns["line"] = (rows + 1).astype(np.int32)
        columns["ts_ms"] = ts
        columns["duration_ms"] = durations
        columns["desc_id"] = desc_ids
        exec_count = self.counts["exec"]
        timeline = "timestamps" if exec_count and self._exec_with_ts == exec_count else "synthetic"
        timed = np.array([d[_OP] in ("exec", "create", "compile") for d in self._descs] or [False])
        columns["start_ms"] = _start_times(ts, durations, timed[desc_ids], timeline)
        # built in schema order, so that normalising only adds the still-empty columns
        # (a reorder of a million-row frame would copy it whole)
        events = pd.DataFrame(
            {name: columns.pop(name) for name in EVENT_COLUMNS if name in columns}, copy=False
        )
        events = normalize_events(events)
        if not self._last_line_complete and self.line_no:
            self.state.warn(f"line {self.line_no} has no newline: the log may be truncated")
        self.counts["lines"] = self.line_no
        info = self.state.info
        threads = info.get("threads")
        metadata: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "dnnprof_version": __version__,
            "source": self.source,
            "onednn_version": info.get("onednn_version"),
            "onednn_commit": info.get("onednn_commit"),
            "product": info.get("product"),
            "dialect": self.state.dialect or None,
            "version_token": self.state.version_token or None,
            "isa": info.get("isa"),
            "runtime": info.get("runtime"),
            "threads": int(threads) if threads and threads.isdigit() else None,
            "templates": {k: list(v) for k, v in self.state.templates.items()},
            "templates_announced": sorted(self.state.announced),
            "timeline": timeline,
            "counts": dict(self.counts),
            "fields_kept_as_text": self.state.text_fields,
            "unknown_kinds": sorted(self.state.unknown_kinds),
            "unparsed_samples": self.unparsed,
            "foreign_samples": self.foreign_samples,
            "warnings": list(self.state.warnings),
        }
        return Trace(events, metadata)

    def _count_rows(self, desc_ids: np.ndarray, ts: np.ndarray) -> None:
        # The fast path appends rows without touching counters; derive them from the rows.
        per_desc = np.bincount(desc_ids, minlength=len(self._descs))
        counts = {"exec": 0, "graph": 0, "create": 0, "messages": 0, "markers": 0}
        is_exec = np.zeros(max(len(self._descs), 1), dtype=bool)
        for i, (desc, count) in enumerate(zip(self._descs, per_desc, strict=True)):
            op = desc[_OP]
            if op == "exec":
                graph = desc[_API] == "graph"
                counts["graph" if graph else "exec"] += int(count)
                is_exec[i] = not graph
            elif op in ("create", "compile"):
                counts["create"] += int(count)
            elif op == "marker":
                counts["markers"] += int(count)
            else:
                counts["messages"] += int(count)
        self.counts.update(counts)
        self._exec_with_ts = int((is_exec[desc_ids] & ~np.isnan(ts)).sum()) if len(ts) else 0


def _find_marker(line: str) -> int:
    positions = [p for p in (line.find(m) for m in LINE_STARTS) if p > 0]
    return min(positions) if positions else -1


def _ts_prefix_of(line: str) -> str:
    """The part of a timestamped line before its timestamp (`onednn_verbose,v1,`)."""
    marker = next(m for m in VERBOSE_MARKERS if line.startswith(m))
    rest = line[len(marker) + 1 :]
    if rest.startswith("v") and "," in rest:
        return line[: len(marker) + 1 + rest.index(",") + 1]
    return marker + ","


def _descriptor_key(line: str, has_ts: bool) -> str:
    """The memo key of a timed line: the line without its timestamp and its time."""
    if has_ts:
        prefix = _ts_prefix_of(line)
        comma = line.find(",", len(prefix))
        line = prefix + line[comma + 1 :]
    return line.rpartition(",")[0]


def _nan_if_none(value: float | None) -> float:
    return _NAN if value is None else value


def _first_md(mds: tuple[MemoryDesc, ...], prefixes: tuple[str, ...]) -> tuple[str, str]:
    for md in mds:
        if md.arg.startswith(prefixes):
            return md.data_type, md.tag
    return "", ""


@lru_cache(maxsize=16384)
def _md_columns(mds: tuple[MemoryDesc, ...]) -> tuple[str, str, str, str, str, str]:
    """(src_dt, wei_dt, dst_dt, src_fmt, wei_fmt, dst_fmt) of a descriptor's memory descriptors."""
    src_dt, src_fmt = _first_md(mds, ("src", "data", "in", "query", "diff_src"))
    wei_dt, wei_fmt = _first_md(mds, ("wei", "src_b"))
    dst_dt, dst_fmt = _first_md(mds, ("dst", "out", "diff_dst"))
    return src_dt, wei_dt, dst_dt, src_fmt, wei_fmt, dst_fmt


def _graph_md_columns(desc: Descriptor) -> tuple[str, str, str, str, str, str]:
    tensors = (desc.graph or {}).get("tensors", "").split(";")
    src = next((t for t in tensors if t.startswith("in")), "")
    dst = next((t for t in tensors if t.startswith("out")), "")
    return src.split(":")[0].partition("_")[2], "", dst.split(":")[0].partition("_")[2], "", "", ""


def _descriptor_columns(desc: Descriptor) -> dict[str, Any]:
    """The events-frame columns that depend only on the descriptor."""
    graph = desc.api == "graph"
    src_dt, wei_dt, dst_dt, src_fmt, wei_fmt, dst_fmt = (
        _graph_md_columns(desc) if graph else _md_columns(desc.mds)
    )
    attrs = desc.attrs
    return {
        "op": desc.op,
        "cache": desc.cache,
        "api": desc.api,
        "engine": desc.engine,
        "kind": desc.kind,
        "impl": desc.impl,
        "isa": desc.isa,
        "prop": desc.prop,
        "src_dt": src_dt,
        "wei_dt": wei_dt,
        "dst_dt": dst_dt,
        "src_fmt": src_fmt,
        "wei_fmt": wei_fmt,
        "dst_fmt": dst_fmt,
        "mds": desc.mds_text,
        "attrs": desc.attrs_text,
        "post_ops": attrs.post_ops_str,
        "has_scales": bool(attrs.scales or attrs.oscale),
        "has_zero_points": bool(attrs.zero_points),
        "fpmath": attrs.fpmath,
        "alg": desc.alg,
        "aux": desc.aux_text,
        "problem": desc.problem.text,
        "flops": _NAN if desc.flops is None else float(desc.flops),
        "message": (desc.graph or {}).get("partition_id", "") if graph else "",
    }


def _message_columns(event: MessageEvent) -> dict[str, Any]:
    text = event.message + (f" ({event.source})" if event.source else "")
    return {"op": event.op, "cache": event.stage, "api": "primitive", "kind": event.component,
            "message": text, "problem": event.context[7] if len(event.context) == 8 else ""}


def _marker_columns(event: MarkerEvent) -> dict[str, Any]:
    return {"op": "marker", "api": "dnnprof", "kind": event.event, "message": ",".join(event.fields)}


_NUMERIC_DEFAULTS = {"flops": _NAN, "has_scales": False, "has_zero_points": False}
_TEXT_FIELDS = tuple(c for c in CATEGORICAL_COLUMNS if c not in ("phase", "layer", "layer_type"))
_DESC_FIELDS = tuple((name, "") for name in _TEXT_FIELDS) + tuple(_NUMERIC_DEFAULTS.items())
_OP = _TEXT_FIELDS.index("op")
_API = _TEXT_FIELDS.index("api")


def _expand_descriptors(descs: list[tuple[Any, ...]], desc_ids: np.ndarray) -> dict[str, Any]:
    """One value per event from one per descriptor: categorical codes are gathered, not copied."""
    columns: dict[str, Any] = {}
    for position, (name, default) in enumerate(_DESC_FIELDS):
        values = [d[position] for d in descs]
        if name in _NUMERIC_DEFAULTS:
            array = np.array(values or [default])
            columns[name] = array[desc_ids] if len(desc_ids) else array[:0]
            continue
        # factorize hashes the strings; np.unique would copy them into fixed-width arrays
        codes, categories = pd.factorize(pd.Series(values, dtype=object).astype(str), sort=True)
        gathered = codes.astype(np.int32)[desc_ids] if len(desc_ids) else np.zeros(0, np.int32)
        columns[name] = pd.Categorical.from_codes(gathered, categories=categories)
    return columns


def _start_times(
    ts: np.ndarray, durations: np.ndarray, timed: np.ndarray, timeline: str
) -> np.ndarray:
    """Start of each event relative to the first: real timestamps, or exec times laid end to end."""
    if not len(ts):
        return ts
    if timeline == "timestamps":
        return ts - np.nanmin(ts)
    # synthetic: each exec/create starts where the previous one ended; markers and
    # messages sit at the current position
    step = np.where(timed & ~np.isnan(durations), durations, 0.0)
    return np.concatenate(([0.0], np.cumsum(step)[:-1]))


def parse_to_trace(source: Any, name: str | None = None) -> Trace:
    """Parse a log (path, .gz, file object or iterable of lines) into a Trace."""
    if name is None:
        name = str(source) if isinstance(source, (str, os.PathLike)) else "<lines>"
    builder = TraceBuilder(name)
    try:
        with open_text(source) as lines:
            builder.feed_lines(lines)
    except LogReadError as exc:
        if builder.line_no == 0:
            raise
        builder.state.warn(str(exc))  # keep what was read before the failure
    return builder.finish()


def iter_events(source: Any) -> Iterator[Event]:
    """Yield typed events one line at a time (ExecEvent, InfoEvent, MessageEvent, ...)."""
    with open_text(source) as lines:
        yield from _iter_events(lines)


def _iter_events(lines: Iterable[str]) -> Iterator[Event]:
    state = LineState()
    memo: dict[str, Descriptor] = {}
    for line_no, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.startswith(LINE_STARTS):
            cut = _find_marker(line)
            if cut < 0:
                continue
            line = line[cut:]
        result = classify(line_no, line, state)
        if result.descriptor is not None:
            key = _descriptor_key(line, result.ts_ms is not None)
            desc = memo.setdefault(key, result.descriptor)
            yield ExecEvent(line_no, desc, result.duration_ms, result.ts_ms)
        elif result.event is not None:
            yield result.event
