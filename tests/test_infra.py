"""Self-tests of the external-program fixtures in tests/support/ (Jaeger, headless Chromium)."""

from __future__ import annotations

import pytest

from support.jaeger import otlp_spans


@pytest.mark.slow
def test_jaeger_fixture_round_trips_one_otlp_span(jaeger):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "infra-selftest"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("tests.test_infra")
    start_ns = 1_700_000_000_000_000_000
    span = tracer.start_span("selftest-span", start_time=start_ns, attributes={"answer": 42})
    span.end(end_time=start_ns + 1_500_000)  # 1.5 ms
    trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    client = jaeger.client  # the query API v3, answering OTLP JSON
    stored = client.wait_for_trace(trace_id, min_spans=1)
    assert "infra-selftest" in client.services()
    assert client.operations("infra-selftest") == ["selftest-span"]
    assert client.trace_ids("infra-selftest") == [trace_id]
    (got,) = otlp_spans(stored)
    assert got.name == "selftest-span" and got.trace_id == trace_id
    assert (got.start_ns, got.duration_ns) == (start_ns, 1_500_000)
    assert got.attributes["answer"] == 42
    assert got.resource["service.name"] == "infra-selftest"
    assert client.find_by_attributes("infra-selftest", {"answer": "42"}) == [trace_id]
    assert client.find_by_attributes("infra-selftest", {"answer": "41"}) == []


@pytest.mark.slow
def test_browser_fixture_renders_a_plotly_page(browser, tmp_path):
    import plotly.graph_objects as go

    html = tmp_path / "tiny.html"
    figure = go.Figure(go.Bar(x=["conv", "reorder"], y=[3, 1]))
    # Plotly's JS is inlined: the browser has no network access.
    figure.write_html(html, include_plotlyjs=True, full_html=True, div_id="tiny-graph")

    page = browser.open(html)
    page.wait_for("#tiny-graph.js-plotly-plot")  # the class Plotly adds once it has drawn
    assert page.count("div.plotly-graph-div") == 1
    assert page.count("#tiny-graph .bars .point") == 2
    assert page.evaluate("() => document.getElementById('tiny-graph').data[0].type") == "bar"
    assert page.errors == []
    shot = page.screenshot(tmp_path / "tiny.png")
    assert shot.stat().st_size > 1000


def test_browser_fixture_collects_page_errors(browser, tmp_path):
    html = tmp_path / "broken.html"
    html.write_text(
        "<html><body><p id='x'>hi</p>"
        "<script>console.error('boom from console'); undefinedFunction();</script>"
        "</body></html>"
    )
    page = browser.open(html)
    assert page.text("#x") == "hi"
    assert page.console_errors == ["boom from console"]
    assert len(page.page_errors) == 1 and "undefinedFunction" in page.page_errors[0]
