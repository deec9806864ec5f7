"""The span tree every exporter writes: run -> iteration -> layer -> primitive.

Built once from `trace.events` (see docs/trace-schema.md); each output format is then a
small function of the tree. Times are integer nanoseconds since the Unix epoch so that
every format rounds the same numbers the same way.

Which rows become primitive spans: `exec` rows of the primitive, ukernel and graph APIs.
Graph partitions are kept (as spans named `graph:<partition kind>`) even though oneDNN
also logs the primitives inside them: in a trace viewer the partition is where the fusion
shows, and its duration is the partition's own measurement.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import __version__

LEVELS = ("run", "iteration", "layer", "primitive")
SPAN_APIS = ("primitive", "ukernel", "graph")

# Phases the reconstructor (or dnnprof's markers) give to iterations that are not the
# steady state; iterations in these phases are left out unless asked for.
NON_STEADY_PHASES = frozenset({"warmup", "calibrate", "build", "setup", "compile", "done"})
STEADY_PHASES = frozenset({"measure", "run", "steady"})

AttributeValue = str | bool | int | float


class ExportError(RuntimeError):
    """An export that could not be completed; the message says why and what to do next.

    The Trace (and any file it was loaded from) is never modified by an exporter, so after
    this error the stored trace is intact and the export can simply be retried. Command-line
    front ends exit with `exit_code` (see docs/exporters.md).
    """

    exit_code = 3


@dataclass
class Span:
    """One node of the tree. `start_ns`/`end_ns` are nanoseconds since the Unix epoch."""

    name: str
    level: str
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    children: list[Span] = field(default_factory=list)
    row: int | None = None  # position in trace.events, for primitive spans

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def walk(
        self, depth: int = 0, parent: Span | None = None
    ) -> Iterator[tuple[Span, Span | None, int]]:
        """(span, parent, depth) in pre-order; parents come before their children."""
        yield self, parent, depth
        for child in self.children:
            yield from child.walk(depth + 1, self)


@dataclass
class SpanTree:
    """The spans of one run, plus what was selected and how times were obtained."""

    root: Span
    timeline: str  # "timestamps" (oneDNN's own clock) or "synthetic" (exec times end to end)
    iterations: list[int]  # exported iteration numbers; [-1] when the trace has none
    iterations_total: int
    service_name: str = "dnnprof"
    trace_id: str = ""  # 32 hex digits; deterministic for file formats, see `trace_id_for`

    def walk(self) -> Iterator[tuple[Span, Span | None, int]]:
        return self.root.walk()

    def spans(self) -> list[Span]:
        return [span for span, _, _ in self.walk()]

    def __len__(self) -> int:
        return sum(1 for _ in self.walk())

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(LEVELS, 0)
        for span, _, _ in self.walk():
            out[span.level] = out.get(span.level, 0) + 1
        return out


# ------------------------------------------------------------------- selection --


def span_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The rows that become primitive spans: timed exec lines of every API but markers."""
    api = events["api"].astype(str)
    return events[(events["op"].astype(str) == "exec") & api.isin(SPAN_APIS)]


def iteration_phases(rows: pd.DataFrame) -> dict[int, str]:
    """The phase of each iteration: the first non-empty phase among its rows, else ""."""
    frame = pd.DataFrame(
        {"iteration": rows["iteration"].to_numpy(), "phase": rows["phase"].astype(str).to_numpy()}
    )
    phases = dict.fromkeys((int(i) for i in pd.unique(frame["iteration"])), "")
    named = frame[frame["phase"] != ""].drop_duplicates("iteration")
    phases.update(zip(named["iteration"].astype(int), named["phase"], strict=True))
    return phases


