"""dnnprof's own `#DNNPROF` marker rows: module nesting, iterations, phases and metadata.

The marker format (and its decoding) lives in `dnnprof.markers`; this module walks a
Trace's marker rows in log order and spreads what they say over the rows between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.markers import BEGIN, END, ITER_BEGIN, ITER_END, META, PHASE, Marker
from dnnprof.reconstruct.columns import Labels, text
from dnnprof.vocabulary import MEASURE


@dataclass
class MarkedIteration:
    """One iteration between its iter_begin and iter_end markers (events-frame positions)."""

    iteration: int
    phase: str
    first_row: int
    last_row: int  # inclusive
    wall_ms: float | None = None  # Python wall time the iter_end marker recorded


@dataclass
class MarkerInfo:
    """What the markers say, per events-frame row (positions, not line numbers); a log
    without marker rows has no per-row arrays (length 0)."""

    meta_values: dict[str, Any] = field(default_factory=dict)  # meta marker key -> value
    has_modules: bool = False
    has_iterations: bool = False
    module_code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # -1: none
    modules: list[tuple[str, str]] = field(default_factory=list)  # code -> (name, type)
    iteration: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    phase: Labels = field(default_factory=lambda: Labels.empty(0))
    iterations: list[MarkedIteration] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def layer_table(self) -> list[Any] | None:
        """The layer table a `meta,layer_table` marker carried, if any."""
        table = self.meta_values.get("layer_table")
        return table if isinstance(table, list) else None


def read_markers(events: pd.DataFrame) -> MarkerInfo:
    """Walk the marker rows once and spread their state over the rows between them."""
    n = len(events)
    positions = np.flatnonzero((events["op"] == "marker").to_numpy())
    if not len(positions):
        return MarkerInfo()  # no per-row state to spread: no per-row arrays either
    info = MarkerInfo(
        module_code=np.full(n, -1, np.int32),
        iteration=np.full(n, -1, np.int32),
        phase=Labels.empty(n),
    )
    kinds = text(events["kind"].iloc[positions])
    messages = text(events["message"].iloc[positions])
    times = events["ts_ms"].to_numpy(dtype=float)[positions]
    lines = events["line"].to_numpy()[positions]
    walk = _Walk(info)
    bounds = [*positions.tolist(), n]
    for k, pos in enumerate(bounds[:-1]):
        marker = Marker.from_row(kinds[k], messages[k], None if np.isnan(times[k]) else times[k])
        before = walk.state()
        walk.apply(marker, pos, int(lines[k]))
        after = walk.state()
        # an end marker still belongs to what it closes
        row_state = before if marker.event in (END, ITER_END) else after
        info.module_code[pos], info.iteration[pos] = row_state[:2]
        info.phase.codes[pos] = info.phase.code(row_state[2])
        following = slice(pos + 1, bounds[k + 1])
        info.module_code[following], info.iteration[following] = after[:2]
        info.phase.codes[following] = info.phase.code(after[2])
    # rows before the first marker keep "no state"
    info.modules = [key for key, _ in sorted(walk.codes.items(), key=lambda item: item[1])]
    return info


class _Walk:
    """The marker state in log order: open modules, the open iteration, the last phase."""

    def __init__(self, info: MarkerInfo) -> None:
        self.info = info
        self.codes: dict[tuple[str, str], int] = {}  # (module name, type) -> code
        self.code_names: list[str] = []
        self.stack: list[int] = []
        self.iteration, self.iter_phase, self.phase = -1, "", ""
        self.open_iter: MarkedIteration | None = None

    def state(self) -> tuple[int, int, str]:
        """(innermost module code, iteration, phase) of a row at this point."""
        phase = self.iter_phase if self.iteration >= 0 else self.phase
        return (self.stack[-1] if self.stack else -1), self.iteration, phase

    def apply(self, marker: Marker, pos: int, line: int) -> None:
        """Update the state with one marker at events-frame position `pos`."""
        info, name = self.info, marker.field(0)
        if marker.event == BEGIN and name:
            key = (name, marker.field(1))
            if key not in self.codes:
                self.codes[key] = len(self.codes)
                self.code_names.append(name)
            self.stack.append(self.codes[key])
            info.has_modules = True
        elif marker.event == END and name:
            self._close(name, line)
        elif marker.event == ITER_BEGIN:
            self._clear_modules(f"line {line}: iteration begins inside an open module")
            self.iteration = _int(name, len(info.iterations))
            self.iter_phase = marker.field(1, MEASURE)
            self.open_iter = MarkedIteration(self.iteration, self.iter_phase, pos, pos)
            info.iterations.append(self.open_iter)
            info.has_iterations = True
        elif marker.event == ITER_END:
            if self.open_iter is not None:
                self.open_iter.last_row = pos
                self.open_iter.wall_ms = _float(marker.field(2))
            self._clear_modules(f"line {line}: iteration ends with modules still open")
            self.iteration, self.iter_phase, self.open_iter = -1, "", None
        elif marker.event == PHASE:
            self.phase = name
        elif marker.event == META and name:
            key, value = marker.meta
            info.meta_values[key] = value

    def _close(self, name: str, line: int) -> None:
        open_at = [c for c in range(len(self.stack)) if self.code_names[self.stack[c]] == name]
        if not open_at:
            self.info.problems.append(f"line {line}: end of {name!r} that was not open")
            return
        if open_at[-1] != len(self.stack) - 1:
            self.info.problems.append(f"line {line}: end of {name!r} closes inner modules too")
        del self.stack[open_at[-1]:]

    def _clear_modules(self, problem: str) -> None:
        if self.stack:
            self.info.problems.append(problem)
            self.stack.clear()


def _int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
