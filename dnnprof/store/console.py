"""The store at the terminal: `store ls` and `history` tables, drawn with rich."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dnnprof.store.changes import REGRESSIONS
from dnnprof.store.history import ChangePoint, History, Series

DETAILS_SHOWN = 6  # lines per change point; --json and the HTML page have them all
_CONDITION_STYLE = {"quiet": "green", "busy": "yellow", "unreliable": "red", "unknown": "dim"}


def print_runs(runs: pd.DataFrame, location: str, console: Console) -> None:
    """One row per model, variant and runner class: how many runs, from when to when."""
    table = Table(title=f"Runs in {escape(location)}", title_justify="left")
    for column in ("model", "variant", "runner class", "runs", "first", "last", "unreliable",
                   "with events"):
        table.add_column(column, justify="right" if column in ("runs", "unreliable",
                                                               "with events") else "left")
    for row in runs.itertuples(index=False):
        table.add_row(escape(row.model), escape(row.variant), escape(row.runner),
                      str(row.runs), _when(row.first_run), _when(row.last_run),
                      str(row.unreliable), str(row.with_events))
    console.print(table)


def print_history(history: History, console: Console, last: int = 10) -> None:
    """Per series: a headline, the change points, then the last runs."""
    console.print(f"[bold]{escape(history.model)}[/] in {escape(history.store)} "
                  f"({history.engine})", highlight=False)
    for series in history.series:
        _print_series(series, console, last)


def _print_series(series: Series, console: Console, last: int) -> None:
    runs = series.runs
    latest = runs.iloc[-1]
    console.print(
        f"\n[bold]{escape(series.variant)}[/] on runner class [bold]{escape(series.runner)}"
        f"[/]: {len(runs)} runs, {_when(runs['run_time'].iloc[0])} .. "
        f"{_when(latest['run_time'])}; latest {latest['median_ms']:.3f} ms per iteration",
        highlight=False,
    )
    if series.changes:
        table = Table(title="Change points", title_justify="left")
        for column in ("run", "run id", "when", "commit", "change", "what"):
            table.add_column(column, justify="right" if column == "run" else "left")
        for change in series.changes:
            table.add_row(f"#{change.position}", escape(change.run_id), _when(change.run_time),
                          escape(change.git_commit[:12]), _kind_cell(change),
                          _details_cell(change))
        console.print(table)
    else:
        console.print("no timing step and no structural change", style="green")
    table = Table(title=f"Last {min(last, len(runs))} runs", title_justify="left")
    for column in ("run", "run id", "when", "commit", "conditions", "ms per iteration"):
        table.add_column(column, justify="right" if column in ("run", "ms per iteration")
                         else "left")
    for row in runs.tail(last).itertuples(index=False):
        style = _CONDITION_STYLE.get(row.conditions, "")
        table.add_row(f"#{row.position}", escape(row.run_id), _when(row.run_time),
                      escape(row.git_commit[:12]), f"[{style}]{escape(row.conditions)}[/]"
                      if style else escape(row.conditions), f"{row.median_ms:.3f}")
    console.print(table)
    for note in series.notes:
        console.print(f"note: {escape(note)}", style="dim", highlight=False)


def _kind_cell(change: ChangePoint) -> str:
    if change.kind == "timing":
        slower = "slower" in change.codes
        return "[bold red]timing step[/]" if slower else "[green]timing step[/]"
    bad = any(code in REGRESSIONS for code in change.codes)
    return "[bold red]structure[/]" if bad else "[cyan]structure[/]"


def _details_cell(change: ChangePoint) -> str:
    lines = [escape(d) for d in change.details[:DETAILS_SHOWN]]
    if len(change.details) > DETAILS_SHOWN:
        lines.append(f"... {len(change.details) - DETAILS_SHOWN} more (--json, -o PAGE)")
    return "\n".join(lines)


def _when(stamp: pd.Timestamp) -> str:
    return f"{stamp:%Y-%m-%d %H:%M}"
