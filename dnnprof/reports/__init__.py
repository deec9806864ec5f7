"""Reports: one comparison model, read by an HTML page (Plotly) and by terminal tables (rich).

    variants     traces as named variants: steady rows, per-iteration oneDNN and wall time
    compare      Comparison: variants + a baseline, every table computed once
    tables       where the time goes: kinds, layers, stages, types, top primitives, timeline
    structure    what runs: fusion, reorders, structural changes against the baseline
    notes        what a comparison lacks, and why, per report section
    plotting     Plotly building blocks and the one loop behind the grouped charts
    figures      the charts by key
    page_tables  the HTML page's tables;  html  the page itself
    console      rich tables and `--json`

The public names below load lazily, so importing this package costs nothing until a
report is made (`dnnprof --help` must not load pandas or plotly).
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "Comparison": "dnnprof.reports.compare",
    "bootstrap_speedup": "dnnprof.reports.compare",
    "Variant": "dnnprof.reports.variants",
    "open_variants": "dnnprof.reports.variants",
    "render_html": "dnnprof.reports.html",
    "write_html": "dnnprof.reports.html",
    "write_report": "dnnprof.reports.html",
    "print_comparison": "dnnprof.reports.console",
    "comparison_json": "dnnprof.reports.console",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """`dnnprof.reports.Comparison` and the other public names, imported on first use."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'dnnprof.reports' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
