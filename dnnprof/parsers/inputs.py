"""Reading a log: a path (plain or gzip), a binary file object, or an iterable of lines."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dnnprof.errors import LogReadError


@contextmanager
def open_text(source: Any) -> Iterator[Iterable[str]]:
    """Lines of a path (plain or .gz), a binary file object, or an iterable of str/bytes."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with path.open("rb") as probe:
                gzipped = probe.read(2) == b"\x1f\x8b"
            raw = gzip.open(path, "rb") if gzipped else path.open("rb")
        except OSError as exc:
            raise LogReadError(f"cannot read {path}: {exc.strerror or exc}") from None
        # binary read + 'replace': garbage bytes become U+FFFD instead of an exception;
        # iterating the wrapper directly keeps the per-line cost in C
        with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:
            try:
                yield text
            except (OSError, EOFError) as exc:
                # a truncated .gz: what was read stays, the caller is told where it stopped
                raise LogReadError(f"{path}: read failed part-way ({exc})") from None
        return
    if isinstance(source, (io.RawIOBase, io.BufferedIOBase)):
        yield io.TextIOWrapper(source, encoding="utf-8", errors="replace")
        return
    yield (item.decode("utf-8", "replace") if isinstance(item, bytes) else item for item in source)


def source_name(source: Any) -> str:
    """The name a Trace records for its source: the path, or `<lines>`."""
    return str(source) if isinstance(source, (str, os.PathLike)) else "<lines>"
