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
