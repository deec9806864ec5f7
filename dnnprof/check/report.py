"""What a check produces: findings, timing comparisons, and the verdict they add up to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dnnprof.check.config import CheckConfig
from dnnprof.check.stats import TimingComparison
from dnnprof.vocabulary import ExitCode

# The checks, in the order reports list them; every finding code belongs to one.
CHECKS = ("timing", "coverage", "fusion", "reorders", "kinds", "dtype", "impl", "shape")
CHECK_TITLES = {
    "timing": "oneDNN time per iteration",
    "fusion": "fused post-ops",
    "reorders": "reorders",
    "kinds": "primitive kinds",
    "dtype": "data types",
    "impl": "implementation / ISA",
    "shape": "problem shapes",
    "coverage": "iterations and layers run",
}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "off": 3}


@dataclass(frozen=True)
class Finding:
    """One change between baseline and new, naming the layer it is about."""

    check: str  # one of CHECKS
    code: str  # e.g. fusion_lost; its severity comes from the config
    layer: str
    detail: str
    severity: str
    layer_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "check": self.check,
            "code": self.code,
            "severity": self.severity,
            "layer": self.layer,
            "layer_type": self.layer_type,
            "detail": self.detail,
        }


@dataclass
class RunInfo:
    """What the report says about each of the two traces."""

    path: str
    source: str | None
    onednn_version: str | None
    iterations: int
    method: str
    labeled: bool
    notes: list[str]
    median_ms: float | None
    spread: float | None  # (max - min) / median of the iteration totals
    clipped: int  # primitive executions clipped as spikes
    kinds: dict[str, float]  # calls per iteration by primitive kind
    conditions: str = "unknown"  # the run's verdict: quiet | busy | unreliable | unknown
    conditions_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass
class CheckReport:
    """The result of comparing a new trace against a baseline."""

    baseline: RunInfo
    new: RunInfo
    config: CheckConfig
    total: TimingComparison
    speed: TimingComparison
    layers: list[TimingComparison] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    compared_layers: int = 0
    ignored_layers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that fail the check."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings reported but not failing."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def passed(self) -> bool:
        """True when no finding has severity `error`."""
        return not self.errors

    @property
    def exit_code(self) -> ExitCode:
        """ExitCode.OK (0) when the check passes, ExitCode.REGRESSION (1) when it fails."""
        return ExitCode.OK if self.passed else ExitCode.REGRESSION

    def visible_findings(self) -> list[Finding]:
        """Findings not switched off, most severe first, then by check and layer order."""
        shown = [f for f in self.findings if f.severity != "off"]
        return sorted(
            shown, key=lambda f: (_SEVERITY_ORDER[f.severity], CHECKS.index(f.check))
        )

    def by_check(self) -> dict[str, list[Finding]]:
        """Visible findings grouped per check, in CHECKS order."""
        groups: dict[str, list[Finding]] = {check: [] for check in CHECKS}
        for finding in self.findings:
            if finding.severity != "off":
                groups[finding.check].append(finding)
        return groups

    def notable_layers(self) -> list[TimingComparison]:
        """Layers whose time moved beyond tolerance, the biggest change in ms first."""
        moved = [c for c in self.layers if c.verdict in ("slower", "faster", "unclear")]
        return sorted(moved, key=lambda c: -abs(c.median_new_ms - c.median_base_ms))

    def calls_per_iteration(self) -> list[tuple[str, str, str]]:
        """(kind, baseline calls, new calls) per steady iteration, every kind of either run."""
        kinds = dict.fromkeys([*self.baseline.kinds, *self.new.kinds])
        return [(kind, _calls(self.baseline.kinds.get(kind)), _calls(self.new.kinds.get(kind)))
                for kind in kinds]

    def headline(self) -> str:
        """One line: PASS/FAIL with counts."""
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{verdict}: {len(self.errors)} error(s), {len(self.warnings)} warning(s); "
            f"total {self.total.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The whole report as one JSON-serialisable dict."""
        return {
            "verdict": "pass" if self.passed else "fail",
            "exit_code": int(self.exit_code),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "baseline": self.baseline.to_dict(),
            "new": self.new.to_dict(),
            "timing": {
                "total": self.total.to_dict(),
                "typical_speed": self.speed.to_dict(),
                "layers": [c.to_dict() for c in self.layers],
            },
            "findings": [f.to_dict() for f in self.visible_findings()],
            "compared_layers": self.compared_layers,
            "ignored_layers": self.ignored_layers,
            "notes": self.notes,
            "config": self.config.to_dict(),
        }


def _calls(value: float | None) -> str:
    if not value:
        return "0"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
