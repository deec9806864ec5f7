"""The run verdict: quiet, busy or unreliable, from the measured conditions, with its reasons.

Each rule looks at one figure and says, in a sentence, what it means for the timings.
The verdict is the worst level any rule reached; its reasons are that level's sentences.
Thresholds are deliberately coarse: they separate "a clean number", "a number to read
with care" and "a number not to trust", not shades between.
"""

from __future__ import annotations

from dnnprof.metadata import Calibration, RunConditions
from dnnprof.vocabulary import BUSY, QUIET, UNKNOWN, UNRELIABLE

# Share of the timed iterations the workload's threads spent runnable but off-CPU. An
# OpenMP barrier waits for its slowest thread, so a few percent already stretch layers.
WAIT_BUSY, WAIT_UNRELIABLE = 0.05, 0.20
# The calibration kernel's median against the fastest this machine has run it.
SLOWDOWN_BUSY, SLOWDOWN_UNRELIABLE = 1.3, 2.0
STEAL_BUSY, STEAL_UNRELIABLE = 0.05, 0.20
_LEVELS = {QUIET: 0, BUSY: 1, UNRELIABLE: 2}

Finding = tuple[str, str]  # (level, sentence)
ON_CPU = (f", while waiting for a CPU under {WAIT_BUSY:.0%} of the time: the CPU itself gave "
          "less (other guests on the host, a lower clock)")


def judge(conditions: RunConditions) -> tuple[str, list[str]]:
    """The verdict and its reasons (the sentences of the worst level reached)."""
    findings = [
        *_waiting(conditions), *_calibrations(conditions), *_others(conditions),
        *_steal(conditions), *_quota(conditions), *_load(conditions),
    ]
    if not findings:
        return UNKNOWN, ["no run condition could be measured here (no Linux /proc)"]
    worst = max(findings, key=lambda f: _LEVELS[f[0]])[0]
    reasons = [sentence for level, sentence in findings if level == worst]
    # the host's share of the CPU, said once: after the last sentence it explains
    explained = [i for i, sentence in enumerate(reasons) if sentence.endswith(ON_CPU)]
    for i in explained[:-1]:
        reasons[i] = reasons[i].removesuffix(ON_CPU)
    return worst, reasons


def _level(value: float, busy: float, unreliable: float) -> str:
    return UNRELIABLE if value >= unreliable else BUSY if value >= busy else QUIET


def _threads(conditions: RunConditions) -> int:
    return conditions.threads or len(conditions.cpus_allowed) or conditions.cpus_online or 1


def _cpus(conditions: RunConditions) -> int:
    return len(conditions.cpus_allowed) or conditions.cpus_online or 1


def _waiting(conditions: RunConditions) -> list[Finding]:
    share = conditions.wait_share
    if share is None:
        return []
    level = _level(share, WAIT_BUSY, WAIT_UNRELIABLE)
    sentence = (f"while it was timed, the workload's threads waited for a CPU {share:.0%} of "
                "the time")
    if level != QUIET and conditions.others_during is not None:
        sentence += (f" (other processes kept {conditions.others_during:.1f} tasks runnable on "
                     f"{_cpus(conditions)} CPUs)")
    return [(level, sentence)]


def _calibrations(conditions: RunConditions) -> list[Finding]:
    found = []
    for when, calibration in (("before", conditions.calibration_before),
                              ("after", conditions.calibration_after)):
        if calibration is None or calibration.slowdown is None:
            continue
        level = _level(calibration.slowdown, SLOWDOWN_BUSY, SLOWDOWN_UNRELIABLE)
        if level == UNRELIABLE and conditions.wait_share is not None:
            # the kernel ran around the run, the wait share during it: a run that found a
            # quiet window between two busy moments is busy, not unreliable
            level = BUSY
        found.append((level, _calibration_sentence(when, calibration)))
    return found


def _calibration_sentence(when: str, calibration: Calibration) -> str:
    workers = f"on {calibration.workers} workers " if calibration.workers > 1 else ""
    sentence = (f"the calibration kernel ran {workers}{calibration.slowdown:.2f}x slower {when} "
                f"the run than its quiet-machine figure ({calibration.median_ms:.2f} vs "
                f"{calibration.quiet_ms:.2f} ms)")
    if calibration.wait_share is not None and calibration.wait_share < WAIT_BUSY:
        # it was on a CPU all along: the CPU itself was slower (a virtual machine's host
        # running other guests on the same cores, or a lower clock), not this machine busy
        sentence += ON_CPU
    return sentence


def _others(conditions: RunConditions) -> list[Finding]:
    others = conditions.others_during
    if others is None or conditions.wait_share is not None:
        return []  # the workload's own waiting says it better, when measured
    cpus, threads = _cpus(conditions), _threads(conditions)
    free = max(0, cpus - threads)
    level = UNRELIABLE if others >= cpus else BUSY if others > free + 0.5 else QUIET
    return [(level, f"other processes kept {others:.1f} tasks runnable on average while the "
                    f"workload ran ({threads} threads on {cpus} CPUs)")]


def _steal(conditions: RunConditions) -> list[Finding]:
    steal = conditions.steal_share
    if steal is None:
        return []
    level = _level(steal, STEAL_BUSY, STEAL_UNRELIABLE)
    if level == QUIET:
        return []
    return [(level, f"the hypervisor gave {steal:.0%} of the CPU time to other guests (steal)")]


def _quota(conditions: RunConditions) -> list[Finding]:
    quota, threads = conditions.cgroup_quota, _threads(conditions)
    if quota is None or quota >= threads:
        return []
    return [(UNRELIABLE, f"the cgroup's CPU quota allows {quota:g} CPUs for {threads} threads: "
                         "the workload is throttled every period")]


def _load(conditions: RunConditions) -> list[Finding]:
    load, cpus = conditions.load_before, _cpus(conditions)
    if load is None or load <= cpus:
        return []
    # the load average lags by a minute: it can only make a run busy, never unreliable
    return [(BUSY, f"the 1-minute load average was {load:.1f} on {cpus} CPUs before the run")]
