"""The numbers behind every report: load traces as variants, pick a baseline, build tables.

The HTML and console renderers both read a `Comparison`; neither computes anything itself.
A single trace is a comparison of one variant, so `dnnprof report` and `dnnprof compare`
share every table. All times are per measured iteration; when a trace has no iteration
labels the whole log counts as one "iteration" and the `notes` say so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.trace import COMPUTE_KINDS, TRACE_FILE, Trace
from dnnprof.views import resnet_stage

UNATTRIBUTED = "(outside any layer)"
# Standalone primitives that a fusing variant folds into a convolution/matmul as post-ops.
FUSABLE_KINDS = ("batch_normalization", "eltwise", "sum", "binary")
# What each primitive is, for the fusion view: a fusing variant moves rows from the
# standalone role into "compute with post-ops".
ROLES = (
    "compute with post-ops", "compute alone", "standalone bn/eltwise/sum/binary",
    "reorder", "other",
)
STAGES = ("conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "fc")
BOOTSTRAP_RESAMPLES = 4000
_STEADY_COLUMNS = (
    "line", "start_ms", "duration_ms", "kind", "impl", "isa", "src_dt", "wei_dt", "dst_dt",
    "src_fmt", "dst_fmt", "post_ops", "problem", "flops", "desc_id", "iteration", "phase",
    "layer", "layer_type", "fused_layers", "reorder_class",
)
CONFIDENCE = 0.95


class ReportInputError(Exception):
    """An input the reports cannot use; the message says what to pass instead."""


# ------------------------------------------------------------------- variants --


@dataclass
class Variant:
    """One trace under a display name, with its steady-state exec rows prepared once."""

    name: str
    trace: Trace
    source: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        steady = self.trace.steady_exec()
        self.iterations_known = bool((steady["iteration"] >= 0).any())
        if self.iterations_known:
            steady = steady[steady["iteration"] >= 0]
        self.phases_known = bool((self.trace.exec_events["phase"] == "measure").any())
        # Only the columns reports read: every groupby below copies what the frame holds.
        steady = steady[[c for c in _STEADY_COLUMNS if c in steady]]
        steady = steady.sort_values("line", kind="stable").copy()
        if not self.iterations_known:
            steady["iteration"] = 0
        steady["shape"] = steady["problem"].astype(str)
        layer = steady["layer"].astype(str)
        self.layers_known = bool((layer != "").any())
        steady["layer_name"] = layer.where(layer != "", UNATTRIBUTED)
        steady["dtypes"] = (
            steady["src_dt"].astype(str).replace("", "-")
            + "/" + steady["wei_dt"].astype(str).replace("", "-")
            + "/" + steady["dst_dt"].astype(str).replace("", "-")
        )
        steady["isa_name"] = steady["isa"].astype(str).replace("", "(none named)")
        for column in ("fused_layers", "reorder_class"):  # reconstructor columns, if run
            steady[column] = steady[column].astype(str) if column in steady else ""
        reconstruction = self.trace.metadata.get("reconstruction") or {}
        # Heuristic layer names (conv1, conv2 ... by order) are positions, not model names.
        self.layer_mode = str(reconstruction.get("mode") or ("labels" if self.layers_known
                                                             else "none"))
        self.steady = steady
        self.n_iterations = int(steady["iteration"].nunique()) if len(steady) else 0
        self.divisor = max(self.n_iterations, 1)

    @property
    def meta(self) -> dict[str, Any]:
        """The trace metadata."""
        return self.trace.metadata

    @cached_property
    def onednn_ms(self) -> pd.Series:
        """oneDNN exec time per measured iteration (ms), indexed by iteration."""
        if self.steady.empty:
            return pd.Series(dtype=float)
        return self.steady.groupby("iteration")["duration_ms"].sum()

    @cached_property
    def wall_ms(self) -> pd.Series:
        """Wall time per measured iteration from the runner's metadata (empty when absent)."""
        return _wall_samples(self)


def _wall_samples(variant: Variant) -> pd.Series:
    raw = variant.meta.get("wall_ms")
    if raw is None:  # iter_end markers carry the wall time too; the reconstructor keeps it
        raw = ((variant.meta.get("reconstruction") or {}).get("iterations") or {}).get("wall_ms")
        raw = raw or None
    if isinstance(raw, dict):
        by_iteration = {int(k): float(v) for k, v in raw.items() if _is_number(v)}
    elif isinstance(raw, (list, tuple)):
        by_iteration = {i: float(v) for i, v in enumerate(raw) if _is_number(v)}
    else:
        return pd.Series(dtype=float)
    if variant.iterations_known and variant.phases_known:
        wanted = [i for i in variant.onednn_ms.index if i in by_iteration]
        return pd.Series({i: by_iteration[i] for i in wanted}, dtype=float)
    warmup = variant.meta.get("warmup", variant.meta.get("warmup_iterations"))
    if isinstance(warmup, int):
        return pd.Series({i: v for i, v in by_iteration.items() if i >= warmup}, dtype=float)
    variant.notes.append(
        "wall times: which iterations were warm-up is unknown, so every wall time is used"
    )
    return pd.Series(by_iteration, dtype=float)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reconstructor() -> Any:
    # The reconstructor is developed separately; reports work (with less detail) without it.
    try:
        from dnnprof.reconstruct import reconstruct
    except ImportError:
        return None
    return reconstruct


