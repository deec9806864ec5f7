"""What `parse` and `trace` print at the terminal: the trace summary, drawn with rich.

Presentation only: the numbers come from `Trace.summary()` and `Trace.top()`. Every text
that comes from a log or a stored trace goes through `dnnprof.display` (markup escaped,
control and bidi characters made visible) before rich or the terminal sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dnnprof.cli.layer_tables import print_layer_tables, slowest_primitives
from dnnprof.display import markup_text, safe_text

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.metadata import RunConditions
    from dnnprof.trace import Trace

UNPARSED_SAMPLES_SHOWN = 5
VERDICT_STYLES = {"quiet": "bold green", "busy": "bold yellow", "unreliable": "bold red",
                  "unknown": "dim"}
RECONSTRUCTION_MODES = {
    "markers": "from dnnprof markers",
    "align": "aligned with layer table {table}",
    "heuristic": "grouped heuristically (no markers, no layer table)",
}


class Terminal(Console):
    """A rich Console that leaves a closed pipe (`dnnprof parse x.log | head`) to `main`.

    rich itself exits with status 1 there, which `dnnprof check` uses for "regression";
    `main` ends the command with status 0 instead.
    """

    def on_broken_pipe(self) -> None:
        """Stop printing and let the BrokenPipeError reach `main`."""
        self.quiet = True
        raise BrokenPipeError


def print_trace_summary(trace: Trace, top: int = 10, console: Console | None = None) -> None:
    """Print versions, the run's verdict, time per kind, the slowest primitives and layers."""
    console = console or Terminal()
    summary = trace.summary()
    steady = summary["steady"]
    scope = "all exec lines"
    if steady:
        iterations = steady["iterations"]
        scope = (f"steady state: iterations {iterations[0]}-{iterations[-1]}" if iterations
                 else "steady state")
    _print_header(summary, console)
    conditions = trace.metadata.run_conditions
    print_verdict(conditions, console)
    console.print(_kinds_table((steady or summary)["kinds"], scope))
    console.print(slowest_primitives(trace, top, scope, console.width))
    print_layer_tables(trace, console, top, scope)
    if steady and steady["per_iteration_ms"] is not None:
        console.print(f"oneDNN time per steady iteration: {steady['per_iteration_ms']:.3f} ms "
                      f"({conditions.verdict} run)", highlight=False)
    types = markup_text(", ".join(f"{k}: {v}" for k, v in summary["data_types"].items()))
    console.print(
        f"reorders: {(steady or summary)['reorder_share']:.1%} of oneDNN time ({scope}); "
        f"primitives with post-ops: {summary['with_post_ops']}; source data types: {types}",
        highlight=False,
    )
    if summary["timeline"] == "synthetic":
        console.print("timeline: no oneDNN timestamps in the log; start times are synthetic")
    if summary["unknown_durations"]:
        console.print(f"[yellow]unknown durations:[/] {summary['unknown_durations']} exec/create "
                      "lines (left out of every sum; see the warnings)", highlight=False)
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/] {markup_text(warning)}", highlight=False)
    if summary["unparsed"]:
        for sample in trace.metadata.unparsed_samples[:UNPARSED_SAMPLES_SHOWN]:
            line, reason = _sample(sample)
            console.print(f"[red]unparsed[/] line {line}: {reason}", highlight=False)


def _sample(sample: Any) -> tuple[str, str]:
    """(line, reason) of an unparsed sample, whatever a stored trace holds there."""
    if not isinstance(sample, dict):
        return "?", markup_text(sample)
    return markup_text(sample.get("line", "?")), markup_text(sample.get("reason", ""))


def _print_header(summary: dict[str, Any], console: Console) -> None:
    threads = summary["threads"] if summary["threads"] is not None else "?"
    text = {key: markup_text(summary[key] or "?")
            for key in ("source", "onednn_version", "dialect", "isa", "runtime")}
    console.print(
        f"[bold]{text['source']}[/]  oneDNN {text['onednn_version']} "
        f"({text['dialect']}), ISA: {text['isa']}, "
        f"runtime {text['runtime']} x{markup_text(threads)} threads",
        markup=True,
        highlight=False,
    )
    console.print(
        f"lines {summary['lines']}: exec {summary['exec']}, create {summary['create']}, "
        f"graph {summary['graph']}, messages {summary['messages']}, info {summary['info']}, "
        f"markers {summary['markers']}, foreign {summary['foreign']}, "
        f"unparsed {summary['unparsed']}",
        highlight=False,
    )


def _kinds_table(kinds: dict[str, dict[str, Any]], scope: str) -> Table:
    title = f"Time by primitive kind ({scope})"
    table = Table(title=title, title_justify="left", min_width=len(title))  # title unwrapped
    for column in ("kind", "calls", "total ms", "share", "mean ms"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, row in kinds.items():
        mean = "-" if row["mean_ms"] is None else f"{row['mean_ms']:.4f}"  # no known duration
        table.add_row(markup_text(kind), str(row["calls"]), f"{row['total_ms']:.3f}",
                      f"{row['share']:.1%}", mean)
    return table


def print_verdict(conditions: RunConditions, console: Console) -> None:
    """The run's verdict (quiet, busy, unreliable, unknown) and its reasons, in one paragraph."""
    line = Text("run conditions: ", style="bold")
    line.append(safe_text(conditions.verdict).upper(),
                style=VERDICT_STYLES.get(conditions.verdict, ""))
    if conditions.reasons:
        line.append(" — " + safe_text(conditions.reason))
    console.print(line)


def print_run_facts(trace: Trace, console: Console) -> None:
    """The run's model, variant and framework, its oneDNN coverage and the runner's notes."""
    metadata = trace.metadata
    console.print(
        safe_text(f"model {metadata.model} · variant {metadata.variant} · route {metadata.route} · "
                  f"{metadata.framework} {metadata.framework_version} · batch {metadata.batch}"),
        highlight=False, markup=False,
    )
    if metadata.coverage:
        console.print(
            f"oneDNN coverage: {metadata.coverage['median_share']:.0%} of each measured "
            "iteration's wall time is spent inside oneDNN primitives (the rest runs in the "
            "framework's own kernels)",
            highlight=False,
        )
    for note in metadata.notes:
        console.print(f"note: {safe_text(note)}", highlight=False, markup=False)


def describe_reconstruction(trace: Trace) -> list[str]:
    """A few lines saying how layers and iterations were found, and any warnings."""
    reconstruction = trace.metadata.reconstruction
    if reconstruction is None or not reconstruction.mode:
        return []
    iterations = reconstruction.iterations
    table = reconstruction.layer_table.get("source") or ""
    how = RECONSTRUCTION_MODES[reconstruction.mode].format(table=table)
    if reconstruction.score is not None:
        how += f", score {reconstruction.score:.2f}"
    if reconstruction.coverage is not None:
        how += f", {reconstruction.coverage:.0%} of steady exec lines attributed"
    measured = len(iterations.get("measure", []))
    counted = (f"{len(iterations.get('warmup', []))} warm-up + {measured} measured"
               if measured else "one pass, no steady state (every exec line is summed)")
    lines = [f"layers: {how}", f"iterations: {counted} ({iterations.get('source')})"]
    lines += [f"warning: {warning}" for warning in reconstruction.warnings]
    return [safe_text(line) for line in lines]  # layer names and table paths come from files
