"""CI regression gate: a new trace against a stored baseline, statistical on timing, exact on structure.

`check(new, baseline=...)` is the whole gate; `dnnprof check` and `dnnprof baseline` are its
command-line front ends (dnnprof/cli/check.py, dnnprof/cli/baseline.py).
"""

from __future__ import annotations

from dnnprof.check.config import CheckConfig, ConfigError, load_config
from dnnprof.check.gate import check, check_traces
from dnnprof.check.inputs import CheckInputError, baseline_trace, load_input, save_baseline
from dnnprof.check.report import CheckReport, Finding
from dnnprof.check.steady import SteadyStateError

__all__ = [
    "CheckConfig",
    "CheckInputError",
    "CheckReport",
    "ConfigError",
    "Finding",
    "SteadyStateError",
    "baseline_trace",
    "check",
    "check_traces",
    "load_config",
    "load_input",
    "save_baseline",
]