def load_trace(path: str | Path) -> tuple[Trace, list[str]]:
    """Read a run folder, stored trace or raw log; reconstruct layers when unlabelled."""
    import dnnprof

    source = Path(path)
    notes: list[str] = []
    if not source.exists():
        raise ReportInputError(f"{source}: no such file or folder")
    if source.is_dir():
        if not (source / TRACE_FILE).exists():
            raise ReportInputError(
                f"{source}: a folder without {TRACE_FILE}; pass a run folder made by "
                "`dnnprof trace`, a stored trace or a verbose log"
            )
        trace = dnnprof.load(source)
    elif source.suffix == ".parquet" or _is_parquet(source):
        trace = dnnprof.load(source)
    else:
        trace = dnnprof.parse(source)
    if not (trace.events["iteration"] >= 0).any():
        reconstruct = _reconstructor()
        if reconstruct is None:
            notes.append("no layer reconstructor installed: iterations and layers unknown")
        else:
            try:
                result = reconstruct(trace)
                trace = result if isinstance(result, Trace) else trace
            except Exception as exc:  # a failed reconstruction still leaves a usable report
                notes.append(f"layer reconstruction failed ({type(exc).__name__}: {exc})")
    return trace, notes


def _is_parquet(path: Path) -> bool:
    # Stored traces need not end in .parquet (`trace.save("run-a")` writes a file).
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def variant_name(trace: Trace, source: str) -> str:
    """A display name: the runner's variant (with model) when recorded, else the file name."""
    meta = trace.metadata
    model, variant = meta.get("model"), meta.get("variant")
    if variant:
        return f"{model} {variant}" if model else str(variant)
    path = Path(source)
    stem = path.name if path.is_dir() else path.stem
    return stem or str(source)


def make_variants(
    items: Iterable[tuple[Trace, str] | tuple[Trace, str, str]],
) -> list[Variant]:
    """Wrap (trace, source[, name]) pairs as variants with unique names."""
    variants: list[Variant] = []
    seen: dict[str, int] = {}
    for item in items:
        trace, source = item[0], item[1]
        name = item[2] if len(item) > 2 else variant_name(trace, source)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        variants.append(Variant(name=name, trace=trace, source=str(source)))
    return variants


# --------------------------------------------------------------- statistics --