def select_iterations(
    rows: pd.DataFrame, span_iterations: int | None, iterations: str | Sequence[int] = "steady"
) -> list[int]:
    """Iteration numbers to export.

    `iterations="steady"` keeps measured iterations (phase measure/run) when phases are
    known, else every iteration not in a warm-up/calibration/build phase, and then the LAST
    `span_iterations` of them: the first steady iterations can still carry one-time work
    (oneDNN Graph keeps re-partitioning for two iterations), the last ones are settled.
    `"all"` keeps every iteration (and rows outside any iteration, as iteration -1).
    A list selects those iteration numbers. A trace without iterations is one iteration, -1.
    """
    present = sorted(int(i) for i in pd.unique(rows["iteration"]))
    if not any(i >= 0 for i in present):
        return [-1] if present else []
    if isinstance(iterations, str):
        if iterations == "all":
            chosen = present
        elif iterations == "steady":
            phases = iteration_phases(rows[rows["iteration"] >= 0])
            steady = [i for i, p in phases.items() if p in STEADY_PHASES]
            if not steady:
                steady = [i for i, p in phases.items() if p not in NON_STEADY_PHASES]
            if not steady:  # everything is warm-up or calibration: better some spans than none
                steady = list(phases)
            chosen = sorted(steady)
        else:
            raise ValueError(
                f"iterations must be 'steady', 'all' or a list of ints, not {iterations!r}"
            )
    else:
        wanted = {int(i) for i in iterations}
        chosen = [i for i in present if i in wanted]
    if span_iterations is not None and span_iterations > 0:
        chosen = chosen[-span_iterations:]
    return chosen


# ----------------------------------------------------------------------- times --


def base_time_ns(trace: Any, timeline: str, now_ns: int | None = None) -> int:
    """Epoch time of `start_ms == 0`, rounded to a whole microsecond.

    With real timestamps that is the first timestamp of the log. A synthetic timeline has no
    clock of its own: it is placed at the first marker time when the log has one, otherwise
    at the time of the export (so it shows up in a "last hour" search).
    Rounding to the microsecond keeps offsets exact in formats that store microseconds.
    """
    events = trace.events
    ts = events["ts_ms"].to_numpy(dtype=float)
    start = events["start_ms"].to_numpy(dtype=float)
    both = ~np.isnan(ts) & ~np.isnan(start)
    if timeline == "timestamps" and both.any():
        base_ms = float(np.median(ts[both] - start[both]))
    elif (~np.isnan(ts)).any():
        base_ms = float(np.nanmin(ts))
    else:
        base_ms = (time.time_ns() if now_ns is None else now_ns) / 1e6
    return int(round(base_ms * 1000.0)) * 1000


def _ns(ms: float) -> int:
    return 0 if math.isnan(ms) else int(round(ms * 1e6))


# ------------------------------------------------------------------ attributes --

# (trace.events column, attribute key) for primitive spans; empty values are left out.
PRIMITIVE_COLUMNS = (
    ("api", "onednn.api"),
    ("engine", "onednn.engine"),
    ("kind", "onednn.kind"),
    ("impl", "onednn.impl"),
    ("isa", "onednn.isa"),
    ("prop", "onednn.prop_kind"),
    ("src_dt", "onednn.src_dt"),
    ("wei_dt", "onednn.wei_dt"),
    ("dst_dt", "onednn.dst_dt"),
    ("src_fmt", "onednn.src_fmt"),
    ("wei_fmt", "onednn.wei_fmt"),
    ("dst_fmt", "onednn.dst_fmt"),
    ("post_ops", "onednn.post_ops"),
    ("fpmath", "onednn.fpmath"),
    ("alg", "onednn.alg"),
    ("problem", "onednn.problem"),
    ("mds", "onednn.mds"),
    ("attrs", "onednn.attrs"),
    ("aux", "onednn.aux"),
    ("layer", "dnnprof.layer"),
    ("layer_type", "dnnprof.layer_type"),
    ("phase", "dnnprof.phase"),
)
DIMENSION_COLUMNS = (
    "mb",
    "g",
    "ic",
    "oc",
    "id",
    "ih",
    "iw",
    "od",
    "oh",
    "ow",
    "kd",
    "kh",
    "kw",
    "sd",
    "sh",
    "sw",
    "dd",
    "dh",
    "dw",
    "pd",
    "ph",
    "pw",
    "m",
    "n",
    "k",
    "batch",
)


