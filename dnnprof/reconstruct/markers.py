"""dnnprof's own `#DNNPROF` marker rows: module nesting, iterations, phases and metadata.

Marker syntax (printed by the workload; the parser keeps the fields after the event, minus
the epoch-ms time, in `message`)::

    meta,<key>,<json>        phase,<name>        begin|end,<module>,<type>
    iter_begin,<index>,<warmup|measure>          iter_end,<index>,<warmup|measure>,<wall_ms>
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.reconstruct.context import text


@dataclass
class MarkerInfo:
    """What the markers say, per events-frame row (positions, not line numbers)."""

    meta: dict[str, Any] = field(default_factory=dict)
    has_modules: bool = False
    has_iterations: bool = False
    module_code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # -1: none
    modules: list[tuple[str, str]] = field(default_factory=list)  # code -> (name, type)
    iteration: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    iterations: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_markers(events: pd.DataFrame) -> MarkerInfo:
    """Walk the marker rows once and spread their state over the rows between them."""
    n = len(events)
    info = MarkerInfo(
        module_code=np.full(n, -1, np.int32),
        iteration=np.full(n, -1, np.int32),
        phase=np.full(n, "", dtype=object),
    )
    is_marker = (events["op"] == "marker").to_numpy()
    positions = np.flatnonzero(is_marker)
    if not len(positions):
        return info
    kinds = text(events["kind"].iloc[positions])
    messages = text(events["message"].iloc[positions])
    lines = events["line"].to_numpy()[positions]
    codes: dict[tuple[str, str], int] = {}
    code_names: list[str] = []
    stack: list[int] = []
    iteration, iter_kind, phase = -1, "", ""
    open_iter: dict[str, Any] | None = None

    def state() -> tuple[int, int, str]:
        return (stack[-1] if stack else -1), iteration, (iter_kind if iteration >= 0 else phase)

    bounds = list(positions) + [n]
    for k, pos in enumerate(positions):
        kind, fields, line = kinds[k], messages[k].split(","), int(lines[k])
        before = state()
        if kind == "begin" and fields and fields[0]:
            key = (fields[0], fields[1] if len(fields) > 1 else "")
            code = codes.get(key)
            if code is None:
                code = codes[key] = len(codes)
                code_names.append(key[0])
            stack.append(code)
            info.has_modules = True
        elif kind == "end" and fields and fields[0]:
            wanted = [c for c in range(len(stack)) if code_names[stack[c]] == fields[0]]
            if not wanted:
                info.problems.append(f"line {line}: end of {fields[0]!r} that was not open")
            else:
                if wanted[-1] != len(stack) - 1:
                    info.problems.append(f"line {line}: end of {fields[0]!r} closes inner modules too")
                del stack[wanted[-1]:]
        elif kind == "iter_begin":
            if stack:
                info.problems.append(f"line {line}: iteration begins inside an open module")
                stack.clear()
            iteration = _int(fields[0] if fields else "", len(info.iterations))
            iter_kind = fields[1] if len(fields) > 1 and fields[1] else "measure"
            open_iter = {"iteration": iteration, "phase": iter_kind, "first_row": int(pos),
                         "last_row": int(pos), "wall_ms": None}
            info.iterations.append(open_iter)
            info.has_iterations = True
        elif kind == "iter_end":
            if open_iter is not None:
                open_iter["last_row"] = int(pos)
                if len(fields) > 2:
                    open_iter["wall_ms"] = _float(fields[2])
            if stack:
                info.problems.append(f"line {line}: iteration ends with modules still open")
                stack.clear()
            iteration, iter_kind, open_iter = -1, "", None
        elif kind == "phase" and fields:
            phase = fields[0]
        elif kind == "meta" and fields and fields[0]:
            value = ",".join(fields[1:])
            try:
                info.meta[fields[0]] = json.loads(value)
            except json.JSONDecodeError:
                info.meta[fields[0]] = value
        after = state()
        row_state = before if kind in ("end", "iter_end") else after
        info.module_code[pos], info.iteration[pos], info.phase[pos] = row_state
        nxt = bounds[k + 1]
        if nxt > pos + 1:
            info.module_code[pos + 1 : nxt] = after[0]
            info.iteration[pos + 1 : nxt] = after[1]
            info.phase[pos + 1 : nxt] = after[2]
    # rows before the first marker keep "no state"
    info.modules = [key for key, _ in sorted(codes.items(), key=lambda item: item[1])]
    return info


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
