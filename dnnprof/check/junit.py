"""JUnit XML: one test suite per check, one test case per check and per layer where relevant.

CI systems render JUnit natively (GitHub via test-reporter actions, GitLab, Jenkins).
Errors become <failure>, warnings pass with the text in <system-out>, and a timing
verdict that needs more iterations (or cannot apply) is <skipped>.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from dnnprof.check.report import CHECK_TITLES, CHECKS, CheckReport, Finding
from dnnprof.check.stats import TimingComparison
from dnnprof.files import write_text_atomic

SUITE_PREFIX = "dnnprof.check"


def junit_xml(report: CheckReport) -> str:
    """The report as a JUnit XML document."""
    root = ET.Element("testsuites", name="dnnprof check")
    groups = report.by_check()
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for check in CHECKS:
        suite = ET.SubElement(root, "testsuite", name=f"{SUITE_PREFIX}.{check}")
        cases = (_timing_cases(report, groups["timing"]) if check == "timing"
                 else _structure_cases(report, check, groups[check]))
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for case in cases:
            suite.append(case)
            counts["tests"] += 1
            counts["failures"] += case.find("failure") is not None
            counts["skipped"] += case.find("skipped") is not None
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("errors", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_junit(report: CheckReport, path: str | os.PathLike[str]) -> Path:
    """Write the JUnit XML file atomically, creating its folder (OutputError, exit 2, if it
    cannot be written: never a traceback ending `check` with 1, "regression")."""
    return write_text_atomic(path, junit_xml(report))


def _case(check: str, name: str, findings: list[Finding], skipped: str = "") -> ET.Element:
    case = ET.Element("testcase", classname=f"{SUITE_PREFIX}.{check}", name=name, time="0")
    errors = [f for f in findings if f.severity == "error"]
    others = [f for f in findings if f.severity in ("warning", "info")]
    if errors:
        failure = ET.SubElement(case, "failure", message=errors[0].detail, type=errors[0].code)
        failure.text = "\n".join(f"{f.code}: {f.detail}" for f in errors)
    elif skipped:
        ET.SubElement(case, "skipped", message=skipped)
    if others:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(f"{f.severity} {f.code}: {f.detail}" for f in others)
    return case


def _timing_cases(report: CheckReport, findings: list[Finding]) -> list[ET.Element]:
    by_layer: dict[str, list[Finding]] = {}
    for finding in findings:
        by_layer.setdefault(finding.layer, []).append(finding)
    cases = []
    for comparison in [report.total, report.speed, *report.layers]:
        skipped = comparison.reason if comparison.verdict in ("insufficient", "skipped") else ""
        case = _case("timing", comparison.name, by_layer.get(comparison.name, []), skipped)
        if not len(case):  # a passing case still says what was measured
            ET.SubElement(case, "system-out").text = _measured(comparison)
        cases.append(case)
    return cases


def _measured(comparison: TimingComparison) -> str:
    return (
        f"{comparison.verdict}: median {comparison.median_base_ms:.4g} -> "
        f"{comparison.median_new_ms:.4g}; {comparison.reason}"
    )


def _structure_cases(report: CheckReport, check: str, findings: list[Finding]) -> list[ET.Element]:
    title = CHECK_TITLES[check]
    overall = _case(check, f"{title}: all layers", [f for f in findings if f.severity == "error"])
    if not findings:
        ET.SubElement(overall, "system-out").text = (
            f"no change in {title} across {report.compared_layers} matched layers"
        )
    return [overall] + [_case(check, f.layer, [f]) for f in findings]
