"""The comparison model behind every report: variants, a baseline, and each table once.

The HTML page, the console tables and `--json` all read a `Comparison`; none computes
anything itself. A single trace is a comparison of one variant, so `dnnprof report` and
`dnnprof compare` share every table. All times are per measured iteration (see
`reports.variants`). The tables themselves are built in `reports.tables` (where the time
goes) and `reports.structure` (fusion, reorders, structural changes); the explanations of
what is missing in `reports.notes`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.errors import InputError
from dnnprof.reports import notes as notes_of
from dnnprof.reports import structure, tables
from dnnprof.reports.frames import records
from dnnprof.reports.variants import Variant, make_variants, open_variants
from dnnprof.trace import Trace
from dnnprof.vocabulary import REORDER

BOOTSTRAP_RESAMPLES = 4000
CONFIDENCE = 0.95
BOOTSTRAP_BLOCK = 1 << 20  # resampled values drawn at a time (8 MB)


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
    base_medians = _resampled_medians(rng, base, resamples)
    new_medians = _resampled_medians(rng, new, resamples)
    ratios = base_medians / new_medians
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return point, float(low), float(high)


def _resampled_medians(rng: np.random.Generator, values: np.ndarray, resamples: int) -> np.ndarray:
    """The medians of `resamples` resamples of `values`, drawn a block of rows at a time:
    a long run has thousands of iterations, and all the resamples at once are thousands of
    times that many numbers. The generator gives the same draws in blocks as in one call."""
    rows = max(1, BOOTSTRAP_BLOCK // max(values.size, 1))
    return np.concatenate([
        np.median(rng.choice(values, (min(rows, resamples - start), values.size)), axis=1)
        for start in range(0, resamples, rows)
    ])


class Comparison:
    """Variants and a baseline; every report table is a DataFrame property, computed once."""

    def __init__(self, variants: Sequence[Variant], baseline: str | None = None) -> None:
        if not variants:
            raise InputError("nothing to report: pass at least one trace")
        self.variants = list(variants)
        self.baseline = self._pick_baseline(baseline)
        self._top_cache: dict[int, pd.DataFrame] = {}

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike[str]], baseline: str | None = None,
                   layers: bool = True) -> Comparison:
        """Open each run folder / stored trace / log (dnnprof.open) and compare them.

        With `layers` (the default), a log without iterations is reconstructed first.
        """
        return cls(open_variants(paths, layers=layers), baseline)

    @classmethod
    def from_traces(
        cls, traces: Sequence[Trace], names: Sequence[str] | None = None, baseline: str | None = None
    ) -> Comparison:
        """Compare in-memory traces (names default to the metadata's variant or source)."""
        items: list[Any] = []
        for index, trace in enumerate(traces):
            source = trace.metadata.source or f"trace {index + 1}"
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
        raise InputError(f"--baseline {wanted!r} matches none of the variants ({names})")

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
            # rows of unknown duration (NaN) cannot be the slowest: an iteration of only
            # those has no slowest primitive
            timed = v.steady[["iteration", "duration_ms", "layer_name", "shape", "kind"]]
            known = timed["duration_ms"].notna().to_numpy()
            timed = timed if known.all() else timed[known]  # no copy when all are known
            slowest = (
                timed.loc[timed.groupby("iteration")["duration_ms"].idxmax()]
                if not timed.empty else timed
            ).set_index("iteration")
            # one row per iteration, from whole columns (a long run has thousands)
            index = sorted(set(v.onednn_ms.index) | set(v.wall_ms.index))
            top = slowest.reindex(index)
            found = np.isin(index, slowest.index)
            texts = {name: np.where(found, top[column].astype(object).to_numpy(), "")
                     for name, column in (("slowest_layer", "layer_name"),
                                          ("slowest_shape", "shape"), ("slowest_kind", "kind"))}
            rows += [{
                "variant": v.name,
                "iteration": int(iteration) if v.iterations_known else -1,
                "onednn_ms": float(onednn),
                "wall_ms": float(wall),
                "slowest_layer": str(layer),
                "slowest_shape": str(shape),
                "slowest_kind": str(kind),
                "slowest_ms": float(ms) if has else math.nan,
            } for iteration, onednn, wall, layer, shape, kind, ms, has in zip(
                index, v.onednn_ms.reindex(index).to_numpy(dtype=float),
                v.wall_ms.reindex(index).to_numpy(dtype=float), texts["slowest_layer"],
                texts["slowest_shape"], texts["slowest_kind"],
                top["duration_ms"].to_numpy(dtype=float), found, strict=True)]
        columns = ["variant", "iteration", "onednn_ms", "wall_ms", "slowest_layer",
                   "slowest_shape", "slowest_kind", "slowest_ms"]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def overview(self) -> pd.DataFrame:
        """One row per variant: versions, latency, coverage, speedup vs baseline with its CI."""
        return pd.DataFrame([self._overview_row(v) for v in self.variants])

    def _overview_row(self, v: Variant) -> dict[str, Any]:
        meta = v.meta
        samples = self.latency_samples(v)
        if v is self.baseline and len(samples):
            speedup = (1.0, math.nan, math.nan)
        else:
            speedup = bootstrap_speedup(self.latency_samples(self.baseline), samples)
        both = pd.concat([v.onednn_ms, v.wall_ms], axis=1, keys=["onednn", "wall"]).dropna()
        coverage = (float((both["onednn"] / both["wall"]).median())
                    if v.iterations_known and not both.empty else math.nan)
        return {
            "variant": v.name,
            "baseline": v is self.baseline,
            "model": meta.model or "",
            "framework": " ".join(x for x in (meta.framework, meta.framework_version) if x),
            "onednn_version": meta.onednn_version or "",
            "isa": meta.isa or "",
            "threads": meta.threads,
            "batch": meta.batch,
            "timeline": meta.timeline or "",
            # how far to trust this variant's times: quiet | busy | unreliable | unknown
            "conditions": meta.run_conditions.verdict,
            "conditions_reason": meta.run_conditions.reason,
            "measured_iterations": v.n_iterations if v.iterations_known else 0,
            "latency_source": self.latency_source,
            "median_ms": float(samples.median()) if len(samples) else math.nan,
            "onednn_ms": float(v.onednn_ms.median()) if len(v.onednn_ms) else math.nan,
            "wall_ms": float(v.wall_ms.median()) if len(v.wall_ms) else math.nan,
            "coverage": coverage,
            "primitives_per_iter": len(v.steady) / v.divisor,
            "reorders_per_iter": float((v.steady["kind"] == REORDER).sum()) / v.divisor,
            "speedup": speedup[0],
            "speedup_low": speedup[1],
            "speedup_high": speedup[2],
            "samples": len(samples),
            "source": v.source,
        }

    # ---------------------------------------------------- where time goes --

    @cached_property
    def by_kind(self) -> pd.DataFrame:
        """Calls and ms per iteration by primitive kind and variant (Figures 4.6 and 4.9)."""
        return tables.by_kind(self.variants)

    @cached_property
    def by_layer(self) -> pd.DataFrame:
        """Per layer and variant (with layer labels), plus hover detail; see tables.by_layer."""
        return tables.by_layer(self.variants)

    @cached_property
    def layer_speedup(self) -> pd.DataFrame:
        """Per-layer baseline ms / variant ms for layers present (by name) in both."""
        return tables.layer_speedup(self.by_layer, self.variants, self.baseline)

    @cached_property
    def by_stage(self) -> pd.DataFrame:
        """ResNet stage roll-ups (conv1, conv2_x ... conv5_x, fc) per variant (Figure 4.2)."""
        return tables.by_stage(self.variants)

    @cached_property
    def dtypes(self) -> pd.DataFrame:
        """Calls and ms per iteration by (src/weights/dst) data types per variant."""
        return tables.breakdown(self.variants, ["dtypes"])

    @cached_property
    def implementations(self) -> pd.DataFrame:
        """Calls and ms per iteration by primitive kind, implementation and ISA per variant."""
        return tables.breakdown(self.variants, ["kind", "impl", "isa_name"])

    @cached_property
    def isas(self) -> pd.DataFrame:
        """Calls and ms per iteration by ISA per variant."""
        return tables.breakdown(self.variants, ["isa_name"])

    def top_primitives(self, n: int = 10) -> pd.DataFrame:
        """The n distinct primitives with the most time per variant, with shape and GFLOP/s."""
        if n not in self._top_cache:
            self._top_cache[n] = tables.top_primitives(self.variants, n)
        return self._top_cache[n]

    def timeline_iteration(self, variant: Variant) -> int | None:
        """The measured iteration whose oneDNN time is the median one (None if unknown)."""
        return tables.timeline_iteration(variant)

    def timeline(self, max_events: int = 3000) -> pd.DataFrame:
        """Primitive calls of one steady iteration per variant, start relative to its first call."""
        return tables.timeline(self.variants, max_events)

    # ------------------------------------------------------- what runs --

    @cached_property
    def fused_primitives(self) -> pd.DataFrame:
        """Compute primitives carrying post-ops: the layers that became one primitive."""
        return structure.fused_primitives(self.variants)

    @cached_property
    def fusion_roles(self) -> pd.DataFrame:
        """Primitives per iteration by role (see ROLES) per variant, with an example each."""
        return structure.fusion_roles(self.variants)

    @cached_property
    def fusion_summary(self) -> pd.DataFrame:
        """One row per variant: primitives per iteration by role and by fusable kind, post-ops."""
        return structure.fusion_summary(self.variants, self.fusion_roles)

    @cached_property
    def structural_changes(self) -> list[str]:
        """Deterministic differences against the baseline, as sentences (plain text)."""
        return structure.structural_changes(self.variants, self.baseline, self.fusion_summary)

    @cached_property
    def reorders(self) -> pd.DataFrame:
        """Reorder count, ms per iteration and share of oneDNN time per variant."""
        return structure.reorders(self.variants)

    @cached_property
    def reorder_detail(self) -> pd.DataFrame:
        """Reorders by (source format -> destination format, data types) per variant."""
        return structure.reorder_detail(self.variants)

    # ---------------------------------------------------- notes, export --

    @cached_property
    def conditions_banner(self) -> str:
        """A warning when a variant was measured on a busy or unreliable machine ('' if none)."""
        return notes_of.conditions_banner(self)

    @cached_property
    def notes(self) -> dict[str, list[str]]:
        """Per report section, plain-text explanations of what is missing and why."""
        return notes_of.comparison_notes(self)

    def to_json(self) -> dict[str, Any]:
        """Every table as records (NaN -> null), for `--json` and notebooks."""
        names = ("overview", "iteration_latency", "by_kind", "by_layer", "layer_speedup",
                 "by_stage", "fused_primitives", "fusion_summary", "fusion_roles", "reorders",
                 "reorder_detail", "dtypes", "isas", "implementations")
        every = {name: getattr(self, name) for name in names}
        every["top_primitives"] = self.top_primitives()
        return {
            "baseline": self.baseline.name,
            "variants": self.names,
            "latency_source": self.latency_source,
            "conditions_banner": self.conditions_banner,
            **{name: records(table) for name, table in every.items()},
            "structural_changes": self.structural_changes,
            "notes": self.notes,
        }
