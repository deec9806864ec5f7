"""Check settings: defaults, `[tool.dnnprof.check]` in pyproject.toml, or dnnprof.toml."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dnnprof.errors import DnnprofError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SEVERITIES = ("error", "warning", "info", "off")

# What each kind of finding is by default. Losses of what makes inference fast fail the
# build; the same change in the good direction is reported but never fails.
DEFAULT_SEVERITY: dict[str, str] = {
    "timing_regression": "error",  # total oneDNN time per iteration, significant and beyond tolerance
    "timing_improvement": "info",
    "timing_unclear": "info",  # beyond tolerance but not significant
    "timing_insufficient": "warning",  # too few iterations to judge
    "timing_declined": "warning",  # a run measured on an unreliable machine: not judged
    "layer_timing_regression": "warning",  # many layers tested at once: suspects, not verdicts
    "layer_timing_improvement": "info",
    "fusion_lost": "error",
    "fusion_gained": "info",
    "reorders_added": "error",
    "reorders_removed": "info",
    "kind_added": "warning",
    "kind_removed": "warning",
    "dtype_fallback": "error",  # wider data type than before (int8 -> f32, bf16 -> f32)
    "dtype_narrowed": "info",
    "dtype_changed": "warning",
    "isa_downgrade": "error",
    "isa_upgrade": "info",
    "impl_ref_fallback": "error",  # an optimised kernel replaced by a reference one
    "impl_changed": "warning",
    "prop_changed": "info",
    "shape_changed": "warning",
    # the new run lacks what the baseline ran: it crashed, was interrupted or its log was cut
    "iterations_missing": "error",
    "layers_missing": "error",
}


class ConfigError(DnnprofError, ValueError):
    """The configuration file or a flag is invalid; the message names the key (exit 2)."""


@dataclass
class CheckConfig:
    """How strict the gate is; every field can be set in the config file."""

    tolerance: float = 0.05  # total time: slowdowns up to this fraction pass
    layer_tolerance: float = 0.10
    alpha: float = 0.01  # one-sided significance level of the rank test
    spike_clip: float = 2.0  # clip a primitive's time at this multiple of its pooled median; 0 = off
    min_layer_share: float = 0.01  # layers below this share of the iteration are not timed
    layer_timing: bool = True
    ignore_layers: list[str] = field(default_factory=list)  # fnmatch patterns or "re:..."
    severity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    source: str = "defaults"

    def severity_of(self, code: str) -> str:
        """The configured severity of a finding code."""
        return self.severity.get(code, "warning")

    def ignores(self, layer: str) -> bool:
        """Whether a layer is excluded from every check."""
        for pattern in self.ignore_layers:
            if pattern.startswith("re:"):
                if re.fullmatch(pattern[3:], layer):
                    return True
            elif fnmatch.fnmatchcase(layer, pattern):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_fraction(value: Any, key: str) -> float:
    """'5%', '0.05' or 0.05 -> 0.05."""
    try:
        if isinstance(value, str):
            text = value.strip()
            number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        else:
            number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a fraction like 0.05 or '5%', got {value!r}") from None
    if not 0.0 <= number < 10.0:
        raise ConfigError(f"{key}: {value!r} is out of range")
    return number


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest dnnprof.toml, or pyproject.toml with a [tool.dnnprof.check] table."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        candidate = folder / "dnnprof.toml"
        if candidate.is_file():
            return candidate
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _check_table(_read_toml(candidate), candidate) is not None:
            return candidate
    return None


def load_config(path: Path | None = None, start: Path | None = None) -> CheckConfig:
    """Read the given config file, or the nearest one, over the defaults."""
    path = path or find_config_file(start)
    if path is None:
        return CheckConfig()
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    table = _check_table(_read_toml(path), path) or {}
    return config_from_mapping(table, source=str(path))


def config_from_mapping(table: dict[str, Any], source: str = "<mapping>") -> CheckConfig:
    """Build a CheckConfig from a parsed [tool.dnnprof.check] table, rejecting unknown keys."""
    config = CheckConfig(source=source)
    known = sorted({f.name for f in fields(CheckConfig)} - {"source"})
    for key, value in table.items():
        name = key.replace("-", "_")
        _require_known(name, known, f"{source}: unknown key {key!r} in the check settings")
        if name in ("tolerance", "layer_tolerance", "min_layer_share", "alpha", "spike_clip"):
            setattr(config, name, parse_fraction(value, f"{source}: {key}"))
        elif name == "layer_timing":
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: {key} must be true or false")
            config.layer_timing = value
        elif name == "ignore_layers":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: {key} must be a list of layer-name patterns")
            config.ignore_layers = list(value)
        elif name == "severity":
            config.severity = _severity_table(value, source)
    if not 0.0 < config.alpha < 0.5:
        raise ConfigError(f"{source}: alpha must be between 0 and 0.5, got {config.alpha}")
    return config


def with_overrides(config: CheckConfig, **overrides: Any) -> CheckConfig:
    """A copy with the non-None overrides applied (command-line flags win over the file)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def _severity_table(value: Any, source: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: severity must be a table of finding = level")
    table = dict(DEFAULT_SEVERITY)
    for code, level in value.items():
        code = code.replace("-", "_")
        _require_known(code, DEFAULT_SEVERITY, f"{source}: unknown finding {code!r} under severity")
        if level not in SEVERITIES:
            raise ConfigError(
                f"{source}: severity.{code} = {level!r}; use one of {', '.join(SEVERITIES)}"
            )
        table[code] = level
    return table


def _require_known(name: str, known: Collection[str], unknown: str) -> None:
    """A ConfigError saying `unknown` and listing the known names, unless `name` is one."""
    if name not in known:
        raise ConfigError(f"{unknown} (known: {', '.join(known)})")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc})") from None


def _check_table(document: dict[str, Any], path: Path) -> dict[str, Any] | None:
    table = document.get("tool", {}).get("dnnprof", {}).get("check")
    if table is None and path.name == "dnnprof.toml":
        # dnnprof.toml may use a bare [check] table; [tool.dnnprof.check] also works there
        table = document.get("check", {})
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.dnnprof.check] must be a table")
    return table
