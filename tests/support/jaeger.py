"""A real Jaeger all-in-one for the tests: loopback only, in-memory storage, free ports.

The binary comes from `.ci/jaeger.sh` (built from the Go module proxy and cached). Under
`CI=true` a missing binary fails the test instead of skipping it: in CI the real-Jaeger
round trip is the point, and a silent skip would hide a broken setup.

Use the session fixture `jaeger`:

    def test_something(jaeger):
        export_otlp(trace, jaeger.otlp_grpc_endpoint)
        data = jaeger.client.wait_for_trace(trace_id, min_spans=10)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .ci import missing_dependency

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0


def find_jaeger_binary() -> Path | None:
    explicit = os.environ.get("DNNPROF_JAEGER_BIN")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    cache = Path(os.environ.get("DNNPROF_CACHE", Path.home() / ".cache" / "dnnprof"))
    cached = cache / "gobin" / "all-in-one"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    on_path = shutil.which("jaeger-all-in-one")
    return Path(on_path) if on_path else None


class JaegerQueryClient:
    """The few calls of Jaeger's HTTP query API (`/api/...`) that the tests need."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
            return json.load(response)

    def services(self) -> list[str]:
        return sorted(self.get("/api/services").get("data") or [])

    def traces(self, service: str, limit: int = 1000) -> list[dict[str, Any]]:
        # Without start/end the API searches only the last hour, and traces exported with real
        # oneDNN timestamps carry the capture time, which can be days old.
        end_us = int((time.time() + 10 * 365 * 86400) * 1e6)
        payload = self.get("/api/traces", service=service, limit=limit, start=1, end=end_us)
        return payload.get("data") or []

    def trace(self, trace_id: str) -> dict[str, Any]:
        """The trace as the API returns it: {"traceID", "spans", "processes", ...}."""
        data = self.get(f"/api/traces/{trace_id}").get("data") or []
        if not data:
            raise LookupError(f"trace {trace_id} not found")
        return data[0]

    def wait_for_trace(
        self, trace_id: str, min_spans: int = 1, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Poll until the trace has at least `min_spans` spans; the collector writes asynchronously."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] | None = None
        while True:
            try:
                last = self.trace(trace_id)
                if len(last.get("spans") or []) >= min_spans:
                    return last
            except (LookupError, urllib.error.HTTPError):
                pass
            if time.monotonic() > deadline:
                found = len(last.get("spans") or []) if last else 0
                raise TimeoutError(
                    f"trace {trace_id}: {found} spans after {timeout_s:.0f}s, expected >= {min_spans}"
                )
            time.sleep(0.2)

    def wait_for_traces(
        self, service: str, min_traces: int = 1, timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                found = self.traces(service)
            except urllib.error.HTTPError:
                found = []
            if len(found) >= min_traces:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"service {service!r}: {len(found)} traces after {timeout_s:.0f}s, "
                    f"expected >= {min_traces}"
                )
            time.sleep(0.2)


@dataclass
class JaegerServer:
    """A running all-in-one. Host:port strings are on the loopback interface."""

    binary: Path
    ports: dict[str, int]
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['otlp_grpc']}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL; the traces signal is at `/v1/traces`."""
        return f"http://{LOOPBACK}:{self.ports['otlp_http']}"

    @property
    def query_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['query_http']}"

    @property
    def admin_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['admin']}"

    @property
    def agent_compact_udp(self) -> tuple[str, int]:
        """Thrift-compact agent port (6831/UDP in a default deployment)."""
        return LOOPBACK, self.ports["agent_compact"]

    @property
    def collector_thrift_http_endpoint(self) -> str:
        """Legacy Jaeger collector (14268 in a default deployment)."""
        return f"http://{LOOPBACK}:{self.ports['collector_http']}/api/traces"

    @property
    def client(self) -> JaegerQueryClient:
        return JaegerQueryClient(self.query_url)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


TCP_PORTS = (
    "otlp_grpc",
    "otlp_http",
    "query_http",
    "query_grpc",
    "admin",
    "collector_http",
    "collector_grpc",
    "sampling_http",
)
UDP_PORTS = ("agent_compact", "agent_binary", "zipkin_compact")


def pick_free_ports() -> dict[str, int]:
    """Ports the kernel hands out for port 0, all held open together so none repeats."""
    sockets: list[socket.socket] = []
    ports: dict[str, int] = {}
    try:
        for name in TCP_PORTS + UDP_PORTS:
            kind = socket.SOCK_DGRAM if name in UDP_PORTS else socket.SOCK_STREAM
            sock = socket.socket(socket.AF_INET, kind)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
            ports[name] = sock.getsockname()[1]
    finally:
        for sock in sockets:
            sock.close()
    return ports


def command_line(binary: Path, ports: dict[str, int]) -> list[str]:
    def at(name: str) -> str:
        return f"{LOOPBACK}:{ports[name]}"

    return [
        str(binary),
        f"--collector.otlp.grpc.host-port={at('otlp_grpc')}",
        f"--collector.otlp.http.host-port={at('otlp_http')}",
        f"--collector.http-server.host-port={at('collector_http')}",
        f"--collector.grpc-server.host-port={at('collector_grpc')}",
        # The embedded agent forwards to the embedded collector's gRPC port.
        f"--reporter.grpc.host-port={at('collector_grpc')}",
        f"--query.http-server.host-port={at('query_http')}",
        f"--query.grpc-server.host-port={at('query_grpc')}",
        f"--admin.http.host-port={at('admin')}",
        f"--http-server.host-port={at('sampling_http')}",
        f"--processor.jaeger-compact.server-host-port={at('agent_compact')}",
        f"--processor.jaeger-binary.server-host-port={at('agent_binary')}",
        f"--processor.zipkin-compact.server-host-port={at('zipkin_compact')}",
        # --collector.zipkin.host-port stays unset: the Zipkin collector is off by default.
        "--log-level=warn",
    ]


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def healthy(server: JaegerServer) -> bool:
    try:
        with urllib.request.urlopen(server.admin_url + "/", timeout=1) as response:
            status = json.load(response).get("status", "")
        if status != "Server available":
            return False
        server.client.services()
    except (OSError, ValueError):
        return False
    return tcp_open(server.ports["otlp_grpc"]) and tcp_open(server.ports["otlp_http"])


def start_jaeger(binary: Path, log_dir: Path, attempts: int = 3) -> JaegerServer:
    """Start the binary and wait until it is healthy; retry with new ports if one was taken."""
    env = dict(os.environ, SPAN_STORAGE_TYPE="memory", COLLECTOR_OTLP_ENABLED="true")
    env.pop("COLLECTOR_ZIPKIN_HOST_PORT", None)
    failures: list[str] = []
    for attempt in range(1, attempts + 1):
        ports = pick_free_ports()
        log_path = log_dir / f"jaeger-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command_line(binary, ports),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        server = JaegerServer(binary=binary, ports=ports, log_path=log_path, process=process)
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


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerServer]:
    binary = find_jaeger_binary()
    if binary is None:
        missing_dependency(
            "Jaeger all-in-one binary not found; build it with .ci/jaeger.sh "
            "(or point DNNPROF_JAEGER_BIN at one)"
        )
    server = start_jaeger(binary, tmp_path_factory.mktemp("jaeger"))
    try:
        yield server
    finally:
        server.stop()
