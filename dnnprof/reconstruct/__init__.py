"""Layer reconstruction: events -> iterations -> layers, fused groups and reorders.

`reconstruct(trace, layers=None, model=None)` returns a new Trace whose events carry
`iteration`, `phase`, `layer`, `layer_type`, `fused_layers`, `is_reorder`,
`reorder_class` and `attribution`, choosing the mode from what is available:

1. ``markers``   the log has dnnprof's begin/end module markers: exact attribution;
2. ``align``     a layer table is known (``layers=``, ``model=``, or a ``meta,layer_table``
                 marker): the primitive stream is aligned with it by kind and shape;
3. ``heuristic`` neither: the thesis' grouping (conv + following element-wise = one layer).

Iterations come from ``iter_begin/iter_end`` markers when present, else from the periodic
structure of the exec stream. `trace.metadata.reconstruction` records the mode, a score,
the coverage and any warnings (a layer table that does not fit the log says so, with its
alignment score, and the heuristic grouping is used instead).

Modules, in the order `reconstruct()` uses them: `columns` (the events frame as arrays),
`primitives` (what each descriptor computes), `markers` (the `#DNNPROF` rows), `layers`
(layer tables), `iterations`, `attribution` (the three modes, over `align` and `heuristic`),
`reorders` (who needs each reorder, and its class), `summaries` (what the metadata records),
`pipeline` (`reconstruct` itself).
"""

from __future__ import annotations

from dnnprof.reconstruct.layers import LayerTableError, available_models, load_table, model_table
from dnnprof.reconstruct.pipeline import GOOD_ALIGNMENT_SCORE, MIN_ALIGNMENT_SCORE, reconstruct

__all__ = [
    "LayerTableError",
    "MIN_ALIGNMENT_SCORE",
    "GOOD_ALIGNMENT_SCORE",
    "available_models",
    "load_table",
    "model_table",
    "reconstruct",
]
