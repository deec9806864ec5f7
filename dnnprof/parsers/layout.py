"""Which payload field is which template field: fitted once per line shape and memoised.

A line's payload fields are named by the template the log announced (`info,template:`)
or, when it printed none, by its dialect's default. A few releases print a field set their
template does not describe — v0 prints no engine, v0 and v1.0 no attributes, v3.3 graph
lines no implementation, v3.13 graph lines add `scratchpad:<bytes>` unannounced — so a line
is fitted to its template (shapes no template describes at all: dnnprof.parsers.quirks). The fit
depends only on the component, the template, the field count and where the quirk shows,
so a whole log shares a handful of layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dnnprof.parsers.fields import is_engine

TIME_FIELD = "exec_time"

# Field orders oneDNN uses when no template line was printed (v0 prints none,
# v1.x/v2.0 neither). Names are oneDNN's own template names.
DEFAULT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "primitive": (
        "engine", "primitive", "implementation", "prop_kind", "memory_descriptors",
        "attributes", "auxiliary", "problem_desc", TIME_FIELD,
    ),
    "graph": (
        "engine", "partition_id", "partition_kind", "op_names", "data_formats",
        "logical_tensors", "fpmath_mode", "implementation", "backend", TIME_FIELD,
    ),
    "ukernel": ("engine", "primitive", "implementation", "prop_kind", "problem_desc", TIME_FIELD),
}
# A graph op printed on its own (oneDNN 3.12+ internal kernels such as `_gen_index`):
# `engine,name(kind),id,attrs:{..},inputs:{..},outputs:{..},time`
GRAPH_OP_TEMPLATE = (
    "engine", "op_names", "partition_id", "op_attrs", "inputs", "outputs", TIME_FIELD,
)
# The fields the decoders read: graph lines have their own; every other component is
# decoded as a primitive. A template field outside these is kept as text.
_READ_FIELDS = {
    "graph": frozenset(DEFAULT_TEMPLATES["graph"]) | frozenset(GRAPH_OP_TEMPLATE),
    "primitive": frozenset(DEFAULT_TEMPLATES["primitive"]),
}
_SCRATCHPAD = "scratchpad:"


@dataclass(frozen=True, slots=True)
class FieldLayout:
    """Where each template field sits among a line's payload fields."""

    names: tuple[str, ...]  # the template
    positions: tuple[int, ...]  # payload index of each name; -1: not printed, read as ""
    time_last: bool  # the time is the line's last field (what the stream's hot loop cuts)
    unknown: tuple[str, ...]  # template fields no decoder reads, kept as text
    in_order: bool  # every field printed, in template order (the usual case)

    def by_name(self, fields: list[str]) -> dict[str, str]:
        """Each template field's text on this line."""
        if self.in_order:
            return dict(zip(self.names, fields, strict=True))
        return {
            name: fields[at] if at >= 0 else ""
            for name, at in zip(self.names, self.positions, strict=True)
        }

    def without_time(self, fields: list[str]) -> list[str]:
        """The payload fields without the time (a descriptor is everything else)."""
        at = self.positions[self.names.index(TIME_FIELD)] if TIME_FIELD in self.names else -1
        return fields if at < 0 else fields[:at] + fields[at + 1 :]


def fit(
    component: str, names: tuple[str, ...], fields: list[str], announced: bool = True
) -> FieldLayout:
    """The layout of one line's payload fields under its template; ValueError when they do not fit.

    `announced`: the log printed this template (a default template also takes the older
    field sets it stands for).
    """
    # the quirks are looked for only where the field count says one may be there
    scratchpad_at = -1
    if component == "graph" and len(fields) == len(names) + 1:
        scratchpad_at = next((i for i, v in enumerate(fields) if v.startswith(_SCRATCHPAD)), -1)
    engine_first = len(fields) >= len(names) or is_engine(fields[0])
    return _layout(component, names, len(fields), engine_first, scratchpad_at, announced)


@lru_cache(maxsize=1024)
def _layout(
    component: str,
    names: tuple[str, ...],
    n_fields: int,
    engine_first: bool,
    scratchpad_at: int,
    announced: bool,
) -> FieldLayout:
    if n_fields == len(names):
        positions = tuple(range(n_fields))
    elif scratchpad_at >= 0:  # graph: skip the unannounced scratchpad field
        positions = tuple(i if i < scratchpad_at else i + 1 for i in range(len(names)))
    else:
        positions = _older_positions(component, names, n_fields, engine_first, announced)
    time_at = positions[names.index(TIME_FIELD)] if TIME_FIELD in names else -1
    read = _READ_FIELDS["graph" if component == "graph" else "primitive"]
    return FieldLayout(
        names=names,
        positions=positions,
        time_last=time_at == n_fields - 1,
        unknown=tuple(name for name in names if name not in read),
        in_order=positions == tuple(range(len(names))),
    )


def _older_positions(
    component: str, names: tuple[str, ...], n_fields: int, engine_first: bool, announced: bool
) -> tuple[int, ...]:
    # another count: an older oneDNN that did not print some fields, else a line that misfits
    if (component == "graph" and not announced and n_fields == len(names) - 1
            and "implementation" in names):
        slots = list(range(n_fields))  # v3.3 printed no implementation (and no template)
        slots.insert(names.index("implementation"), -1)
        return tuple(slots)
    if component == "primitive" and n_fields < len(names):
        slots = list(range(n_fields))
        if not engine_first and "engine" in names:
            slots.insert(0, -1)  # v0 printed no engine
        if len(slots) == len(names) - 1 and "attributes" in names:
            slots.insert(names.index("attributes"), -1)  # v0/v1.0 printed no attributes
        if len(slots) == len(names):
            return tuple(slots)
    raise ValueError(
        f"{n_fields} fields where the {component} template has {len(names)}"
        + (" (truncated line?)" if n_fields < len(names) else "")
    )
