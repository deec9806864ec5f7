"""The small interface every output format implements, and what an export returns.

An exporter has a `name` (the registry key), says in one line what it `writes`, and has
one method, `export(trace, destination, options) -> ExportResult`. File formats take a path;
network formats (`to_file = False`) take a collector endpoint, or None for the default.

Standard library only (plus dnnprof's vocabulary, errors and files): `dnnprof.exporters` imports
this module eagerly, and `dnnprof --help` must not load pandas or the OpenTelemetry SDK.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from dnnprof.errors import DnnprofError
from dnnprof.files import atomic_path, check_output, write_text_atomic
from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.exporters.spans import SpanTree
    from dnnprof.trace import Trace

Destination = str | os.PathLike[str]


class ExportError(DnnprofError):
    """An export that could not be completed; the message says why and what to do next.

    Mostly a collector that cannot be reached or refuses the data (exit status 3). The
    Trace (and any file it was loaded from) is never modified by an exporter, so after this
    error the stored trace is intact and the export can simply be retried.
    """

    exit_code = ExitCode.UNREACHABLE


class EndpointError(DnnprofError):
    """A collector URL that cannot be used as written (exit 2: the user's to fix, not a
    collector that is down)."""


@dataclass(frozen=True)
class Endpoint:
    """A collector URL, checked: a known scheme, a host, and a port within 1-65535."""

    scheme: str
    host: str
    port: int | None  # None: the protocol's default
    path: str

    def url(self, default_port: int, path: str | None = None) -> str:
        """scheme://host:port/path, the host in brackets when it is an IPv6 address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = self.path if path is None else path
        return f"{self.scheme}://{host}:{self.port or default_port}{path}"


def parse_endpoint(
    endpoint: str,
    schemes: Sequence[str] = ("http", "https", "udp"),
    expected: str = "http://HOST:PORT",
) -> Endpoint:
    """`endpoint` (a URL, or HOST:PORT meaning http://) as an Endpoint, or EndpointError
    saying what is wrong with it. Called before any work, so a typo costs nothing."""
    raw = endpoint if "://" in endpoint else "http://" + endpoint
    try:
        parts = urlsplit(raw)
        port = parts.port  # a port out of range or not a number is a ValueError here
    except ValueError as exc:
        raise EndpointError(
            f"cannot use endpoint {endpoint!r}: {exc}; expected {expected}"
        ) from None
    problem = ""
    if parts.scheme not in schemes:
        problem = f"the scheme must be {' or '.join(f'{s}://' for s in schemes)}"
    elif not parts.hostname:
        problem = "no host"
    elif port == 0:
        problem = "port 0 is no port"
    if problem:
        raise EndpointError(f"cannot use endpoint {endpoint!r}: {problem}; expected {expected}")
    return Endpoint(parts.scheme, parts.hostname or "", port, parts.path)


@dataclass
class ExportOptions:
    """How to export; each format reads the options it has a use for and ignores the rest.

    `span_iterations` and `iterations` follow the command line: None takes the format's
    default (the last 3 steady iterations for Jaeger, every iteration for Chrome and
    benchdnn), `span_iterations=0` keeps every selected iteration.
    """

    service_name: str = "dnnprof"  # the service the spans appear under in Jaeger
    span_iterations: int | None = None  # keep the last N selected iterations; 0: all
    iterations: str | Sequence[int] | None = None  # "steady", "all" or iteration numbers
    protocol: str = "grpc"  # OTLP transport: "grpc" or "http"
    timeout_s: float = 10.0  # per request to a collector
    retries: int = 3  # extra attempts per batch and for the first connection
    batch_size: int | None = None  # spans per request; None: the exporter's default
    headers: dict[str, str] | None = None  # extra OTLP request headers (e.g. an auth token)
    query_url: str | None = None  # Jaeger's query service (UI), for the link to the trace

    def limit(self, default: int | None) -> int | None:
        """`span_iterations` as the span tree takes it: None means no limit."""
        if self.span_iterations is None:
            return default
        return self.span_iterations or None

    def selection(self, default: str) -> str | Sequence[int]:
        """`iterations`, or the format's default selection."""
        return default if self.iterations is None else self.iterations


@dataclass
class ExportResult:
    """What an export wrote or sent, and where. `message` is one line for the user.

    `trace_id` is the hex id to look up in Jaeger (span formats only); `counts` holds spans
    per level; `items` counts what a non-span format wrote (benchdnn cases, CSV rows).
    """

    format: str
    destination: str  # the file written, or the collector's URL
    message: str
    seconds: float
    protocol: str = ""
    service_name: str = ""
    trace_id: str = ""
    spans: int = 0
    batches: int = 0
    items: int = 0
    iterations: list[int] = field(default_factory=list)
    timeline: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    link: str = ""  # the trace's page in the Jaeger UI, when its address is known

    @property
    def endpoint(self) -> str:
        """The collector's URL (the name network exports have always used)."""
        return self.destination

    @classmethod
    def of_tree(
        cls, fmt: str, destination: str, tree: SpanTree, started: float, message: str,
        **sent: Any,
    ) -> ExportResult:
        """The result of exporting `tree` since `started` (perf_counter); `sent` adds
        protocol, spans and batches for network exports."""
        return cls(
            format=fmt,
            destination=destination,
            message=message,
            seconds=time.perf_counter() - started,
            service_name=tree.service_name,
            trace_id=tree.trace_id,
            spans=sent.pop("spans", len(tree)),
            iterations=tree.iterations,
            timeline=tree.timeline,
            counts=tree.counts(),
            **sent,
        )


