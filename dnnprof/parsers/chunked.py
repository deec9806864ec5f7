"""The stream's hot loop a window of lines at a time, known lines resolved by pyarrow/numpy.

A window of lines is cut at byte offsets (numpy), each line's memo key region (the text
before the last comma, with the timestamp cut out on a timestamped log) is dictionary-encoded
by pyarrow, so that the memo is consulted once per distinct key in the window, and the times
and timestamps are cast to floats in one call. A line is resolved here only when the
per-line loop, run at that point, would take the same fast path with the same result: its
key is known, its numbers are plain numbers, and no memo changed since the window was
resolved. Everything else (new descriptors, messages seen for the first time, malformed,
info and non-ASCII lines) goes through `TraceBuilder.feed_lines`, so line numbers, counts,
warnings, unparsed samples and events are those of the per-line loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.parsers.stream import TraceBuilder

MIN_WINDOW = 512  # lines resolved at once after a memo changed (new descriptors come in runs)
MAX_WINDOW = 1 << 15  # lines resolved at once in a steady log
# a plain number as oneDNN prints times and timestamps: what pyarrow casts exactly as float()
_PLAIN_NUMBER = r"^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$"
_NL, _COMMA = 10, 44


@dataclass
class _Window:
    """Byte offsets of a window's lines inside their block (ends exclude the newline)."""

    data: pa.Buffer
    buf: np.ndarray  # the block's bytes
    starts: np.ndarray  # int64, first byte of each line
    ends: np.ndarray  # int64, one past the line's last byte, newline included
    content_ends: np.ndarray  # int64, the line without its newline
    seps: np.ndarray  # the block's commas and newlines (and its end), in order
    line_nl: np.ndarray  # index in seps of each line's newline ...
    prev_nl: np.ndarray  # ... and of the previous line's (-1 for the block's first line)

    def comma(self, nth: int) -> np.ndarray:
        """Position of each line's nth comma (0-based) if it comes before the line's last
        comma, else -1."""
        at = self.prev_nl + 1 + nth
        return np.where(at < self.line_nl - 1, self.seps[np.minimum(at, len(self.seps) - 1)], -1)

    def last_comma(self) -> np.ndarray:
        """Position of each line's last comma, -1 where it has none."""
        return np.where(self.line_nl - self.prev_nl > 1, self.seps[self.line_nl - 1], -1)

    def whole(self) -> pa.StringArray:
        """Each line with its newline, as a string array over the block (no copy)."""
        offsets = np.append(self.starts, self.ends[-1]).astype(np.int32)
        return pa.StringArray.from_buffers(len(self.starts), pa.py_buffer(offsets), self.data)

    def regions(self, begin: np.ndarray, end: np.ndarray, mask: np.ndarray) -> pa.StringArray:
        """One string per line: [begin, end) of the block where mask, null elsewhere; no copy.

        The array has 2n-1 entries, the odd ones (the bytes between two regions) null, so
        that arbitrary regions of one buffer need no copying: the caller reads entries 0::2.
        """
        n = len(begin)
        begin = np.where(mask, begin, self.starts)
        end = np.where(mask, end, self.starts)
        offsets = np.empty(2 * n, dtype=np.int32)
        offsets[0::2] = begin
        offsets[1::2] = end
        valid = np.zeros(2 * n - 1, dtype=bool)
        valid[0::2] = mask
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.StringArray.from_buffers(2 * n - 1, pa.py_buffer(offsets), self.data, bitmap)


class _Carried:
    """What the feed keeps from window to window: the timestamps found in the descriptor and
    message memos' keys, kept up to date, and scratch byte masks.

    The per-line loop looks a timestamped line up whole before it cuts its timestamp out:
    a key holding that very timestamp (a message memoised before the log's timestamp prefix
    was known) would be found first, so lines with such a timestamp are left to it.
    """

    def __init__(self) -> None:
        self.prefix = ""
        self.seen = (0, 0)
        self.found: set[float] = set()
        self.scratch = np.empty(0, dtype=bool)

    def key_timestamps(self, timed: dict[str, int], other: dict[str, int], prefix: str
                       ) -> set[float]:
        """The timestamps of the keys that start like a timestamped line."""
        if prefix != self.prefix:
            self.prefix, self.seen, self.found = prefix, (0, 0), set()
        if prefix:
            for memo, seen in ((timed, self.seen[0]), (other, self.seen[1])):
                for key in islice(reversed(memo), len(memo) - seen):  # memos only grow
                    comma = key.find(",", len(prefix))
                    if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isdigit() \
                            and comma > 0:
                        # one float() does not read has no equal that pyarrow reads
                        self.found.add(_time_or_skip(key[len(prefix) : comma]))
        self.seen = (len(timed), len(other))
        return self.found


