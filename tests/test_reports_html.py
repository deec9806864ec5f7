"""The HTML report in real headless Chromium: charts present, no errors, nothing executes.

Screenshots go to test-artifacts/reports/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest

import dnnprof
from dnnprof.reports.compare import Comparison
from dnnprof.reports.html import CHART_TITLES, render_html, write_html
from support.corpus_traces import REPORT_LOGS, corpus_log, labelled_trace

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "reports"
HOSTILE_LAYER = "<script>alert(1)</script>"
HOSTILE_MODEL = "<img src=x onerror=alert(2)>"
HOSTILE_VARIANT = '"><svg onload=alert(3)>'

CHART_STATE = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => ({
    id: d.id,
    title: d.layout && d.layout.title ? d.layout.title.text : null,
    traces: d.data ? d.data.length : 0,
    rendered: d.querySelector('svg.main-svg') !== null,
    xtitle: d.layout && d.layout.xaxis && d.layout.xaxis.title ? d.layout.xaxis.title.text : '',
    ytitle: d.layout && d.layout.yaxis && d.layout.yaxis.title ? d.layout.yaxis.title.text : '',
    hover: d.data ? d.data.every(t => (t.hovertemplate || '').length > 0) : false,
}))"""


def _open(browser, path: Path):
    """Open a report, recording every network request and any dialog (alert) it raises."""
    requests: list[str] = []
    dialogs: list[str] = []

    def on_request(request) -> None:
        requests.append(request.url)

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    browser.context.on("request", on_request)
    browser.context.on("dialog", on_dialog)
    try:
        page = browser.open(path)
        page.wait_for("#overview")
        page.page.wait_for_timeout(300)  # let Plotly's deferred layout settle
    finally:
        browser.context.remove_listener("request", on_request)
    return page, requests, dialogs


def _charts(page) -> dict[str, dict]:
    return {c["id"].removeprefix("chart-"): c for c in page.evaluate(CHART_STATE)}


@pytest.fixture(scope="module")
def comparison_html(tmp_path_factory) -> tuple[Path, float]:
    comp = Comparison.from_traces([labelled_trace(name) for name in REPORT_LOGS])
    started = time.perf_counter()
    path = write_html(comp, tmp_path_factory.mktemp("report") / "compare.html")
    return path, time.perf_counter() - started


def test_comparison_report_in_chromium(browser, comparison_html):
    path, seconds = comparison_html
    page, requests, dialogs = _open(browser, path)
    assert page.errors == []
    assert dialogs == []
    assert [r for r in requests if not r.startswith(("file:", "data:", "blob:"))] == []
    charts = _charts(page)
    assert set(charts) == set(CHART_TITLES), set(CHART_TITLES) ^ set(charts)
    for key, chart in charts.items():
        assert chart["title"] == CHART_TITLES[key]
        assert chart["rendered"] and chart["traces"] > 0, key
        assert chart["xtitle"] and chart["ytitle"], key
        assert chart["hover"], key
        # units on every value axis
        assert re.search(r"\((ms|x|GFLOP/s)\b|per iteration|\(x,", chart["ytitle"] + chart[
            "xtitle"]), (key, chart["ytitle"], chart["xtitle"])
    assert page.count(".missing") == 0
    headings = page.texts("section h2")
    assert headings[0] == "Overview" and "Timeline" in headings
    page.screenshot(ARTIFACTS / "compare.png")
    size_mb = path.stat().st_size / 1e6
    assert size_mb < 12, f"report is {size_mb:.1f} MB"
    print(f"\ncompare report: {size_mb:.1f} MB, generated in {seconds:.1f} s")


def test_report_is_self_contained(comparison_html):
    text = comparison_html[0].read_text()
    # URLs inside plotly.js are code paths never taken offline; the browser test checks
    # that nothing is requested. Here: no markup outside the scripts points anywhere.
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "<script src" not in text
    assert text.count("plotly.js v") <= 2  # the bundle is embedded once (its banner)


def test_hover_label_shows_layer_and_shape(browser, comparison_html):
    page, _, _ = _open(browser, comparison_html[0])
    bar = page.page.locator("#chart-layer_latency .bars .point path").first
    bar.hover(force=True)
    page.page.wait_for_selector("#chart-layer_latency .hoverlayer .hovertext", timeout=5000)
    hover = page.page.locator("#chart-layer_latency .hoverlayer .hovertext").first.text_content()
    assert "conv1" in hover and "mb1_ic3oc64" in hover


def _hostile_trace():
    trace = labelled_trace("torch_resnet50_fp32_eager_b1")
    events = trace.events
    events["layer"] = events["layer"].cat.rename_categories(
        lambda name: HOSTILE_LAYER if name == "conv1" else name)
    events["layer_type"] = events["layer_type"].cat.rename_categories(
        lambda name: HOSTILE_MODEL if name == "Conv2d" else name)
    events["impl"] = events["impl"].cat.rename_categories(
        lambda name: "<b onmouseover=alert(5)>" + name if name == "jit:avx512_core" else name)
    trace.metadata.model = HOSTILE_MODEL
    trace.metadata.variant = HOSTILE_VARIANT
    return trace


