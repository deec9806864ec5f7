"""The words every dnnprof module uses: primitive kinds, data types, phases, variants, exit codes.

Standard library only: the workload children import it under interpreters that may have
neither pandas nor numpy (an MXNet virtualenv).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit status of every `dnnprof` command (docs/architecture.md lists them)."""

    OK = 0
    REGRESSION = 1  # `dnnprof check` only: a significant slowdown or a structural change
    USAGE = 2  # bad arguments, unreadable or unusable input, a failed write
    UNREACHABLE = 3  # an OTLP/Jaeger collector could not be reached (or a workload failed)
    INTERRUPTED = 130  # Ctrl-C


@dataclass(frozen=True)
class PrimitiveKind:
    """One oneDNN primitive kind: the layer category it computes and its benchdnn driver."""

    name: str
    category: str  # what a layer table calls the same operation ("conv", "linear", ...)
    driver: str  # benchdnn driver that reproduces it ("" when benchdnn has none)


OTHER = "other"  # the category of a kind that is not one layer operation


def _kinds(*rows: tuple[str, str, str]) -> dict[str, PrimitiveKind]:
    return {name: PrimitiveKind(name, category, driver) for name, category, driver in rows}


# Every primitive kind the grammar's logs name. A kind not listed here is still parsed and
# kept as text (see `unknown_kinds` in the metadata); it just has no category or driver.
PRIMITIVE_KINDS: dict[str, PrimitiveKind] = _kinds(
    ("convolution", "conv", "conv"),
    ("deconvolution", "deconv", "deconv"),
    ("inner_product", "linear", "ip"),
    ("matmul", "linear", "matmul"),
    ("gemm_api", "linear", ""),
    ("rnn", "rnn", "rnn"),
    ("reorder", "reorder", "reorder"),
    ("eltwise", "act", "eltwise"),
    ("prelu", "act", "prelu"),
    ("pooling", "pool", "pool"),
    ("pooling_v2", "pool", "pool"),
    ("batch_normalization", "bn", "bnorm"),
    ("layer_normalization", "layernorm", "lnorm"),
    ("layer_normalization_v2", "layernorm", "lnorm"),
    ("group_normalization", "groupnorm", "gnorm"),
    ("lrn", "lrn", "lrn"),
    ("softmax", "softmax", "softmax"),
    ("softmax_v2", "softmax", "softmax"),
    ("logsoftmax", "softmax", "softmax"),
    ("sum", "add", "sum"),
    ("binary", "binary", "binary"),
    ("concat", "concat", "concat"),
    ("shuffle", "shuffle", "shuffle"),
    ("resampling", "resample", "resampling"),
    ("reduction", "reduce", "reduction"),
    # fused blocks, ukernels and helpers: no single layer category, no benchdnn driver
    ("gemm", OTHER, ""),
    ("sdpa", OTHER, ""),
    ("gated_mlp", OTHER, ""),
    ("zero_pad", OTHER, ""),
    ("brgemm", OTHER, ""),
    ("brgemm_pack_b", OTHER, ""),
    ("transform", OTHER, ""),
)
KNOWN_KINDS = frozenset(PRIMITIVE_KINDS)
# Categories that are a layer by themselves (the thesis' "compute" kinds); bmm is the layer
# tables' name for a batched matmul.
COMPUTE_CATEGORIES = frozenset({"conv", "deconv", "linear", "rnn", "bmm"})
COMPUTE_KINDS = frozenset(
    k.name for k in PRIMITIVE_KINDS.values() if k.category in COMPUTE_CATEGORIES
)
REORDER = "reorder"


def category_of(kind: str) -> str:
    """The layer category of a primitive kind ('other' for a kind dnnprof does not know)."""
    known = PRIMITIVE_KINDS.get(kind)
    return known.category if known else OTHER


def benchdnn_driver(kind: str) -> str:
    """The benchdnn driver of a primitive kind ('' when benchdnn cannot reproduce it)."""
    known = PRIMITIVE_KINDS.get(kind)
    return known.driver if known else ""


# oneDNN data types, narrowest first within each family (memory descriptors and attributes)
DATA_TYPES = (
    "f64", "f32", "tf32", "bf16", "f16", "f8_e5m2", "f8_e4m3", "f4_e2m1", "f4_e3m0",
    "e8m0", "s32", "s16", "u16", "s8", "u8", "s4", "u4", "boolean", "bin", "undef",
)
INT8_TYPES = frozenset({"s8", "u8"})

# Iteration phases, as the workload markers and the reconstructor name them.
WARMUP = "warmup"
MEASURE = "measure"
CALIBRATE = "calibrate"
BUILD = "build"
# the other phases a dnnprof workload marks: importing the framework, the iterations, the end
SETUP = "setup"
RUN = "run"
DONE = "done"
# A phase is steady state when it is one of these: "measure" is what dnnprof's own
# workloads and the reconstructor write; "run" and "steady" come from other tools' markers.
STEADY_PHASES = frozenset({MEASURE, "run", "steady"})
NON_STEADY_PHASES = frozenset({WARMUP, CALIBRATE, BUILD, "setup", "compile", "done"})

# Workload variants: the numeric path the model runs in.
VARIANTS = ("fp32", "fused", "int8", "bf16")
DEFAULT_VARIANT = "fp32"
FRAMEWORKS = ("torch", "ipex", "mxnet")

# What the machine was doing while a run was measured (dnnprof.profiler.conditions): quiet,
# busy (timings usable with care), unreliable (timings not to be trusted), or unknown (a
# captured log, or a trace stored before dnnprof recorded run conditions).
QUIET = "quiet"
BUSY = "busy"
UNRELIABLE = "unreliable"
UNKNOWN = "unknown"
RUN_VERDICTS = (QUIET, BUSY, UNRELIABLE, UNKNOWN)
