"""Lines printed differently from their template, recognised by their shape and read anyway.

Logs pasted by users show a few shapes no template describes: exec lines without a time
(DNNL 1.x GPU samples, oneDNN 3.13 `create:start`), times that are not numbers, MKL-DNN
0.x times printed with a decimal comma (`...,9,4747` for 9.4747 ms), graph ops printed
as `name(kind),id,attrs:{..},inputs:{..},outputs:{..}`, 3.3-era graph lines without the
implementation field, and graph partitions printed under the `primitive` component.
Each is looked for only where the time field or the field count says the line does not
fit its template, so a well-formed log never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnnprof.parsers.fields import problem_shape
from dnnprof.parsers.layout import (
    DEFAULT_TEMPLATES,
    GRAPH_OP_TEMPLATE,
    TIME_FIELD,
    FieldLayout,
    fit,
)

NAN = float("nan")
_PROBLEM = "problem_desc"
_BRACED = ("attrs:{", "inputs:{", "outputs:{")


def time_value(text: str) -> float:
    """A time field's value, NaN when it is not a number as oneDNN prints numbers.

    float() also takes `1_000`, other scripts' digits and surrounding blanks; oneDNN prints
    none of them, so such a field is no time (the stream's hot loop applies the same rule).
    """
    try:
        value = float(text)
    except ValueError:
        return NAN
    return NAN if "_" in text or not text.isascii() else value


@dataclass(slots=True)
class Fitted:
    """A line's payload fields named by the template they fit, and how they were read."""

    component: str
    layout: FieldLayout
    fields: list[str]
    by_name: dict[str, str]
    duration: float
    # the memo key is not the line up to its last comma (a time read from two fields, or no time)
    key_is_whole_line: bool = False
    notes: tuple[tuple[str, str], ...] = ()  # (kind, warning): one warning per kind


def fit_line(
    component: str, names: tuple[str, ...], fields: list[str], announced: bool
) -> Fitted:
    """Fit a timed line's payload fields to its template, quirks included; ValueError if none fits."""
    if component == "graph" and any(f.startswith(_BRACED) for f in fields):
        return _graph_op(fields)
    if component == "primitive" and _is_partition(fields):
        graph = DEFAULT_TEMPLATES["graph"]
        fitted = _plain("graph", graph, fields, announced=False)
        fitted.notes += (("partition", "graph partition lines printed under the `primitive` "
                                        "component: read as graph lines"),)
        return fitted
    if component != "graph" and names[-2:] == (_PROBLEM, TIME_FIELD) and len(fields) >= 3:
        merged = _decimal_comma(fields)
        if merged is not None:
            try:
                fitted = _plain(component, names, merged, announced)
            except ValueError:
                pass
            else:
                fitted.key_is_whole_line = True
                fitted.notes += (("comma", (
                    f"times printed with a decimal comma, as in a comma locale (first: "
                    f"{fields[-2]},{fields[-1]} read as {merged[-1]} ms); check the log's "
                    "other numbers")),)
                return fitted
        if time_value(fields[-1]) != time_value(fields[-1]) and problem_shape(fields[-1]):
            try:  # the line ends at its problem descriptor: printed without a time
                layout = fit(component, names[:-1], fields)
            except ValueError:
                pass
            else:
                return Fitted(component, layout, fields, layout.by_name(fields), NAN, True,
                              (("no time", "exec/create lines without a time field: kept as "
                                "events with an unknown duration"),))
    return _plain(component, names, fields, announced)


def _plain(component: str, names: tuple[str, ...], fields: list[str], announced: bool) -> Fitted:
    layout = fit(component, names, fields, announced)
    by_name = layout.by_name(fields)
    time_text = by_name.get(TIME_FIELD, "")
    duration = time_value(time_text)
    notes: tuple[tuple[str, str], ...] = ()
    if duration != duration and time_text.strip().lower() != "nan":
        notes = (("not a number", f"time fields that are not numbers (first: "
                  f"{time_text[:40]!r}): kept as events with an unknown duration"),)
    return Fitted(component, layout, fields, by_name, duration, not layout.time_last, notes)


def _decimal_comma(fields: list[str]) -> list[str] | None:
    """`...,<problem>,9,4747` -> `...,<problem>,9.4747`: one field too many, both integers."""
    whole, fraction = fields[-2], fields[-1]
    if not (whole.isascii() and whole.isdigit() and fraction.isascii() and fraction.isdigit()):
        return None
    if not problem_shape(fields[-3]):
        return None
    return [*fields[:-2], f"{whole}.{fraction}"]


def _is_partition(fields: list[str]) -> bool:
    """A graph partition line (`cpu,100002,sdp,<ops>,<formats>,in0_f32:...`) under `primitive`."""
    return (
        len(fields) > 5
        and fields[1].isascii()
        and fields[1].isdigit()
        and any(f.startswith(("in0_", "out0_")) for f in fields[4:7])
    )


def _graph_op(fields: list[str]) -> Fitted:
    """`engine,name(kind),id,attrs:{..},inputs:{..},outputs:{..},time`: one graph op's line."""
    joined = _join_braces(fields)
    layout = fit("graph", GRAPH_OP_TEMPLATE, joined)
    printed = layout.by_name(joined)
    op_name = printed["op_names"]
    kind = op_name[op_name.find("(") + 1 : -1] if op_name.endswith(")") else op_name
    tensors = _tensors("in", "inputs:", printed["inputs"])
    tensors += _tensors("out", "outputs:", printed["outputs"])
    by_name = {
        "engine": printed["engine"],
        "partition_id": printed["partition_id"],
        "partition_kind": kind,
        "op_names": op_name,
        "logical_tensors": " ".join(tensors),
        "op_attrs": _braced("attrs:", printed["op_attrs"]),
        TIME_FIELD: printed[TIME_FIELD],
    }
    return Fitted("graph", layout, joined, by_name, time_value(printed[TIME_FIELD]))


def _join_braces(fields: list[str]) -> list[str]:
    """Rejoin fields split inside `{...}` (an op's attributes may hold commas)."""
    out: list[str] = []
    depth = 0
    for text in fields:
        if depth > 0:
            out[-1] += "," + text
        else:
            out.append(text)
        depth += text.count("{") - text.count("}")
    return out


def _braced(prefix: str, text: str) -> str:
    return text.removeprefix(prefix).removeprefix("{").removesuffix("}")


def _tensors(role: str, prefix: str, text: str) -> list[str]:
    """`inputs:{f32:102:strided:...}` -> `in0_f32:102:strided:...` (the logical-tensor form)."""
    tensors = [t for t in _braced(prefix, text).split(",") if t]
    return [f"{role}{i}_{tensor}" for i, tensor in enumerate(tensors)]