def test_hostile_names_show_as_text_and_never_run(browser, tmp_path):
    comp = Comparison.from_traces([_hostile_trace(), labelled_trace("torch_resnet50_int8_fx_b1")])
    path = write_html(comp, tmp_path / "hostile.html")
    raw = path.read_text()
    assert HOSTILE_LAYER not in raw and HOSTILE_MODEL not in raw and HOSTILE_VARIANT not in raw
    page, requests, dialogs = _open(browser, path)
    assert page.errors == []
    assert dialogs == []  # no alert() from any of the payloads
    assert not any("/x" in r or r.endswith("x") for r in requests if r.startswith("file:")
                   and not r.endswith(".html"))
    found = page.evaluate("""(needle) => ({
        img: document.querySelectorAll('main img, header img').length,
        svgOnload: document.querySelectorAll('[onload], [onerror], [onmouseover]').length,
        scriptsWithAlert: Array.from(document.scripts).filter(
            s => s.textContent.trim().startsWith('alert')).length,
        textHits: Array.from(document.querySelectorAll('td, h1, li')).filter(
            e => e.textContent.includes(needle)).length,
        svgHits: Array.from(document.querySelectorAll('.plotly-graph-div svg text')).filter(
            e => e.textContent.includes(needle)).length,
    })""", HOSTILE_LAYER)
    assert found["img"] == 0 and found["svgOnload"] == 0 and found["scriptsWithAlert"] == 0
    assert found["textHits"] > 0, "the layer name is shown literally in the tables"
    assert found["svgHits"] > 0, "the layer name is shown literally on the chart axis"
    assert HOSTILE_MODEL in page.text("header h1")
    # the hover label shows the name literally too
    page.page.locator("#chart-layer_latency .bars .point path").first.hover(force=True)
    page.page.wait_for_selector("#chart-layer_latency .hoverlayer .hovertext", timeout=5000)
    assert HOSTILE_LAYER in page.page.locator("#chart-layer_latency .hoverlayer .hovertext").first.text_content()
    assert dialogs == []
    page.screenshot(ARTIFACTS / "hostile.png", full_page=False)


def test_trace_without_layers_iterations_or_timestamps(browser, tmp_path):
    # A raw log, not reconstructed: no iterations, no layers, no wall times, no timestamps.
    comp = Comparison.from_paths([corpus_log("torch_resnet50_compile_freezing_b1")],
                                 layers=False)
    path = write_html(comp, tmp_path / "bare.html")
    page, _, dialogs = _open(browser, path)
    assert page.errors == [] and dialogs == []
    charts = _charts(page)
    for present in ("latency", "kind_time", "kind_calls", "stages", "fusion", "timeline"):
        assert present in charts, present
    missing = {m: page.page.locator(f'.missing[data-chart="{m}"]').inner_text()
               for m in ("speedup", "coverage", "layer_latency", "layer_speedup")}
    assert "two variants" in missing["speedup"]
    assert "wall times" in missing["coverage"]
    assert "layer labels" in missing["layer_latency"]
    notes = " ".join(page.texts(".note li"))
    assert "iterations are unknown" in notes
    assert "no layer labels" in notes
    assert "no oneDNN timestamps" in notes
    assert "one variant" in notes
    page.screenshot(ARTIFACTS / "bare.png")


def test_one_variant_report_and_an_empty_log(browser, tmp_path):
    empty = dnnprof.parse([])
    comp = Comparison.from_traces([labelled_trace("mxnet_resnet50_v1_fp32_b1"), empty],
                                  names=["mxnet fp32", "empty log"])
    path = write_html(comp, tmp_path / "mixed.html")
    page, _, _ = _open(browser, path)
    assert page.errors == []
    assert "no oneDNN primitive executed" in " ".join(page.texts(".note li"))
    single = write_html(Comparison.from_traces([labelled_trace("mxnet_resnet50_v1_fp32_b1")]),
                        tmp_path / "single.html")
    page, _, _ = _open(browser, single)
    assert page.errors == []
    charts = _charts(page)
    assert "speedup" not in charts and "layer_speedup" not in charts
    assert "stages" in charts and "timeline" in charts and "coverage" in charts
    page.screenshot(ARTIFACTS / "single.png")


def test_timestamped_timeline_keeps_the_gaps(tmp_path):
    trace = labelled_trace("torch_resnet50_int8_fx_b1")
    events = trace.events
    gap = 0.05  # ms of framework time between consecutive calls
    exec_rows = events["op"].astype(str) == "exec"
    starts = (events["duration_ms"].where(exec_rows, 0) + gap).cumsum().shift(fill_value=0)
    events["start_ms"] = starts.where(exec_rows)
    events["ts_ms"] = 1.7e12 + starts.where(exec_rows)
    trace.metadata.timeline = "timestamps"
    comp = Comparison.from_traces([trace])
    timeline = comp.timeline()
    span = (timeline["start_ms"] + timeline["duration_ms"]).max()
    assert span == pytest.approx(timeline["duration_ms"].sum() + gap * (len(timeline) - 1))
    assert not comp.notes["timeline"]
    assert "no oneDNN timestamps" not in render_html(comp)


def test_render_time_is_reasonable(comparison_html):
    _, seconds = comparison_html
    assert seconds < 60


def test_tables_escape_everything():
    comp = Comparison.from_traces([_hostile_trace()])
    html_text = render_html(comp)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
    assert "&lt;b onmouseover=alert(5)&gt;" in html_text
    body = html_text.split("<main>", 1)[1]
    assert "<script>alert" not in body and "<img" not in body


def test_frame_helpers_do_not_leak_nan():
    from dnnprof.reports.page_tables import html_table

    frame = pd.DataFrame({"a": [1.0, float("nan")], "b": ["<x>", None]})
    text = html_table(frame, [("a", "A", None), ("b", "B", None)])
    assert "&lt;x&gt;" in text and "nan" not in text.lower().replace("nan</", "")
