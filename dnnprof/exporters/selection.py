"""Which rows and which iterations an export covers.

Steady state is the Trace's rule (`Trace.steady_mask`: an iteration whose phase is one of
vocabulary.STEADY_PHASES), so an exporter and `Trace.by_kind()` agree on what is steady.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dnnprof.trace import Trace
from dnnprof.vocabulary import NON_STEADY_PHASES

# APIs whose exec rows become primitive spans (graph partitions included: in a trace viewer
# the partition is where the fusion shows).
SPAN_APIS = ("primitive", "ukernel", "graph")


def span_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The rows that become primitive spans: timed exec lines of every API but markers."""
    api = events["api"].astype(str)
    return events[(events["op"].astype(str) == "exec") & api.isin(SPAN_APIS)]


def iteration_phases(rows: pd.DataFrame) -> dict[int, str]:
    """The phase of each iteration: the first non-empty phase among its rows, else ""."""
    frame = pd.DataFrame(
        {"iteration": rows["iteration"].to_numpy(), "phase": rows["phase"].astype(str).to_numpy()}
    )
    phases = dict.fromkeys((int(i) for i in pd.unique(frame["iteration"])), "")
    named = frame[frame["phase"] != ""].drop_duplicates("iteration")
    phases.update(zip(named["iteration"].astype(int), named["phase"], strict=True))
    return phases


def steady_iterations(rows: pd.DataFrame) -> list[int]:
    """Iterations in steady state by the Trace's rule. Without any, every iteration that is
    not warm-up, calibration or build; when that is none either, every iteration (better
    some spans than none)."""
    numbered = rows[rows["iteration"] >= 0]
    steady = numbered.loc[Trace.steady_mask(numbered), "iteration"]
    if not steady.empty:
        return sorted(int(i) for i in pd.unique(steady))
    phases = iteration_phases(numbered)
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
    present = sorted(int(i) for i in pd.unique(rows["iteration"]))
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
