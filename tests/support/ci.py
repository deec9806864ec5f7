"""The CI rule for tests that need an external program."""

from __future__ import annotations

import os

import pytest


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing_dependency(reason: str) -> None:
    """Skip locally, fail under CI=true: a CI machine is supposed to have everything installed,
    and a silent skip there would hide a broken setup."""
    if running_in_ci():
        pytest.fail(f"{reason} (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(reason)


def require_torch() -> None:
    """Skip (fail under CI=true) when this interpreter, which runs the workload, has no torch."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        missing_dependency("PyTorch is not installed in this interpreter: pip install -e '.[torch]'")
