"""Streaming log parser: lines in, a Trace (or typed events) out, memoised on each line's descriptor.

A real run repeats a few hundred distinct descriptors thousands of times, so the
hot loop only splits off the time, looks the rest of the line up in a dict and
appends two numbers. The grammar runs once per distinct descriptor (`lines.classify`).
"""

from __future__ import annotations

import dataclasses
import io
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np

from dnnprof.errors import LogReadError
from dnnprof.metadata import Counts
from dnnprof.parsers import chunked, columns
from dnnprof.parsers.assemble import Parsed, build_trace
from dnnprof.parsers.events import (
    Descriptor,
    Event,
    ExecEvent,
    InfoEvent,
    MarkerEvent,
    MessageEvent,
    Unparsed,
)
from dnnprof.parsers.inputs import open_text, source_name, text_blocks
from dnnprof.parsers.lines import LINE_STARTS, Classified, LineState, classify
from dnnprof.parsers.quirks import time_value
from dnnprof.trace import Trace

UNPARSED_SAMPLES = 200
FOREIGN_SAMPLES = 20
MAX_LINE_CHARS = 1 << 20  # longer lines become Unparsed without being parsed
_EVENT_BATCH = 256  # lines fed at a time when typed events are wanted
_NAN = float("nan")
_NO_EVENT = (-1, _NAN, _NAN)

# what a descriptor id stands for when typed events are kept
_Typed = Descriptor | MessageEvent | MarkerEvent


