"""One verbose line -> one typed event (the slow path; the stream memoises its results).

The grammar splits the line (`fields.split_line`, `fields.parse_marker`), the template
names its payload fields (`layout.fit`), and each field is decoded by its own start rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from sys import intern
from typing import TypeVar

from dnnprof import markers
from dnnprof.parsers.events import (
    Attributes,
    Descriptor,
    InfoEvent,
    MarkerEvent,
    MessageEvent,
    Problem,
    Unparsed,
)
from dnnprof.parsers.fields import (
    FieldError,
    Header,
    is_engine,
    is_source_location,
    parse_attrs,
    parse_aux,
    parse_impl,
    parse_info,
    parse_logical_tensors,
    parse_marker,
    parse_mds,
    parse_problem,
    split_line,
)
from dnnprof.parsers.flops import descriptor_flops
from dnnprof.parsers.layout import DEFAULT_TEMPLATES, TIME_FIELD
from dnnprof.parsers.quirks import Fitted, fit_line
from dnnprof.vocabulary import KNOWN_KINDS

# the grammar's MARKER terminal, with the dialect each one names
_DIALECT_BY_MARKER = {"mkldnn_verbose": "v0", "dnnl_verbose": "dnnl", "onednn_verbose": "onednn"}
VERBOSE_MARKERS = tuple(_DIALECT_BY_MARKER)
LINE_STARTS = (*VERBOSE_MARKERS, markers.PREFIX)
_MESSAGE_OPS = {"check", "dispatch", "error", "warning", "debuginfo"}

_Decoded = TypeVar("_Decoded")


@dataclass
class LineState:
    """What earlier lines of the same log told us: templates, dialect, warnings."""

    templates: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    announced: set[str] = field(default_factory=set)
    dialect: str = ""
    version_token: str = ""
    info: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unknown_kinds: set[str] = field(default_factory=set)
    unknown_fields: set[str] = field(default_factory=set)  # template fields kept as text
    text_fields: int = 0  # field values the grammar rejected, kept verbatim

    warned: set[str] = field(default_factory=set)  # keys of warnings given once per kind

    def warn(self, message: str, key: str = "") -> None:
        """Record a warning once (once per `key` when given: its first example is told)."""
        if key:
            if key in self.warned:
                return
            self.warned.add(key)
        if message not in self.warnings and len(self.warnings) < 200:
            self.warnings.append(message)


@dataclass(slots=True)
class Classified:
    """A parsed line: a timed descriptor (with its time and timestamp) or another event."""

    descriptor: Descriptor | None = None
    duration_ms: float = float("nan")
    ts_ms: float | None = None
    event: InfoEvent | MessageEvent | MarkerEvent | Unparsed | None = None
    # a descriptor's memo key: the line without its timestamp and its time
    memo_key: str = ""
    # the key is the line (timestamp cut) up to its last comma, as the stream's hot loop cuts it
    time_last: bool = True
    # the text before the timestamp (`onednn_verbose,v1,`), "" when the line has none
    ts_prefix: str = ""


def classify(line_no: int, text: str, state: LineState) -> Classified:
    """Parse one line that starts with a verbose marker or `#DNNPROF` into a typed result."""
    if text.startswith(markers.PREFIX):
        return _marker(line_no, text)
    try:
        header = split_line(text)
    except FieldError as exc:
        return Classified(event=Unparsed(line_no, text, f"not a verbose line: {exc}"))
    _note_dialect(header, state)
    ts = float(header.timestamp) if header.timestamp else None
    if header.operation == "info":
        return Classified(event=_info(line_no, header.component, header.payload, state), ts_ms=ts)
    op, _, sub = header.operation.partition(":")
    if op in _MESSAGE_OPS or sub in _MESSAGE_OPS:
        return Classified(event=_message(line_no, op, sub, header.payload, ts, state))
    try:
        result = _timed(op, sub, header, text, state)
    except (FieldError, ValueError) as exc:
        return Classified(event=Unparsed(line_no, text, str(exc)))
    if ts is not None:
        result.ts_ms = ts
        result.ts_prefix = header.shape.timestamp_prefix(text)
    return result


def _note_dialect(header: Header, state: LineState) -> None:
    dialect = _DIALECT_BY_MARKER[header.marker]
    if header.version:
        if header.version != "v1":
            state.warn(
                f"unknown verbose version token {header.version!r}: parsed as v1 "
                "(the newest known); check the results"
            )
        dialect = "onednn_v1"
        state.version_token = header.version
    if not state.dialect:
        state.dialect = dialect
    elif state.dialect != dialect:
        state.warn(f"log mixes dialects {state.dialect} and {dialect}")


def _marker(line_no: int, text: str) -> Classified:
    try:
        fields = parse_marker(text)
    except FieldError as exc:
        return Classified(event=Unparsed(line_no, text, f"bad #DNNPROF marker: {exc}"))
    if not fields or not fields[0]:
        return Classified(event=Unparsed(line_no, text, "#DNNPROF marker without an event"))
    event = fields[0]
    rest, ts = markers.split_time(event, fields[1:])
    return Classified(event=MarkerEvent(line_no, event, rest, ts), ts_ms=ts)


# a log of concatenated runs repeats its info lines once per run: each is decoded once
_parse_info = lru_cache(maxsize=4096)(parse_info)


def _info(line_no: int, component: str, payload: str, state: LineState) -> InfoEvent:
    topic, values = _parse_info(payload)
    values = dict(values)  # each event its own dict: the memo keeps the first
    if topic == "template":
        names = tuple(n for n in values["fields"].split(",") if n not in ("timestamp", "operation"))
        target = component or "primitive"
        state.templates[target] = names
        state.announced.add(target)
    elif topic == "version":
        state.info.setdefault("onednn_version", values["version"])
        state.info.setdefault("onednn_commit", values["commit"])
        state.info.setdefault("product", values["product"])
    elif topic == "runtime" and values.get("engine") == "cpu":
        state.info.setdefault("runtime", values["runtime"])
        if "threads" in values:
            state.info.setdefault("threads", values["threads"])
    elif topic == "isa" and values.get("engine") == "cpu":
        state.info.setdefault("isa", values["isa"])
    return InfoEvent(line_no, topic, values, payload)


def _message(
    line_no: int, op: str, sub: str, payload: str, ts: float | None, state: LineState
) -> MessageEvent:
    # messages contain commas, so split only at the ends the grammar fixes: the component
    # first, `file:line` last, and the primitive context (the primitive template without
    # its time, starting with an engine) when printed
    kind = sub if sub in _MESSAGE_OPS else op
    stage = op if sub in _MESSAGE_OPS else ""
    parts = payload.split(",")
    component = parts[0]
    source = ""
    if len(parts) > 1 and is_source_location(parts[-1].strip()):
        source = parts.pop().strip()
    body = parts[1:]
    names = tuple(n for n in state.templates["primitive"] if n != TIME_FIELD)
    context: tuple[str, ...] = ()
    problem = ""
    if len(body) > len(names) and is_engine(body[0]):
        context, body = tuple(body[: len(names)]), body[len(names) :]
        problem = context[names.index("problem_desc")] if "problem_desc" in names else ""
    return MessageEvent(
        line_no, kind, stage, component, ",".join(body), source, context, ts, problem
    )


def _decode(
    decoder: Callable[[str], _Decoded], text: str, state: LineState, default: _Decoded
) -> _Decoded:
    # A field the grammar does not know is kept as text, never fatal for the line.
    try:
        return decoder(text)
    except FieldError as exc:
        state.text_fields += 1
        state.warn(f"kept as text: {exc}")
        return default


def _timed(op: str, sub: str, header: Header, text: str, state: LineState) -> Classified:
    """An exec/create/compile line: its descriptor, time (NaN: none or not a number) and memo key."""
    component = header.component or "primitive"
    names = state.templates.get(component) or DEFAULT_TEMPLATES["primitive"]
    fitted = fit_line(component, names, header.payload.split(","), component in state.announced)
    for key, note in fitted.notes:
        state.warn(note, key)
    if fitted.component == "graph":
        descriptor = _graph_descriptor(op, sub, fitted, state)
    else:
        descriptor = _primitive_descriptor(op, sub, component, fitted, state)
    line = header.shape.without_timestamp(text)
    time_last = not fitted.key_is_whole_line
    if time_last:
        key = line.rpartition(",")[0]
    else:
        fields = fitted.layout.without_time(fitted.fields)
        key = line[: len(line) - len(header.payload)] + ",".join(fields)
    return Classified(descriptor, fitted.duration, memo_key=key, time_last=time_last)


def _kept_as_text(fitted: Fitted, state: LineState) -> tuple[tuple[str, str], ...]:
    # template fields no decoder reads: their text is kept, under their own name
    unknown = fitted.layout.unknown
    for name in unknown:
        if name not in state.unknown_fields:
            state.unknown_fields.add(name)
            state.warn(f"unknown template field {name!r}: kept as text")
    return tuple((name, fitted.by_name[name]) for name in unknown)


def _primitive_descriptor(
    op: str, sub: str, component: str, fitted: Fitted, state: LineState
) -> Descriptor:
    kept = _kept_as_text(fitted, state)  # first: unknown-field warnings precede the decoders'
    by_name = fitted.by_name
    kind = by_name.get("primitive", "")
    if kind not in KNOWN_KINDS and kind not in state.unknown_kinds:
        state.unknown_kinds.add(kind)
        state.warn(f"unknown primitive kind {kind!r}: kept as text")
    # interned: a log of distinct shapes repeats these texts on every line, and each
    # split made a new copy
    impl_text = intern(by_name.get("implementation", ""))
    _, isa = _decode(parse_impl, impl_text, state, (impl_text, ""))
    mds_text = intern(by_name.get("memory_descriptors", ""))
    attrs_text = intern(by_name.get("attributes", ""))
    aux_text = intern(by_name.get("auxiliary", ""))
    prb_text = by_name.get("problem_desc", "")
    prop = by_name.get("prop_kind", "")
    aux = _decode(parse_aux, aux_text, state, ())
    problem = _decode(parse_problem, prb_text, state, Problem(prb_text))
    return Descriptor(
        api=component,
        op=op,
        cache=sub,
        engine=by_name.get("engine", ""),
        kind=kind,
        impl=impl_text,
        isa=isa,
        prop=prop,
        mds=_decode(parse_mds, mds_text, state, ()),
        mds_text=mds_text,
        attrs=_decode(parse_attrs, attrs_text, state, Attributes()),
        attrs_text=attrs_text,
        aux=aux,
        aux_text=aux_text,
        problem=problem,
        flops=descriptor_flops(kind, problem, aux, prop),
        extra_fields=kept,
    )


def _graph_descriptor(op: str, sub: str, fitted: Fitted, state: LineState) -> Descriptor:
    kept = _kept_as_text(fitted, state)  # first: unknown-field warnings precede the decoders'
    by_name = fitted.by_name
    tensors_text = by_name.get("logical_tensors", "")
    tensors = _decode(parse_logical_tensors, tensors_text, state, ())
    fpmath = by_name.get("fpmath_mode", "").removeprefix("fpm:")
    return Descriptor(
        api="graph",
        op=op,
        cache=sub,
        engine=by_name.get("engine", ""),
        kind=by_name.get("partition_kind", ""),
        impl=by_name.get("implementation", ""),
        isa="",
        prop="",
        mds=(),
        mds_text=tensors_text,
        attrs=Attributes(fpmath=fpmath.split(":")[0]),
        # a partition's fpmath mode, or a single op's attributes (`axis:2`)
        attrs_text=by_name.get("fpmath_mode", "") or by_name.get("op_attrs", ""),
        aux=(),
        aux_text=by_name.get("data_formats", ""),
        problem=Problem(by_name.get("op_names", "")),
        flops=None,
        extra_fields=kept,
        graph={
            "partition_id": by_name.get("partition_id", ""),
            "backend": by_name.get("backend", ""),
            "tensors": ";".join(":".join(t) for t in tensors),
        },
    )
