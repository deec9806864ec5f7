"""Real log lines, mutated the ways logs get damaged: the parser never raises, every line is
accounted for, and what it gives back is safe to print and valid JSON (issue 12)."""

from __future__ import annotations

import io
import re
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from dnnprof.cli.console import print_trace_summary
from dnnprof.display import json_text
from dnnprof.parsers.stream import parse_to_trace
from dnnprof.trace import MAX_DURATION_MS
from support.corpus import CORPUS_LOGS, DATA

COUNTED = ("exec", "create", "graph", "messages", "info", "markers", "foreign", "unparsed", "blank")
NUMBER = re.compile(r"\d+(\.\d+)?")
ODD_NUMBERS = ("nan", "inf", "-inf", "1e309", "-1.5", "1_000", "\u0661\u0662", "9" * 400,
               "0.141846.", "", "1e-320", "+2", " 3 ", "0x10", "\uff11")
ODD_TEXT = ("\x1b[31m", "\x1b]0;t\x07", "[/]", "[/bold]", "\u202e", "\u2066", "\x00", "\ufffd",
            "\r", "\t", "é", "\U0001f600", ",", ",,", ":", "{", "}", "\\")


@cache
def real_lines() -> tuple[str, ...]:
    """Distinct lines of every corpus log and test log, in a stable order."""
    lines: dict[str, None] = {}
    for path in [*CORPUS_LOGS, *sorted(DATA.glob("*.log")), *sorted((DATA / "pasted").glob("*.log"))]:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            lines.setdefault(line)
    return tuple(lines)


def _mutate(line: str, how: str, data: st.DataObject) -> str:
    fields = line.split(",")
    at = data.draw(st.integers(0, max(len(line) - 1, 0)))
    field = data.draw(st.integers(0, len(fields) - 1))
    if how == "flip":
        char = data.draw(st.characters(codec="utf-8") | st.sampled_from(ODD_TEXT))
        return line[:at] + char + line[at + 1 :]
    if how == "delete_field":
        return ",".join(fields[:field] + fields[field + 1 :])
    if how == "duplicate_field":
        return ",".join(fields[: field + 1] + fields[field:])
    if how == "swap_fields":
        other = data.draw(st.integers(0, len(fields) - 1))
        fields[field], fields[other] = fields[other], fields[field]
        return ",".join(fields)
    if how == "truncate":
        return line[:at]
    if how == "number":
        numbers = list(NUMBER.finditer(line))
        if not numbers:
            return line
        match = numbers[data.draw(st.integers(0, len(numbers) - 1))]
        return line[: match.start()] + data.draw(st.sampled_from(ODD_NUMBERS)) + line[match.end() :]
    if how == "time":  # the last field, where the time is
        return ",".join(fields[:-1] + [data.draw(st.sampled_from(ODD_NUMBERS))])
    if how == "insert":
        text = data.draw(st.text(max_size=12) | st.sampled_from(ODD_TEXT))
        return line[:at] + text + line[at:]
    return data.draw(st.text(max_size=20)) + line  # "prefix": a logger's, glued output


MUTATIONS = ("flip", "delete_field", "duplicate_field", "swap_fields", "truncate", "number",
             "time", "insert", "prefix", "none")


@st.composite
def damaged_logs(draw: st.DrawFn) -> list[str]:
    pool = real_lines()
    data = draw(st.data())
    lines = []
    for index in draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=24)):
        line = pool[index]
        for how in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
            if how != "none":
                line = _mutate(line, how, data)
        lines.append(line + draw(st.sampled_from(("\n", "\n", "\r\n", ""))))
    return lines


# ~2,000 logs of up to 24 damaged lines (~25,000 lines): about a minute of CPU, most of it
# building the small Traces, so the summary is built for one log in eight
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(damaged_logs(), st.integers(0, 7))
def test_mutated_real_lines_are_all_accounted_for(lines, draw_summary):
    trace = parse_to_trace(lines)
    counts = trace.metadata.counts
    assert counts.lines == len(lines)
    assert sum(getattr(counts, name) for name in COUNTED) == len(lines), counts
    events = trace.events
    assert events["line"].is_unique and events["line"].between(1, len(lines)).all()
    durations = events["duration_ms"].dropna()
    assert ((durations >= 0) & (durations <= MAX_DURATION_MS)).all()
    assert not events["start_ms"].isin([float("inf"), float("-inf")]).any()
    if draw_summary == 0:
        json_text(trace.summary())  # raises on NaN or infinity


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(damaged_logs())
def test_mutated_real_lines_print_without_control_characters(lines):
    buffer = io.StringIO()
    print_trace_summary(parse_to_trace(lines), console=Console(file=buffer, width=160))
    printed = buffer.getvalue()
    assert "\x1b" not in printed and "\u202e" not in printed and "\x00" not in printed
