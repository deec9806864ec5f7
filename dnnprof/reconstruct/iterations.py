"""Iterations: from markers, or from the periodic structure of the exec stream.

Without markers, the non-reorder primitives of a run repeat one descriptor sequence per
forward pass. The steady state is the periodic run that ends last in the log; passes
before it are split where the iteration's first primitive (by shape) recurs. Warm-up
iterations are the leading ones whose exec sequence differs from the last iteration's
(one-time weight reorders, cache misses); if none differ, a first iteration 25 % slower
than the median of the others is taken as warm-up, and failing that (a contended machine)
the first of three or more by convention. Passes before the steady run in
another data type are calibration; reorder-only work between calibration and the run is
the build (weight quantisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dnnprof.reconstruct.columns import EventColumns, Labels
from dnnprof.reconstruct.markers import MarkerInfo
from dnnprof.reconstruct.reorders import charge
from dnnprof.vocabulary import BUILD, CALIBRATE, MEASURE, WARMUP

MIN_REPEATS = 2
MIN_SHAPES_IN_PERIOD = 0.5  # share of the primitives outside a periodic run it must explain
WARMUP_SLOWDOWN = 1.25
CONVENTIONAL_WARMUP_MIN = 3  # iterations needed before the first is assumed a warm-up
BUILD_BURST_MIN = 8  # leading weight conversions that mark a conversion step (jit freeze)


@dataclass
class Pass:
    """A contiguous span of events rows that is one forward pass (or setup work)."""

    first_row: int
    last_row: int  # inclusive
    iteration: int = -1
    phase: str = ""
    wall_ms: float | None = None
    exec_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class IterationResult:
    """Passes in log order, and how they were found."""

    passes: list[Pass]
    source: str  # markers | periodicity | none
    period: int | None = None
    notes: list[str] = field(default_factory=list)


def _runs(eq: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True."""
    if not len(eq):
        return []
    padded = np.concatenate(([False], eq, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def find_period(keys: np.ndarray) -> tuple[int, int, int] | None:
    """(period, region start, region end) of the periodic run that ends last, or None."""
    n = len(keys)
    if n < 2:
        return None
    values, counts = np.unique(keys, return_counts=True)
    repeated = values[counts >= MIN_REPEATS]
    if not len(repeated):
        return None
    rare = repeated[np.argsort(counts[counts >= MIN_REPEATS], kind="stable")][:5]
    # the rarest keys, and those that end the stream (the steady state is at the end)
    tail = [k for k in keys[::-1][:8] if k in set(repeated.tolist())]
    candidates: set[int] = set()
    for key in {*rare.tolist(), *tail}:
        where = np.flatnonzero(keys == key)
        candidates.update(int(d) for d in np.unique(np.diff(where)) if 0 < d <= n // 2)
    best: tuple[int, int, int] | None = None
    best_rank: tuple[int, int, int] | None = None
    for p in sorted(candidates)[:256]:
        eq = keys[:-p] == keys[p:]
        for start, end in _runs(eq):
            length = end - start + p
            repeats = length // p
            if repeats < MIN_REPEATS:
                continue
            rank = (end + p, repeats * p, -p)
            if best_rank is None or rank > best_rank:
                best_rank, best = rank, (p, start, end + p)
    return best


def detect(columns: EventColumns, rows: np.ndarray | None = None, truncated: bool = False) -> IterationResult:
    """Passes of the exec stream (all rows, or the given row positions) by periodicity."""
    n_rows = len(columns)
    if rows is None:
        rows = np.arange(n_rows)
    if not len(rows):
        return IterationResult([], "none")
    exec_rows = rows[columns.is_exec[rows]]
    anchors = exec_rows[~columns.is_reorder[exec_rows]]
    keys = columns.anchor_key[anchors]
    found = find_period(keys)
    note = "no repeating primitive sequence: one pass"
    if found is not None and not _spans_the_log(columns.shape_key[anchors], *found):
        found = None
        note = ("one pass: the primitives that repeat are blocks inside it (the rest of the "
                "log never recurs), not iterations; no steady state")
    if found is None:
        single = Pass(int(rows[0]), int(rows[-1]), 0 if len(anchors) else -1,
                      "" if len(anchors) else BUILD, exec_rows=exec_rows)
        return IterationResult([single], "none", notes=[note])
    period, start, end = found
    repeats = (end - start) // period
    first = _rotation(columns.shape_key[anchors], start, end, period, truncated)
    starts = [first + k * period for k in range(repeats)]
    region_end = starts[-1] + period

    # passes before the steady run: split where the iteration's first primitive recurs
    first_shape = columns.shape_key[anchors[first]]
    pre_starts = [i for i in range(first) if columns.shape_key[anchors[i]] == first_shape]
    if first > 0 and (not pre_starts or pre_starts[0] != 0):
        pre_starts.insert(0, 0)
    segment_starts = pre_starts + starts + ([region_end] if region_end < len(anchors) else [])
    kinds = (["pre"] * len(pre_starts) + ["steady"] * len(starts)
             + (["post"] if region_end < len(anchors) else []))
    anchor_spans = [(s, (segment_starts[k + 1] if k + 1 < len(segment_starts) else len(anchors)) - 1)
                    for k, s in enumerate(segment_starts)]
    passes = _spans_to_passes(columns, rows, anchors, anchor_spans)
    result = IterationResult(passes, "periodicity", period)
    _label(columns, passes, kinds, anchors, anchor_spans, result)
    return result


def _spans_the_log(shape_keys: np.ndarray, period: int, start: int, end: int) -> bool:
    """Whether a periodic run is the log's iterations rather than repeated blocks of one pass.

    Every iteration runs the whole model, so what runs outside the periodic run (warm-up,
    calibration, a cut iteration) has the period's shapes; blocks repeated inside a single
    pass (ResNet's bottlenecks) leave the rest of the model outside, with shapes never seen
    in the period. Half the outside primitives must be of the period's shapes.
    """
    outside = np.r_[shape_keys[:start], shape_keys[end:]]
    if not len(outside):
        return True
    inside = np.unique(shape_keys[start : start + period])
    return bool(np.isin(outside, inside).mean() >= MIN_SHAPES_IN_PERIOD)


def _rotation(shape_keys: np.ndarray, start: int, end: int, period: int, truncated: bool) -> int:
    """Where the first whole iteration of a periodic run [start, end) begins.

    A run that is not a whole number of periods has a partial block at one end: the tail
    of an earlier pass that happens to match (start it at end - k*period), or a log cut
    mid-iteration (start it at `start`). An iteration begins with the model's first layer,
    which a log shows early, so the rotation whose first primitive appears first wins.
    """
    aligned_end = end - ((end - start) // period) * period
    if aligned_end == start:
        return start
    keys, first_seen = np.unique(shape_keys, return_index=True)
    at_start, at_end = (int(first_seen[np.searchsorted(keys, shape_keys[at])])
                        for at in (start, aligned_end))
    if at_start != at_end:
        return start if at_start < at_end else aligned_end
    return start if truncated or end != len(shape_keys) else aligned_end


def _spans_to_passes(columns: EventColumns, rows: np.ndarray, anchors: np.ndarray,
                     spans: list[tuple[int, int]]) -> list[Pass]:
    """Row spans for anchor spans: rows between two passes go where their reorders are charged."""
    passes: list[Pass] = []
    first_row, last_row = int(rows[0]), int(rows[-1])
    cut_after: list[int] = []  # last row of each pass except the final one
    for k in range(len(spans) - 1):
        prev_anchor = int(anchors[spans[k][1]])
        next_anchor = int(anchors[spans[k + 1][0]])
        between = np.arange(prev_anchor + 1, next_anchor)
        between_exec = between[columns.is_exec[between]]
        cut = prev_anchor
        if len(between_exec):
            chain = [prev_anchor, *between_exec.tolist(), next_anchor]
            targets, _ = charge([columns.shape(r) for r in chain])
            to_prev = [chain[i] for i in range(1, len(chain) - 1) if targets[i] == 0]
            if to_prev:
                cut = max(to_prev)
        cut_after.append(cut)
    begin = first_row
    for k in range(len(spans)):
        end = cut_after[k] if k < len(cut_after) else last_row
        span_rows = np.arange(begin, end + 1)  # callers pass contiguous rows
        passes.append(Pass(begin, end, exec_rows=span_rows[columns.is_exec[span_rows]]))
        begin = end + 1
    return passes


def _signature(columns: EventColumns, p: Pass) -> tuple:
    rows = np.arange(p.first_row, p.last_row + 1)
    return (tuple(columns.desc_id[p.exec_rows].tolist()), int(columns.cache_miss[rows].sum()))


def _label(columns: EventColumns, passes: list[Pass], kinds: list[str], anchors: np.ndarray,
           spans: list[tuple[int, int]], result: IterationResult) -> None:
    roles = dict(zip((id(p) for p in passes), kinds, strict=True))
    steady = [p for p in passes if roles[id(p)] == "steady"]
    steady_dtypes = _dtypes(columns, steady[-1])
    for p in passes:
        role = roles[id(p)]
        if role == "pre":
            has_anchor = len(p.exec_rows) and (~columns.is_reorder[p.exec_rows]).any()
            if not has_anchor:
                p.phase = BUILD
            elif _dtypes(columns, p) != steady_dtypes:
                p.phase = CALIBRATE
            else:
                p.phase = WARMUP
        elif role == "post":
            result.notes.append(
                f"rows {p.first_row}-{p.last_row} after the last whole iteration are left unlabelled")
    computes = int(sum(columns.shape(int(r)).is_compute for r in steady[-1].exec_rows))
    for build in _split_build(columns, passes, computes, result):
        roles[id(build)] = BUILD
    reference = _signature(columns, steady[-1])
    leading = all(p.phase != WARMUP for p in passes if roles[id(p)] == "pre")
    warmups = 0
    for p in steady:  # leading iterations unlike the last one are warm-up
        if leading and p is not steady[-1] and _signature(columns, p) != reference:
            p.phase = WARMUP
            warmups += 1
        else:
            leading = False
            p.phase = MEASURE
    pre_warmups = sum(p.phase == WARMUP for p in passes if roles[id(p)] == "pre")
    if warmups == 0 and pre_warmups == 0 and len(steady) >= 2:
        times = [float(np.nansum(columns.duration[s.exec_rows])) for s in steady]
        others = float(np.median(times[1:]))
        if others > 0 and times[0] > WARMUP_SLOWDOWN * others:
            steady[0].phase = WARMUP
            result.notes.append(
                f"iteration 0 taken as warm-up: same primitives as the others but "
                f"{times[0] / others:.2f}x their median time")
        elif len(steady) >= CONVENTIONAL_WARMUP_MIN:
            # nothing tells it apart (a contended machine hides the slow first call), but
            # benchmarks warm up: excluding one iteration costs less than averaging one in
            steady[0].phase = WARMUP
            result.notes.append(
                "iteration 0 taken as warm-up by convention: no structural or timing "
                "difference (run with dnnprof markers to know)")
    number = 0
    for p in passes:
        if p.phase in (WARMUP, MEASURE):
            p.iteration, number = number, number + 1
        else:
            p.iteration = -1


def _dtypes(columns: EventColumns, p: Pass) -> frozenset[str]:
    return columns.dtypes(p.exec_rows[~columns.is_reorder[p.exec_rows]])


def _split_build(columns: EventColumns, passes: list[Pass], computes: int,
                 result: IterationResult) -> list[Pass]:
    """Weight conversion between a pre-run pass and the run is the build (quantisation after
    calibration, jit freezing after tracing); the pass before a burst of it was the build's
    own forward (a trace), not a warm-up iteration."""
    builds: list[Pass] = []
    k = 0
    while k < len(passes) - 1:
        here, nxt = passes[k], passes[k + 1]
        rows = nxt.exec_rows
        anchor_pos = np.flatnonzero(~columns.is_reorder[rows])
        leading = rows[: anchor_pos[0]] if len(anchor_pos) else rows
        burst = len(leading) >= max(BUILD_BURST_MIN, computes // 2)
        into_run = nxt.phase not in (CALIBRATE, BUILD)
        if len(leading) and into_run and (here.phase == CALIBRATE or (here.phase == WARMUP and burst)):
            if here.phase == WARMUP:
                here.phase = BUILD
                result.notes.append(
                    f"the pass before {len(leading)} weight conversions is taken as the "
                    "build's own forward (jit trace / conversion), not a warm-up iteration")
            build = Pass(nxt.first_row, int(leading[-1]), -1, BUILD, exec_rows=leading)
            nxt.first_row = int(leading[-1]) + 1
            nxt.exec_rows = rows[len(leading):]
            passes.insert(k + 1, build)
            builds.append(build)
            k += 1
        k += 1
    return builds


def from_markers(columns: EventColumns, info: MarkerInfo) -> IterationResult:
    """Iteration passes from iter_begin/iter_end markers; other exec runs split by periodicity."""
    passes: list[Pass] = []
    n = len(columns)
    covered = np.zeros(n, dtype=bool)
    for marked in info.iterations:
        rows = np.arange(marked.first_row, marked.last_row + 1)
        covered[rows] = True
        passes.append(Pass(marked.first_row, marked.last_row, marked.iteration, marked.phase,
                           marked.wall_ms, exec_rows=rows[columns.is_exec[rows]]))
    # runs of rows outside every iteration (calibration, build...), one per marker phase:
    # periodicity inside each finds its passes; the marker phase stays the rows' phase
    outside = np.flatnonzero(~covered)
    if len(outside):
        phase_codes = info.phase.codes[outside]
        breaks = np.flatnonzero((np.diff(outside) > 1) | (np.diff(phase_codes) != 0))
        for chunk in np.split(outside, breaks + 1):
            if not columns.is_exec[chunk].any():
                continue
            phase = info.phase[chunk[0]]
            sub = detect(columns, chunk)
            for p in sub.passes:
                p.iteration = -1
                p.phase = phase or ("" if p.phase in (WARMUP, MEASURE) else p.phase)
            passes.extend(sub.passes)
    passes.sort(key=lambda p: p.first_row)
    return IterationResult(passes, "markers")


def label_rows(columns: EventColumns, info: MarkerInfo,
               truncated: bool) -> tuple[IterationResult, np.ndarray, Labels]:
    """The passes, and per events row its iteration number (-1: none) and phase.

    From iteration markers when the log has them, else by periodicity; phase markers label
    the rows no detected iteration covers. Each pass takes the phase its first exec row has.
    """
    if info.has_iterations:
        found = from_markers(columns, info)
        iteration = info.iteration.copy()
        phase = info.phase.copy()
    else:
        found = detect(columns, truncated=truncated)
        iteration = np.full(len(columns), -1, np.int32)
        phase = Labels.empty(len(columns))
        for p in found.passes:
            iteration[p.first_row : p.last_row + 1] = p.iteration
            phase.codes[p.first_row : p.last_row + 1] = phase.code(p.phase)
        if info.phase.labelled().any():  # phase markers without iteration markers
            marked = info.phase.labelled() & (iteration < 0)
            phase.codes[marked] = phase.codes_of(info.phase.names)[info.phase.codes[marked]]
    for p in found.passes:
        if len(p.exec_rows):
            p.phase = phase[p.exec_rows[0]]
    return found, iteration, phase
