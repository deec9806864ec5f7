"""Corpus runs as the report tests see them: truth-labelled traces plus the runner's metadata.

`support.traces.labelled_corpus_trace` fills iterations, phases and modules from the
truth files (so report tests do not depend on the reconstructor's heuristics); this adds
what a `dnnprof trace` run folder would also carry: the wall time of every iteration and a
short variant name.
"""

from __future__ import annotations

import json
from pathlib import Path

from dnnprof.trace import Trace
from support.corpus import CORPUS
from support.traces import labelled_corpus_trace

# corpus log -> the variant name the reports show (model comes from the .meta.json)
REPORT_LOGS = {
    "torch_resnet50_fp32_eager_b1": "fp32_eager",
    "torch_resnet50_int8_fx_b1": "int8_fx",
    "torch_resnet50_compile_freezing_b1": "compile_freezing",
    "mxnet_resnet50_v1_fp32_b1": "mxnet_fp32",
}


def corpus_log(name: str) -> Path:
    """The corpus log, read in place."""
    return CORPUS / f"{name}.log"


def labelled_trace(name: str, wall: bool = True) -> Trace:
    """A fresh truth-labelled trace, with the meta.json wall times as metadata.wall_ms."""
    trace = labelled_corpus_trace(name)
    meta = json.loads((CORPUS / f"{name}.meta.json").read_text())
    trace.metadata.variant = REPORT_LOGS.get(name, meta.get("variant"))
    if wall:
        # index = iteration number (0 = warm-up), as the workload's `meta,wall_ms` marker
        trace.metadata.wall_ms = meta["wall_ms_per_iteration"]
    return trace
