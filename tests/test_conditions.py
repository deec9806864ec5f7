"""Run conditions: measured on this machine, judged, stored, shown, and respected by `check`.

The real-run tests start two bounded CPU hogs (plain Python loops, killed at the end) that
keep both of the workload's CPUs busy, run a small ResNet-18 workload under them and without
them, and compare. Workload and hogs are pinned to the same two CPUs, so that the test means
the same on a machine with more. On a machine others share the absolute figures move, so the
assertions compare the workload's own run-queue wait, which the two hogs dominate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import dnnprof
from dnnprof.check import check_traces
from dnnprof.check.junit import junit_xml
from dnnprof.metadata import Calibration, RunConditions, TraceMetadata
from dnnprof.profiler import conditions as probes
from dnnprof.profiler.calibration import calibrate
from dnnprof.profiler.verdict import judge
from dnnprof.reports import Comparison
from dnnprof.reports.html import render_html
from dnnprof.trace import Trace
from dnnprof.vocabulary import BUSY, QUIET, UNKNOWN, UNRELIABLE
from support.ci import require_torch

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "corpus"
LEGACY = ROOT / "tests" / "data" / "legacy" / "trace_v1_commit1593047.parquet"
HOG_SECONDS = 240  # an upper bound: the hogs are killed as soon as the run is over
SMALL = {"model": "resnet18", "input_size": 64, "warmup": 1, "iters": 6, "threads": 2,
         "pin": True}


# ------------------------------------------------------------------ the verdict rules --


def _conditions(**values) -> RunConditions:
    return RunConditions(cpus_online=2, cpus_allowed=[0, 1], threads=2, **values)


def test_a_quiet_run_says_what_it_measured():
    verdict, reasons = judge(_conditions(
        wait_share=0.01,
        calibration_before=Calibration(2, 2.05, 2.0, 1.025, 0.0),
        calibration_after=Calibration(2, 2.1, 2.0, 1.05, 0.0),
    ))
    assert verdict == QUIET
    assert any("waited for a CPU 1% of the time" in r for r in reasons)


def test_waiting_for_a_cpu_makes_a_run_busy_then_unreliable():
    assert judge(_conditions(wait_share=0.08))[0] == BUSY
    verdict, reasons = judge(_conditions(wait_share=0.45, others_during=2.3))
    assert verdict == UNRELIABLE
    assert reasons == ["while it was timed, the workload's threads waited for a CPU 45% of the "
                       "time (other processes kept 2.3 tasks runnable on 2 CPUs)"]


def test_a_slow_calibration_kernel_steal_and_a_tight_quota_are_reasons():
    slow = Calibration(2, 5.0, 2.0, 2.5, 0.6)
    verdict, reasons = judge(_conditions(calibration_after=slow))
    assert verdict == UNRELIABLE and "2.50x slower after the run" in reasons[0]
    # a run that found a quiet window between two busy moments is busy, not unreliable
    verdict, reasons = judge(_conditions(wait_share=0.01, calibration_after=slow))
    assert verdict == BUSY and "2.50x slower after the run" in reasons[0]
    assert "the CPU itself gave less" not in reasons[0]  # it waited: this machine was busy
    # a kernel that never waited for a CPU and still ran slow: the host, not this machine
    on_cpu = Calibration(2, 5.0, 2.0, 2.5, 0.01)
    verdict, reasons = judge(_conditions(wait_share=0.01, calibration_after=on_cpu))
    assert verdict == BUSY and "while waiting for a CPU under 5% of the time" in reasons[0]
    assert "the CPU itself gave less" in reasons[0]
    # before and after alike: said once, after the last of them
    verdict, reasons = judge(_conditions(wait_share=0.01, calibration_before=on_cpu,
                                         calibration_after=on_cpu))
    assert [("the CPU itself gave less" in r) for r in reasons] == [False, True]
    assert "2.50x slower before the run" in reasons[0]
    assert judge(_conditions(steal_share=0.3))[0] == UNRELIABLE
    verdict, reasons = judge(_conditions(cgroup_quota=1.5))
    assert verdict == UNRELIABLE and "allows 1.5 CPUs for 2 threads" in reasons[0]
    # a lagging load average alone can make a run busy, never unreliable
    assert judge(_conditions(load_before=9.0))[0] == BUSY


def test_nothing_measured_is_unknown():
    assert judge(RunConditions())[0] == UNKNOWN


# ----------------------------------------------------------------- stored with a trace --


def test_conditions_round_trip_and_older_traces_read_as_unknown(tmp_path):
    meta = TraceMetadata(command="x", conditions=_conditions(
        verdict=BUSY, reasons=["r"], calibration_before=Calibration(2, 3.0, 2.0, 1.5, 0.2)))
    again = TraceMetadata.from_dict(json.loads(json.dumps(meta.to_dict())))
    assert again.conditions == meta.conditions
    old = Trace.load(LEGACY)
    assert old.metadata.conditions is None
    assert old.metadata.run_conditions.verdict == UNKNOWN
    assert "not recorded" in old.metadata.run_conditions.reason
    assert old.summary()["conditions"]["verdict"] == UNKNOWN


# ---------------------------------------------------------------- the probes, for real --


def test_the_probes_read_this_machine():
    if not Path("/proc/loadavg").exists():
        pytest.skip("no Linux /proc here")
    assert probes.load_average() is not None
    assert probes.procs_running() >= 1
    assert probes.allowed_cpus()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"],
                             start_new_session=True)
    try:
        time.sleep(0.3)
        tasks = probes.session_tasks(child.pid)
        assert child.pid in tasks and tasks[child.pid].cpu_ns > 0
    finally:
        child.kill()
        child.wait()
    calibration = calibrate(2, "test cpu", repetitions=5)
    assert calibration.workers == 2 and calibration.median_ms > 0
    assert calibration.slowdown >= 1.0 and calibration.quiet_ms <= calibration.median_ms


# ------------------------------------------------------------- real runs, with hogs --


@contextmanager
def cpu_hogs(count: int):
    """`count` busy Python loops, bounded in time, stopped on exit."""
    loop = f"import time\nend = time.time() + {HOG_SECONDS}\nwhile time.time() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]
    for hog in hogs:  # on the CPUs the pinned workload runs on
        os.sched_setaffinity(hog.pid, probes.allowed_cpus()[:2])
    try:
        time.sleep(0.5)
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _run(root: Path, name: str, **overrides):
    from dnnprof.profiler.runner import RunConfig, run

    result = run(RunConfig(out=root / name, **{**SMALL, **overrides}))
    assert result.exit_code == 0, result.problems
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require_torch()
    if not Path("/proc/self/schedstat").exists():
        pytest.skip("no scheduler statistics here (/proc/<pid>/schedstat)")
    if len(probes.allowed_cpus()) < 2:
        pytest.skip("needs two CPUs")
    root = tmp_path_factory.mktemp("conditions")
    # alternated, so that a change in what else runs on a shared machine hits both sides
    found = {"quiet": [], "hogs": []}
    for index in range(2):
        found["quiet"].append(_run(root, f"quiet{index}"))
        with cpu_hogs(2):
            found["hogs"].append(_run(root, f"hogs{index}"))
    return found


def test_a_run_under_two_cpu_hogs_is_unreliable_and_says_why(runs):
    for result in runs["hogs"]:
        conditions = result.trace.metadata.conditions
        assert conditions.verdict == UNRELIABLE, conditions.reasons
        assert any("waited for a CPU" in reason for reason in conditions.reasons)
        assert conditions.samples >= 1 and conditions.calibration_before.workers == 2
        stored = json.loads((result.run_dir / "summary.json").read_text())["conditions"]
        assert stored["verdict"] == UNRELIABLE and stored["reasons"] == conditions.reasons


def test_without_hogs_the_workload_waits_less(runs):
    def wait(key):
        return sum(r.trace.metadata.conditions.wait_share for r in runs[key]) / len(runs[key])

    assert wait("quiet") < wait("hogs"), (wait("quiet"), wait("hogs"))


def test_the_conditions_are_stored_with_the_trace(runs):
    result = runs["quiet"][0]
    stored = dnnprof.open(result.run_dir).metadata.conditions
    assert stored == result.trace.metadata.conditions
    assert stored.threads == 2 and stored.cpu_model and stored.cpus_online


def test_check_declines_the_timing_verdict_on_an_unreliable_run(runs):
    baseline, new = runs["quiet"][0].trace, runs["hogs"][0].trace
    report = check_traces(baseline, new)
    assert report.total.verdict == "skipped" and report.speed.verdict == "skipped"
    assert "new run was measured on an unreliable machine" in report.total.reason
    assert "waited for a CPU" in report.total.reason
    declined = [f for f in report.findings if f.code == "timing_declined"]
    assert len(declined) == 1 and declined[0].severity == "warning"
    assert report.new.conditions == UNRELIABLE
    # the structure is still judged: the same model, so every layer matches, no change
    assert report.compared_layers >= 1 and report.passed
    xml = junit_xml(report)
    assert "not judged: the new run was measured on an unreliable machine" in xml
    assert 'name="dnnprof.check.fusion" tests="1"' in xml


def test_check_on_an_unreliable_run_still_fails_on_structure():
    from dnnprof.reconstruct import reconstruct

    eager = reconstruct(dnnprof.parse(CORPUS / "torch_resnet50_fp32_eager_b1.log"),
                        model="resnet50")
    fused = reconstruct(dnnprof.parse(CORPUS / "torch_resnet50_compile_freezing_b1.log"),
                        model="resnet50")
    eager.metadata.conditions = _conditions(verdict=UNRELIABLE, reasons=["hogs"])
    report = check_traces(fused, eager)  # fusion lost, measured on an unreliable machine
    assert report.total.verdict == "skipped" and "(hogs)" in report.total.reason
    assert any(f.code == "fusion_lost" and f.severity == "error" for f in report.findings)
    assert not report.passed


def test_wait_quiet_gives_up_under_hogs_and_says_so(runs):
    with cpu_hogs(2):
        waited, quiet = probes.wait_for_quiet(1.5, 2, window_s=1.0, poll_s=0.25)
    assert not quiet and waited >= 1.5


def test_repeat_and_pin_keep_every_runs_iterations(tmp_path):
    require_torch()
    if len(probes.allowed_cpus()) < 2:
        pytest.skip("needs two CPUs")
    result = _run(tmp_path, "repeat", repeat=2, iters=3)
    trace = result.trace
    measured = sorted(set(trace.steady()["iteration"].tolist()))
    assert measured == [1, 2, 3, 5, 6, 7]  # each run: 1 warm-up + 3 measured, numbered on
    assert len(trace.metadata.wall_ms) == 8
    conditions = trace.metadata.conditions
    assert conditions.repeat == 2 and conditions.pinned
    assert conditions.thread_env["OMP_PROC_BIND"] == "close"
    assert conditions.thread_env["OMP_PLACES"] == "threads"
    assert conditions.cpus_allowed == probes.allowed_cpus()[:2]


# -------------------------------------------------------------- shown where numbers are --


def _flagged(verdict: str, reason: str) -> Trace:
    trace = dnnprof.parse(CORPUS / "torch_resnet50_int8_fx_b1.log")
    trace.metadata.conditions = _conditions(verdict=verdict, reasons=[reason])
    return trace


def test_report_and_compare_carry_a_banner_and_per_variant_marks():
    quiet, busy = _flagged(QUIET, "fine"), _flagged(UNRELIABLE, "two hogs")
    comp = Comparison.from_traces([quiet, busy], names=["clean", "noisy"])
    assert comp.overview["conditions"].tolist() == [QUIET, UNRELIABLE]
    assert comp.conditions_banner.startswith("Run conditions: noisy was measured on an "
                                             "unreliable machine: two hogs.")
    page = render_html(comp)
    assert '<div class="banner" id="conditions">' in page and "two hogs" in page
    assert comp.to_json()["conditions_banner"] == comp.conditions_banner
    assert Comparison.from_traces([quiet]).conditions_banner == ""


def test_parse_summary_says_the_conditions_are_unknown():
    out = subprocess.run(
        [sys.executable, "-m", "dnnprof", "parse", str(CORPUS / "torch_resnet50_int8_fx_b1.log")],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "80"},
    )
    assert out.returncode == 0, out.stderr
    assert "run conditions: UNKNOWN" in out.stdout
