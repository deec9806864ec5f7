"""Typed events produced by the verbose parser."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MemoryDesc:
    """One memory descriptor (`src:f32::blocked:abcd::f0`, `src_f32::blocked:abcd:f0`, `fsrc:nchw`)."""

    arg: str
    data_type: str = ""
    props: str = ""
    format_kind: str = ""
    tag: str = ""
    strides: str = ""
    flags: str = ""
    extra: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PostOp:
    """One post-op of `attr-post-ops` (`eltwise_relu`, `sum:0.5`, `binary_add:f32:2`)."""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attributes:
    """The attribute field, decoded; unknown attributes are kept as text in `other`."""

    post_ops: tuple[PostOp, ...] = ()
    scales: tuple[str, ...] = ()
    zero_points: tuple[str, ...] = ()
    oscale: str = ""
    fpmath: str = ""
    scratchpad: str = ""
    other: tuple[tuple[str, str], ...] = ()

    @property
    def post_ops_str(self) -> str:
        """Post-op names joined by '+', as a short label (`sum+eltwise_relu`)."""
        return "+".join(p.name for p in self.post_ops)


@dataclass(frozen=True, slots=True)
class Problem:
    """A decoded problem descriptor: integer dimensions by benchdnn key, or plain dims lists."""

    text: str
    values: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    dims: tuple[tuple[int | None, ...], ...] = ()

    def get(self, key: str, default: int | None = None) -> int | None:
        """Integer value of a key such as `mb`, `ic`, `kh`; `default` when absent."""
        value = self.values.get(key)
        return default if value is None else int(value)


@dataclass(slots=True)
class Descriptor:
    """Everything on a primitive or graph line except its timestamp and time."""

    api: str  # primitive | graph | ukernel
    op: str  # exec | create | compile
    cache: str  # cache_miss, cache_hit, ... ("" for exec)
    engine: str
    kind: str
    impl: str
    isa: str
    prop: str
    mds: tuple[MemoryDesc, ...]
    mds_text: str
    attrs: Attributes
    attrs_text: str
    aux: tuple[tuple[str, str], ...]
    aux_text: str
    problem: Problem
    flops: float | None
    # (name, text) of each template field dnnprof does not decode, kept verbatim
    extra_fields: tuple[tuple[str, str], ...] = ()
    graph: dict[str, str] | None = field(default=None, hash=False, compare=False)

    @property
    def alg(self) -> str:
        """The `alg:` aux value, or ''."""
        for key, value in self.aux:
            if key == "alg":
                return value
        return ""


@dataclass(slots=True)
class ExecEvent:
    """A primitive or graph `exec` (or `create`/`compile`) line with its timing."""

    line: int
    descriptor: Descriptor
    duration_ms: float
    ts_ms: float | None = None


@dataclass(slots=True)
class InfoEvent:
    """An `info` line: version banner, runtime, ISA, templates, backends."""

    line: int
    topic: str  # version | runtime | isa | template | other
    values: dict[str, str]
    text: str


@dataclass(slots=True)
class MessageEvent:
    """A `create:check`, `create:dispatch`, `exec:check`, `error` or `warning` line."""

    line: int
    op: str  # check | dispatch | error | warning | debuginfo
    stage: str  # create | exec | ""
    component: str
    message: str
    source: str  # file:line in oneDNN, when printed
    context: tuple[str, ...] = ()  # the primitive fields printed before the message
    ts_ms: float | None = None
    problem: str = ""  # the problem descriptor of that context, "" when none was printed


@dataclass(slots=True)
class MarkerEvent:
    """A `#DNNPROF,<event>,...` line printed by dnnprof's own workload."""

    line: int
    event: str
    fields: tuple[str, ...]
    ts_ms: float | None = None


@dataclass(slots=True)
class Unparsed:
    """A line that looked like a verbose line but did not parse; never dropped silently."""

    line: int
    text: str
    reason: str


Event = ExecEvent | InfoEvent | MessageEvent | MarkerEvent | Unparsed
