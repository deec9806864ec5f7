"""What a run is — model family, precision, pruning, width, framework — read from its
metadata, or failing that from its name, and how the claims pick runs to compare.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnprof.reports import Variant
from dnnprof.vocabulary import DEFAULT_VARIANT, VARIANTS

# An explicit precision word anywhere in a run's names decides, reduced precisions first:
# "resnet50 pruned,int8" is an int8 run.
_PRECEDENCE = {"int8": 0, "bf16": 1, "fused": 2}
PRECISIONS = tuple(sorted(VARIANTS, key=lambda name: _PRECEDENCE.get(name, len(_PRECEDENCE))))
# Variant spellings seen in run metadata and corpus names -> the variant they are.
_PRECISION_WORDS = {
    **{name: name for name in VARIANTS},
    "quantized": "int8", "qat": "int8", "ptq": "int8",
    "bfloat16": "bf16", "autocast": "bf16",
    "compile": "fused", "freezing": "fused", "jit": "fused", "optimize_for": "fused",
    "float": "fp32", "eager": "fp32",
}
_WIDTHS = re.compile(r"(?:alpha|width|_|-)(0\.25|0\.5|0\.75|1\.0)\b")


@dataclass
class StudyRun:
    """One run as the study sees it: its variant and what it measures."""

    variant: Variant
    model: str
    precision: str
    pruned: str  # "", "structured", "unstructured"
    mlp_reduced: bool
    width: float | None
    framework: str


def describe(variant: Variant) -> StudyRun:
    """Model family, precision, pruning, width and framework of a variant."""
    meta = variant.meta
    text = " ".join(x for x in (meta.variant, meta.model, variant.name,
                                Path(variant.source).name) if x).lower()
    words = re.split(r"[^a-z0-9_.]+|_(?=[a-z])", text)
    precision = next((_PRECISION_WORDS[w] for w in words if w in _PRECISION_WORDS),
                     DEFAULT_VARIANT)
    for name in PRECISIONS:
        if re.search(rf"(?<![a-z]){name}(?![a-z])", text):
            precision = name
            break
    return StudyRun(
        variant=variant,
        model=(meta.model or variant.name.split()[0]).lower(),
        precision=precision,
        pruned=_pruning(text, meta.prune_mode),
        mlp_reduced="mlp_reduced" in text or "mlp-reduced" in text,
        width=_width(text, meta.width, meta.command),
        framework=(meta.framework or _framework_in(text)).lower(),
    )


def _pruning(text: str, mode: str | None) -> str:
    if "prun" not in text:
        return ""
    if "unstructured" in text or mode == "unstructured":
        return "unstructured"
    if "structured" in text or mode == "structured":
        return "structured"
    return "unstructured"  # the workload's default mode


def _width(text: str, recorded: float | None, command: str | None) -> float | None:
    if recorded is not None:
        return float(recorded)
    # the runner keeps the child's --width in the command line it records
    match = re.search(r"--width[= ]([0-9.]+)", command or "") or _WIDTHS.search(text)
    return float(match.group(1)) if match else None


def _framework_in(text: str) -> str:
    for name, words in (("mxnet", ("mxnet", "gluon")), ("pytorch", ("torch", "ipex"))):
        if any(word in text for word in words):
            return name
    return ""


def family(model: str) -> str:
    """resnet50, mobilenet, dlrm ... from a model or file name ('torch_resnet50_b1')."""
    match = re.search(r"resnet(\d+)|mobilenet|dlrm", model)
    if match:
        return f"resnet{match.group(1)}" if match.group(1) else match.group(0)
    return model


def pick(runs: Sequence[StudyRun], **want: Any) -> StudyRun | None:
    """The first run whose attributes have these values."""
    return next((r for r in runs if all(getattr(r, k) == v for k, v in want.items())), None)


def pair(runs: Sequence[StudyRun], model: str, precision: str,
         **extra: Any) -> tuple[StudyRun, StudyRun] | None:
    """(plain fp32, `precision`) runs of a model, preferring the same framework."""
    candidates = [r for r in runs if family(r.model) == model and r.precision == precision
                  and not r.mlp_reduced and all(getattr(r, k) == v for k, v in extra.items())]
    for run in candidates:
        base = [r for r in runs if family(r.model) == model and r.precision == DEFAULT_VARIANT
                and not r.pruned and not r.mlp_reduced and r is not run]
        same = [r for r in base if r.framework == run.framework] or base
        if same:
            return same[0], run
    return None


def dlrm_pair(runs: Sequence[StudyRun]) -> tuple[StudyRun, StudyRun] | None:
    """(DLRM, its MLP-reduced form) at the same precision."""
    full = [r for r in runs if family(r.model) == "dlrm" and not r.mlp_reduced]
    reduced = [r for r in runs if family(r.model) == "dlrm" and r.mlp_reduced]
    for new in reduced:
        base = [r for r in full if r.precision == new.precision]
        if base:
            return base[0], new
    return None