class Exporter:
    """One output format. Subclasses set `name` and `writes` and implement `export` (a file
    format: `FileExporter.write`)."""

    name: ClassVar[str] = ""
    writes: ClassVar[str] = ""  # one line: what the output is and what opens it
    to_file: ClassVar[bool] = True  # False: the destination is a collector endpoint

    def export(
        self, trace: Trace, destination: Destination | None, options: ExportOptions
    ) -> ExportResult:
        """Write or send `trace`. Raises ExportError (exit 3) or OutputError (exit 2)."""
        raise NotImplementedError


class NetworkExporter(Exporter):
    """A format sent to a collector: subclasses implement `send`, to an endpoint URL or
    None for their default one."""

    to_file = False

    def export(
        self, trace: Trace, destination: Destination | None, options: ExportOptions
    ) -> ExportResult:
        """Send `trace` to the collector at `destination`. Raises ExportError (exit 3)."""
        return self.send(trace, None if destination is None else str(destination), options)

    def send(self, trace: Trace, endpoint: str | None, options: ExportOptions) -> ExportResult:
        """Send the span tree of the selected iterations to the collector at `endpoint`."""
        raise NotImplementedError


@dataclass
class Written:
    """What a file format wrote: the line for the user, a warning to add below it, and the
    span tree (span formats) or how many items (cases, rows) the file holds."""

    message: str
    note: str = ""
    tree: SpanTree | None = None
    items: int = 0


class FileExporter(Exporter):
    """A format written to one file: subclasses implement `write`; `export` checks the path
    first, times the write and turns what it wrote into the ExportResult."""

    def export(
        self, trace: Trace, destination: Destination | None, options: ExportOptions
    ) -> ExportResult:
        """Write `trace` to the file `destination`. Raises OutputError (exit 2)."""
        started = time.perf_counter()
        path = self.file_path(destination)
        written = self.write(trace, path, options)
        message = written.message + (f"\n  {written.note}" if written.note else "")
        if written.tree is not None:
            return ExportResult.of_tree(self.name, str(path), written.tree, started, message)
        return ExportResult(format=self.name, destination=str(path), message=message,
                            seconds=time.perf_counter() - started, items=written.items)

    def write(self, trace: Trace, path: Path, options: ExportOptions) -> Written:
        """Write the file at `path` (already checked), atomically."""
        raise NotImplementedError

    def file_path(self, destination: Destination | None) -> Path:
        """The path a file format writes to; a file format without one is a usage error.

        Checked before the export does any work: a folder, a device node or a path under a
        file is an OutputError (exit 2). Writing goes through `atomic_path`.
        """
        if destination is None or str(destination) == "":
            raise ValueError(f"the {self.name} export writes a file: give its path")
        return check_output(destination)


def write_json_atomic(path: Destination, document: Any) -> Path:
    """Write a JSON document to `path` via a temp file and a rename; returns the path."""
    # dumps, not dump: only the one-shot encoder is the C one (several times faster).
    return write_text_atomic(path, json.dumps(document, separators=(",", ":")) + "\n")


STREAMED = "\x00the streamed items\x00"  # stands for the list `write_json_streamed` writes
STREAM_BATCH = 200  # items per call of the C encoder: as fast as 2,000 (a Jaeger span dict is ~5 KB)


def write_json_streamed(path: Destination, document: Any, items: Iterable[Any]) -> Path:
    """Write a JSON document whose one big list (`STREAMED` in `document`) is encoded a batch
    of `items` at a time, through a temp file and a rename. The bytes are those of
    `write_json_atomic` with the list in place; the file is never one string in memory."""
    head, tail = json.dumps(document, separators=(",", ":")).split(json.dumps(STREAMED), 1)
    with atomic_path(path) as temp, temp.open("w", encoding="utf-8", buffering=1 << 20) as out:
        out.write(head + "[")
        separator = ""
        batch: list[Any] = []
        for item in items:
            batch.append(item)
            if len(batch) == STREAM_BATCH:
                out.write(separator + json.dumps(batch, separators=(",", ":"))[1:-1])
                separator, batch = ",", []
        if batch:
            out.write(separator + json.dumps(batch, separators=(",", ":"))[1:-1])
        out.write("]" + tail + "\n")
    return Path(path)