def feed_blocks(builder: TraceBuilder, blocks: Iterable[bytes | str]) -> None:
    """Parse blocks of whole lines (the last block may end without a newline): text, or
    bytes that are ASCII without a carriage return (as `inputs.text_blocks` gives them)."""
    window = MIN_WINDOW
    carried = _Carried()
    complete = True
    for block in blocks:
        if not block:
            continue
        if isinstance(block, str):
            if not block.isascii() or "\r" in block:  # rare: the per-line loop, as it is
                complete = block.endswith("\n")
                builder.feed_lines(split_lines(block))
                continue
            block = block.encode("ascii")
        complete = block.endswith(b"\n")
        window = _feed_ascii(builder, block, window, carried)
    builder.mark_end(complete)
    pa.default_memory_pool().release_unused()  # give back what the windows' arrays took


def _signature(builder: TraceBuilder) -> tuple[int, int, int, str]:
    """Changes whenever a memo the lookups read gains a key or the prefix is found."""
    timed, other, stamped, prefix = builder.lookups()
    return len(timed), len(other), len(stamped), prefix


def split_lines(block: str) -> list[str]:
    """The lines of a block, each with its newline, as iterating a text file gives them."""
    # str.splitlines would also split at \v, \f, \x1c-\x1e, \x85 and \u2028
    lines = [line + "\n" for line in block.split("\n")]
    if lines[-1] == "\n":
        lines.pop()
    else:
        lines[-1] = lines[-1][:-1]
    return lines


def _feed_ascii(builder: TraceBuilder, data: bytes, window: int, carried: _Carried) -> int:
    """Feed one ASCII block window by window; returns the window size for the next block."""
    buf = np.frombuffer(data, dtype=np.uint8)
    # every comma and newline at once: a line's commas are those between its newline and
    # the previous one, so its first and last commas are found by counting. The byte masks
    # are reused from block to block: fresh megabyte arrays cost more than the comparisons
    if len(carried.scratch) < 2 * len(buf):
        carried.scratch = np.empty(2 * len(buf), dtype=bool)
    commas, newlines = carried.scratch[: len(buf)], carried.scratch[len(buf) : 2 * len(buf)]
    np.equal(buf, _COMMA, out=commas)
    np.equal(buf, _NL, out=newlines)
    seps = np.flatnonzero(np.bitwise_or(commas, newlines, out=commas))
    if not data.endswith(b"\n"):  # the last line ends at the end of the block
        seps = np.append(seps, len(data))
    is_nl = np.take(buf, np.minimum(seps, len(buf) - 1)) == _NL
    is_nl[-1] = True
    line_nl = np.flatnonzero(is_nl)
    prev_nl = np.concatenate(([-1], line_nl[:-1]))
    content_ends = seps[line_nl]
    ends = np.minimum(content_ends + 1, len(data))
    starts = np.concatenate(([0], ends[:-1]))
    buffer = pa.py_buffer(data)
    at = 0
    while at < len(starts):
        stop = min(len(starts), at + window)
        lines = _Window(buffer, buf, starts[at:stop], ends[at:stop], content_ends[at:stop],
                        seps, line_nl[at:stop], prev_nl[at:stop])
        changed = _feed_window(builder, data, lines, carried)
        window = MIN_WINDOW if changed else min(2 * window, MAX_WINDOW)
        at = stop
    return window


def _feed_window(builder: TraceBuilder, data: bytes, lines: _Window, carried: _Carried) -> bool:
    """Resolve a window, then append it in order; True if a memo changed on the way."""
    before = _signature(builder)
    desc, durations, ts = _resolve(builder, lines, carried)
    # as bytes once: the lines between two the per-line loop takes are appended as slices
    ids, times = desc.astype(np.int32).tobytes(), durations.astype(np.float64).tobytes()
    stamped = np.flatnonzero(~np.isnan(ts))
    stamps = ts[stamped]

    def append(start: int, stop: int) -> None:
        low, high = np.searchsorted(stamped, (start, stop)).tolist() if len(stamped) else (0, 0)
        builder.append_resolved(ids[4 * start : 4 * stop], times[8 * start : 8 * stop],
                                stamped[low:high] - start, stamps[low:high])

    done = 0
    for miss in np.flatnonzero(desc < 0).tolist():
        append(done, miss)
        builder.feed_lines([data[lines.starts[miss] : lines.ends[miss]].decode("ascii")])
        done = miss + 1
        if _signature(builder) != before:
            # what was resolved after this line may be stale: the rest goes line by line
            builder.feed_lines(
                [data[s:e].decode("ascii") for s, e in zip(lines.starts[done:].tolist(),
                                                           lines.ends[done:].tolist(), strict=True)]
            )
            return True
    append(done, len(desc))
    return False


