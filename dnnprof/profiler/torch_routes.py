"""The torch child's routes: how the fp32 zoo model becomes the variant that runs.

A route is the way a precision reaches oneDNN: `eager`, `mkldnn` (nn.Linear swapped for
MkldnnLinear), `fx_int8`, `inductor`, `jit` (trace + freeze) or `autocast` (bf16); see
docs/workload.md. Standard library at import; torch inside the functions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import warnings
from collections.abc import Callable
from typing import Any

from dnnprof.profiler.child import UsageError, emit_meta, emit_phase
from dnnprof.vocabulary import BUILD, CALIBRATE

ROUTES = ("auto", "eager", "mkldnn", "inductor", "jit")
# the routes that run the model's own modules, so forward hooks fire
HOOKABLE = frozenset({"eager", "mkldnn", "fx_int8", "autocast"})
AUTOCAST = "autocast"
# routes --route may pick for each precision (int8 has one, chosen by auto)
_ALLOWED = {"fp32": ("eager", "mkldnn"), "bf16": ("eager",), "fused": ("inductor", "jit"), "int8": ()}


def resolve_route(args: argparse.Namespace, spec: Any) -> str:
    """Which execution route a run takes; see docs/workload.md."""
    precision = args.precision
    if args.route == "auto":
        if precision == "fused":
            return "inductor" if _have_cxx_compiler() else "jit"
        if precision == "int8":
            return "fx_int8"
        if precision == "bf16":
            return AUTOCAST
        # fp32 nn.Linear runs in MKL, not oneDNN: send Linear layers through
        # torch.utils.mkldnn where they are the point of the run.
        return "mkldnn" if spec.linear_heavy or "mlp_reduced" in args.modifiers else "eager"
    allowed = _ALLOWED[precision]
    if args.route not in allowed:
        raise UsageError(
            f"--route {args.route} does not go with variant {precision}"
            + (f" (use {' or '.join(allowed)})" if allowed else " (int8 has one route: auto)")
        )
    return AUTOCAST if precision == "bf16" else args.route


def _have_cxx_compiler() -> bool:
    return any(
        shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++")
    )


def build_route(
    route: str, model: Any, example: tuple, args: argparse.Namespace, spec: Any, notes: list[str]
) -> Any:
    """The fp32 model turned into what `route` runs (called under torch.no_grad)."""
    if route == "mkldnn":
        swapped = swap_linear_for_mkldnn(model)
        notes.append(f"{swapped} nn.Linear layers run as torch.utils.mkldnn.MkldnnLinear")
    elif route == "fx_int8":
        calibration = [
            spec.make_input(args.batch, args.input_size, seed=args.seed + 1 + index)
            for index in range(args.calib)
        ]
        model = quantize_fx(model, example, calibration)
    elif route == "inductor":
        eager_model = model
        model = FirstCallFallback(compile_inductor(model), lambda: trace_jit(eager_model, example))
        notes.append("torch.compile compiles in the first warm-up iteration")
    elif route == "jit":
        if args.route == "auto":
            notes.append("no C++ compiler for inductor: fused falls back to jit trace+freeze")
        model = trace_jit(model, example)
    return model


def route_notes(route: str, spec: Any, bf16_supported: bool | None) -> list[str]:
    """What the log will lack on this route, said before the user wonders."""
    notes = []
    if route == "eager" and spec.family == "dlrm":
        notes.append("fp32 eager DLRM makes no oneDNN calls (Linear runs in MKL)")
    if route in ("inductor", "jit") and spec.linear_heavy:
        notes.append(
            f"{route} keeps fp32 Linear in MKL / generated C++: expect few or no oneDNN lines"
        )
    if route == AUTOCAST and bf16_supported is False:
        notes.append(
            "this CPU has no oneDNN bf16 support (needs AVX512BW/VL/DQ or AVX-NE-CONVERT): "
            "ATen runs bf16 ops itself, so the log shows no bf16 primitives"
        )
    return notes


def swap_linear_for_mkldnn(model: Any) -> int:
    """Replace every nn.Linear by torch.utils.mkldnn.MkldnnLinear (oneDNN inner_product).

    MkldnnLinear takes and returns dense tensors, so the rest of the model is untouched and
    forward hooks still fire (the leaf's type becomes ``MkldnnLinear``).
    """
    import torch
    from torch.utils import mkldnn as torch_mkldnn

    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, child_name, torch_mkldnn.MkldnnLinear(child, torch.float))
                count += 1
    return count


def quantize_fx(model: Any, example: tuple, calibration: list[tuple]) -> Any:
    """FX post-training static quantization on the onednn engine.

    Emits ``phase,calibrate`` around the calibration passes and ``phase,build`` again for
    ``convert_fx`` (which pre-packs the int8 weights: reorders in the log).
    """
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "onednn"
    # torch 2.13 warns at every call that torch.ao.quantization is deprecated: say it once.
    warnings.filterwarnings("ignore", message=r"(?s).*torch\.ao\.quantization is deprecated")
    warnings.filterwarnings("ignore", message=r"(?s).*quantized tensor creation functions")
    mapping = get_default_qconfig_mapping("onednn")
    # Embedding tables need weight-only qparams: keep them in float.
    mapping.set_object_type(torch.nn.Embedding, None).set_object_type(torch.nn.EmbeddingBag, None)
    prepared = prepare_fx(model, mapping, example_inputs=example)
    emit_phase(CALIBRATE)
    for batch in calibration:
        prepared(*batch)
    emit_phase(BUILD)
    return convert_fx(prepared)


def compile_inductor(model: Any) -> Any:
    """torch.compile with freezing (compiles on the first call)."""
    import torch
    import torch._inductor.config as inductor_config

    # Freezing folds BN and pre-packs the conv weights for oneDNN: fused post-ops, no reorders.
    inductor_config.freezing = True
    return torch.compile(model)


def trace_jit(model: Any, example: tuple) -> Any:
    """Fallback for ``fused``: trace + freeze + optimize_for_inference (one forward here)."""
    import torch

    traced = torch.jit.trace(model, example, check_trace=False)
    return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


class FirstCallFallback:
    """Call the compiled model; if its first call fails (inductor cannot build its C++),
    say so in a ``route_fallback`` meta line and continue on the jit route."""

    def __init__(self, compiled: Callable, fallback: Callable[[], Callable]) -> None:
        self._current, self._fallback = compiled, fallback

    def __call__(self, *inputs: Any) -> Any:
        if self._fallback is None:
            return self._current(*inputs)
        try:
            output = self._current(*inputs)
        except Exception as exc:  # torch's compile errors have no common base class
            emit_meta("route_fallback", {"from": "inductor", "to": "jit", "error": repr(exc)[:500]})
            emit_meta("route", "jit")
            self._current = self._fallback()
            output = self._current(*inputs)
        self._fallback = None
        return output
