"""Where and when a run was measured: commit, branch, runner class, time.

Flags win; then the CI system's environment variables (GitHub Actions, GitLab CI,
Buildkite, Jenkins); then git in the current directory; then the trace itself (its start
time, the run-condition record's CPU); then this machine. Standard library only.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone

from dnnprof.errors import InputError

# first one set wins
COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "GIT_COMMIT")
BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
                    "BUILDKITE_BRANCH", "GIT_BRANCH")
# a runner *class* (what runs are compared within), not one machine's name
RUNNER_VARIABLES = ("DNNPROF_RUNNER", "RUNNER_LABEL", "CI_RUNNER_DESCRIPTION",
                    "BUILDKITE_AGENT_META_DATA_QUEUE")


@dataclass(frozen=True)
class RunContext:
    """What the store records about a run besides its trace."""

    commit: str = ""
    branch: str = ""
    runner: str = ""
    host: str = ""
    time: datetime | None = None  # None: the trace's start time, else the time of adding

    @classmethod
    def from_environment(
        cls,
        commit: str | None = None,
        branch: str | None = None,
        runner: str | None = None,
        time: str | datetime | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> RunContext:
        """Flags first, then CI variables, then git in `cwd`, then this machine."""
        return cls(
            commit=commit or _first_set(COMMIT_VARIABLES) or _git(cwd, "rev-parse", "HEAD"),
            branch=(branch or _first_set(BRANCH_VARIABLES)
                    or _git(cwd, "rev-parse", "--abbrev-ref", "HEAD")).removeprefix("origin/"),
            runner=runner or _first_set(RUNNER_VARIABLES),
            host=socket.gethostname(),
            time=parse_time(time) if isinstance(time, str) else time,
        )


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (`2025-03-01T12:00:00Z`, a date) or seconds since the epoch, as UTC."""
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--time {text!r}: not an ISO 8601 time (2025-03-01T12:00:00Z) "
                         "nor seconds since the epoch") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _first_set(names: tuple[str, ...]) -> str:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return ""


def _git(cwd: str | os.PathLike[str] | None, *args: str) -> str:
    """git's answer in cwd, or '' outside a repository or without git."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    answer = done.stdout.strip() if done.returncode == 0 else ""
    return "" if answer == "HEAD" else answer  # a detached head has no branch name
