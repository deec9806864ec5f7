"""The `#DNNPROF` marker format: what a workload writes and what the analyzer reads back.

A marker is one line on the workload's stdout, between oneDNN's own verbose lines:

    #DNNPROF,meta,<key>,<json value>            the value is everything after the third comma
    #DNNPROF,phase,<name>,<epoch_ms>
    #DNNPROF,iter_begin,<index>,<warmup|measure>,<epoch_ms>
    #DNNPROF,iter_end,<index>,<warmup|measure>,<epoch_ms>,<wall_ms>
    #DNNPROF,begin,<module name>,<module type>,<epoch_ms>
    #DNNPROF,end,<module name>,<module type>,<epoch_ms>

In a Trace a marker is one row: `op` "marker", `kind` the event, `ts_ms` its time and
`message` its payload — the fields after the event, without the time — as `payload()`
writes it and `Marker.from_row()` reads it back.

Standard library only: the workload children import this under any interpreter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PREFIX = "#DNNPROF"
META = "meta"
PHASE = "phase"
ITER_BEGIN = "iter_begin"
ITER_END = "iter_end"
BEGIN = "begin"
END = "end"
EVENTS = (META, PHASE, ITER_BEGIN, ITER_END, BEGIN, END)
# where each event's epoch-ms timestamp sits among the fields after the event name
TIME_FIELD = {BEGIN: 2, END: 2, ITER_BEGIN: 2, ITER_END: 2, PHASE: 1}


def encode(event: str, *fields: object) -> str:
    """One marker line (no newline) for an event and its fields."""
    return ",".join((PREFIX, event, *(str(field) for field in fields)))


def encode_meta(key: str, value: Any) -> str:
    """A `meta` marker line: the value as one line of compact JSON."""
    return encode(META, key, json.dumps(value, separators=(",", ":"), default=str))


def is_marker(line: str) -> bool:
    """True for a line that is a dnnprof marker."""
    return line.startswith(PREFIX + ",") or line.rstrip("\r\n") == PREFIX


def split_time(event: str, fields: tuple[str, ...]) -> tuple[tuple[str, ...], float | None]:
    """The fields without the event's timestamp, and that timestamp (None if absent/bad)."""
    index = TIME_FIELD.get(event)
    if index is None or len(fields) <= index:
        return fields, None
    try:
        ts = float(fields[index])
    except ValueError:
        return fields, None
    return fields[:index] + fields[index + 1 :], ts


def payload(fields: tuple[str, ...]) -> str:
    """The text a Trace keeps for a marker's fields (the timestamp already split off)."""
    return ",".join(fields)


def decode_value(text: str) -> Any:
    """A meta value: its JSON when it is JSON, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class Marker:
    """One decoded marker: the event, its fields (time removed) and its epoch-ms time."""

    event: str
    fields: tuple[str, ...]
    ts_ms: float | None = None

    @classmethod
    def from_line(cls, line: str) -> Marker | None:
        """Decode a marker line; None when the line is not a marker."""
        text = line.rstrip("\r\n")
        if not is_marker(text):
            return None
        parts = text.split(",", 3) if text.startswith(f"{PREFIX},{META},") else text.split(",")
        event, raw = (parts[1], tuple(parts[2:])) if len(parts) > 1 else ("", ())
        fields, ts = split_time(event, raw)
        return cls(event, fields, ts)

    @classmethod
    def from_row(cls, event: str, message: str, ts_ms: float | None = None) -> Marker:
        """Rebuild a marker from a Trace row (`kind`, `message`, `ts_ms`)."""
        if event == META:
            key, _, value = message.partition(",")
            return cls(event, (key, value), ts_ms)
        return cls(event, tuple(message.split(",")) if message else (), ts_ms)

    def field(self, index: int, default: str = "") -> str:
        """The index-th field, or default when the marker has fewer."""
        return self.fields[index] if len(self.fields) > index and self.fields[index] else default

    @property
    def meta(self) -> tuple[str, Any]:
        """(key, decoded value) of a `meta` marker."""
        return self.field(0), decode_value(self.field(1))
