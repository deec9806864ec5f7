"""Verbose logs with more measured iterations, built from a corpus log's real lines.

The corpus runs measured 3 iterations; the check needs at least 5 per run to judge
timing. These logs keep the real banner, the real warm-up and the real measured lines,
and repeat the measured iterations in turn (1, 2, 3, 1, 2, ...), so every exec time in
them was measured. `edit` changes lines (drop a fusion, slow a kernel down).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from support.corpus import CORPUS

_TIME = re.compile(r",([0-9.]+)$")


def replicated_log(
    name: str,
    iterations: int,
    target: Path,
    edit: Callable[[str], str] | None = None,
    start: int = 0,
) -> Path:
    """Write banner + warm-up + `iterations` measured iterations of corpus log `name`."""
    lines = (CORPUS / f"{name}.log").read_text().splitlines()
    truth = json.loads((CORPUS / f"{name}.truth.json").read_text())
    spans = {it["iter"]: (it["first_line"], it["last_line"]) for it in truth["iterations"]}
    first_run_line = spans[0][0]
    banner = [line for line in lines[:first_run_line] if line.startswith("onednn_verbose,v1,info")]
    measured = sorted(i for i in spans if i > 0)
    out = banner + lines[spans[0][0] : spans[0][1] + 1]
    for k in range(iterations):
        first, last = spans[measured[(start + k) % len(measured)]]
        out += lines[first : last + 1]
    if edit is not None:
        out = [edit(line) for line in out]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(out) + "\n")
    return target


def slower(factor: float) -> Callable[[str], str]:
    """An edit multiplying every exec time by `factor`."""
    def edit(line: str) -> str:
        if ",exec," not in line:
            return line
        return _TIME.sub(lambda m: f",{float(m.group(1)) * factor:.6f}", line)

    return edit


def without_post_op(post_op: str) -> Callable[[str], str]:
    """An edit removing a post-op from every line (the fusion is lost)."""
    def edit(line: str) -> str:
        return line.replace(f" attr-post-ops:{post_op}", "")

    return edit
