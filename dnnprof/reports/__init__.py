"""Reports: comparison tables (compare), HTML with Plotly (html), rich tables (console)."""

from __future__ import annotations

from dnnprof.reports.cli_support import add_report_commands

__all__ = ["add_report_commands"]
