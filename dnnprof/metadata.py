"""TraceMetadata: what a Trace knows besides its events, as typed attributes.

Stored in the Parquet schema as one JSON object with the same keys dnnprof has always
written (`to_dict`/`from_dict`), so traces from any earlier version load. Keys this
version does not know are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from dnnprof.vocabulary import RUN_VERDICTS, UNKNOWN


@dataclass
class Counts:
    """How many lines of each sort the log had (every input line is in exactly one)."""

    lines: int = 0
    exec: int = 0
    create: int = 0
    graph: int = 0
    messages: int = 0
    info: int = 0
    markers: int = 0
    foreign: int = 0
    unparsed: int = 0
    blank: int = 0


@dataclass
class Reconstruction:
    """How layers and iterations were attributed (filled by `dnnprof.reconstruct`)."""

    mode: str = ""  # markers | align | heuristic
    score: float | None = None  # alignment quality, 1.0 = every primitive matched
    coverage: float | None = None  # share of steady exec rows given a layer
    coverage_all: float | None = None  # the same over every exec row
    warnings: list[str] = field(default_factory=list)
    layer_table: dict[str, Any] = field(default_factory=dict)  # {"source", "layers"}
    iterations: dict[str, Any] = field(default_factory=dict)  # count, warmup, measure, wall_ms
    fusion: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # mode-specific details

    @property
    def wall_ms(self) -> dict[int, float]:
        """Python wall ms per iteration, as the markers recorded it."""
        return _int_keys(self.iterations.get("wall_ms"))


@dataclass
class Calibration:
    """The fixed calibration kernel, timed on as many workers as the workload has threads."""

    workers: int = 1
    median_ms: float | None = None  # one repetition: median over workers and repetitions
    quiet_ms: float | None = None  # the fastest this machine has run it: its quiet figure
    slowdown: float | None = None  # median_ms / quiet_ms
    wait_share: float | None = None  # share of the kernel's time spent waiting for a CPU


NOT_RECORDED = ("not recorded (a log captured elsewhere, or a trace stored by a dnnprof "
                "that did not record them)")


@dataclass
class RunConditions:
    """What the machine was doing while a run was measured, and the verdict drawn from it.

    Filled by dnnprof.profiler.conditions; `verdict` is one of vocabulary.RUN_VERDICTS and
    `reasons` says why in words. "during" means the timed iterations (phase `run`).
    """

    verdict: str = UNKNOWN
    reasons: list[str] = field(default_factory=list)
    # the machine
    cpu_model: str | None = None
    cpu_mhz: float | None = None
    cpus_online: int | None = None
    cpus_allowed: list[int] = field(default_factory=list)  # the workload's CPU affinity
    cgroup_quota: float | None = None  # CPUs the cgroup's quota allows (None: no quota)
    # the workload's threads
    threads: int | None = None  # threads the framework ran with
    tasks: int | None = None  # threads the workload's processes had while timed
    thread_env: dict[str, str] = field(default_factory=dict)  # OMP/KMP/MKL/oneDNN settings
    pinned: bool = False
    repeat: int = 1
    waited_s: float | None = None  # --wait-quiet: seconds waited before starting
    became_quiet: bool | None = None  # --wait-quiet: False when it gave up waiting
    # the load around and during the run
    load_before: float | None = None  # 1-minute load average
    load_after: float | None = None
    others_before: float | None = None  # runnable tasks of other processes
    others_during: float | None = None  # their mean over the samples taken while timed
    others_during_max: float | None = None
    others_after: float | None = None
    wait_share: float | None = None  # the workload's threads: time waiting for a CPU, share
    steal_share: float | None = None  # CPU time the hypervisor gave to other guests, share
    cpu_pressure: float | None = None  # PSI: share of the time some task waited for a CPU
    calibration_before: Calibration | None = None
    calibration_after: Calibration | None = None
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The verdict's reasons as one sentence."""
        return "; ".join(self.reasons)

    @property
    def headline(self) -> str:
        """`busy: <reasons>` — what a summary line shows."""
        return f"{self.verdict}: {self.reason}" if self.reasons else self.verdict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConditions:
        """From the stored JSON object (unknown keys kept in `extra`).

        A file is not trusted: a verdict dnnprof does not know reads as unknown, and the
        reasons as text, so that every printer can show them.
        """
        conditions = _build(cls, data)
        for name in ("calibration_before", "calibration_after"):
            value = getattr(conditions, name)
            setattr(conditions, name, _build(Calibration, value, into_extra=False)
                    if isinstance(value, dict) else None)
        reasons = conditions.reasons
        conditions.reasons = [str(r) for r in reasons] if isinstance(reasons, list) \
            else [str(reasons)]
        if conditions.verdict not in RUN_VERDICTS:
            conditions.reasons = [f"the stored verdict {str(conditions.verdict)[:40]!r} is not "
                                  "one dnnprof knows", *conditions.reasons]
            conditions.verdict = UNKNOWN
        return conditions

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored with the trace (and written to summary.json)."""
        out = dataclasses.asdict(self)
        out.update(out.pop("extra"))
        return out


@dataclass
class TraceMetadata:
    """Typed metadata of a Trace: the log's facts, the run's settings, the reconstruction."""

    # --- the log (parser) ---
    source: str | None = None
    format_version: int | None = None
    dnnprof_version: str | None = None
    onednn_version: str | None = None
    onednn_commit: str | None = None
    product: str | None = None
    dialect: str | None = None
    version_token: str | None = None
    isa: str | None = None
    runtime: str | None = None
    threads: int | None = None
    templates: dict[str, list[str]] = field(default_factory=dict)
    templates_announced: list[str] = field(default_factory=list)
    timeline: str | None = None  # "timestamps" (from the log) or "synthetic"
    counts: Counts = field(default_factory=Counts)
    fields_kept_as_text: int = 0  # field values the grammar rejected, kept verbatim
    unknown_kinds: list[str] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)  # template fields -> field_<name>
    unparsed_samples: list[Any] = field(default_factory=list)
    foreign_samples: list[Any] = field(default_factory=list)
    lines_with_prefix: int = 0  # verbose lines read from behind a prefix (counted as what they are)
    warnings: list[str] = field(default_factory=list)
    # --- the run (runner; None for a captured log) ---
    model: str | None = None
    variant: str | None = None
    variants: list[str] | None = None
    framework: str | None = None
    framework_version: str | None = None
    route: str | None = None
    batch: int | None = None
    input_shape: Any = None
    width: float | None = None
    pruned: float | None = None
    prune_mode: str | None = None
    warmup: int | None = None
    iters: int | None = None
    wall_ms: list[float] | None = None  # one per iteration, indexed by iteration number
    layer_table: Any = None  # the model's layer table (list of rows) when known
    notes: list[str] = field(default_factory=list)
    bf16_supported: bool | None = None
    command: str | None = None
    run_dir: str | None = None
    host: str | None = None  # the machine the run was measured on
    git_commit: str | None = None  # the commit under test: CI's variables, else git in the cwd
    child_returncode: int | None = None
    interrupted: bool | None = None
    started: float | None = None
    coverage: dict[str, Any] | None = None  # share of wall time inside oneDNN
    problems: list[str] = field(default_factory=list)  # the variant's evidence failures
    conditions: RunConditions | None = None  # what the machine was doing (None: not recorded)
    # --- later steps ---
    reconstruction: Reconstruction | None = None
    baseline: dict[str, Any] | None = None  # set when stored as a `check` baseline
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    # ------------------------------------------------------------ storage --

    @classmethod
    def from_dict(cls, data: Any) -> TraceMetadata:
        """Typed metadata from the stored JSON object (unknown keys go to `extra`).

        A file is not trusted: a value of the wrong type (a string where a list belongs) is
        left at its default and named in `warnings`, so that no reader fails on it later.
        Raises ValueError when the object is not a JSON object at all.
        """
        if not isinstance(data, dict):
            raise ValueError(f"dnnprof metadata must be a JSON object, not {type(data).__name__}")
        problems: list[str] = []
        values = _typed_values(cls, data, problems, "")
        extra = {k: v for k, v in data.items() if k not in _field_names(cls)}
        meta = cls(**values, extra=extra)
        for name, value in data.items():
            if name in _NESTED and value is not None and not isinstance(value, dict):
                problems.append(_ignored(name, value))
        if isinstance(data.get("counts"), dict):
            meta.counts = Counts(**_typed_values(Counts, data["counts"], problems, "counts."))
        reconstruction = data.get("reconstruction")
        if isinstance(reconstruction, dict):
            known = _typed_values(Reconstruction, reconstruction, problems, "reconstruction.")
            more = {k: v for k, v in reconstruction.items() if k not in _field_names(Reconstruction)}
            meta.reconstruction = Reconstruction(**known, extra=more)
        if isinstance(data.get("conditions"), dict):
            meta.conditions = RunConditions.from_dict(data["conditions"])
        meta.warnings = [*meta.warnings, *problems]
        return meta

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored with the trace (the keys every dnnprof version wrote)."""
        out: dict[str, Any] = {}
        is_run = self.command is not None or self.run_dir is not None
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            if f.name in _RUN_KEYS and not is_run and value in (None, [], {}):
                continue  # a parsed log never had the run's keys
            if f.name == "reconstruction":
                if value is not None:
                    out[f.name] = _flatten(value)
                continue
            if f.name in ("baseline", "conditions") and value is None:
                continue
            if f.name == "conditions":
                out[f.name] = value.to_dict()
                continue
            out[f.name] = dataclasses.asdict(value) if f.name == "counts" else value
        out.update(self.extra)
        return out

    def copy(self) -> TraceMetadata:
        """A deep copy (a reconstructed Trace must not change its input's metadata)."""
        return TraceMetadata.from_dict(_deepcopy_json(self.to_dict()))

    # ----------------------------------------------------------- derived --

    def wall_ms_by_iteration(self) -> dict[int, float]:
        """Python wall ms per iteration: from the run's own list, else from the markers."""
        if self.wall_ms:
            return {i: float(w) for i, w in enumerate(self.wall_ms) if w is not None}
        return self.reconstruction.wall_ms if self.reconstruction else {}

    @property
    def run_conditions(self) -> RunConditions:
        """The recorded run conditions, or `unknown` ones saying they were not recorded."""
        return self.conditions or RunConditions(reasons=[NOT_RECORDED])

    @property
    def reconstruction_mode(self) -> str | None:
        """markers | align | heuristic, or None before reconstruction."""
        return self.reconstruction.mode if self.reconstruction else None

    # ---------------------------- read-only mapping view, for notebooks --

    def __getitem__(self, key: str) -> Any:
        """`meta["key"]` as older dnnprof versions returned it (a plain JSON value)."""
        data = self.to_dict()
        if key not in data:
            raise KeyError(key)
        return data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        """`.get(key, default)` as older dnnprof versions answered it."""
        return self.to_dict().get(key, default)


