"""Which rows and which iterations an export covers, and whether the result fits its viewer.

Steady state is the Trace's rule (`Trace.steady_mask`: an iteration whose phase is one of
vocabulary.STEADY_PHASES), so an exporter and `Trace.by_kind()` agree on what is steady.
Every selection works on the columns' category codes and the iteration numbers: a
ten-million-row trace is never turned into strings row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnprof.trace import Trace
from dnnprof.views import coded
from dnnprof.vocabulary import NON_STEADY_PHASES

# APIs whose exec rows become primitive spans (graph partitions included: in a trace viewer
# the partition is where the fusion shows).
SPAN_APIS = ("primitive", "ukernel", "graph")
# The selection of the OTLP export: the last 3 steady iterations (see `select_iterations`).
STEADY_SELECTION = ("steady", 3)
# Viewer limits. Jaeger's UI lays out every span of a trace at once and gets slow past a
# few thousand; Perfetto's legacy JSON importer reads the whole file into the tab's memory
# and struggles past a few hundred MB.
JAEGER_UI_SPANS = 5_000
PERFETTO_JSON_BYTES = 300_000_000
CHROME_BYTES_PER_SPAN = 850  # a Chrome event with its args, measured on the corpus logs


def jaeger_ui_note(spans: int, budget: int | None = None) -> str:
    """A warning for a trace of `spans` spans past what Jaeger's UI lays out comfortably
    (`budget`, by default JAEGER_UI_SPANS)."""
    if spans <= (JAEGER_UI_SPANS if budget is None else budget):
        return ""
    return (f"warning: {spans:,} spans in one trace; Jaeger's UI gets slow past a few "
            f"thousand: select fewer iterations (--span-iterations N)")


def span_mask(events: pd.DataFrame) -> np.ndarray:
    """Which rows become primitive spans: exec lines of the span APIs (not markers)."""
    op, ops = coded(events["op"])
    api, apis = coded(events["api"])
    return (ops == "exec")[op] & np.isin(apis, SPAN_APIS)[api] if len(ops) and len(apis) else (
        np.zeros(len(events), bool))


def span_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The rows that become primitive spans: timed exec lines of every API but markers."""
    return events[span_mask(events)]


def iteration_phases(rows: pd.DataFrame) -> dict[int, str]:
    """The phase of each iteration: the first non-empty phase among its rows, else ""."""
    iteration = rows["iteration"].to_numpy()
    phase, names = coded(rows["phase"])
    phases = dict.fromkeys((int(i) for i in pd.unique(iteration)), "")
    named = np.flatnonzero((names != "")[phase]) if len(names) else np.zeros(0, np.int64)
    numbers, first = np.unique(iteration[named], return_index=True)
    phases.update(zip(numbers.tolist(), names[phase[named[first]]].tolist(), strict=True))
    return phases


def steady_iterations(rows: pd.DataFrame) -> list[int]:
    """Iterations in steady state by the Trace's rule. Without any, every iteration that is
    not warm-up, calibration or build; when that is none either, every iteration (better
    some spans than none)."""
    iteration = rows["iteration"].to_numpy()
    steady = iteration[Trace.steady_mask(rows) & (iteration >= 0)]
    if len(steady):
        return np.unique(steady).tolist()
    phases = iteration_phases(rows[iteration >= 0])
    candidates = [i for i, phase in phases.items() if phase not in NON_STEADY_PHASES]
    return sorted(candidates or phases)


def select_iterations(
    rows: pd.DataFrame, span_iterations: int | None, iterations: str | Sequence[int] = "steady"
) -> list[int]:
    """Iteration numbers to export.

    `iterations="steady"` keeps the steady iterations (`steady_iterations`), then the LAST
    `span_iterations` of them: the first steady iterations can still carry one-time work
    (oneDNN Graph keeps re-partitioning for two iterations), the last ones are settled.
    `"all"` keeps every iteration (and rows outside any iteration, as iteration -1).
    A list selects those iteration numbers. A trace without iterations is one iteration, -1.
    """
    present = np.unique(rows["iteration"].to_numpy()).tolist()
    if not any(i >= 0 for i in present):
        return [-1] if present else []
    if isinstance(iterations, str):
        if iterations == "all":
            chosen = present
        elif iterations == "steady":
            chosen = steady_iterations(rows)
        else:
            raise ValueError(
                f"iterations must be 'steady', 'all' or a list of ints, not {iterations!r}"
            )
    else:
        wanted = {int(i) for i in iterations}
        chosen = [i for i in present if i in wanted]
    if span_iterations is not None and span_iterations > 0:
        chosen = chosen[-span_iterations:]
    return chosen


@dataclass(frozen=True)
class ViewerFit:
    """How large an export of some iterations would be, counted before any span is built."""

    iterations: list[int]
    spans: int  # primitives, layer runs, iterations and the run
    bytes: int  # estimated size of a Chrome trace-event file

    @property
    def megabytes(self) -> float:
        """`bytes` in MB."""
        return self.bytes / 1e6


def estimate(rows: pd.DataFrame, chosen: Sequence[int]) -> ViewerFit:
    """The spans an export of `chosen` iterations of these span rows would hold: one per row,
    one per run of consecutive rows of one layer, one per iteration and the run."""
    iteration = rows["iteration"].to_numpy()
    keep = np.isin(iteration, list(chosen)) if list(chosen) != [-1] else np.ones(len(rows), bool)
    layer, names = coded(rows["layer"])
    layer, iteration = layer[keep], iteration[keep]
    starts = np.r_[True, (layer[1:] != layer[:-1]) | (iteration[1:] != iteration[:-1])]
    labelled = (names != "")[layer] if len(names) else np.zeros(len(layer), bool)
    spans = int(keep.sum()) + int((starts & labelled).sum()) + max(len(chosen), 1) + 1
    return ViewerFit(list(chosen), spans, spans * CHROME_BYTES_PER_SPAN)
