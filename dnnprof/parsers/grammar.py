"""The grammar's LALR parser: built once per process, cached on disk between processes."""

from __future__ import annotations

import hashlib
import sys
from contextlib import suppress
from functools import cache
from importlib import resources
from pathlib import Path

import lark
from lark import Lark

from dnnprof.errors import OutputError
from dnnprof.files import atomic_path, cache_dir

START_RULES = (
    "line", "marker", "mds", "attrs", "aux", "problem", "impl", "logical_tensors", "info",
    "engine", "source_location",
)


def grammar_text() -> str:
    """The text of `onednn_verbose.lark`."""
    return resources.files("dnnprof.grammars").joinpath("onednn_verbose.lark").read_text()


GRAMMAR_OPTIONS = {
    "parser": "lalr", "lexer": "contextual", "start": list(START_RULES),
    "propagate_positions": False, "maybe_placeholders": False,
}


@cache
def grammar_parser() -> Lark:
    """The LALR parser for every start rule of the grammar: loaded from dnnprof's cache
    folder when built there before, else built (about 0.1 s) and cached for the next
    process."""
    text = grammar_text()
    try:
        path = _grammar_cache_path(text)
    except RuntimeError:  # no home folder to be found (an unnamed uid, no $HOME): no cache
        return Lark(text, **GRAMMAR_OPTIONS)
    try:
        with path.open("rb") as handle:
            return Lark.load(handle)
    except Exception:  # noqa: BLE001 - absent, damaged or unreadable: a cache never fails a parse
        pass
    parser = Lark(text, **GRAMMAR_OPTIONS)
    with suppress(OSError, OutputError):  # a read-only home only loses the speed-up
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temp, temp.open("wb") as handle:
            parser.save(handle)  # renamed into place complete: a parallel load sees all or nothing
    return parser


def _grammar_cache_path(text: str) -> Path:
    """The cache file of this grammar, Lark version, options and Python: a change to any of
    them is another file, so no process ever loads a parser built from another grammar."""
    key = "\n".join([text, lark.__version__, repr(sorted(GRAMMAR_OPTIONS.items())),
                     sys.version.split()[0]])
    return cache_dir() / "grammar" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.lark"
