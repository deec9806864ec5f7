"""One verbose line -> one typed event (the slow path; the stream memoises its results)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from sys import intern

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

VERBOSE_MARKERS = ("onednn_verbose", "dnnl_verbose", "mkldnn_verbose")
DNNPROF_MARKER = "#DNNPROF"
LINE_STARTS = (*VERBOSE_MARKERS, DNNPROF_MARKER)

# Field orders oneDNN uses when no template line was printed (v0 prints none,
# v1.x/v2.0 neither). Names are oneDNN's own template names.
DEFAULT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "primitive": (
        "engine", "primitive", "implementation", "prop_kind", "memory_descriptors",
        "attributes", "auxiliary", "problem_desc", "exec_time",
    ),
    "graph": (
        "engine", "partition_id", "partition_kind", "op_names", "data_formats",
        "logical_tensors", "fpmath_mode", "implementation", "backend", "exec_time",
    ),
    "ukernel": ("engine", "primitive", "implementation", "prop_kind", "problem_desc", "exec_time"),
}

KNOWN_KINDS = frozenset(
    """convolution deconvolution inner_product matmul reorder eltwise pooling pooling_v2
    batch_normalization layer_normalization group_normalization lrn softmax softmax_v2
    logsoftmax sum concat binary shuffle resampling reduction prelu rnn sdpa gemm gemm_api
    zero_pad brgemm brgemm_pack_b transform gated_mlp""".split()
)

_ENGINE_RE = re.compile(r"^(cpu|gpu)(:\d+)?$|^cpu2gpu$|^gpu2cpu$")
_SOURCE_RE = re.compile(r"^\S+\.(c|cc|cpp|cxx|h|hpp|cl)(:\d+)?$")
_DIALECT_BY_MARKER = {"mkldnn_verbose": "v0", "dnnl_verbose": "dnnl", "onednn_verbose": "onednn"}
_MESSAGE_OPS = {"check", "dispatch", "error", "warning", "debuginfo"}


def is_engine(text: str) -> bool:
    """True for an engine field (`cpu`, `gpu`, `gpu:1`, `cpu2gpu`)."""
    return bool(_ENGINE_RE.match(text))


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
    text_fields: int = 0  # fields the grammar rejected, kept verbatim

    def warn(self, message: str) -> None:
        """Record a warning once."""
        if message not in self.warnings and len(self.warnings) < 200:
            self.warnings.append(message)


@dataclass(slots=True)
class Classified:
    """A parsed line: a timed descriptor (with its time and timestamp) or another event."""

    descriptor: Descriptor | None = None
    duration_ms: float = float("nan")
    ts_ms: float | None = None
    event: InfoEvent | MessageEvent | MarkerEvent | Unparsed | None = None


def classify(line_no: int, text: str, state: LineState) -> Classified:
    """Parse one line that starts with a verbose marker or `#DNNPROF` into a typed result."""
    if text.startswith(DNNPROF_MARKER):
        return _marker(line_no, text)
    try:
        head = split_line(text)
    except FieldError as exc:
        return Classified(event=Unparsed(line_no, text, f"not a verbose line: {exc}"))
    _note_dialect(head, state)
    ts = float(head["timestamp"]) if head["timestamp"] else None
    operation = head["operation"]
    component = head["component"] or "primitive"
    payload = head["payload"]
    if operation == "info":
        return Classified(event=_info(line_no, head["component"], payload, state), ts_ms=ts)
    op, _, sub = operation.partition(":")
    if op in _MESSAGE_OPS or sub in _MESSAGE_OPS:
        return Classified(event=_message(line_no, op, sub, payload, ts))
    try:
        descriptor, duration = _descriptor(op, sub, component, payload, state)
    except (FieldError, ValueError) as exc:
        return Classified(event=Unparsed(line_no, text, str(exc)))
    return Classified(descriptor=descriptor, duration_ms=duration, ts_ms=ts)


def _note_dialect(head: dict[str, str], state: LineState) -> None:
    dialect = _DIALECT_BY_MARKER[head["marker"]]
    if head["version"]:
        if head["version"] != "v1":
            state.warn(
                f"unknown verbose version token {head['version']!r}: parsed as v1 "
                "(the newest known); check the results"
            )
        dialect = "onednn_v1"
        state.version_token = head["version"]
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
    event, rest = fields[0], fields[1:]
    ts = None
    time_index = {"begin": 2, "end": 2, "iter_begin": 2, "iter_end": 2, "phase": 1}.get(event)
    if time_index is not None and len(rest) > time_index:
        try:
            ts = float(rest[time_index])
            rest = rest[:time_index] + rest[time_index + 1 :]
        except ValueError:
            ts = None
    return Classified(event=MarkerEvent(line_no, event, tuple(rest), ts), ts_ms=ts)


def _info(line_no: int, component: str, payload: str, state: LineState) -> InfoEvent:
    topic, values = parse_info(payload)
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


def _message(line_no: int, op: str, sub: str, payload: str, ts: float | None) -> MessageEvent:
    # messages contain commas, so split only where the layout is fixed:
    # component first, `file:line` last, the primitive context (8 fields) when printed
    kind = sub if sub in _MESSAGE_OPS else op
    stage = op if sub in _MESSAGE_OPS else ""
    parts = payload.split(",")
    component = parts[0] if parts else ""
    source = ""
    if len(parts) > 1 and _SOURCE_RE.match(parts[-1].strip()):
        source = parts.pop().strip()
    context: tuple[str, ...] = ()
    body = parts[1:]
    if len(body) >= 9 and is_engine(body[0]):
        context, body = tuple(body[:8]), body[8:]
    return MessageEvent(line_no, kind, stage, component, ",".join(body), source, context, ts)


def _fit_fields(fields: list[str], names: tuple[str, ...], component: str) -> list[str]:
    """Line the fields up with the template, allowing the field sets of older releases."""
    if len(fields) == len(names):
        return fields
    if component == "graph" and len(fields) == len(names) + 1:
        # v3.13 added `scratchpad:<bytes>` to graph lines without announcing it
        for i, value in enumerate(fields):
            if value.startswith("scratchpad:"):
                return fields[:i] + fields[i + 1 :]
    if component == "primitive" and len(fields) < len(names):
        fitted = list(fields)
        if fitted and not is_engine(fitted[0]) and "engine" in names:
            fitted.insert(0, "")  # v0 printed no engine
        if len(fitted) == len(names) - 1 and "attributes" in names:
            fitted.insert(names.index("attributes"), "")  # v0/v1.0 printed no attributes
        if len(fitted) == len(names):
            return fitted
    raise ValueError(
        f"{len(fields)} fields where the {component} template has {len(names)}"
        + (" (truncated line?)" if len(fields) < len(names) else "")
    )


def _decode(decoder, text: str, state: LineState, default):
    # A field the grammar does not know is kept as text, never fatal for the line.
    try:
        return decoder(text)
    except FieldError as exc:
        state.text_fields += 1
        state.warn(f"kept as text: {exc}")
        return default


def _descriptor(
    op: str, sub: str, component: str, payload: str, state: LineState
) -> tuple[Descriptor, float]:
    names = state.templates.get(component) or DEFAULT_TEMPLATES["primitive"]
    fields = _fit_fields(payload.split(","), names, component)
    by_name = dict(zip(names, fields, strict=True))
    time_text = by_name.get("exec_time", "")
    try:
        duration = float(time_text)
    except ValueError:
        raise ValueError(f"time field {time_text[:40]!r} is not a number") from None
    if component == "graph":
        return _graph_descriptor(op, sub, by_name, state), duration
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
    flops = descriptor_flops(kind, problem, aux, prop)
    extra = (
        tuple(f"{k}={v}" for k, v in by_name.items() if k not in _PRIMITIVE_FIELDS)
        if names != _DEFAULT_PRIMITIVE
        else ()
    )
    descriptor = Descriptor(
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
        flops=flops,
        extra_fields=extra,
    )
    return descriptor, duration


_PRIMITIVE_FIELDS = frozenset(DEFAULT_TEMPLATES["primitive"])
_DEFAULT_PRIMITIVE = DEFAULT_TEMPLATES["primitive"]


def _graph_descriptor(op: str, sub: str, by_name: dict[str, str], state: LineState) -> Descriptor:
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
        attrs_text=by_name.get("fpmath_mode", ""),
        aux=(),
        aux_text=by_name.get("data_formats", ""),
        problem=Problem(by_name.get("op_names", "")),
        flops=None,
        graph={
            "partition_id": by_name.get("partition_id", ""),
            "backend": by_name.get("backend", ""),
            "tensors": ";".join(":".join(t) for t in tensors),
        },
    )
