"""`dnnprof export`, and `--otlp` on `dnnprof trace` and `dnnprof parse`, end to end.

The Jaeger tests use the real Jaeger v2 server of tests/support/jaeger.py and read the
spans back through its query API v3; under CI=true they must run, not skip.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dnnprof.cli import main
from dnnprof.cli.outputs import export_from_args
from dnnprof.exporters import (
    ExportError,
    build_span_tree,
    read_jaeger_json,
    write_benchdnn,
    write_chrome_trace,
    write_jaeger_json,
)
from dnnprof.exporters.jaeger_legacy import _exporter_class
from dnnprof.trace import Trace
from support.ci import missing_dependency, require_torch
from support.corpus import CORPUS
from support.jaeger import tree_from_otlp

INT8_LOG = CORPUS / "torch_resnet50_int8_fx_b1.log"


def dnnprof_cli(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, in a child process of this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "dnnprof", *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def unique_service(prefix: str) -> str:
    # The Jaeger fixture is shared by the session: a service of its own makes "one trace for
    # the service" a statement about this test alone.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def printed_trace_id(text: str) -> int:
    """The trace id the command printed, as a number."""
    (found,) = re.findall(r"trace id ([0-9a-f]{32})", text)
    return int(found, 16)


def shape(tree) -> list[tuple[int, str, str]]:
    """(depth, level, name) per span with siblings in start order: the tree without times.

    Jaeger keeps microseconds, so two back-to-back primitives can tie; their names then
    break the tie, in the read-back tree as in the expected one."""

    def walk(span, depth):
        yield depth, span.level, span.name
        for child in sorted(span.children, key=lambda c: (c.start_ns // 1000, c.name)):
            yield from walk(child, depth + 1)

    return list(walk(tree.root, 0))


def stored_tree(jaeger, service: str, spans: int):
    """The one trace Jaeger holds for `service`, read back (API v3) into a SpanTree."""
    client = jaeger.client
    (trace_id,) = client.wait_for_traces(service, min_traces=1)
    assert client.trace_ids(service) == [trace_id]
    tree = tree_from_otlp(client.wait_for_trace(trace_id, min_spans=spans))
    assert len(tree) == spans
    return tree


@pytest.fixture(scope="module")
def corpus_trace(tmp_path_factory) -> Path:
    """A real corpus log parsed (with layer reconstruction) by `dnnprof parse -o`."""
    path = tmp_path_factory.mktemp("corpus") / "int8.trace"
    done = dnnprof_cli("parse", str(INT8_LOG), "--model", "resnet50", "-o", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return path


# ------------------------------------------------------------ dnnprof trace --


@pytest.mark.slow
def test_trace_sends_a_real_model_run_to_jaeger(jaeger, tmp_path):
    require_torch()
    service = unique_service("dnnprof-trace")
    run_dir = tmp_path / "run"
    # --batch 2: at batch 1 and 64 px, ATen sends only conv1 to oneDNN (its heuristic wants
    # batch > 1 or an input above 20480 elements for a 3x3 conv), leaving no layer1.* spans.
    done = dnnprof_cli(
        "trace", "resnet18", "--input-size", "64", "--iters", "2", "--batch", "2",
        "--no-report", "--out", str(run_dir),
        "--otlp", jaeger.otlp_grpc_endpoint, "--service-name", service,
    )
    assert done.returncode == 0, done.stderr
    trace = Trace.load(run_dir)
    expected = build_span_tree(trace, service_name=service)
    assert f"{len(expected)} spans" in done.stderr and service in done.stderr

    tree = stored_tree(jaeger, service, len(expected))
    assert printed_trace_id(done.stderr) == int(tree.trace_id, 16)
    assert tree.service_name == service
    assert tree.root.level == "run" and tree.root.attributes["dnnprof.model"] == "resnet18"
    # iterations = the exported steady iterations: both measured ones (limit 3 > --iters 2)
    steady = sorted(
        int(i) for i in trace.exec_events.loc[trace.exec_events["phase"] == "measure", "iteration"].unique()
    )
    assert len(steady) == 2
    iterations = tree.root.children
    assert [span.level for span in iterations] == ["iteration"] * 2
    assert sorted(int(span.attributes["dnnprof.iteration"]) for span in iterations) == steady
    assert tree.iterations == steady == expected.iterations
    # layer -> primitive beneath each iteration, with the model's own module names
    for iteration in iterations:
        layers = [span for span in iteration.children if span.level == "layer"]
        names = [span.name for span in layers]
        assert {"conv1", "layer1.0.conv1", "layer4.1.conv2"} <= set(names)
        for layer in layers:
            assert layer.children and {c.level for c in layer.children} == {"primitive"}
            assert {c.attributes["dnnprof.layer"] for c in layer.children} == {layer.name}
        assert any(c.name == "convolution" for layer in layers for c in layer.children)
    assert tree.counts() == expected.counts()
    assert shape(tree) == shape(expected)


def test_trace_with_jaeger_down_exits_3_and_keeps_the_run_folder(tmp_path):
    # A wrapped command that prints a real log keeps this quick; the export path is the same.
    run_dir = tmp_path / "run"
    port = unused_port()
    done = dnnprof_cli(
        "trace", "--no-report", "--out", str(run_dir), "--otlp", f"http://127.0.0.1:{port}",
        "--", "cat", str(INT8_LOG),
    )
    assert done.returncode == 3, done.stderr
    assert f"cannot reach the OTLP collector at 127.0.0.1:{port}" in done.stderr
    assert "trace itself is unchanged" in done.stderr
    assert f"run folder: {run_dir}" in done.stderr
    assert len(Trace.load(run_dir).exec_events) > 1000  # the run was saved whole


# ------------------------------------------------------------ dnnprof parse --


@pytest.mark.slow
def test_parse_sends_a_corpus_log_to_jaeger(jaeger, tmp_path):
    service = unique_service("dnnprof-parse")
    stored = tmp_path / "int8.trace"
    done = dnnprof_cli(
        "parse", str(INT8_LOG), "--model", "resnet50", "-o", str(stored), "--json",
        "--otlp", jaeger.otlp_http_endpoint, "--protocol", "http", "--service-name", service,
        "--span-iterations", "2",
    )
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)  # the export's messages stay off a JSON stdout
    expected = build_span_tree(Trace.load(stored), 2, service_name=service)
    tree = stored_tree(jaeger, service, len(expected))
    assert tree.iterations == expected.iterations == [2, 3]
    assert shape(tree) == shape(expected)


def test_parse_export_failure_exits_3_after_saving_the_trace(tmp_path):
    stored = tmp_path / "int8.trace"
    done = dnnprof_cli(
        "parse", str(INT8_LOG), "-o", str(stored), "--otlp", f"127.0.0.1:{unused_port()}",
    )
    assert done.returncode == 3
    assert "cannot reach the OTLP collector" in done.stderr
    Trace.load(stored)


# ----------------------------------------------------------- dnnprof export --


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_export_otlp_to_jaeger(jaeger, corpus_trace, protocol, capsys):
    service = unique_service(f"dnnprof-export-{protocol}")
    endpoint = jaeger.otlp_grpc_endpoint if protocol == "grpc" else jaeger.otlp_http_endpoint
    before = sha256(corpus_trace)
    status = main(["export", str(corpus_trace), "--otlp", endpoint, "--protocol", protocol,
                   "--service-name", service])
    assert status == 0
    out = capsys.readouterr().out
    expected = build_span_tree(Trace.load(corpus_trace), service_name=service)
    tree = stored_tree(jaeger, service, len(expected))
    assert printed_trace_id(out) == int(tree.trace_id, 16) and f"{len(expected)} spans" in out
    assert tree.iterations == [1, 2, 3]
    assert shape(tree) == shape(expected)
    assert sha256(corpus_trace) == before


@pytest.mark.slow
def test_export_with_the_legacy_jaeger_exporter(jaeger, corpus_trace):
    try:
        _exporter_class()
    except ExportError as error:  # the `jaeger` extra; CI installs it, so there this fails
        missing_dependency(str(error))
    service = unique_service("dnnprof-export-legacy")
    status = main(["export", str(corpus_trace), "--protocol", "jaeger", "--service-name", service,
                   "--otlp", jaeger.collector_thrift_http_endpoint, "--span-iterations", "1"])
    assert status == 0
    expected = build_span_tree(Trace.load(corpus_trace), 1, service_name=service)
    tree = stored_tree(jaeger, service, len(expected))
    assert tree.iterations == [3]
    assert shape(tree) == shape(expected)


def test_export_each_file_format(corpus_trace, tmp_path, capsys):
    trace = Trace.load(corpus_trace)
    before = sha256(corpus_trace)
    files = {"jaeger": tmp_path / "cli.jaeger.json", "chrome": tmp_path / "cli.chrome.json",
             "benchdnn": tmp_path / "cli.benchdnn.txt"}
    status = main(["export", str(corpus_trace), "--jaeger-json", str(files["jaeger"]),
                   "--chrome", str(files["chrome"]), "--benchdnn", str(files["benchdnn"]),
                   "--service-name", "resnet50-int8", "--span-iterations", "2"])
    assert status == 0
    out = capsys.readouterr().out
    assert all(str(path) in out for path in files.values())
    assert sha256(corpus_trace) == before

    # Each file is what the API writes for the same flags. The corpus log has no clock, so
    # its synthetic timeline is placed at export time: compare the files relative to it.
    api = {"jaeger": write_jaeger_json(trace, tmp_path / "api.jaeger.json",
                                       service_name="resnet50-int8", span_iterations=2),
           "chrome": write_chrome_trace(trace, tmp_path / "api.chrome.json"),
           "benchdnn": write_benchdnn(trace, tmp_path / "api.benchdnn.txt")}
    assert files["benchdnn"].read_bytes() == api["benchdnn"].read_bytes()
    for name in ("jaeger", "chrome"):
        assert without_clock(files[name]) == without_clock(api[name]), name

    # ... and holds the span tree or cases it should.
    (tree,) = read_jaeger_json(files["jaeger"])
    expected = build_span_tree(trace, 2, service_name="resnet50-int8")
    assert tree.service_name == "resnet50-int8" and tree.iterations == [2, 3]
    assert shape(tree) == shape(expected)
    events = json.loads(files["chrome"].read_text())["traceEvents"]
    complete = [e for e in events if e.get("ph") == "X"]
    assert len(complete) == len(build_span_tree(trace, None, "all"))
    assert "layer1.0.conv1" in {e["name"] for e in complete}
    cases = [line for line in files["benchdnn"].read_text().splitlines() if line.startswith("--")]
    assert cases and any(case.startswith("--conv ") and "--dt=u8:s8" in case for case in cases)


def without_clock(path: Path) -> dict:
    """A Jaeger or Chrome JSON file with its absolute times made relative to the run start."""
    document = json.loads(path.read_text())
    if "traceEvents" in document:  # Chrome: events are relative already, only the epoch moves
        document["otherData"].pop("start_time_unix_ns")
        return document
    for trace in document["data"]:
        origin = min(span["startTime"] for span in trace["spans"])
        for span in trace["spans"]:
            span["startTime"] -= origin
    return document


def test_export_accepts_a_run_folder(corpus_trace, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trace.parquet").write_bytes(corpus_trace.read_bytes())
    assert main(["export", str(run_dir), "--chrome", str(tmp_path / "c.json")]) == 0
    assert (tmp_path / "c.json").stat().st_size > 0


# ----------------------------------------------------------------- failures --


@pytest.mark.parametrize("protocol", ["grpc", "http", "jaeger"])
def test_export_with_jaeger_down_exits_3_and_leaves_the_trace_file_intact(
    corpus_trace, tmp_path, protocol
):
    if protocol == "jaeger":
        try:
            _exporter_class()
        except ExportError as error:
            missing_dependency(str(error))
    before = sha256(corpus_trace)
    port = unused_port()
    url = f"http://127.0.0.1:{port}" + ("/api/traces" if protocol == "jaeger" else "")
    jaeger_json = tmp_path / "spans.json"
    done = dnnprof_cli("export", str(corpus_trace), "--otlp", url, "--protocol", protocol,
                       "--jaeger-json", str(jaeger_json))
    assert done.returncode == 3
    assert "dnnprof: export failed: cannot reach the" in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "trace itself is unchanged" in done.stderr
    assert "Traceback" not in done.stderr
    assert sha256(corpus_trace) == before
    assert read_jaeger_json(jaeger_json)  # the other outputs are still written


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such trace file"), (b"not parquet", "not a readable dnnprof trace")],
)
def test_export_of_an_unreadable_trace_exits_2(tmp_path, capsys, content, message):
    path = tmp_path / "broken.trace"
    if content is not None:
        path.write_bytes(content)
    assert main(["export", str(path), "--chrome", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dnnprof: {path}: {message}")
    assert not (tmp_path / "c.json").exists()


def test_export_without_an_output_is_a_usage_error(corpus_trace, capsys):
    assert main(["export", str(corpus_trace)]) == 2
    assert "name at least one output" in capsys.readouterr().err


def test_export_file_that_cannot_be_written_exits_2(corpus_trace, tmp_path, capsys):
    # 2, like any output that cannot be written; 3 is kept for an unreachable collector
    (tmp_path / "blocker").write_text("a file, not a folder")
    target = tmp_path / "blocker" / "c.json"
    assert main(["export", str(corpus_trace), "--chrome", str(target)]) == 2
    assert f"cannot write {target}" in capsys.readouterr().err


def test_bad_span_iterations_is_a_usage_error(corpus_trace):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(corpus_trace), "--chrome", "x.json", "--span-iterations", "-1"])
    assert exit_info.value.code == 2


# ------------------------------------------------------- export_from_args --


def options(**given) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    from dnnprof.cli.outputs import add_export_options

    add_export_options(parser)
    args = parser.parse_args([])
    vars(args).update(given)
    return args


def test_export_from_args_does_nothing_without_export_options(capsys):
    # No trace needed: nothing may touch it.
    assert export_from_args(object(), options()) == 0
    assert capsys.readouterr() == ("", "")


def test_export_modifiers_without_otlp_warn_and_do_nothing(capsys):
    assert export_from_args(object(), options(protocol="http", span_iterations=1)) == 0
    assert capsys.readouterr().err == (
        "dnnprof: ignoring --protocol, --span-iterations: nothing to export without --otlp\n"
    )
