"""A real Jaeger v2 for the tests: loopback only, free ports, memory or Badger storage, read
back through the query API v3 only (its answers are OTLP JSON).

The binary is `cmd/jaeger` built by `.ci/jaeger.sh` (which prints its path; `.ci/run` exports
it as DNNPROF_JAEGER_BIN). It runs with the config files of tests/data/jaeger/: loopback.yaml
binds every listener to 127.0.0.1 on the ports given in its environment, memory.yaml or
badger.yaml adds the store. Under `CI=true` a missing binary fails the test instead of
skipping it: in CI the real-Jaeger round trip is the point, and a silent skip would hide a
broken setup.

Use the session fixture `jaeger` (memory store), or `start_jaeger(...)` for a server of
your own (e.g. Badger, to restart it):

    def test_something(jaeger):
        result = export_otlp(trace, jaeger.otlp_grpc_endpoint)
        stored = jaeger.client.wait_for_trace(result.trace_id, min_spans=result.spans)
        tree = tree_from_otlp(stored)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from .ci import missing_dependency

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0
CONFIG_DIR = Path(__file__).resolve().parents[1] / "data" / "jaeger"
# Searches cover every start time a trace can have: a trace on oneDNN's own clock carries
# the time of the capture, which can be years old.
SEARCH_FROM = datetime(2000, 1, 1, tzinfo=timezone.utc)
SEARCH_TO = datetime(2100, 1, 1, tzinfo=timezone.utc)

# port name -> the variable loopback.yaml reads it from
TCP_PORTS = {
    "otlp_grpc": "JAEGER_OTLP_GRPC_PORT",
    "otlp_http": "JAEGER_OTLP_HTTP_PORT",
    "query_http": "JAEGER_QUERY_HTTP_PORT",
    "query_grpc": "JAEGER_QUERY_GRPC_PORT",
    "health": "JAEGER_HEALTH_PORT",
    "thrift_http": "JAEGER_THRIFT_HTTP_PORT",
}
UDP_PORTS = {"thrift_compact": "JAEGER_THRIFT_COMPACT_PORT"}


def find_jaeger_binary() -> Path | None:
    """DNNPROF_JAEGER_BIN, else the newest binary `.ci/jaeger.sh` cached."""
    explicit = os.environ.get("DNNPROF_JAEGER_BIN")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    cache = Path(os.environ.get("DNNPROF_CACHE", Path.home() / ".cache" / "dnnprof"))
    cached = sorted(cache.glob("jaeger/v*/jaeger"), key=lambda p: p.stat().st_mtime)
    runnable = [path for path in cached if os.access(path, os.X_OK)]
    return runnable[-1] if runnable else None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- OTLP JSON --


@dataclass
class StoredSpan:
    """One span of an OTLP JSON answer, with its resource's attributes."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    events: list[dict[str, Any]]

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def any_value(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as Python (int64 values come as strings in proto3 JSON)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values") or []]
    if "kvlistValue" in value:
        return key_values(value["kvlistValue"].get("values"))
    return None  # an empty AnyValue


def key_values(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: any_value(item.get("value") or {}) for item in items or []}


def hex_id(value: str) -> str:
    """Span and trace ids: Jaeger's JSON writes them as hex; proto3 JSON as base64."""
    if not value:
        return ""
    try:
        int(value, 16)
        return value.lower()
    except ValueError:
        import base64

        return base64.b64decode(value).hex()


def otlp_spans(document: dict[str, Any]) -> list[StoredSpan]:
    """Every span of an OTLP JSON document (`{"resourceSpans": [...]}`)."""
    spans = []
    for resource_spans in document.get("resourceSpans") or []:
        resource = key_values((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            scope = (scope_spans.get("scope") or {}).get("name", "")
            for raw in scope_spans.get("spans") or []:
                spans.append(
                    StoredSpan(
                        trace_id=hex_id(raw.get("traceId", "")),
                        span_id=hex_id(raw.get("spanId", "")),
                        parent_span_id=hex_id(raw.get("parentSpanId", "")),
                        name=raw.get("name", ""),
                        start_ns=int(raw.get("startTimeUnixNano", 0)),
                        end_ns=int(raw.get("endTimeUnixNano", 0)),
                        attributes=key_values(raw.get("attributes")),
                        resource=resource,
                        scope=scope,
                        events=[
                            {"name": e.get("name", ""), "time_ns": int(e.get("timeUnixNano", 0)),
                             "attributes": key_values(e.get("attributes"))}
                            for e in raw.get("events") or []
                        ],
                    )
                )
    return spans


def tree_from_otlp(document: dict[str, Any]):
    """The one trace of an OTLP JSON document as a dnnprof SpanTree (times in ns).

    Attributes the exporter or the ingestion adds (the legacy Thrift exporter's `otel.*`
    and `service.name` tags) are dropped, as the Jaeger JSON reader drops them."""
    from dnnprof.exporters.jaeger_json import INGESTION_TAGS, assemble_tree
    from dnnprof.exporters.spans import Span

    stored = otlp_spans(document)
    trace_ids = {span.trace_id for span in stored}
    if len(trace_ids) != 1:
        raise ValueError(f"expected the spans of one trace, found trace ids {sorted(trace_ids)}")
    nodes = {
        span.span_id: Span(
            name=span.name,
            level=str(span.attributes.get("dnnprof.level", "")),
            start_ns=span.start_ns,
            end_ns=span.end_ns,
            attributes={k: v for k, v in span.attributes.items() if k not in INGESTION_TAGS},
        )
        for span in stored
    }
    parents = {span.span_id: span.parent_span_id for span in stored}
    service = str(stored[0].resource.get("service.name", ""))
    return assemble_tree(nodes, parents, trace_id=stored[0].trace_id, service=service,
                         resource={})


# ------------------------------------------------------------- query API v3 --


class JaegerQueryClient:
    """The calls of Jaeger's query API v3 that the tests need (HTTP, and gRPC for the one
    search HTTP cannot do: by attribute)."""

    def __init__(self, base_url: str, grpc_target: str = "", timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.grpc_target = grpc_target
        self.timeout_s = timeout_s

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
            return json.load(response)

    def services(self) -> list[str]:
        return sorted(self.get("/api/v3/services").get("services") or [])

    def operations(self, service: str) -> list[str]:
        found = self.get("/api/v3/operations", service=service).get("operations") or []
        return sorted(op["name"] for op in found)

    def trace(self, trace_id: str, raw: bool = False) -> dict[str, Any]:
        """The trace as OTLP JSON (`{"resourceSpans": [...]}`); LookupError when unknown.

        `raw`: as stored, without the query service's adjusters (sorting, clock skew...)."""
        params = {"raw_traces": "true"} if raw else {}
        try:
            return self.get(f"/api/v3/traces/{trace_id}", **params)["result"]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise LookupError(f"trace {trace_id} not found") from None
            raise

    def find(self, service: str, num_traces: int = 100) -> dict[str, Any]:
        """Every span of the service's traces (at most `num_traces`) as one OTLP JSON document."""
        try:
            return self.get(
                "/api/v3/traces",
                **{
                    "query.service_name": service,
                    "query.start_time_min": rfc3339(SEARCH_FROM),
                    "query.start_time_max": rfc3339(SEARCH_TO),
                    "query.num_traces": num_traces,
                    "query.raw_traces": "true",  # ids only: see wait_for_trace
                },
            )["result"]
        except urllib.error.HTTPError as error:
            if error.code == 404:  # "No traces found"
                return {"resourceSpans": []}
            raise

    def trace_ids(self, service: str) -> list[str]:
        """The distinct trace ids the service has, sorted."""
        return sorted({span.trace_id for span in otlp_spans(self.find(service))})

    def find_by_attributes(self, service: str, attributes: dict[str, str]) -> list[str]:
        """Trace ids of the service whose spans or resource carry every attribute (gRPC v3:
        the HTTP gateway does not take attributes)."""
        from .jaeger_grpc import find_trace_ids

        return find_trace_ids(
            self.grpc_target, service, attributes, SEARCH_FROM, SEARCH_TO, self.timeout_s
        )

    def wait_for_trace(
        self, trace_id: str, min_spans: int = 1, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Poll until the trace has at least `min_spans` spans (the collector writes in
        batches), then return it as the UI gets it, adjusted.

        The polls ask for the raw trace: Jaeger's memory store hands the query service its
        stored spans, and the adjusters write their warnings into them ("parent span ID=...
        is not in the trace") when a poll lands between two batches."""
        deadline = time.monotonic() + timeout_s
        found = 0
        while True:
            try:
                found = len(otlp_spans(self.trace(trace_id, raw=True)))
                if found >= min_spans:
                    return self.trace(trace_id)
            except (LookupError, urllib.error.HTTPError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"trace {trace_id}: {found} spans after {timeout_s:.0f}s, expected >= {min_spans}"
                )
            time.sleep(0.2)

    def wait_for_traces(
        self, service: str, min_traces: int = 1, timeout_s: float = 30.0
    ) -> list[str]:
        """Poll until the service has at least `min_traces` traces; their ids."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.trace_ids(service)
            if len(found) >= min_traces:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"service {service!r}: {len(found)} traces after {timeout_s:.0f}s, "
                    f"expected >= {min_traces}"
                )
            time.sleep(0.2)


# ------------------------------------------------------------------ server --


@dataclass
class JaegerServer:
    """A running Jaeger v2. Host:port strings are on the loopback interface."""

    binary: Path
    storage: str  # "memory" or "badger"
    ports: dict[str, int]
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    badger_dir: Path | None = None

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['otlp_grpc']}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL; the traces signal is at `/v1/traces`."""
        return f"http://{LOOPBACK}:{self.ports['otlp_http']}"

    @property
    def query_url(self) -> str:
        """The query service's HTTP base (API v3, and the UI where it is built in)."""
        return f"http://{LOOPBACK}:{self.ports['query_http']}"

    @property
    def health_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['health']}/status"

    @property
    def collector_thrift_http_endpoint(self) -> str:
        """The `jaeger` receiver's Thrift over HTTP (14268 in a default deployment)."""
        return f"http://{LOOPBACK}:{self.ports['thrift_http']}/api/traces"

    @property
    def agent_compact_udp(self) -> tuple[str, int]:
        """The `jaeger` receiver's compact Thrift over UDP (6831 in a default deployment)."""
        return LOOPBACK, self.ports["thrift_compact"]

    @property
    def client(self) -> JaegerQueryClient:
        return JaegerQueryClient(self.query_url, f"{LOOPBACK}:{self.ports['query_grpc']}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def pick_free_ports() -> dict[str, int]:
    """Ports the kernel hands out for port 0, all held open together so none repeats."""
    sockets: list[socket.socket] = []
    ports: dict[str, int] = {}
    try:
        for name in [*TCP_PORTS, *UDP_PORTS]:
            kind = socket.SOCK_DGRAM if name in UDP_PORTS else socket.SOCK_STREAM
            sock = socket.socket(socket.AF_INET, kind)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
            ports[name] = sock.getsockname()[1]
    finally:
        for sock in sockets:
            sock.close()
    return ports


def command_line(binary: Path, storage: str) -> list[str]:
    """The binary with loopback.yaml and the store's file (configs merge in order)."""
    return [
        str(binary),
        "--config", str(CONFIG_DIR / "loopback.yaml"),
        "--config", str(CONFIG_DIR / f"{storage}.yaml"),
    ]


def environment(ports: dict[str, int], badger_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({variable: str(ports[name]) for name, variable in {**TCP_PORTS, **UDP_PORTS}.items()})
    if badger_dir is not None:
        env["JAEGER_BADGER_DIR"] = str(badger_dir)
    return env


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def healthy(server: JaegerServer) -> bool:
    """Health check green, query API answering, OTLP and Thrift ports accepting."""
    try:
        with urllib.request.urlopen(server.health_url, timeout=1) as response:
            if not json.load(response).get("healthy"):
                return False
        server.client.services()
    except (OSError, ValueError):
        return False
    return all(tcp_open(server.ports[name]) for name in ("otlp_grpc", "otlp_http", "thrift_http"))


def start_jaeger(
    binary: Path,
    log_dir: Path,
    storage: str = "memory",
    badger_dir: Path | None = None,
    attempts: int = 3,
) -> JaegerServer:
    """Start the binary and wait until it is healthy; retry with new ports if one was taken."""
    if storage == "badger" and badger_dir is None:
        raise ValueError("a Badger store needs badger_dir")
    failures: list[str] = []
    for attempt in range(1, attempts + 1):
        ports = pick_free_ports()
        log_path = log_dir / f"jaeger-{storage}-{ports['otlp_grpc']}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command_line(binary, storage),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment(ports, badger_dir),
                cwd=log_dir,
            )
        server = JaegerServer(binary, storage, ports, log_path, process, badger_dir)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            if healthy(server):
                return server
            time.sleep(0.2)
        server.stop()
        failures.append(f"attempt {attempt}: exit code {process.returncode}\n{server.log_tail()}")
    raise RuntimeError(
        f"Jaeger ({binary}) did not become healthy in {attempts} attempts:\n" + "\n".join(failures)
    )


def jaeger_binary_or_skip() -> Path:
    """The binary, or a skip (a failure under CI=true) saying how to build it."""
    binary = find_jaeger_binary()
    if binary is None:
        missing_dependency(
            "Jaeger v2 binary not found; build it with .ci/jaeger.sh "
            "(or point DNNPROF_JAEGER_BIN at one)"
        )
    return binary


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerServer]:
    server = start_jaeger(jaeger_binary_or_skip(), tmp_path_factory.mktemp("jaeger"))
    try:
        yield server
    finally:
        server.stop()
