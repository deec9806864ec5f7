"""A trace stored by dnnprof before the restructuring (commit 1593047) still loads and reports."""

from __future__ import annotations

import json

import pytest

import dnnprof
from support.corpus import DATA

LEGACY = DATA / "legacy" / "trace_v1_commit1593047.parquet"
EXPECTED = json.loads((DATA / "legacy" / "trace_v1_commit1593047.expected.json").read_text())


@pytest.fixture(scope="module")
def legacy():
    return dnnprof.load(LEGACY)


def test_loads_with_its_reconstruction(legacy) -> None:
    assert len(legacy.events) == EXPECTED["events"]
    assert legacy.iterations == EXPECTED["iterations"]
    assert legacy.metadata.reconstruction.mode == EXPECTED["mode"]
    assert legacy.summary()["exec"] == EXPECTED["summary_exec"]


@pytest.mark.parametrize("view", ["by_kind", "by_layer", "by_stage"])
def test_views_report_what_the_old_version_reported(legacy, view) -> None:
    table = getattr(legacy, view)()
    key = {"by_kind": None, "by_layer": "layer", "by_stage": "stage"}[view]
    got = (
        {str(k): float(v) for k, v in table["total_ms"].items()}
        if key is None
        else {str(row[key]): float(row["total_ms"]) for _, row in table.iterrows()}
    )
    expected = EXPECTED[f"{view}_total_ms"]
    assert got.keys() == expected.keys()
    for name, total in expected.items():
        assert got[name] == pytest.approx(total, abs=1e-6), name
