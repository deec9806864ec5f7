"""dnnprof: where does a model's CPU time go inside oneDNN.

The public API, one function per step: `parse` a verbose log, `load` a stored trace or
`open` whatever the user points at; `reconstruct` its layers; `compare` variants; `check`
a new run against a baseline; `export` a trace to another format. The `dnnprof` command
(dnnprof.cli) is a thin shell over these functions.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.check import CheckConfig, CheckReport
    from dnnprof.reports.compare import Comparison
    from dnnprof.trace import Trace

__all__ = ["__version__", "check", "compare", "export", "load", "open", "parse", "reconstruct"]

# Every function imports lazily: the workload children import dnnprof.profiler.* under
# interpreters that may lack pandas (an MXNet virtualenv), and `dnnprof --help` must start
# without loading the analyzer.


def parse(source: Any, **kwargs: Any) -> Trace:
    """Parse a verbose log (path, .gz path, or iterable of lines) into a Trace."""
    from dnnprof.parsers.stream import parse_to_trace

    return parse_to_trace(source, **kwargs)


def load(path: str | os.PathLike[str]) -> Trace:
    """Load a stored trace (Parquet file or run folder)."""
    from dnnprof.trace import Trace

    return Trace.load(path)


def open(path: str | os.PathLike[str], **kwargs: Any) -> Trace:  # noqa: A001 - the API name
    """A Trace from a log, a stored trace or a run folder (see dnnprof.loader.open_trace)."""
    from dnnprof.loader import open_trace

    return open_trace(path, **kwargs)


def reconstruct(trace: Trace, layers: Any = None, model: str | None = None) -> Trace:
    """The trace with iterations and layers attributed (see dnnprof.reconstruct)."""
    from dnnprof.reconstruct import reconstruct as attribute_layers

    return attribute_layers(trace, layers=layers, model=model)


def compare(inputs: Sequence[str | os.PathLike[str]], baseline: str | None = None,
            layers: bool = True) -> Comparison:
    """Several runs (paths) side by side against a baseline variant (default: the first)."""
    from dnnprof.reports.compare import Comparison

    return Comparison.from_paths(inputs, baseline=baseline, layers=layers)


def check(new: Trace | str | os.PathLike[str], *, baseline: Trace | str | os.PathLike[str],
          config: CheckConfig | None = None, model: str | None = None) -> CheckReport:
    """A new run against a baseline (each a Trace or a path): the CI gate's report."""
    from dnnprof.check import check as gate

    return gate(new, baseline=baseline, config=config, model=model)


def export(trace: Trace, fmt: str, destination: Any = None, **options: Any) -> Any:
    """Write or send a trace in one format (see dnnprof.exporters.export)."""
    from dnnprof.exporters import export as write

    return write(trace, fmt, destination, **options)


# `dnnprof.check` and `dnnprof.reconstruct` are both a function above and a subpackage.
# Importing a subpackage binds it as an attribute of its parent, which would replace the
# function; so the package keeps the function, wrapped so that the subpackage's names stay
# reachable through it (`dnnprof.check.CheckConfig`, `import dnnprof.check.gate as gate`).


class _FunctionAndPackage:
    """Calls `function`; any other attribute is the subpackage's."""

    def __init__(self, function: Callable[..., Any], package: str) -> None:
        functools.update_wrapper(self, function)
        self._function = function
        self._package = package

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self._package), name)

    def __repr__(self) -> str:
        return f"<function {self._package} (also the package {self._package})>"


class _Package(types.ModuleType):
    """This package: a subpackage import never rebinds a function of the same name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and isinstance(
            self.__dict__.get(name), _FunctionAndPackage
        ):
            return
        super().__setattr__(name, value)


check = _FunctionAndPackage(check, "dnnprof.check")  # type: ignore[assignment]
reconstruct = _FunctionAndPackage(reconstruct, "dnnprof.reconstruct")  # type: ignore[assignment]
sys.modules[__name__].__class__ = _Package
