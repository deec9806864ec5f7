"""What a run's trace shows: the share of wall time inside oneDNN, and the variant's evidence.

The runner calls both after reconstruction; `check_evidence` turns a run that did not
show what was asked (no int8 primitive in an int8 run) into exit status 1.
"""

from __future__ import annotations

from typing import Any

from dnnprof.trace import Trace
from dnnprof.vocabulary import INT8_TYPES


def coverage(trace: Trace) -> dict[str, Any] | None:
    """Share of each measured iteration's wall time spent inside oneDNN primitives."""
    wall_ms = trace.metadata.wall_ms
    exec_rows = trace.exec_events
    if not wall_ms or (exec_rows["iteration"] < 0).all():
        return None
    per_iteration = (
        exec_rows[exec_rows["iteration"] >= 0].groupby("iteration")["duration_ms"].sum()
    )
    rows = []
    for iteration, onednn_ms in per_iteration.items():
        if 0 <= iteration < len(wall_ms) and wall_ms[iteration]:
            rows.append(
                {"iteration": int(iteration), "onednn_ms": float(onednn_ms),
                 "wall_ms": float(wall_ms[iteration]),
                 "share": float(onednn_ms / wall_ms[iteration])}
            )  # fmt: skip
    # the steady iterations by their phase (with --repeat, every run has its warm-ups)
    measured = set(exec_rows.loc[Trace.steady_mask(exec_rows), "iteration"].tolist())
    steady = [r["share"] for r in rows if r["iteration"] in measured] or [r["share"] for r in rows]
    if not steady:
        return None
    steady.sort()
    return {"per_iteration": rows, "median_share": steady[len(steady) // 2]}


def check_evidence(trace: Trace, variants: list[str], wrapped_command: bool) -> list[str]:
    """What the log must show for the variants asked for; each miss is one sentence."""
    problems: list[str] = []
    asked = set(variants)
    if "bf16" in asked and trace.metadata.bf16_supported is False:
        problems.append(
            "BF16 was asked for, but this CPU has no oneDNN bf16 support (it needs AVX512BW/VL/DQ "
            "or AVX-NE-CONVERT): ATen ran bf16 itself, so there is nothing of oneDNN to profile"
        )
        return problems
    if trace.exec_events.empty:
        problems.append(
            "oneDNN executed nothing: no primitive exec line in the log "
            "(the framework ran every op itself, or verbose output was not enabled)"
        )
        return problems
    if wrapped_command:  # `dnnprof trace -- CMD`: no variant was asked for
        return problems
    steady = trace.steady()
    dtypes = set(steady["src_dt"].astype(str)) | set(steady["wei_dt"].astype(str))
    if "int8" in asked and not dtypes & INT8_TYPES:
        problems.append(
            "INT8 was asked for, but no u8/s8 primitive ran in the measured iterations: "
            "the model ran in floating point"
        )
    if "bf16" in asked and "bf16" not in dtypes:
        problems.append(
            "BF16 was asked for, but no bf16 primitive ran (this CPU may lack oneDNN bf16 "
            "support, so ATen ran bf16 itself)"
        )
    if "fused" in asked and not (steady["post_ops"].astype(str) != "").any():
        problems.append("fusion was asked for, but no primitive carries post-ops")
    return problems