# keys only a run (or a later step) writes: left out of a parsed log's stored object
_RUN_KEYS = frozenset(
    f.name for f in dataclasses.fields(TraceMetadata)
    if f.name in {
        "model", "variant", "variants", "framework", "framework_version", "route", "batch",
        "input_shape", "width", "pruned", "prune_mode", "warmup", "iters", "wall_ms",
        "layer_table", "notes", "bf16_supported", "command", "run_dir", "child_returncode",
        "interrupted", "started", "coverage", "problems", "host", "git_commit",
    }
)
_NESTED = frozenset({"counts", "reconstruction", "conditions"})


@cache
def _field_names(kind: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(kind))


@cache
def _field_types(kind: type) -> dict[str, Any]:
    """Each plain field's type (nested dataclasses and `extra` are read on their own)."""
    hints = typing.get_type_hints(kind)
    return {name: hint for name, hint in hints.items() if name != "extra" and name not in _NESTED}


def _typed_values(
    kind: type, data: dict[str, Any], problems: list[str], prefix: str
) -> dict[str, Any]:
    values = {}
    for name, hint in _field_types(kind).items():
        if name not in data:
            continue
        if _conforms(data[name], hint):
            values[name] = data[name]
        else:
            problems.append(_ignored(prefix + name, data[name]))
    return values


def _ignored(name: str, value: Any) -> str:
    return (f"stored metadata: {name} holds a {type(value).__name__} where another type "
            "belongs: ignored (left at its default)")


def _conforms(value: Any, hint: Any) -> bool:
    """True when a JSON value fits a field's type hint (an int fits float; a bool is no int)."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(item, args[1]) for item in value.values())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _build(kind: type, data: dict[str, Any], into_extra: bool = True) -> Any:
    names = {f.name for f in dataclasses.fields(kind)} - {"extra"}
    known = {k: v for k, v in data.items() if k in names}
    if into_extra:
        return kind(**known, extra={k: v for k, v in data.items() if k not in names})
    return kind(**known)


def _flatten(reconstruction: Reconstruction) -> dict[str, Any]:
    out = {f.name: getattr(reconstruction, f.name) for f in dataclasses.fields(reconstruction)}
    out.update(out.pop("extra"))
    return out


def _int_keys(mapping: Any) -> dict[int, float]:
    # JSON turns the int keys of a dict into strings: give them back their type once, here
    if not isinstance(mapping, dict):
        return {}
    return {int(k): float(v) for k, v in mapping.items()
            if str(k).isdecimal() and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _deepcopy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deepcopy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy_json(v) for v in value]
    return value