def _resolve(
    builder: TraceBuilder, lines: _Window, carried: _Carried
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(descriptor id or -1, duration, timestamp) per line, as the per-line loop's fast paths
    would give them with the memo as it is now; -1 for every line they would not take."""
    n = len(lines.starts)
    desc = np.full(n, -1, dtype=np.int32)
    durations = np.full(n, np.nan)
    ts = np.full(n, np.nan)
    last = lines.last_comma()
    has_comma = last >= 0
    head_end = np.where(has_comma, last, lines.starts)  # rpartition: no comma, empty head
    tail_start = np.where(has_comma, last + 1, lines.starts)
    timed, other, stamped_memo, prefix = builder.lookups()
    blocked = carried.key_timestamps(timed, other, prefix)
    stamped, ts_comma, stamps_read = _stamped_lines(prefix, blocked, lines)
    plain = ~stamped
    # untimestamped lines: the text before the last comma is a known descriptor ...
    known = _lookup(timed, "", lines, lines.starts, head_end, plain, desc)
    _take_times(lines, known, tail_start, desc, durations)
    # ... or the whole line is a known message
    _lookup(other, "", lines, lines.starts, lines.ends, plain & ~known, desc)
    if stamped.any():
        known = _lookup(timed, prefix, lines, ts_comma + 1, head_end, stamped, desc)
        _take_times(lines, known, tail_start, desc, durations)
        ts[known] = stamps_read[known]
        _lookup(stamped_memo, prefix, lines, ts_comma + 1, lines.content_ends, stamped & ~known,
                desc)
    return desc, durations, ts


def _stamped_lines(
    prefix: str, blocked: set[float], lines: _Window
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lines the per-line loop looks up with their timestamp cut out, the comma after the
    timestamp, the timestamp)."""
    n = len(lines.starts)
    if not prefix or not prefix.isascii():  # an ASCII line cannot start with it
        return np.zeros(n, dtype=bool), lines.starts, np.full(n, np.nan)
    first = lines.starts + len(prefix)
    # the first comma after the prefix (head.find(",", len(prefix))), if before the last one
    ts_comma = lines.comma(prefix.count(","))
    ok = ts_comma > first
    ok &= pc.starts_with(lines.whole(), prefix).to_numpy(zero_copy_only=False)
    digit = lines.buf[np.minimum(first, len(lines.buf) - 1)]
    ok &= (digit >= 48) & (digit <= 57)
    ts_comma = np.where(ok, ts_comma, lines.starts)
    ts = _timestamps(lines, first, ts_comma, ok)
    # a timestamp pyarrow does not read goes to the per-line loop; so does one that a memo
    # key holds (compared as numbers: equal texts are equal numbers)
    ok &= ~np.isnan(ts)
    if blocked:
        ok &= ~np.isin(ts, np.array(sorted(blocked)))
    return ok, ts_comma, ts


def _lookup(
    memo: dict[str, int], prefix: str, lines: _Window, begin: np.ndarray, end: np.ndarray,
    mask: np.ndarray, desc: np.ndarray,
) -> np.ndarray:
    """Look the masked lines' [begin, end) up in a memo (once per distinct text), filling
    `desc` where found; returns where found."""
    if not memo or not mask.any():
        return np.zeros(len(mask), dtype=bool)
    keys, codes = _encode(lines, begin, end, mask)
    ids = np.array([memo.get(prefix + key, -1) for key in keys], dtype=np.int32)[codes]
    found = mask & (ids >= 0)
    desc[found] = ids[found]
    return found


def _take_times(
    lines: _Window, known: np.ndarray, tail_start: np.ndarray, desc: np.ndarray,
    durations: np.ndarray,
) -> None:
    """The times of known lines, read as the per-line loop reads them (once per distinct
    text: oneDNN's times repeat); a line whose time it would not take is left to it."""
    if not known.any():
        return
    texts, codes = _encode(lines, tail_start, lines.content_ends, known)
    values = np.array([_time_or_skip(text) for text in texts], dtype=np.float64)
    taken = ~np.isinf(values)
    durations[known] = values[codes][known]
    desc[known & ~taken[codes]] = -1


def _time_or_skip(text: str) -> float:
    """The per-line loop's fast-path time of a last field, -inf where it would not take it."""
    try:
        value = float(text)
    except ValueError:
        return -np.inf
    return -np.inf if "_" in text or not text.isascii() or value == -np.inf else value


def _encode(
    lines: _Window, begin: np.ndarray, end: np.ndarray, mask: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """(distinct texts, each line's index into them) of the masked regions (0 elsewhere)."""
    encoded = pc.dictionary_encode(lines.regions(begin, end, mask))
    indices = encoded.indices
    # the indices' own buffer: entries at null slots are unspecified, so they are masked
    raw = np.frombuffer(indices.buffers()[1], dtype=np.int32, count=len(indices),
                        offset=indices.offset * 4)
    return encoded.dictionary.to_pylist(), np.where(mask, _even(raw, len(mask)), 0)


def _timestamps(lines: _Window, begin: np.ndarray, end: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float() of each masked timestamp (pyarrow reads every text it takes as float() does:
    tests/test_parser_chunked.py), NaN where pyarrow does not take it."""
    texts = lines.regions(begin, end, mask)
    try:
        values = pc.cast(texts, pa.float64())
    except pa.ArrowInvalid:  # a field that is not a number: cast the plain ones only
        plain = pc.match_substring_regex(texts, _PLAIN_NUMBER).fill_null(False)
        values = pc.cast(pc.if_else(plain, texts, None), pa.float64())
    return _even(values.to_numpy(zero_copy_only=False), len(mask))


def _even(values: np.ndarray, n: int) -> np.ndarray:
    """Entries 0, 2, 4 ... of a 2n-1 array built by `_Window.regions`."""
    return np.ascontiguousarray(values[0::2][:n])
