"""Steady-state iterations of a trace, and which layer (unit) each primitive belongs to.

Uses the reconstructor's `iteration`/`phase`/`layer` columns (running the reconstructor
first on a bare parse). Where there are no trustworthy layer names (none, or the
heuristic mode's positional `conv7`), each primitive is named by a stable identity:
kind, problem descriptor and occurrence index, with reorders attached to the primitive
they feed or come from.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dnnprof.errors import InputError
from dnnprof.reconstruct import reconstruct
from dnnprof.trace import Trace
from dnnprof.views import coded
from dnnprof.vocabulary import NON_STEADY_PHASES

_PLAIN_TAG = re.compile(r"^[a-z]+$")  # abcd, acdb, ab: no blocking letters or digits
# The event columns the check reads (`dnnprof.open(columns=...)` loads only these)
STEADY_COLUMNS = (
    "line", "iteration", "phase", "duration_ms", "kind", "layer", "layer_type", "problem",
    "impl", "isa", "prop", "src_dt", "wei_dt", "dst_dt", "src_fmt", "dst_fmt", "post_ops",
)


class SteadyStateError(InputError, ValueError):
    """A trace without any steady-state primitive execution to compare (exit 2)."""


@dataclass
class Primitive:
    """The structure-relevant fields of one primitive execution."""

    kind: str
    problem: str
    impl: str
    isa: str
    prop: str
    src_dt: str
    wei_dt: str
    dst_dt: str
    post_ops: str


@dataclass
class Unit:
    """One layer in one representative iteration: its primitives and attached reorders."""

    name: str
    labeled: bool
    layer_type: str
    position: int
    primitives: list[Primitive] = field(default_factory=list)  # non-reorder, in order
    reorders: int = 0
    reorder_problem: str = ""

    @property
    def anchor(self) -> tuple[str, str]:
        """(kind, problem) of the first primitive: what aligns units of unlabeled traces."""
        if self.primitives:
            return self.primitives[0].kind, self.primitives[0].problem
        return "reorder", self.reorder_problem

    @property
    def kinds(self) -> Counter[str]:
        """Non-reorder primitive kinds of the unit, counted."""
        return Counter(p.kind for p in self.primitives)


@dataclass
class SteadyState:
    """Steady exec rows (with `iter`, `unit`) plus the units of a representative iteration."""

    rows: pd.DataFrame  # iter, unit, signature and the STEADY_COLUMNS of the events
    units: list[Unit]
    iterations: list[int]
    method: str  # "labels" (stored with the trace) or "reconstructed" (found here)
    notes: list[str]
    trace: Trace  # the trace the rows come from (reconstructed when it was not)
    measured: int = 0  # steady iterations, with those left out for unknown durations

    @property
    def labeled(self) -> bool:
        """True when most units carry a layer name (markers or a layer table)."""
        return bool(self.units) and sum(u.labeled for u in self.units) * 2 > len(self.units)


def steady_state(trace: Trace) -> SteadyState:
    """Select the steady-state iterations and attribute every primitive to a unit."""
    notes: list[str] = []
    method = "labels"
    ex = trace.exec_events
    if ex.empty:
        raise SteadyStateError("the trace has no primitive exec lines: nothing to compare")
    if not (ex["iteration"] >= 0).any():
        # not reconstructed yet (the Python API on a bare parse): find the iterations the
        # same way `dnnprof parse` does, so both paths agree
        trace = reconstruct(trace)
        method = "reconstructed"
        ex = trace.exec_events
    # only what the check reads: every copy of the rows is most of a long trace
    ex = ex[[name for name in STEADY_COLUMNS if name in ex]]
    if (ex["iteration"] >= 0).any():
        rows = _labelled_iterations(ex, notes)
    else:
        notes.append("no repeating iteration found: the whole log is one sample")
        rows = ex.assign(iter=0)
    del ex  # the exec rows' copy, once the steady ones are selected from it
    if rows.empty:
        raise SteadyStateError("the trace has no steady-state iterations to compare")
    measured = int(rows["iter"].nunique())
    rows = _known_iterations(rows, notes)
    trust_layers = trace.metadata.reconstruction_mode != "heuristic"
    if not trust_layers and (rows["layer"] != "").any():
        notes.append(
            "layer names come from the heuristic grouping (numbered in order, so they shift "
            "when a layer appears or disappears): layers are identified by kind and shape "
            "instead; a model layer table (--model) or module markers give stable names"
        )
    rows["unit"] = _attribute_units(rows, trust_layers)
    rows["signature"] = _signatures(rows)
    iterations = sorted(int(i) for i in rows["iter"].unique())
    units = _representative_units(rows, notes, trust_layers)
    return SteadyState(rows, units, iterations, method, notes, trace, measured)


# -------------------------------------------------------------- iterations --

def _labelled_iterations(ex: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The steady iterations (Trace.steady_mask); without a steady phase label, every
    iteration not labelled as warm-up, build or the like."""
    numbered = (ex["iteration"] >= 0).to_numpy()
    keep = numbered & Trace.steady_mask(ex)
    if not keep.any():
        # Trace.steady() would fall back to every exec row, outside iterations too; a check
        # compares iterations, so it keeps those the labels do not rule out
        phase = ex["phase"]
        keep = numbered & ~phase.isin(NON_STEADY_PHASES).to_numpy()
        if (phase[numbered] == "").all():
            notes.append("iterations are labelled but no phase is: every iteration is used")
    rows = ex if keep.all() else ex[keep]  # one selection (a copy), none when all are kept
    return rows.assign(iter=rows["iteration"].astype(int))


