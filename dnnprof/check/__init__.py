"""CI regression gate: a new trace against a stored baseline, statistical on timing, exact on structure."""

from __future__ import annotations

from dnnprof.check.cli import add_check_commands, run_baseline, run_check
from dnnprof.check.config import CheckConfig, ConfigError, load_config
from dnnprof.check.gate import check_traces
from dnnprof.check.inputs import CheckInputError, baseline_trace, load_input, save_baseline
from dnnprof.check.report import CheckReport, Finding

__all__ = [
    "CheckConfig",
    "CheckInputError",
    "CheckReport",
    "ConfigError",
    "Finding",
    "add_check_commands",
    "baseline_trace",
    "check_traces",
    "load_config",
    "load_input",
    "run_baseline",
    "run_check",
    "save_baseline",
]
