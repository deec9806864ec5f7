"""Terminal tables, `--json`, and the `report` / `compare` commands."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from dnnprof.cli import main
from dnnprof.reports.compare import Comparison
from dnnprof.reports.console import comparison_json, print_comparison
from support.corpus_traces import corpus_log, labelled_trace


@pytest.fixture(scope="module")
def two() -> Comparison:
    return Comparison.from_traces([labelled_trace("torch_resnet50_fp32_eager_b1"),
                                   labelled_trace("torch_resnet50_int8_fx_b1")])


def _printed(comp: Comparison) -> str:
    console = Console(record=True, width=220, color_system=None)
    print_comparison(comp, console)
    return console.export_text()


def test_console_tables_for_a_comparison(two):
    text = _printed(two)
    for heading in ("Variants (latency from wall time)", "oneDNN time by kind",
                    "Per-layer speedup over resnet50 fp32_eager", "ResNet stages",
                    "Primitives per iteration by role", "Reorders per iteration",
                    "Data types", "Top primitives"):
        assert heading in text, heading
    assert "3.87x [" in text  # speedup with its interval
    assert "u8/s8/u8 100%" in text and "avx512_core_vnni" in text
    assert "layer3.0.conv2" in text


def test_console_prints_log_text_literally():
    trace = labelled_trace("torch_resnet50_int8_fx_b1")
    trace.events["layer"] = trace.events["layer"].cat.rename_categories(
        lambda name: "[bold red]boom[/bold red]" if name == "conv1" else name)
    text = _printed(Comparison.from_traces([trace]))
    # a layer column holds 24 characters: the name is cut at its start, its markup kept as text
    assert "red]boom[/bold red]" in text and "…" in text


def test_json_numbers(two):
    data = json.loads(comparison_json(two))
    overview = {row["variant"]: row for row in data["overview"]}
    assert overview["resnet50 int8_fx"]["speedup"] == pytest.approx(60.414 / 15.595)
    assert overview["resnet50 fp32_eager"]["speedup_low"] is None


def test_cli_compare_json_and_html(tmp_path, capsys):
    runs = []
    for name in ("torch_resnet50_fp32_eager_b1", "torch_resnet50_int8_fx_b1"):
        run = tmp_path / name
        labelled_trace(name).save(run / "trace.parquet")
        runs.append(str(run))
    out = tmp_path / "cmp.html"
    status = main(["compare", *runs, "--baseline", "int8", "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert status == 0
    data = json.loads(captured.out)
    assert data["baseline"] == "resnet50 int8_fx"
    assert out.exists() and out.stat().st_size > 1_000_000
    assert "wrote" in captured.err


def test_cli_report_prints_tables(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(["report", str(corpus_log("torch_resnet50_compile_freezing_b1"))])
    captured = capsys.readouterr()
    assert status == 0
    assert (tmp_path / "report.html").exists()
    assert "oneDNN time by kind" in captured.out


def test_cli_bad_input(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope.log")]) == 2
    assert "no such log, trace file or run folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert main(["compare", str(corpus_log("torch_resnet50_int8_fx_b1")),
                 "--baseline", "bf16"]) == 2
