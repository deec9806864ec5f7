"""The terminal summary of one parsed log (`dnnprof parse`), drawn with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from dnnprof.trace import Trace


def print_trace_summary(trace: Trace, top: int = 10, console: Console | None = None) -> None:
    """Print versions, line counts, time per primitive kind and the slowest primitives."""
    console = console or Console()
    s = trace.summary()
    threads = s["threads"] if s["threads"] is not None else "?"
    console.print(
        f"[bold]{s['source']}[/]  oneDNN {s['onednn_version'] or '?'} ({s['dialect'] or '?'}), "
        f"ISA: {s['isa'] or '?'}, runtime {s['runtime'] or '?'} x{threads} threads",
        markup=True,
        highlight=False,
    )
    console.print(
        f"lines {s['lines']}: exec {s['exec']}, create {s['create']}, graph {s['graph']}, "
        f"messages {s['messages']}, info {s['info']}, markers {s['markers']}, "
        f"foreign {s['foreign']}, unparsed {s['unparsed']}",
        highlight=False,
    )
    steady = s["steady"]
    scope = "all exec lines"
    if steady:
        its = steady["iterations"]
        scope = f"steady state: iterations {its[0]}-{its[-1]}" if its else "steady state"
    kinds = Table(title=f"Time by primitive kind ({scope})", title_justify="left")
    for column in ("kind", "calls", "total ms", "share", "mean ms"):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, row in (steady or s)["kinds"].items():
        kinds.add_row(
            kind, str(row["calls"]), f"{row['total_ms']:.3f}", f"{row['share']:.1%}",
            f"{row['mean_ms']:.4f}",
        )
    console.print(kinds)
    slow = trace.top(top, steady=True)
    table = Table(title=f"Slowest {len(slow)} primitives ({scope})", title_justify="left")
    for column in ("kind", "impl", "types", "post-ops", "problem", "calls", "total ms", "GFLOP/s"):
        table.add_column(column, overflow="fold", no_wrap=column == "kind")
    for row in slow.itertuples():
        gflops = "" if row.gflops != row.gflops else f"{row.gflops:.1f}"
        table.add_row(
            str(row.kind), str(row.impl), str(row.src_dt), str(row.post_ops), str(row.problem),
            str(row.calls), f"{row.total_ms:.3f}", gflops,
        )
    console.print(table)
    types = ", ".join(f"{k}: {v}" for k, v in s["data_types"].items())
    reorder_share = (steady or s)["reorder_share"]
    if steady and steady["per_iteration_ms"] is not None:
        console.print(
            f"oneDNN time per steady iteration: {steady['per_iteration_ms']:.3f} ms", highlight=False
        )
    console.print(
        f"reorders: {reorder_share:.1%} of oneDNN time ({scope}); "
        f"primitives with post-ops: {s['with_post_ops']}; source data types: {types}",
        highlight=False,
    )
    if s["timeline"] == "synthetic":
        console.print("timeline: no oneDNN timestamps in the log; start times are synthetic")
    for warning in s["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if s["unparsed"]:
        for sample in trace.metadata.get("unparsed_samples", [])[:5]:
            console.print(
                f"[red]unparsed[/] line {sample['line']}: {sample['reason']}", highlight=False
            )
