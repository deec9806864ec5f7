"""`reconstruct()`: the steps of a reconstruction in order, and the choice of mode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dnnprof.memory import release_freed_memory
from dnnprof.metadata import Reconstruction
from dnnprof.reconstruct import summaries
from dnnprof.reconstruct.attribution import Attribution, by_alignment, by_heuristic, by_markers
from dnnprof.reconstruct.columns import EventColumns, Labels, columns_of
from dnnprof.reconstruct.iterations import Pass, label_rows
from dnnprof.reconstruct.layers import LayerSpec, choose_table, normalize_table
from dnnprof.reconstruct.markers import MarkerInfo, read_markers
from dnnprof.reconstruct.reorders import row_classes
from dnnprof.trace import Trace, normalize_events

# Below this mean match quality a layer table is taken not to describe the log.
MIN_ALIGNMENT_SCORE = 0.6
# Below this the attribution is kept but flagged as a partial fit.
GOOD_ALIGNMENT_SCORE = 0.9
# Below this share of the table's convolutions found in the log, say so.
MIN_TABLE_COVERAGE = 0.75


def reconstruct(trace: Trace, layers: Any = None, model: str | None = None) -> Trace:
    """A new Trace with iterations, layers, fusion and reorders attributed (see the package doc)."""
    result = _reconstructed(trace, layers, model)
    release_freed_memory(len(result.events))  # the working arrays of every step, now freed
    return result


def _reconstructed(trace: Trace, layers: Any, model: str | None) -> Trace:
    """The reconstruction itself (`reconstruct` releases its working memory after it)."""
    # the input trace is never modified: a new frame whose columns are the input's until
    # replaced (no copy of a ten-million-row frame), and a copy of the metadata
    events = trace.events.copy(deep=False)
    metadata = trace.metadata.copy()
    columns = columns_of(events)
    info = read_markers(events)
    warnings = [f"marker: {p}" for p in info.problems[:20]]
    table_rows, table_source = choose_table(layers, model, info.layer_table, metadata.layer_table)
    specs = normalize_table(table_rows) if table_rows else None

    truncated = any("truncated" in str(w) for w in metadata.warnings)
    found, iteration, phase = label_rows(columns, info, truncated)
    events["iteration"] = iteration.astype(np.int32)
    events["phase"] = phase.categorical()
    steady = Trace.steady_mask(events)  # the one steady-state rule, on the rows just labelled

    out, mode, score, details = _attribute(columns, info, found.passes, specs, table_source,
                                           steady, warnings)
    reorder_class = row_classes(columns, [p.exec_rows for p in found.passes], steady)
    _write_layer_columns(events, columns, out, reorder_class)
    coverage, coverage_all = summaries.coverage(columns, out, iteration, steady)
    metadata.reconstruction = Reconstruction(
        mode=mode,
        score=None if score is None else round(float(score), 4),
        coverage=coverage,
        coverage_all=coverage_all,
        warnings=warnings + found.notes,
        layer_table={"source": table_source, "layers": len(specs) if specs else 0},
        iterations=summaries.iteration_summary(found, iteration, phase, columns),
        fusion=summaries.fusion_summary(out, specs),
        extra=details,
    )
    if specs is not None:
        metadata.layer_table = table_rows
    return Trace(normalize_events(events), metadata)


def _attribute(columns: EventColumns, info: MarkerInfo, passes: list[Pass],
               specs: list[LayerSpec] | None, source: str, steady: np.ndarray,
               warnings: list[str]) -> tuple[Attribution, str, float | None, dict[str, Any]]:
    """Run the mode the inputs allow: (attribution, mode, score, details); appends warnings."""
    out = Attribution(len(columns))
    if info.has_modules:
        return out, "markers", by_markers(columns, info, passes, out, specs, steady), {}
    if specs is None:
        by_heuristic(columns, passes, out)
        return out, "heuristic", None, {}
    fit = by_alignment(columns, passes, specs, out, steady)
    if fit is None:
        warnings.append(f"layer table {source} not used: the log has no oneDNN "
                        "primitives other than reorders to align with it")
        by_heuristic(columns, passes, out)
        return out, "heuristic", None, {}
    if fit.score < MIN_ALIGNMENT_SCORE:
        warnings.append(
            f"layer table {source} does not fit this log: alignment score {fit.score:.2f} "
            f"(1.0 = every primitive matches a layer in kind and shape; below "
            f"{MIN_ALIGNMENT_SCORE} it is not used). Layers were grouped heuristically "
            "instead: check the model name (--model) or pass the right table (--layers)."
        )
        out = Attribution(len(columns))
        by_heuristic(columns, passes, out)
        return out, "heuristic", fit.score, {**fit.details(), "rejected_alignment_score": fit.score}
    if fit.score < GOOD_ALIGNMENT_SCORE:
        warnings.append(
            f"layer table {source} fits this log only partly: alignment score "
            f"{fit.score:.2f}; layers without a good match are left unattributed")
    if fit.table_coverage is not None and fit.table_coverage < MIN_TABLE_COVERAGE:
        warnings.append(
            f"only {fit.table_coverage:.0%} of the convolutions in layer table {source} "
            f"were found in this log (alignment score {fit.score:.2f}): either the log is "
            "of a different depth or variant of the model, or the framework ran the "
            "missing convolutions itself (ATen keeps small 1x1 convs with "
            "OMP_NUM_THREADS=1)")
    return out, "align", fit.score, fit.details()


def _write_layer_columns(events: pd.DataFrame, columns: EventColumns, out: Attribution,
                         reorder_class: Labels) -> None:
    events["layer"] = out.layer.categorical()
    events["layer_type"] = out.layer_type.categorical()
    events["fused_layers"] = out.fused.categorical()
    events["is_reorder"] = columns.is_reorder | columns.reorder_kind
    events["reorder_class"] = reorder_class.categorical()
    events["attribution"] = out.how.categorical()