def _known_iterations(rows: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The iterations whose every duration is known: a sum over one with an unknown duration
    (a line without a usable time) would pass for a faster iteration."""
    unknown = rows["iter"].to_numpy()[rows["duration_ms"].isna().to_numpy()]
    if not len(unknown):
        return rows
    left_out = np.unique(unknown)
    kept = rows[~np.isin(rows["iter"].to_numpy(), left_out)]
    if kept.empty:
        raise SteadyStateError(
            "every steady-state iteration has exec lines of unknown duration (no time, or one "
            "that is not a usable number): nothing to time; see the trace's warnings")
    notes.append(f"{len(left_out)} iteration(s) left out: some of their exec lines have an "
                 "unknown duration")
    return kept


# ----------------------------------------------------------------- units --

def _attribute_units(rows: pd.DataFrame, trust_layers: bool) -> pd.Categorical:
    """Unit name of every row: its layer, or an identity; unlabeled reorders join a neighbour.

    Worked out once per distinct iteration (the inputs' category codes as the key): a long
    run repeats one iteration thousands of times."""
    columns = [coded(rows[name]) for name in ("kind", "layer", "problem", "src_fmt", "dst_fmt")]
    if not trust_layers:
        columns[1] = (np.zeros(len(rows), np.int8), np.array([""], dtype=object))
    iters = rows["iter"].to_numpy()
    codes = np.zeros(len(rows), np.int32)
    index: dict[str, int] = {}
    known: dict[tuple[bytes, ...], np.ndarray] = {}
    boundaries = np.flatnonzero(np.diff(iters) != 0) + 1
    for lo, hi in zip(np.r_[0, boundaries], np.r_[boundaries, len(rows)], strict=True):
        key = tuple(values[lo:hi].tobytes() for values, _ in columns)
        block = known.get(key)
        if block is None:
            names = _block_units(*(texts[values[lo:hi]] for values, texts in columns))
            block = known[key] = np.array([index.setdefault(n, len(index)) for n in names],
                                          dtype=np.int32)
        codes[lo:hi] = block
    return pd.Categorical.from_codes(codes, categories=list(index))


def _block_units(kinds: np.ndarray, layers: np.ndarray, problems: np.ndarray,
                 src_fmt: np.ndarray, dst_fmt: np.ndarray) -> list[str]:
    """The unit names of one iteration's rows (see `_attribute_units`)."""
    names: list[str] = [""] * len(kinds)
    occurrences: Counter[tuple[str, str]] = Counter()
    pending: list[int] = []  # unlabeled reorders waiting for the next primitive
    previous = ""
    for i in range(len(kinds)):
        if kinds[i] == "reorder" and not layers[i]:
            if previous and _is_output_reorder(src_fmt[i], dst_fmt[i]):
                names[i] = previous
            else:
                pending.append(i)
            continue
        if layers[i]:
            name = layers[i]
        else:
            key = (kinds[i], problems[i])
            name = f"{kinds[i]}[{problems[i]}]#{occurrences[key]}"
            occurrences[key] += 1
        names[i] = name
        for j in pending:
            names[j] = name
        pending.clear()
        previous = name
    for j in pending:
        if previous:
            names[j] = previous
        else:
            key = ("reorder", problems[j])
            names[j] = f"reorder[{problems[j]}]#{occurrences[key]}"
            occurrences[key] += 1
    return names


def _is_output_reorder(src_fmt: str, dst_fmt: str) -> bool:
    """Blocked -> plain: a primitive's result converted back for the framework."""
    return bool(_PLAIN_TAG.match(dst_fmt)) and bool(src_fmt) and not _PLAIN_TAG.match(src_fmt)


def _signatures(rows: pd.DataFrame) -> pd.Categorical:
    """What a primitive computes and how: equal signatures are comparable timings (the text
    made once per distinct combination of the columns' codes)."""
    columns = [coded(rows[name]) for name in
               ("kind", "impl", "prop", "problem", "post_ops", "src_dt", "wei_dt", "dst_dt")]
    combined = np.zeros(len(rows), np.int64)
    for values, texts in columns:
        if len(combined) and combined.max() > 1 << 40:  # keep the mixed radix within int64
            combined = pd.factorize(combined)[0].astype(np.int64)
        combined = combined * max(len(texts), 1) + values
    codes = pd.factorize(combined)[0]
    first = np.unique(codes, return_index=True)[1]
    texts = ["|".join(str(names[values[row]]) for values, names in columns) for row in first]
    return pd.Categorical.from_codes(codes, categories=texts)


def _representative_units(
    rows: pd.DataFrame, notes: list[str], trust_layers: bool
) -> list[Unit]:
    """Units of the most common iteration structure (the last such iteration on ties)."""
    signature, signatures = coded(rows["signature"])
    unit, units = coded(rows["unit"])
    pair = signature.astype(np.int64) * max(len(units), 1) + unit  # (signature, unit) as one int
    iters = rows["iter"].to_numpy()
    order = np.argsort(iters, kind="stable")
    numbers, starts = np.unique(iters[order], return_index=True)
    per_iter = pd.Series([pair[rows_of].tobytes() for rows_of in np.split(order, starts[1:])],
                         index=numbers)
    counts = Counter(per_iter.tolist())
    if len(counts) > 1:
        notes.append(
            f"steady iterations differ in structure ({len(counts)} variants); "
            "structure is compared on the most common one"
        )
    best = max(counts.values())
    chosen = [it for it, sig in per_iter.items() if counts[sig] == best][-1]
    selected = rows[rows["iter"].to_numpy() == chosen]
    units: dict[str, Unit] = {}
    for row in selected.itertuples(index=False):
        name = row.unit
        unit = units.get(name)
        if unit is None:
            labeled = trust_layers and bool(str(row.layer))
            unit = Unit(name, labeled, str(row.layer_type) if labeled else "", len(units))
            units[name] = unit
        if row.kind == "reorder":
            unit.reorders += 1
            unit.reorder_problem = unit.reorder_problem or str(row.problem)
        else:
            unit.primitives.append(Primitive(
                str(row.kind), str(row.problem), str(row.impl), str(row.isa), str(row.prop),
                str(row.src_dt), str(row.wei_dt), str(row.dst_dt), str(row.post_ops),
            ))
    return list(units.values())