class TraceBuilder:
    """Accumulates parsed lines column-wise; `finish()` returns the Trace.

    `events(lines)` feeds the same loop and yields each line's typed event as well.
    """

    def __init__(self, source: str = "<lines>") -> None:
        self.source = source
        self.state = LineState()
        self.counts = Counts()
        self.unparsed: list[dict[str, Any]] = []
        self.foreign_samples: list[str] = []
        self._timed_memo: dict[str, int] = {}  # line without ts and time -> descriptor id
        self._layout_memo: dict[str, int] = {}  # the same, for templates whose time is not last
        self._other_memo: dict[str, int] = {}  # whole raw message line -> descriptor id
        # the same for timestamped message lines, keyed on the line with its timestamp cut:
        # otherwise each one (every exec:check line of a timestamped log) is a new descriptor
        self._stamped_memo: dict[str, int] = {}
        self._rows: list[columns.Row] = []  # one per descriptor
        self._desc_ids = array("i")  # one entry per line: descriptor id, or -1
        self._durations = array("d")  # one entry per line
        self._ts_lines = array("i")  # timestamps are rare enough to keep sparse
        self._ts_values = array("d")
        self._ts_prefix = ""  # e.g. "onednn_verbose,v1," once a timestamped line is seen
        self._last_line_complete = True
        self.prefixed = 0  # verbose lines recovered from behind a prefix
        self._recovered_memo: dict[str, int] = {}  # untimed lines found behind a prefix
        self._recovered = ""  # the verbose part of the last prefixed line
        # typed events, kept once `events()` is used: per descriptor, and per line for
        # lines without a descriptor (info, unparsed)
        self._typed: list[_Typed] | None = None
        self._side_events: dict[int, InfoEvent | Unparsed] = {}

    # ---------------------------------------------------------------- input --

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Parse an iterable of lines (with or without their newline)."""
        # Every line appends exactly one descriptor id (-1: no event) and one duration,
        # so a row's line number is its position: the hot path appends nothing else.
        memo_get = self._timed_memo.get
        other_get = self._other_memo.get
        stamped_get = self._stamped_memo.get
        add_desc = self._desc_ids.append
        add_dur = self._durations.append
        slow = self._slow
        # timestamped lines (ONEDNN_VERBOSE_TIMESTAMP=1): the timestamp sits after a prefix
        # the first such line tells; cut out, the rest is looked up as above
        prefix = self._ts_prefix
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
                if "_" in tail or not tail.isascii():  # `1_000`, other scripts' digits
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
            if prefix and raw.startswith(prefix):
                cut = head.find(",", len(prefix))
                idx = memo_get(prefix + head[cut + 1 :]) if cut > 0 else None
                if idx is not None:
                    try:
                        duration, ts = float(tail), float(head[len(prefix) : cut])
                    except ValueError:
                        slow(raw)
                        continue
                    if "_" in tail or not tail.isascii():
                        slow(raw)
                        continue
                    self._ts_lines.append(len(self._desc_ids))
                    self._ts_values.append(ts)
                    add_dur(duration)
                    add_desc(idx)
                    continue
                # a message seen before, with its own timestamp (every exec:check line)
                if cut > 0 and raw[len(prefix) : len(prefix) + 1].isdigit():
                    idx = stamped_get(prefix + raw[cut + 1 :].rstrip("\r\n"))
                    if idx is not None:
                        add_dur(_NAN)
                        add_desc(idx)
                        continue
            slow(raw)
            prefix = self._ts_prefix
        self._last_line_complete = raw.endswith("\n")

    def events(self, lines: Iterable[str]) -> Iterator[Event]:
        """Feed lines through the same loop as `feed_lines`, yielding each line's typed event."""
        if self._typed is None:
            if self._rows:  # descriptors parsed before have no typed event to give back
                raise ValueError("TraceBuilder.events() must come before any feed_lines()")
            self._typed = []
        pending = iter(lines)
        while batch := list(islice(pending, _EVENT_BATCH)):
            first = self.line_no
            self.feed_lines(batch)
            yield from self._events_of_lines(first, self.line_no)

    @property
    def line_no(self) -> int:
        """Lines consumed so far."""
        return len(self._desc_ids)

    # ------------------------------------- blocks of lines at once (parsers.chunked) --

    def feed_text(self, blocks: Iterable[str]) -> None:
        """Parse a log's text, given as blocks of whole lines: the same result as feed_lines."""
        chunked.feed_blocks(self, blocks)

    def lookups(self) -> tuple[dict[str, int], dict[str, int], dict[str, int], str]:
        """The memos the hot loop reads first (descriptors, messages, timestamped messages)
        and the timestamp prefix: `parsers.chunked` looks lines up in the same."""
        return self._timed_memo, self._other_memo, self._stamped_memo, self._ts_prefix

    def append_resolved(self, ids: bytes, times: bytes, ts_rows: np.ndarray, ts: np.ndarray
                        ) -> None:
        """Append lines resolved outside the hot loop: their descriptor ids (int32) and times
        (float64) as bytes, the rows among them that carry a timestamp, and those."""
        start = self.line_no
        # in the per-line loop's order: a Ctrl-C between two appends leaves no timestamp of
        # a line that finish() drops
        self._durations.frombytes(times)
        self._desc_ids.frombytes(ids)
        if len(ts_rows):
            self._ts_lines.frombytes((ts_rows + start).astype(np.int32).tobytes())
            self._ts_values.frombytes(ts.tobytes())

    def mark_end(self, complete: bool) -> None:
        """Say whether the last line fed ended with a newline."""
        self._last_line_complete = complete

    def _slow(self, raw: str) -> None:
        line_no = len(self._desc_ids) + 1
        line = raw.rstrip("\r\n")
        if not line.isascii():
            line = _encodable(line)
        prefixed = self.prefixed
        idx, duration, ts = self._slow_event(line_no, line)
        if idx >= 0 and duration != duration and ts != ts and self._rows[idx][columns.OP] != "marker":
            # an untimed message: the whole raw line is its key, the timestamp cut if it has one
            unstamped = self._unstamped(line)
            if self.prefixed != prefixed:  # keyed without its prefix, so that each is counted
                self._recovered_memo[self._recovered] = idx
            elif unstamped:
                self._stamped_memo[unstamped] = idx
            else:
                self._other_memo[raw] = idx
        self._durations.append(duration)
        self._desc_ids.append(idx)
        if ts == ts:  # not NaN
            self._ts_lines.append(line_no - 1)
            self._ts_values.append(ts)

    def _slow_event(self, line_no: int, line: str) -> tuple[int, float, float]:
        """Parse a line the memo did not know: (descriptor id or -1, duration, timestamp)."""
        if not line.startswith(LINE_STARTS):
            line = self._verbose_part(line)
            if not line:
                return _NO_EVENT
            head, _, tail = line.rpartition(",")
            idx = self._timed_memo.get(head)  # a log whose every line has a prefix stays fast
            if idx is not None:
                return idx, time_value(tail), _NAN
            idx = self._recovered_memo.get(line)
            if idx is not None:
                return idx, _NAN, _NAN
        if len(line) >= MAX_LINE_CHARS:
            self._add_unparsed(line_no, line, f"line longer than {MAX_LINE_CHARS} characters")
            return _NO_EVENT
        unstamped = self._unstamped(line)
        if unstamped:
            # a known descriptor or message with a timestamp: cut the timestamp out where the
            # grammar found it on the first timestamped line, and look the rest up
            head, _, tail = unstamped.rpartition(",")
            idx = self._timed_memo.get(head)
            if idx is not None:
                prefix = self._ts_prefix
                try:
                    ts = float(line[len(prefix) : line.find(",", len(prefix))])
                    return idx, time_value(tail), ts
                except ValueError:
                    pass
            idx = self._stamped_memo.get(unstamped)
            if idx is not None:  # a message row keeps no timestamp, as when it was parsed
                return idx, _NAN, _NAN
        return self._record(line_no, line, classify(line_no, line, self.state))

    def _unstamped(self, line: str) -> str:
        """The line with its timestamp cut out ("" when it has none where the log puts it)."""
        prefix = self._ts_prefix
        if not prefix or not line.startswith(prefix) or not line[len(prefix) : len(prefix) + 1].isdigit():
            return ""
        comma = line.find(",", len(prefix))
        return prefix + line[comma + 1 :] if comma > 0 else ""

    def _verbose_part(self, line: str) -> str:
        """The verbose line inside a line that does not start with one ('' when none: counted)."""
        if not line.strip():
            self.counts.blank += 1
            return ""
        positions = [p for p in (line.find(m) for m in LINE_STARTS) if p > 0]
        if not positions:
            self.counts.foreign += 1
            if len(self.foreign_samples) < FOREIGN_SAMPLES:
                self.foreign_samples.append(line[:200])
            return ""
        # indentation, a logger's prefix or output glued in front (unflushed prints): the
        # verbose part is parsed and counted as what it is, the prefix is not a line of its own
        self.prefixed += 1
        self._recovered = line[min(positions) :]
        self.state.warn("text before the verbose marker on some lines (indentation, a logger's "
                        "prefix or interleaved stdout): cut off, the verbose part parsed")
        return self._recovered

    def _record(self, line_no: int, line: str, result: Classified) -> tuple[int, float, float]:
        event = result.event
        ts = _NAN if result.ts_ms is None else result.ts_ms
        if result.descriptor is not None:
            if result.ts_prefix and not self._ts_prefix:
                self._ts_prefix = result.ts_prefix
            memo = self._timed_memo if result.time_last else self._layout_memo
            idx = memo.get(result.memo_key)
            if idx is None:
                idx = self._new_desc(columns.descriptor_row(result.descriptor), result.descriptor)
                memo[result.memo_key] = idx
            return idx, result.duration_ms, ts
        if isinstance(event, Unparsed):
            self._add_unparsed(line_no, event.text, event.reason)
        elif isinstance(event, InfoEvent):
            self.counts.info += 1
            if self._typed is not None:
                self._side_events[line_no] = event
        elif isinstance(event, MarkerEvent):
            return self._new_desc(columns.marker_row(event), event), _NAN, ts
        elif isinstance(event, MessageEvent):
            return self._new_desc(columns.message_row(event), event), _NAN, ts
        return _NO_EVENT

    def _add_unparsed(self, line_no: int, text: str, reason: str) -> None:
        self.counts.unparsed += 1
        if len(self.unparsed) < UNPARSED_SAMPLES:
            self.unparsed.append({"line": line_no, "reason": reason, "text": text[:300]})
        if self._typed is not None:
            self._side_events[line_no] = Unparsed(line_no, text, reason)

    def _new_desc(self, desc_row: columns.Row, typed: _Typed) -> int:
        self._rows.append(desc_row)
        if self._typed is not None:
            self._typed.append(typed)
        return len(self._rows) - 1

    def _events_of_lines(self, start: int, stop: int) -> Iterator[Event]:
        """The typed events of lines [start, stop) (0-based), in line order."""
        assert self._typed is not None
        at = bisect_left(self._ts_lines, start)
        ts_of = dict(zip(self._ts_lines[at:], self._ts_values[at:], strict=True))
        for index in range(start, stop):
            idx = self._desc_ids[index]
            if idx < 0:
                side = self._side_events.pop(index + 1, None)
                if side is not None:
                    yield side
                continue
            typed, ts = self._typed[idx], ts_of.get(index)
            if isinstance(typed, Descriptor):
                yield ExecEvent(index + 1, typed, self._durations[index], ts)
            else:  # a message or marker seen before: the same event on this line
                yield dataclasses.replace(typed, line=index + 1, ts_ms=ts)

    # --------------------------------------------------------------- output --

    def finish(self) -> Trace:
        """Build the Trace from everything fed so far (once: the per-line arrays are handed
        over, and freed as soon as the events' rows are taken from them)."""
        # a Ctrl-C can land between a line's two appends: keep only whole lines
        del self._durations[len(self._desc_ids) :]
        del self._desc_ids[len(self._durations) :]
        del self._ts_lines[len(self._ts_values) :]
        del self._ts_values[len(self._ts_lines) :]
        if not self._last_line_complete and self.line_no:
            self.state.warn(f"line {self.line_no} has no newline: the log may be truncated")
        self.counts.lines = self.line_no
        parsed = Parsed(
            source=self.source,
            state=self.state,
            counts=self.counts,
            rows=self._rows,
            per_line=np.frombuffer(self._desc_ids, dtype=np.int32),
            durations=np.frombuffer(self._durations, dtype=np.float64),
            ts_lines=np.frombuffer(self._ts_lines, dtype=np.int32),
            ts_values=np.frombuffer(self._ts_values, dtype=np.float64),
            unparsed=self.unparsed,
            foreign_samples=self.foreign_samples,
            prefixed=self.prefixed,
        )
        self._desc_ids, self._durations = array("i"), array("d")
        return build_trace(parsed)


