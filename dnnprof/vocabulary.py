"""The words every dnnprof module uses: primitive kinds, data types, phases, variants, exit codes.

Standard library only: the workload children import it under interpreters that may have
neither pandas nor numpy (an MXNet virtualenv).
"""

from __future__ import annotations

import re
from collections import Counter
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
# Operations whose lines carry a time (`create_nested`: a primitive created inside another's
# creation); every other row (messages, markers) has none
TIMED_OPS = frozenset({"exec", "create", "create_nested", "compile"})
CREATE_OPS = frozenset({"create", "create_nested", "compile"})


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

# --- naming a structural change (the same words in `check` and in the store's history) ---
# Bits per value of the data types a compute primitive reads: a wider type than before is a
# fallback (int8 -> f32), a narrower one is what quantisation meant to do.
DTYPE_BITS = {
    "f64": 64, "f32": 32, "tf32": 32, "s32": 32, "bf16": 16, "f16": 16,
    "s8": 8, "u8": 8, "f8_e5m2": 8, "f8_e4m3": 8, "s4": 4, "u4": 4,
}
# x64 then aarch64 ISAs, weakest first. `uni`/`any`/"" mean "whatever the machine has"
# and are not ranked: a change to or from them is an impl change, not a downgrade.
ISA_ORDER = (
    "sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2",
    "avx512_core", "avx512_core_vnni", "avx512_core_bf16", "avx512_core_fp16",
    "avx512_core_amx", "avx512_core_amx_fp16",
)
AARCH64_ISA_ORDER = ("asimd", "sve_128", "sve_256", "sve_512")
_ISA_RANK = {isa: i for order in (ISA_ORDER, AARCH64_ISA_ORDER) for i, isa in enumerate(order)}
_ISA_FAMILY = {isa: order[0] for order in (ISA_ORDER, AARCH64_ISA_ORDER) for isa in order}
_REF_IMPL = re.compile(r"(^|[^a-z])ref([^a-z]|$)")


def post_op_changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """Post-ops lost and gained between two '+'-joined post-op lists (fusion lost/gained)."""
    before = Counter(op for op in old.split("+") if op)
    after = Counter(op for op in new.split("+") if op)
    return sorted((before - after).elements()), sorted((after - before).elements())


def dtype_change(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    """dtype_fallback (wider compute inputs: src or weights), dtype_narrowed or dtype_changed."""
    wider = narrower = False
    for before, after in zip(old[:2], new[:2], strict=True):
        bits_before, bits_after = DTYPE_BITS.get(before), DTYPE_BITS.get(after)
        if bits_before is None or bits_after is None:
            continue
        wider |= bits_after > bits_before
        narrower |= bits_after < bits_before
    if wider:
        return "dtype_fallback"
    if narrower:
        return "dtype_narrowed"
    return "dtype_changed"


def impl_change(old_impl: str, old_isa: str, new_impl: str, new_isa: str) -> str:
    """impl_ref_fallback, isa_downgrade, isa_upgrade or impl_changed."""
    if _REF_IMPL.search(new_impl.lower()) and not _REF_IMPL.search(old_impl.lower()):
        return "impl_ref_fallback"
    rank_old, rank_new = _ISA_RANK.get(old_isa), _ISA_RANK.get(new_isa)
    same_family = _ISA_FAMILY.get(old_isa) == _ISA_FAMILY.get(new_isa)
    if rank_old is not None and rank_new is not None and same_family and rank_old != rank_new:
        return "isa_downgrade" if rank_new < rank_old else "isa_upgrade"
    return "impl_changed"