def bootstrap_speedup(
    baseline_ms: Sequence[float],
    variant_ms: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Median(baseline)/median(variant) and a percentile-bootstrap interval (NaN if < 2 samples)."""
    base = np.asarray(baseline_ms, dtype=float)
    new = np.asarray(variant_ms, dtype=float)
    base, new = base[np.isfinite(base)], new[np.isfinite(new)]
    if base.size == 0 or new.size == 0 or np.median(new) <= 0:
        return math.nan, math.nan, math.nan
    point = float(np.median(base) / np.median(new))
    if base.size < 2 or new.size < 2:
        return point, math.nan, math.nan
    rng = np.random.default_rng(seed)
    base_medians = np.median(rng.choice(base, (resamples, base.size)), axis=1)
    new_medians = np.median(rng.choice(new, (resamples, new.size)), axis=1)
    ratios = base_medians / new_medians
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return point, float(low), float(high)


# ----------------------------------------------------------------- stages --

def _problem_value(problem: str, key: str) -> int | None:
    from dnnprof.parsers.fields import FieldError, parse_problem

    try:
        return parse_problem(problem).get(key)
    except (FieldError, ValueError):  # a descriptor the grammar keeps as text
        return None


def stages_from_shapes(rows: pd.DataFrame) -> pd.Series:
    """Stage of each primitive from convolution output sizes; others take the next compute one's."""
    stage = pd.Series([None] * len(rows), index=rows.index, dtype=object)
    convs = rows[rows["kind"].isin(["convolution"])]
    if convs.empty:
        return stage
    heights = {p: _problem_value(p, "oh") for p in convs["problem"].astype(str).unique()}
    stem_height = max((h for h in heights.values() if h), default=None)
    if not stem_height:
        return stage
    for index, problem in convs["problem"].astype(str).items():
        height = heights.get(problem)
        if not height:
            continue
        if height == stem_height:
            stage[index] = "conv1"
        else:
            level = round(math.log2(stem_height / height))
            stage[index] = f"conv{min(level, 4) + 1}_x" if level >= 1 else "conv1"
    is_head = rows["kind"].isin(["inner_product", "matmul", "gemm_api"])
    stage[is_head] = "fc"
    # Reorders and elementwise rows belong to the compute primitive they feed.
    return stage.bfill().ffill()


def primitive_roles(rows: pd.DataFrame) -> pd.Series:
    """The ROLES entry of each exec row."""
    kinds = rows["kind"].astype(str)
    compute = kinds.isin(COMPUTE_KINDS)
    has_post = rows["post_ops"].astype(str) != ""
    role = np.select(
        [compute & has_post, compute, kinds.isin(FUSABLE_KINDS), kinds == "reorder"],
        list(ROLES[:4]),
        default=ROLES[4],
    )
    return pd.Series(role, index=rows.index)


def looks_like_resnet(variant: Variant) -> bool:
    """True for ResNet models: by name, by layer names, or by the 7x7/2 stem on 3 channels."""
    model = str(variant.meta.get("model") or "").lower()
    if "resnet" in model:
        return True
    if model:
        return False
    layers = variant.steady["layer_name"].astype(str)
    if layers.str.contains(r"(?:^|\.)layer[1-4]\.|stage[1-4]_", regex=True).any():
        return True
    convs = variant.steady[variant.steady["kind"] == "convolution"]
    if convs.empty:
        return False
    first = str(convs["problem"].iloc[0])
    return all(_problem_value(first, k) == v for k, v in (("ic", 3), ("kh", 7), ("sh", 2)))


# ------------------------------------------------------------- comparison --


def _per_iter(series: pd.Series, variant: Variant) -> pd.Series:
    return series / variant.divisor


def _most_time(frame: pd.DataFrame, column: str) -> str:
    if frame.empty:
        return ""
    totals = frame.groupby(column, observed=True)["duration_ms"].sum()
    return str(totals.idxmax()) if len(totals) else ""


class Comparison:
    """Variants and a baseline; every report table is a DataFrame property, computed once."""

    def __init__(self, variants: Sequence[Variant], baseline: str | None = None) -> None:
        if not variants:
            raise ReportInputError("nothing to report: pass at least one trace")
        self.variants = list(variants)
        self.baseline = self._pick_baseline(baseline)
        self._top_cache: dict[int, pd.DataFrame] = {}

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], baseline: str | None = None) -> Comparison:
        """Load each run folder / trace / log and compare them."""
        loaded = []
        notes: list[list[str]] = []
        for path in paths:
            trace, load_notes = load_trace(path)
            loaded.append((trace, str(path)))
            notes.append(load_notes)
        variants = make_variants(loaded)
        for variant, load_notes in zip(variants, notes, strict=True):
            variant.notes.extend(load_notes)
        return cls(variants, baseline)

    @classmethod
    def from_traces(
        cls, traces: Sequence[Trace], names: Sequence[str] | None = None, baseline: str | None = None
    ) -> Comparison:
        """Compare in-memory traces (names default to the metadata's variant or source)."""
        items: list[Any] = []
        for index, trace in enumerate(traces):
            source = str(trace.metadata.get("source") or f"trace {index + 1}")
            items.append((trace, source, names[index]) if names else (trace, source))
        return cls(make_variants(items), baseline)

    def _pick_baseline(self, wanted: str | None) -> Variant:
        if wanted is None:
            return self.variants[0]
        for variant in self.variants:
            if wanted in (variant.name, variant.source, Path(variant.source).name):
                return variant
        lowered = wanted.lower()
        matches = [v for v in self.variants if lowered in v.name.lower()]
        if len(matches) == 1:
            return matches[0]
        names = ", ".join(repr(v.name) for v in self.variants)
        raise ReportInputError(f"--baseline {wanted!r} matches none of the variants ({names})")

    def variant(self, name: str) -> Variant:
        """The variant with this display name."""
        return next(v for v in self.variants if v.name == name)

    @property
    def names(self) -> list[str]:
        """Variant names in input order."""
        return [v.name for v in self.variants]

    @property
    def is_single(self) -> bool:
        """True when there is nothing to compare against."""
        return len(self.variants) == 1

    # ---------------------------------------------------------- latency --

    @cached_property
    def latency_source(self) -> str:
        """'wall' when every variant has measured wall times, else 'oneDNN'."""
        has_wall = all(not v.wall_ms.empty for v in self.variants)
        return "wall" if has_wall else "oneDNN"

    def latency_samples(self, variant: Variant) -> pd.Series:
        """Per-iteration latency samples (ms) in the comparison's latency source."""
        return variant.wall_ms if self.latency_source == "wall" else variant.onednn_ms

    @cached_property
    def iteration_latency(self) -> pd.DataFrame:
        """One row per variant and measured iteration: oneDNN ms, wall ms, slowest primitive."""
        rows = []
        for v in self.variants:
            if v.steady.empty and v.wall_ms.empty:
                continue
            slowest = (
                v.steady.loc[v.steady.groupby("iteration")["duration_ms"].idxmax()]
                if not v.steady.empty else v.steady
            )
            slow_by_iter = slowest.set_index("iteration")
            iterations = sorted(set(v.onednn_ms.index) | set(v.wall_ms.index))
            for iteration in iterations:
                top = slow_by_iter.loc[iteration] if iteration in slow_by_iter.index else None
                rows.append({
                    "variant": v.name,
                    "iteration": int(iteration) if v.iterations_known else -1,
                    "onednn_ms": float(v.onednn_ms.get(iteration, math.nan)),
                    "wall_ms": float(v.wall_ms.get(iteration, math.nan)),
                    "slowest_layer": "" if top is None else str(top["layer_name"]),
                    "slowest_shape": "" if top is None else str(top["shape"]),
                    "slowest_kind": "" if top is None else str(top["kind"]),
                    "slowest_ms": math.nan if top is None else float(top["duration_ms"]),
                })
        columns = ["variant", "iteration", "onednn_ms", "wall_ms", "slowest_layer",
                   "slowest_shape", "slowest_kind", "slowest_ms"]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def overview(self) -> pd.DataFrame:
        """One row per variant: versions, latency, coverage, speedup vs baseline with its CI."""
        base_samples = self.latency_samples(self.baseline)
        rows = []
        for v in self.variants:
            meta = v.meta
            samples = self.latency_samples(v)
            speedup = bootstrap_speedup(base_samples, samples)
            if v is self.baseline:
                speedup = (1.0, math.nan, math.nan) if len(samples) else speedup
            both = pd.concat([v.onednn_ms, v.wall_ms], axis=1, keys=["onednn", "wall"]).dropna()
            coverage = (
                float((both["onednn"] / both["wall"]).median())
                if v.iterations_known and not both.empty else math.nan
            )
            kinds = v.steady["kind"].astype(str)
            rows.append({
                "variant": v.name,
                "baseline": v is self.baseline,
                "model": meta.get("model") or "",
                "framework": " ".join(
                    str(x) for x in (meta.get("framework"), meta.get("framework_version")) if x
                ),
                "onednn_version": meta.get("onednn_version") or "",
                "isa": meta.get("isa") or "",
                "threads": meta.get("threads"),
                "batch": meta.get("batch"),
                "timeline": meta.get("timeline") or "",
                "measured_iterations": v.n_iterations if v.iterations_known else 0,
                "latency_source": self.latency_source,
                "median_ms": float(samples.median()) if len(samples) else math.nan,
                "onednn_ms": float(v.onednn_ms.median()) if len(v.onednn_ms) else math.nan,
                "wall_ms": float(v.wall_ms.median()) if len(v.wall_ms) else math.nan,
                "coverage": coverage,
                "primitives_per_iter": len(v.steady) / v.divisor,
                "reorders_per_iter": float((kinds == "reorder").sum()) / v.divisor,
                "speedup": speedup[0],
                "speedup_low": speedup[1],
                "speedup_high": speedup[2],
                "samples": len(samples),
                "source": v.source,
            })
        return pd.DataFrame(rows)

    # ------------------------------------------------------------- kinds --

    @cached_property
    def by_kind(self) -> pd.DataFrame:
        """Calls and ms per iteration by primitive kind and variant (Figures 4.6 and 4.9)."""
        frames = []
        for v in self.variants:
            if v.steady.empty:
                continue
            grouped = v.steady.groupby("kind", observed=True)
            table = pd.DataFrame({
                "calls_per_iter": _per_iter(grouped.size().astype(float), v),
                "ms_per_iter": _per_iter(grouped["duration_ms"].sum(), v),
            })
            total = table["ms_per_iter"].sum()
            table["share"] = table["ms_per_iter"] / total if total > 0 else 0.0
            table = table.join(_tops(v.steady, ["kind"]))
            table.index = table.index.astype(str)
            frames.append(table.reset_index(names="kind").assign(variant=v.name))
        return _concat(frames, ["variant", "kind", "calls_per_iter", "ms_per_iter", "share",
                                "top_layer", "top_shape"])

    # ------------------------------------------------------------ layers --

    @cached_property
    def by_layer(self) -> pd.DataFrame:
        """Per layer and variant (with layer labels): the Trace's by_layer() per iteration,
        plus shape, post-ops and primitive mix for hover text; unlabelled rows as one row."""
        frames = []
        for v in self.variants:
            if not v.layers_known or v.steady.empty:
                continue
            views = v.trace.by_layer()  # the reconstructor's numbers, one code path
            rows = v.steady
            compute = rows[rows["kind"].isin(COMPUTE_KINDS)]
            grouped = rows.groupby("layer_name", sort=False)
            table = pd.DataFrame({
                "layer": views["layer"].astype(str),
                "layer_type": views["layer_type"].astype(str),
                "ms_per_iter": views["mean_ms"].astype(float),
                "compute_ms_per_iter": (views["total_ms"] - views["reorder_ms"]) / v.divisor,
                "calls_per_iter": views["calls"] / v.divisor,
                "reorders_per_iter": views["reorders"] / v.divisor,
            })
            outside = rows[rows["layer_name"] == UNATTRIBUTED]
            if not outside.empty:
                reorder_ms = outside.loc[outside["kind"] == "reorder", "duration_ms"].sum()
                table.loc[len(table)] = {
                    "layer": UNATTRIBUTED, "layer_type": "",
                    "ms_per_iter": outside["duration_ms"].sum() / v.divisor,
                    "compute_ms_per_iter": (outside["duration_ms"].sum() - reorder_ms)
                    / v.divisor,
                    "calls_per_iter": len(outside) / v.divisor,
                    "reorders_per_iter": float((outside["kind"] == "reorder").sum()) / v.divisor,
                }
            shape = compute.groupby("layer_name", sort=False)["shape"].first()
            any_shape = grouped["shape"].first()
            post_ops = compute.groupby("layer_name", sort=False)["post_ops"].first()
            table["kinds"] = table["layer"].map(_kinds_text(rows, "layer_name", v.divisor))
            table["shape"] = table["layer"].map(shape).fillna(table["layer"].map(any_shape))
            table["post_ops"] = table["layer"].map(post_ops).astype(str).replace("nan", "")
            order = grouped["line"].min()
            table = table.assign(order=table["layer"].map(order)).sort_values("order")
            table["position"] = range(len(table))
            frames.append(table.drop(columns="order").assign(variant=v.name))
        return _concat(frames, ["variant", "layer", "layer_type", "position", "ms_per_iter",
                                "compute_ms_per_iter", "calls_per_iter", "reorders_per_iter",
                                "kinds", "shape", "post_ops"])

    @cached_property
    def layer_speedup(self) -> pd.DataFrame:
        """Per-layer baseline ms / variant ms for layers present (by name) in both."""
        layers = self.by_layer
        columns = ["variant", "layer", "layer_type", "position", "shape", "baseline_ms",
                   "variant_ms", "speedup", "ratio", "baseline_compute_ms", "variant_compute_ms"]
        if layers.empty or self.is_single:
            return pd.DataFrame(columns=columns)
        base = layers[(layers["variant"] == self.baseline.name) & (layers["layer"] != UNATTRIBUTED)]
        frames = []
        for v in self.variants:
            if v is self.baseline:
                continue
            mine = layers[(layers["variant"] == v.name) & (layers["layer"] != UNATTRIBUTED)]
            merged = base.merge(mine, on="layer", suffixes=("_base", ""))
            if merged.empty:
                continue
            frames.append(pd.DataFrame({
                "variant": v.name,
                "layer": merged["layer"],
                "layer_type": merged["layer_type"],
                "position": merged["position_base"],
                "shape": merged["shape"],
                "baseline_ms": merged["ms_per_iter_base"],
                "variant_ms": merged["ms_per_iter"],
                "speedup": merged["ms_per_iter_base"] / merged["ms_per_iter"],
                "ratio": merged["ms_per_iter"] / merged["ms_per_iter_base"],
                "baseline_compute_ms": merged["compute_ms_per_iter_base"],
                "variant_compute_ms": merged["compute_ms_per_iter"],
            }))
        return _concat(frames, columns).sort_values(["variant", "position"]).reset_index(drop=True)

    @cached_property
    def by_stage(self) -> pd.DataFrame:
        """ResNet stage roll-ups (conv1, conv2_x ... conv5_x, fc) per variant (Figure 4.2)."""
        frames = []
        for v in self.variants:
            if v.steady.empty or not looks_like_resnet(v):
                continue
            rows = v.steady
            if v.layers_known and v.layer_mode != "heuristic":
                stage = rows["layer_name"].map(resnet_stage)
                method = "layer names"
                # Rows outside any layer (ATen glue) join the compute primitive they feed.
                stage = stage.where(rows["layer_name"] != UNATTRIBUTED)
                fallback = stages_from_shapes(rows)
                stage = stage.fillna(fallback)
            else:
                stage = stages_from_shapes(rows)
                method = "convolution output sizes"
            if stage.isna().all():
                continue
            staged = rows.assign(stage=stage).dropna(subset=["stage"])
            grouped = staged.groupby("stage")
            table = pd.DataFrame({
                "ms_per_iter": _per_iter(grouped["duration_ms"].sum(), v),
                "calls_per_iter": _per_iter(grouped.size().astype(float), v),
            }).join(_tops(staged, ["stage"]))
            table = table.reindex([s for s in STAGES if s in table.index])
            frames.append(table.reset_index(names="stage").assign(variant=v.name, method=method))
        return _concat(frames, ["variant", "stage", "ms_per_iter", "calls_per_iter",
                                "top_layer", "top_shape", "method"])

    # ------------------------------------------------------------ fusion --

    @cached_property
    def fused_primitives(self) -> pd.DataFrame:
        """Compute primitives carrying post-ops: the layers that became one primitive."""
        frames = []
        for v in self.variants:
            rows = v.steady[v.steady["kind"].isin(COMPUTE_KINDS)]
            merged = rows["fused_layers"].str.contains("+", regex=False)
            rows = rows[(rows["post_ops"].astype(str) != "") | merged]
            if rows.empty:
                continue
            rows = rows.assign(
                fused=rows["fused_layers"].where(merged, "").str.replace("+", " + ")
            )
            grouped = rows.groupby(["layer_name", "kind", "shape", "post_ops", "fused"],
                                   observed=True, sort=False)
            table = pd.DataFrame({
                "layer_type": grouped["layer_type"].first().astype(str),
                "order": grouped["line"].min(),
                "calls_per_iter": _per_iter(grouped.size().astype(float), v),
                "ms_per_iter": _per_iter(grouped["duration_ms"].sum(), v),
            }).sort_values("order").drop(columns="order").reset_index()
            table["layer"] = table.pop("layer_name").astype(str)
            table["kind"] = table["kind"].astype(str)
            table["post_ops"] = table["post_ops"].astype(str)
            post = table["post_ops"].str.replace("+", " + ")
            table["became"] = table["kind"] + (" + " + post).where(post != "", "")
            table["fused_layers"] = table.pop("fused").astype(str)
            frames.append(table.assign(variant=v.name))
        return _concat(frames, ["variant", "layer", "layer_type", "kind", "shape", "post_ops",
                                "became", "fused_layers", "calls_per_iter", "ms_per_iter"])

    @cached_property
    def fusion_roles(self) -> pd.DataFrame:
        """Primitives per iteration by role (see ROLES) per variant, with an example each."""
        frames = []
        for v in self.variants:
            if v.steady.empty:
                continue
            rows = v.steady.assign(role=primitive_roles(v.steady))
            grouped = rows.groupby("role", sort=False)
            table = pd.DataFrame({
                "calls_per_iter": _per_iter(grouped.size().astype(float), v),
                "ms_per_iter": _per_iter(grouped["duration_ms"].sum(), v),
            }).join(_tops(rows, ["role"]))
            table = table.reindex([r for r in ROLES if r in table.index])
            frames.append(table.reset_index(names="role").assign(variant=v.name))
        return _concat(frames, ["variant", "role", "calls_per_iter", "ms_per_iter",
                                "top_layer", "top_shape"])

    @cached_property
    def fusion_summary(self) -> pd.DataFrame:
        """One row per variant: primitives per iteration by role and by fusable kind, post-ops."""
        roles = self.fusion_roles.pivot_table(
            index="variant", columns="role", values="calls_per_iter", aggfunc="sum"
        )
        rows = []
        for v in self.variants:
            kinds = v.steady["kind"].astype(str)
            fused = v.steady.loc[primitive_roles(v.steady) == ROLES[0], "post_ops"]
            names = fused.astype(str).str.split("+").explode().str.split(":").str[0]
            row: dict[str, Any] = {"variant": v.name}
            for role in ROLES:
                value = roles.at[v.name, role] if v.name in roles.index and role in roles else 0
                row[role] = 0.0 if pd.isna(value) else float(value)
            for kind in FUSABLE_KINDS:
                row[kind] = float((kinds == kind).sum()) / v.divisor
            row["post_ops"] = ", ".join(
                f"{name} x{count / v.divisor:g}" for name, count in names.value_counts().items()
            )
            rows.append(row)
        return pd.DataFrame(rows, columns=["variant", *ROLES, *FUSABLE_KINDS, "post_ops"])

    @cached_property
    def structural_changes(self) -> list[str]:
        """Deterministic differences against the baseline, as sentences (plain text)."""
        if self.is_single:
            return []
        summary = self.fusion_summary.set_index("variant")
        base = summary.loc[self.baseline.name]
        base_dtypes = set(self.baseline.steady["src_dt"].astype(str)) - {""}
        base_isa = set(self.baseline.steady["isa"].astype(str)) - {""}
        changes = []
        for v in self.variants:
            if v is self.baseline:
                continue
            mine = summary.loc[v.name]
            for kind in FUSABLE_KINDS:
                if base[kind] > 0 and mine[kind] < base[kind]:
                    changes.append(
                        f"{v.name}: standalone {kind} primitives {base[kind]:g} -> "
                        f"{mine[kind]:g} per iteration (folded into post-ops or left to the "
                        "framework)"
                    )
            fused = ROLES[0]
            if mine[fused] != base[fused]:
                changes.append(
                    f"{v.name}: compute primitives with post-ops {base[fused]:g} -> "
                    f"{mine[fused]:g} per iteration"
                )
            if mine["reorder"] != base["reorder"]:
                changes.append(
                    f"{v.name}: reorders {base['reorder']:g} -> {mine['reorder']:g} per iteration"
                )
            dtypes = set(v.steady["src_dt"].astype(str)) - {""}
            if dtypes != base_dtypes:
                changes.append(
                    f"{v.name}: source data types {sorted(base_dtypes)} -> {sorted(dtypes)}"
                )
            isas = set(v.steady["isa"].astype(str)) - {""}
            if isas != base_isa:
                changes.append(f"{v.name}: ISAs {sorted(base_isa)} -> {sorted(isas)}")
        return changes

    # ---------------------------------------------------------- reorders --

    @cached_property
    def reorders(self) -> pd.DataFrame:
        """Reorder count, ms per iteration and share of oneDNN time per variant."""
        rows = []
        for v in self.variants:
            reorder = v.steady[v.steady["kind"] == "reorder"]
            total = float(v.steady["duration_ms"].sum())
            top_layer, top_shape = _top_row(reorder)
            rows.append({
                "variant": v.name,
                "reorders_per_iter": len(reorder) / v.divisor,
                "reorder_ms_per_iter": float(reorder["duration_ms"].sum()) / v.divisor,
                "share": float(reorder["duration_ms"].sum()) / total if total > 0 else math.nan,
                "top_layer": top_layer,
                "top_shape": top_shape,
            })
        return pd.DataFrame(rows)

    @cached_property
    def reorder_detail(self) -> pd.DataFrame:
        """Reorders by (source format -> destination format, data types) per variant."""
        frames = []
        for v in self.variants:
            rows = v.steady[v.steady["kind"] == "reorder"]
            if rows.empty:
                continue
            rows = rows.assign(
                formats=rows["src_fmt"].astype(str) + " -> " + rows["dst_fmt"].astype(str),
                types=rows["src_dt"].astype(str) + " -> " + rows["dst_dt"].astype(str),
            )
            grouped = rows.groupby(["reorder_class", "formats", "types"], sort=False)
            table = pd.DataFrame({
                "calls_per_iter": _per_iter(grouped.size().astype(float), v),
                "ms_per_iter": _per_iter(grouped["duration_ms"].sum(), v),
                "layers": grouped["layer_name"].apply(_layers_text),
                "shape": grouped["shape"].first(),
            }).sort_values("ms_per_iter", ascending=False).reset_index()
            frames.append(table.assign(variant=v.name))
        return _concat(frames, ["variant", "reorder_class", "formats", "types",
                                "calls_per_iter", "ms_per_iter", "layers", "shape"])

    # ------------------------------------------------------ types and ISA --

    @cached_property
    def dtypes(self) -> pd.DataFrame:
        """Calls and ms per iteration by (src/weights/dst) data types per variant."""
        return self._breakdown(["dtypes"])

    @cached_property
    def implementations(self) -> pd.DataFrame:
        """Calls and ms per iteration by primitive kind, implementation and ISA per variant."""
        return self._breakdown(["kind", "impl", "isa_name"])

    @cached_property
    def isas(self) -> pd.DataFrame:
        """Calls and ms per iteration by ISA per variant."""
        return self._breakdown(["isa_name"])

    def _breakdown(self, keys: list[str]) -> pd.DataFrame:
        frames = []
        for v in self.variants:
            if v.steady.empty:
                continue
            grouped = v.steady.groupby(keys, observed=True, sort=False)
            total = float(v.steady["duration_ms"].sum())
            table = pd.DataFrame({
                "calls_per_iter": _per_iter(grouped.size().astype(float), v),
                "ms_per_iter": _per_iter(grouped["duration_ms"].sum(), v),
            })
            table["share"] = table["ms_per_iter"] * v.divisor / total if total > 0 else math.nan
            table = table.join(_tops(v.steady, keys))
            table = table.sort_values("ms_per_iter", ascending=False).reset_index()
            for key in keys:
                table[key] = table[key].astype(str)
            frames.append(table.assign(variant=v.name))
        return _concat(frames, ["variant", *keys, "calls_per_iter", "ms_per_iter", "share",
                                "top_layer", "top_shape"])

    # ------------------------------------------------------ top primitives --

    def top_primitives(self, n: int = 10) -> pd.DataFrame:
        """The n distinct primitives with the most time per variant, with shape and GFLOP/s."""
        if n not in self._top_cache:
            self._top_cache[n] = self._top_primitives(n)
        return self._top_cache[n]

    def _top_primitives(self, n: int) -> pd.DataFrame:
        frames = []
        for v in self.variants:
            if v.steady.empty:
                continue
            grouped = v.steady.groupby("desc_id", sort=False)
            table = grouped.agg(
                kind=("kind", "first"), impl=("impl", "first"), shape=("shape", "first"),
                dtypes=("dtypes", "first"), post_ops=("post_ops", "first"),
                flops=("flops", "first"), calls=("duration_ms", "size"),
                total_ms=("duration_ms", "sum"), mean_ms=("duration_ms", "mean"),
            )
            table["layers"] = grouped["layer_name"].apply(_layers_text)
            table["calls_per_iter"] = table.pop("calls") / v.divisor
            table["ms_per_iter"] = table.pop("total_ms") / v.divisor
            table["gflops"] = table["flops"] / (table["mean_ms"] * 1e6)
            table = table.sort_values("ms_per_iter", ascending=False).head(n)
            for column in ("kind", "impl", "post_ops"):
                table[column] = table[column].astype(str)
            frames.append(table.drop(columns="flops").reset_index(drop=True)
                          .assign(variant=v.name))
        return _concat(frames, ["variant", "kind", "impl", "shape", "dtypes", "post_ops",
                                "layers", "calls_per_iter", "mean_ms", "ms_per_iter", "gflops"])

    # ---------------------------------------------------------- timeline --

    def timeline_iteration(self, variant: Variant) -> int | None:
        """The measured iteration whose oneDNN time is the median one (None if unknown)."""
        if not variant.iterations_known or variant.onednn_ms.empty:
            return None
        ordered = variant.onednn_ms.sort_values()
        return int(ordered.index[(len(ordered) - 1) // 2])

    def timeline(self, max_events: int = 3000) -> pd.DataFrame:
        """Primitive calls of one steady iteration per variant, start relative to its first call."""
        frames = []
        for v in self.variants:
            if v.steady.empty:
                continue
            iteration = self.timeline_iteration(v)
            rows = v.steady if iteration is None else v.steady[v.steady["iteration"] == iteration]
            rows = rows.head(max_events)
            start = rows["start_ms"] - rows["start_ms"].min()
            frames.append(pd.DataFrame({
                "variant": v.name,
                "iteration": -1 if iteration is None else iteration,
                "start_ms": start.to_numpy(),
                "duration_ms": rows["duration_ms"].to_numpy(),
                "kind": rows["kind"].astype(str).to_numpy(),
                "layer": rows["layer_name"].astype(str).to_numpy(),
                "shape": rows["shape"].to_numpy(),
                "impl": rows["impl"].astype(str).to_numpy(),
                "timeline": str(v.meta.get("timeline") or "synthetic"),
            }))
        return _concat(frames, ["variant", "iteration", "start_ms", "duration_ms", "kind",
                                "layer", "shape", "impl", "timeline"])

    # ------------------------------------------------------------- notes --

    @cached_property
    def notes(self) -> dict[str, list[str]]:
        """Per report section, plain-text explanations of what is missing and why."""
        notes: dict[str, list[str]] = {key: [] for key in (
            "overview", "kinds", "layers", "stages", "fusion", "reorders", "types", "top",
            "timeline")}
        overview = notes["overview"]
        for v in self.variants:
            overview.extend(f"{v.name}: {note}" for note in v.notes)
            meta = v.meta
            for warning in meta.get("warnings", [])[:5]:
                overview.append(f"{v.name}: log warning: {warning}")
            reconstruction = meta.get("reconstruction") or {}
            for warning in (reconstruction.get("warnings") or [])[:5]:
                overview.append(f"{v.name}: reconstruction: {warning}")
            unparsed = (meta.get("counts") or {}).get("unparsed", 0)
            if unparsed:
                overview.append(f"{v.name}: {unparsed} log lines did not parse (see `dnnprof parse`)")
            if v.steady.empty:
                overview.append(
                    f"{v.name}: no oneDNN primitive executed in this log (e.g. fp32 DLRM in "
                    "PyTorch runs its Linear layers in MKL), so there is nothing to break down"
                )
            elif not v.iterations_known:
                overview.append(
                    f"{v.name}: iterations are unknown (no markers and no reconstruction), so "
                    "every per-iteration figure is the total over the whole log, warm-up and "
                    "calibration included"
                )
            elif not v.phases_known:
                overview.append(
                    f"{v.name}: warm-up iterations are not identified; all iterations count"
                )
            if v.wall_ms.empty:
                overview.append(
                    f"{v.name}: no wall times in the metadata (a parsed log, not a `dnnprof "
                    "trace` run), so oneDNN coverage of wall time is unknown"
                )
        for v in self.variants:
            samples = self.latency_samples(v)
            if len(samples) >= 2 and samples.min() > 0 and samples.max() / samples.min() > 1.5:
                overview.append(
                    f"{v.name}: iterations range from {samples.min():.1f} to {samples.max():.1f} "
                    "ms; timings this uneven usually mean other processes shared the CPU, so "
                    "read its speedup interval, not the point estimate"
                )
        if self.latency_source != "wall":
            overview.append(
                "latency = oneDNN exec time per iteration (not every variant has wall times); "
                "it leaves out framework time outside oneDNN"
            )
        if self.is_single:
            overview.append("one variant: there is no baseline to compute a speedup against")
        elif any(s < 2 for s in self.overview["samples"]):
            overview.append(
                "a confidence interval needs at least two iterations per variant; variants "
                "with fewer show the point estimate only"
            )
        no_layers = [v.name for v in self.variants if not v.layers_known]
        if no_layers:
            notes["layers"].append(
                "no layer labels in: " + ", ".join(no_layers) + " (compiled or hybridized graphs "
                "run no per-layer hooks, and a parsed log without markers has no layers; run the "
                "reconstructor, or `dnnprof trace` with markers)"
            )
        heuristic = [v.name for v in self.variants if v.layer_mode == "heuristic"]
        if heuristic:
            notes["layers"].append(
                "layers grouped heuristically (a compute primitive plus the element-wise ones "
                "after it; named conv1, conv2 ... in order) in: " + ", ".join(heuristic)
                + "; such names match across variants only when both run the same primitives"
            )
        if not self.is_single and not self.layer_speedup.empty:
            matched = self.layer_speedup.groupby("variant").size()
            for v in self.variants:
                if v is not self.baseline and v.layers_known and v.name not in matched.index:
                    notes["layers"].append(
                        f"{v.name}: no layer names in common with the baseline "
                        f"{self.baseline.name}, so no per-layer speedup"
                    )
        elif not self.is_single and self.baseline.layers_known is False:
            notes["layers"].append(
                f"per-layer speedup needs layer labels in the baseline ({self.baseline.name})"
            )
        not_resnet = [v.name for v in self.variants if not v.steady.empty
                      and not looks_like_resnet(v)]
        if not_resnet:
            notes["stages"].append(
                "stage roll-ups (conv1, conv2_x ... conv5_x, fc) apply to ResNets only; skipped: "
                + ", ".join(not_resnet)
            )
        by_shape = self.by_stage[self.by_stage["method"] == "convolution output sizes"]
        if not by_shape.empty:
            notes["stages"].append(
                "without layer labels, stages come from convolution output sizes (112, 56, 28, "
                "14, 7 for a 224 input); reorders and other primitives join the convolution "
                "that follows them: " + ", ".join(by_shape["variant"].unique())
            )
        if self.fused_primitives.empty:
            notes["fusion"].append(
                "no compute primitive carries post-ops in any variant: nothing was fused in oneDNN"
            )
        synthetic = [v.name for v in self.variants
                     if str(v.meta.get("timeline") or "synthetic") != "timestamps"]
        if synthetic:
            notes["timeline"].append(
                "no oneDNN timestamps (ONEDNN_VERBOSE_TIMESTAMP=1) in: " + ", ".join(synthetic)
                + "; their calls are laid end to end, so time spent outside oneDNN between "
                "calls does not show"
            )
        unknown_iters = [v.name for v in self.variants
                         if not v.steady.empty and not v.iterations_known]
        if unknown_iters:
            notes["timeline"].append(
                "iterations unknown in: " + ", ".join(unknown_iters)
                + "; the timeline shows the start of the log instead of one iteration"
            )
        flops_missing = self.top_primitives()["gflops"].isna().all()
        if flops_missing and not self.top_primitives().empty:
            notes["top"].append("no primitive here has a FLOP count (GFLOP/s needs conv/matmul)")
        return notes

    # ------------------------------------------------------------ export --

    def to_json(self) -> dict[str, Any]:
        """Every table as records (NaN -> null), for `--json` and notebooks."""
        tables = {
            "overview": self.overview,
            "iteration_latency": self.iteration_latency,
            "by_kind": self.by_kind,
            "by_layer": self.by_layer,
            "layer_speedup": self.layer_speedup,
            "by_stage": self.by_stage,
            "fused_primitives": self.fused_primitives,
            "fusion_summary": self.fusion_summary,
            "fusion_roles": self.fusion_roles,
            "reorders": self.reorders,
            "reorder_detail": self.reorder_detail,
            "dtypes": self.dtypes,
            "isas": self.isas,
            "implementations": self.implementations,
            "top_primitives": self.top_primitives(),
        }
        return {
            "baseline": self.baseline.name,
            "variants": self.names,
            "latency_source": self.latency_source,
            **{name: records(table) for name, table in tables.items()},
            "structural_changes": self.structural_changes,
            "notes": self.notes,
        }


# ---------------------------------------------------------------- helpers --


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts (NaN and NA become None, numpy scalars plain)."""
    out = []
    for row in table.to_dict(orient="records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value if isinstance(value, (int, str)) else str(value)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _tops(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`: the layer and the shape with the most time (for hover text)."""
    out = {}
    for column, name in (("layer_name", "top_layer"), ("shape", "top_shape")):
        totals = rows.groupby([*keys, column], observed=True, sort=False)["duration_ms"].sum()
        if totals.empty:
            out[name] = pd.Series(dtype=str)
            continue
        best = totals.groupby(level=list(range(len(keys))), observed=True).idxmax()
        out[name] = best.map(lambda index: str(index[-1]))
    return pd.DataFrame(out)


def _top_row(rows: pd.DataFrame) -> tuple[str, str]:
    """(layer, shape) with the most time among rows; empty strings when there are none."""
    if rows.empty:
        return "", ""
    top = _tops(rows.assign(_all=0), ["_all"]).iloc[0]
    return str(top["top_layer"]), str(top["top_shape"])


def _layers_text(values: pd.Series, limit: int = 3) -> str:
    names = list(dict.fromkeys(values.astype(str)))
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _kinds_text(rows: pd.DataFrame, key: str, divisor: int) -> pd.Series:
    """Per value of `key`: 'reorder x3, convolution x1' (calls per iteration, most first)."""
    counts = rows.groupby([key, "kind"], observed=True, sort=False).size()
    counts = counts[counts > 0].sort_values(ascending=False)
    text = counts.groupby(level=0, sort=False).apply(
        lambda group: ", ".join(f"{kind} x{n / divisor:g}" for (_, kind), n in group.items())
    )
    return text