def _encodable(line: str) -> str:
    """The line with lone surrogates as U+FFFD: a text stream decoded with `surrogateescape`
    (stdin under LC_ALL=C) hands them over, and no UTF-8 writer (Parquet, JSON) takes them."""
    try:
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:
        return line.encode("utf-8", "surrogateescape" if _escaped_only(line) else "surrogatepass"
                           ).decode("utf-8", "replace")


def _escaped_only(line: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in line)


def parse_to_trace(source: Any, name: str | None = None) -> Trace:
    """Parse a log (path, .gz, file object or iterable of lines) into a Trace."""
    builder = TraceBuilder(source_name(source) if name is None else name)
    try:
        with open_text(source) as lines:
            if isinstance(lines, io.TextIOWrapper):  # a file: whole blocks of its text at once
                builder.feed_text(text_blocks(lines))
            else:
                builder.feed_lines(lines)
    except LogReadError as exc:
        if builder.line_no == 0:
            raise
        builder.state.warn(str(exc))  # keep what was read before the failure
    return builder.finish()


def iter_events(source: Any) -> Iterator[Event]:
    """Yield typed events one line at a time (ExecEvent, InfoEvent, MessageEvent, ...).

    A view over the same loop as `parse_to_trace`: the same guards, counts and memo.
    """
    builder = TraceBuilder(source_name(source))
    with open_text(source) as lines:
        yield from builder.events(lines)