def plain(value: Any) -> AttributeValue | None:
    """A value every span format can carry (str/bool/int/float), or None for 'absent'."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    text = str(value)
    return text if text else None


def _dimension_lookup(trace: Any) -> dict[int, dict[str, AttributeValue]]:
    """desc_id -> problem dimensions, from `trace.descriptors` when the Trace has it."""
    descriptors = getattr(trace, "descriptors", None)
    if not isinstance(descriptors, pd.DataFrame) or descriptors.empty:
        return {}
    columns = [c for c in DIMENSION_COLUMNS if c in descriptors]
    ids = descriptors["desc_id"] if "desc_id" in descriptors else descriptors.index
    lookup: dict[int, dict[str, AttributeValue]] = {}
    for desc_id, (_, row) in zip(ids, descriptors[columns].iterrows(), strict=True):
        dims = {f"onednn.dims.{c}": plain(row[c]) for c in columns}
        lookup[int(desc_id)] = {k: v for k, v in dims.items() if v is not None}
    return lookup


def primitive_name(kind: str, api: str, post_ops: str) -> str:
    """`convolution`, `convolution+sum+eltwise_relu` (fused), `graph:convolution_post_ops`."""
    if api == "graph":
        return f"graph:{kind}"
    return f"{kind}+{post_ops}" if post_ops else kind


ROW_COLUMNS = ("layer", "layer_type", "phase")  # per call; every other column is per descriptor


class PrimitiveAttributes:
    """Span attributes of primitive rows. The descriptor part (kind, impl, types, formats,
    problem, FLOPs ...) is the same for thousands of calls, so it is built once per distinct
    descriptor and copied; only the timing, line, iteration and layer change per call."""

    def __init__(self, dims: dict[int, dict[str, AttributeValue]]) -> None:
        self.dims = dims
        self.static_columns = [(c, k) for c, k in PRIMITIVE_COLUMNS if c not in ROW_COLUMNS]
        self.row_columns = [(c, k) for c, k in PRIMITIVE_COLUMNS if c in ROW_COLUMNS]
        self.cache: dict[tuple[Any, ...], dict[str, AttributeValue]] = {}

    def descriptor_part(self, row: Any) -> dict[str, AttributeValue]:
        key = tuple(getattr(row, c, None) for c, _ in self.static_columns) + (
            row.has_scales,
            row.has_zero_points,
            row.flops,
            row.desc_id,
        )
        cached = self.cache.get(key)
        if cached is None:
            cached = {"dnnprof.level": "primitive"}
            for column, attr in self.static_columns:
                value = plain(getattr(row, column, None))
                if value is not None:
                    cached[attr] = value
            cached["onednn.fused"] = bool(str(getattr(row, "post_ops", "") or ""))
            cached["onednn.reorder"] = str(row.kind) == "reorder"
            cached["onednn.has_scales"] = bool(row.has_scales)
            cached["onednn.has_zero_points"] = bool(row.has_zero_points)
            flops = plain(row.flops)
            if flops is not None:
                cached["onednn.flops"] = flops
            cached.update(self.dims.get(int(row.desc_id), {}))
            self.cache[key] = cached
        return cached

    def __call__(self, row: Any) -> dict[str, AttributeValue]:
        attrs = dict(self.descriptor_part(row))
        for column, attr in self.row_columns:
            value = plain(getattr(row, column, None))
            if value is not None:
                attrs[attr] = value
        duration_ms = plain(row.duration_ms)
        if duration_ms is not None:
            attrs["onednn.exec_time_ms"] = duration_ms
            flops = attrs.get("onednn.flops")
            if flops is not None and duration_ms:
                attrs["onednn.gflops_per_s"] = float(flops) / (duration_ms * 1e6)
        attrs["dnnprof.line"] = int(row.line)
        attrs["dnnprof.iteration"] = int(row.iteration)
        return attrs


RUN_METADATA = (
    ("model", "dnnprof.model"),
    ("variant", "dnnprof.variant"),
    ("framework", "dnnprof.framework"),
    ("framework_version", "dnnprof.framework_version"),
    ("batch", "dnnprof.batch"),
    ("threads", "onednn.threads"),
    ("onednn_version", "onednn.version"),
    ("onednn_commit", "onednn.commit"),
    ("isa", "onednn.isa"),
    ("runtime", "onednn.runtime"),
    ("dialect", "onednn.verbose_dialect"),
    ("source", "dnnprof.source"),
    ("command", "dnnprof.command"),
)


def run_name(metadata: dict[str, Any]) -> str:
    parts = [str(metadata[k]) for k in ("model", "variant") if metadata.get(k)]
    if parts:
        return " ".join(parts)
    source = str(metadata.get("source") or "")
    return f"dnnprof {source.rsplit('/', 1)[-1]}" if source else "dnnprof run"


def run_attributes(metadata: dict[str, Any]) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {"dnnprof.level": "run"}
    for key, attr in RUN_METADATA:
        value = metadata.get(key)
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        value = plain(value)
        if value is not None:
            attrs[attr] = value
    attrs["dnnprof.timeline"] = str(metadata.get("timeline") or "synthetic")
    attrs["dnnprof.version"] = str(metadata.get("dnnprof_version") or __version__)
    return attrs


# ------------------------------------------------------------------------ tree --


def _envelope(
    name: str, level: str, children: list[Span], attrs: dict[str, AttributeValue]
) -> Span:
    return Span(
        name=name,
        level=level,
        start_ns=min(c.start_ns for c in children),
        end_ns=max(c.end_ns for c in children),
        attributes=attrs,
        children=children,
    )


def _exec_ms(spans: list[Span]) -> float:
    total = 0.0
    for span in spans:
        if span.level == "primitive":
            total += float(span.attributes.get("onednn.exec_time_ms", 0.0))
        else:
            total += float(span.attributes.get("dnnprof.exec_time_ms", 0.0))
    return total


def _layer_span(prims: list[Span], layer: str, layer_type: str) -> Span:
    post_ops = sorted(
        {str(p.attributes["onednn.post_ops"]) for p in prims if "onednn.post_ops" in p.attributes}
    )
    attrs: dict[str, AttributeValue] = {
        "dnnprof.level": "layer",
        "dnnprof.layer": layer,
        "dnnprof.primitives": len(prims),
        "dnnprof.reorders": sum(1 for p in prims if p.attributes.get("onednn.reorder")),
        "dnnprof.fused": bool(post_ops),
        "dnnprof.exec_time_ms": _exec_ms(prims),
    }
    if layer_type:
        attrs["dnnprof.layer_type"] = layer_type
    if post_ops:
        attrs["dnnprof.post_ops"] = ",".join(post_ops)
    return _envelope(layer, "layer", prims, attrs)


def _group_layers(prims: list[tuple[Span, str, str]]) -> list[Span]:
    """Primitives in time order -> layer spans (consecutive runs of one layer) and bare
    primitives (no layer). Consecutive runs, not one span per layer name, so that layer
    spans never overlap each other even when a layer is entered twice."""
    out: list[Span] = []
    group: list[Span] = []
    current: tuple[str, str] | None = None
    for span, layer, layer_type in prims:
        key = (layer, layer_type) if layer else None
        if key != current and group:
            out.append(_layer_span(group, *current))  # type: ignore[misc]
            group = []
        current = key
        if key is None:
            out.append(span)
        else:
            group.append(span)
    if group and current is not None:
        out.append(_layer_span(group, *current))
    return out


def build_span_tree(
    trace: Any,
    span_iterations: int | None = 3,
    iterations: str | Sequence[int] = "steady",
    service_name: str = "dnnprof",
    now_ns: int | None = None,
) -> SpanTree:
    """Build run -> iteration -> layer -> primitive spans from a Trace.

    Parent spans cover exactly their children (first start to last end); a layer span is a
    run of consecutive primitives with the same `layer`, and primitives without a layer sit
    directly under their iteration. Raises ExportError when nothing is left to export.
    """
    events = trace.events
    metadata = trace.metadata
    timeline = "timestamps" if metadata.get("timeline") == "timestamps" else "synthetic"
    rows = span_rows(events)
    if rows.empty:
        raise ExportError(
            f"{metadata.get('source', 'the trace')}: no primitive exec lines to export "
            "(was oneDNN verbose at level 1 or higher when the log was captured?)"
        )
    chosen = select_iterations(rows, span_iterations, iterations)
    iterations_total = len({int(i) for i in pd.unique(rows["iteration"]) if i >= 0}) or 1
    if chosen != [-1]:
        rows = rows[rows["iteration"].isin(chosen)]
    if rows.empty:
        raise ExportError(f"no exec lines in the selected iterations {chosen}")

    base_ns = base_time_ns(trace, timeline, now_ns)
    attributes_of = PrimitiveAttributes(_dimension_lookup(trace))
    positions = {label: pos for pos, label in enumerate(events.index)}
    # Group key per row: ("iteration", n), or for rows outside every iteration (calibration,
    # tracing, ... in an "all" export) ("outside", k) for the k-th contiguous stretch of one
    # phase, so that no group's time range overlaps another's.
    groups: dict[tuple[str, int], list[tuple[Span, str, str]]] = {}
    group_phase: dict[tuple[str, int], str] = {}
    ordered = rows.sort_values(["start_ms", "line"], kind="stable")
    stretch, previous = 0, None
    for row in ordered.itertuples():
        start_ns = base_ns + _ns(float(row.start_ms))
        api = str(row.api)
        span = Span(
            name=primitive_name(str(row.kind), api, str(row.post_ops)),
            level="primitive",
            start_ns=start_ns,
            end_ns=start_ns + max(_ns(float(row.duration_ms)), 0),
            attributes=attributes_of(row),
            row=positions[row.Index],
        )
        phase = str(row.phase)
        if chosen == [-1]:
            key = ("whole", 0)
        elif int(row.iteration) >= 0:
            key = ("iteration", int(row.iteration))
        else:
            if previous is None or previous[0] != "outside" or group_phase[previous] != phase:
                stretch += 1
            key = ("outside", stretch)
            group_phase[key] = phase
        previous = key
        groups.setdefault(key, []).append((span, str(row.layer), str(row.layer_type)))

    phases = iteration_phases(rows) if chosen != [-1] else {}
    iteration_spans = []
    for key, members in groups.items():
        kind, number = key
        iteration = number if kind == "iteration" else -1
        children = _group_layers(members)
        prims = [span for span, _, _ in members]
        attrs: dict[str, AttributeValue] = {
            "dnnprof.level": "iteration",
            "dnnprof.iteration": iteration,
            "dnnprof.primitives": len(prims),
            "dnnprof.exec_time_ms": _exec_ms(prims),
        }
        phase = phases.get(iteration, "") if kind == "iteration" else group_phase.get(key, "")
        if phase:
            attrs["dnnprof.phase"] = phase
        if kind == "iteration":
            name = f"iteration {iteration}"
        elif kind == "outside":
            name = f"outside iterations ({phase})" if phase else "outside iterations"
        else:
            name = "iteration (whole trace)"
        iteration_spans.append(_envelope(name, "iteration", children, attrs))
    iteration_spans.sort(key=lambda span: (span.start_ns, span.end_ns))
    exported = sorted({int(span.attributes["dnnprof.iteration"]) for span in iteration_spans})

    root_attrs = run_attributes(metadata)
    root_attrs.update(
        {
            "dnnprof.timeline": timeline,
            "dnnprof.iterations_total": iterations_total,
            "dnnprof.iterations_exported": ",".join(str(i) for i in exported),
            "dnnprof.exec_time_ms": _exec_ms(iteration_spans),
        }
    )
    root = _envelope(run_name(metadata), "run", iteration_spans, root_attrs)
    tree = SpanTree(
        root=root,
        timeline=timeline,
        iterations=exported,
        iterations_total=iterations_total,
        service_name=service_name,
    )
    tree.trace_id = trace_id_for(trace, tree)
    return tree


def trace_id_for(trace: Any, tree: SpanTree) -> str:
    """A trace id derived from the run's identity and the exported selection, so a file
    written twice from the same Trace is byte-identical."""
    identity = {
        "source": trace.metadata.get("source"),
        "command": trace.metadata.get("command"),
        "events": len(trace.events),
        # A synthetic timeline is placed at export time; only its length identifies it.
        "start": tree.root.start_ns if tree.timeline == "timestamps" else None,
        "duration": tree.root.duration_ns,
        "iterations": tree.iterations,
        "spans": len(tree),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def span_ids(tree: SpanTree) -> dict[int, str]:
    """id(span) -> 16-hex-digit span id, deterministic from the trace id and pre-order index."""
    ids: dict[int, str] = {}
    for index, (span, _, _) in enumerate(tree.walk()):
        digest = hashlib.sha256(f"{tree.trace_id}:{index}".encode()).hexdigest()[:16]
        ids[id(span)] = digest if digest != "0" * 16 else "0" * 15 + "1"
    return ids


def write_json_atomic(path: Any, document: Any) -> Path:
    """Write a JSON document to `path` via a temp file and a rename; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    # dumps, not dump: only the one-shot encoder is the C one (several times faster).
    tmp.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
