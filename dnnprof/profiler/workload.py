"""The workload child: build a zoo model, apply the variants, run it, print markers.

Run it as a script under any interpreter that has torch (dnnprof need not be installed)::

    ONEDNN_VERBOSE=1 ONEDNN_VERBOSE_TIMESTAMP=1 \\
        python dnnprof/profiler/workload.py --model resnet50 --variant pruned,int8

oneDNN writes its verbose lines to stdout; this script writes ``#DNNPROF,...`` marker lines
into the same stream with ``os.write(1, ...)`` after flushing ``sys.stdout`` (oneDNN flushes
after every line, so both interleave in true order). See docs/workload.md for the marker
syntax, the variants and the routes.

Only the standard library is imported before the arguments are parsed; after that torch and
``dnnprof.profiler.models`` (torch + stdlib only). Exit status: 0 ok, 2 bad arguments or
unknown model, 3 the workload raised (traceback on stderr, markers so far on stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make the repository importable (and not this folder, whose
    # `models` package would shadow any top-level module of that name).
    _HERE = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
        sys.path.pop(0)
    sys.path.insert(0, str(_HERE.parents[1]))

from dnnprof.profiler.child import (  # noqa: E402  (needs the path set above)
    EXIT_OK,
    UsageError,
    emit,
    emit_meta,
    emit_phase,
    epoch_ms,
    guarded_main,
    timed_iterations,
)

PRECISIONS = ("fp32", "fused", "int8", "bf16")  # at most one of these
MODIFIERS = ("pruned", "mlp_reduced")  # combine with any precision
ROUTES = ("auto", "eager", "mkldnn", "inductor", "jit")
_ALIASES = {
    "eager": "fp32",
    "fp32_eager": "fp32",
    "float": "fp32",
    "compile": "fused",
    "compiled": "fused",
    "compile_freezing": "fused",
    "inductor": "fused",
    "int8_fx": "int8",
    "quantized": "int8",
    "bfloat16": "bf16",
    "bf16_autocast": "bf16",
    "autocast": "bf16",
    "prune": "pruned",
    "mlp-reduced": "mlp_reduced",
}


# ---------------------------------------------------------------------------- arguments


def parse_variants(values: list[str]) -> tuple[str, list[str], str | None]:
    """``["pruned,int8"]`` -> (precision, modifiers, prune mode implied by the name)."""
    names: list[str] = []
    prune_mode = None
    for value in values:
        for raw in re.split(r"[,+]", value):
            name = raw.strip().lower()
            if not name:
                continue
            if name in ("pruned_structured", "pruned_unstructured"):
                name, prune_mode = "pruned", name.split("_", 1)[1]
            name = _ALIASES.get(name, name)
            if name not in PRECISIONS + MODIFIERS:
                raise UsageError(
                    f"unknown variant {raw!r}; choose from {', '.join(PRECISIONS + MODIFIERS)} "
                    "(combine with ',' e.g. pruned,int8)"
                )
            if name not in names:
                names.append(name)
    precisions = [name for name in names if name in PRECISIONS]
    if len(precisions) > 1:
        raise UsageError(
            f"variants {' and '.join(precisions)} exclude each other: pick one of "
            f"{', '.join(PRECISIONS)} (plus any of {', '.join(MODIFIERS)})"
        )
    modifiers = [name for name in MODIFIERS if name in names]
    return (precisions[0] if precisions else "fp32"), modifiers, prune_mode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workload.py",
        description="dnnprof workload child: run a zoo model with #DNNPROF markers on stdout.",
    )
    parser.add_argument("--model", help="zoo model name (see --list-models)")
    parser.add_argument(
        "--variant",
        "--variants",
        dest="variants",
        action="append",
        default=[],
        metavar="V[,V...]",
        help="fp32 (default) | fused | int8 | bf16, plus modifiers pruned, mlp_reduced; "
        "comma-separated or repeated, e.g. --variant pruned,int8",
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up iterations (default 1)")
    parser.add_argument("--iters", type=int, default=5, help="measured iterations (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--input-size", type=int, default=None, help="image side, or sequence length for BERT"
    )
    parser.add_argument("--width", type=float, default=None, help="MobileNet width multiplier")
    parser.add_argument(
        "--pruned",
        type=float,
        default=None,
        metavar="SPARSITY",
        help="prune this fraction (implies the pruned variant; default 0.5 when pruned)",
    )
    parser.add_argument(
        "--prune-mode", choices=("unstructured", "structured"), default=None,
        help="unstructured (default; shapes unchanged) or structured (channels removed)",
    )  # fmt: skip
    parser.add_argument(
        "--markers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="module begin/end markers from forward hooks (eager routes only; default on)",
    )
    parser.add_argument(
        "--marker-scope", choices=("leaf", "all"), default="leaf",
        help="hook leaf modules only (default) or every submodule",
    )  # fmt: skip
    parser.add_argument("--calib", type=int, default=2, help="int8 calibration batches")
    parser.add_argument(
        "--route",
        choices=ROUTES,
        default="auto",
        help="execution route; auto picks one from the variant (see docs/workload.md)",
    )
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    parser.add_argument(
        "--layer-table", action=argparse.BooleanOptionalAction, default=True,
        help="print the layer table and FLOPs as meta (default on; a meta-device pass)",
    )  # fmt: skip
    parser.add_argument("--list-models", action="store_true", help="print the zoo and exit")
    # Debug: raise inside iteration N, to test how the parent copes with a crash.
    parser.add_argument("--crash-after", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.precision, args.modifiers, implied_mode = parse_variants(args.variants or ["fp32"])
    except UsageError as exc:
        parser.error(str(exc))
    if args.pruned is not None and "pruned" not in args.modifiers:
        args.modifiers.insert(0, "pruned")
    args.prune_mode = args.prune_mode or implied_mode or "unstructured"
    if args.pruned is None:
        args.pruned = 0.5
    if not 0.0 < args.pruned < 1.0:
        parser.error("--pruned SPARSITY must be between 0 and 1 (exclusive)")
    for name in ("batch", "iters"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.calib < 0:
        parser.error("--warmup and --calib cannot be negative")
    if not args.model and not args.list_models:
        parser.error("--model is required")
    # fp32 is the default, so it is left out of combined names: "pruned", "pruned+int8"
    shown = args.modifiers + ([args.precision] if args.precision != "fp32" else [])
    args.variant = "+".join(shown) or "fp32"
    return args


# ---------------------------------------------------------------------------- routes


def resolve_route(args: argparse.Namespace, spec: Any) -> str:
    """Which execution route a run takes; see docs/workload.md."""
    precision = args.precision
    if args.route == "auto":
        if precision == "fused":
            return "inductor" if _have_cxx_compiler() else "jit"
        if precision == "int8":
            return "fx_int8"
        if precision == "bf16":
            return "autocast"
        # fp32 nn.Linear runs in MKL, not oneDNN: send Linear layers through
        # torch.utils.mkldnn where they are the point of the run.
        return "mkldnn" if spec.linear_heavy or "mlp_reduced" in args.modifiers else "eager"
    allowed = {
        "fp32": ("eager", "mkldnn"),
        "bf16": ("eager",),
        "fused": ("inductor", "jit"),
        "int8": (),
    }[precision]
    if args.route not in allowed:
        raise UsageError(
            f"--route {args.route} does not go with variant {precision}"
            + (f" (use {' or '.join(allowed)})" if allowed else " (int8 has one route: auto)")
        )
    return "autocast" if precision == "bf16" else args.route


def _have_cxx_compiler() -> bool:
    return any(
        shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++")
    )


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
    emit_phase("calibrate")
    for batch in calibration:
        prepared(*batch)
    emit_phase("build")
    return convert_fx(prepared)


def compile_inductor(model: Any) -> Any:
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
        except Exception as exc:
            emit_meta("route_fallback", {"from": "inductor", "to": "jit", "error": repr(exc)[:500]})
            emit_meta("route", "jit")
            self._current = self._fallback()
            output = self._current(*inputs)
        self._fallback = None
        return output


# ---------------------------------------------------------------------------- hooks


class ModuleMarkers:
    """Forward pre/post hooks that print begin/end markers; optionally record the calls."""

    def __init__(self, model: Any, scope: str, describe: Callable[..., dict]) -> None:
        self.recorded: list[dict] | None = None
        self._describe = describe
        self._handles: list[Any] = []
        for name, module in model.named_modules():
            if not name:
                continue  # the root is covered by the iteration markers
            if scope == "leaf" and next(module.children(), None) is not None:
                continue
            self._attach(name, module)

    def _attach(self, name: str, module: Any) -> None:
        type_name = type(module).__name__

        def before(module: Any, inputs: Any) -> None:
            emit("begin", name, type_name, epoch_ms())

        def after(module: Any, inputs: Any, output: Any) -> None:
            emit("end", name, type_name, epoch_ms())
            if self.recorded is not None:
                self.recorded.append(self._describe(name, module, inputs, output))

        self._handles.append(module.register_forward_pre_hook(before))
        try:  # always_call: an `end` even when the forward raises, so nesting stays valid
            self._handles.append(module.register_forward_hook(after, always_call=True))
        except TypeError:  # torch < 2.0
            self._handles.append(module.register_forward_hook(after))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


# ---------------------------------------------------------------------------- main


def _torch_facts(torch: Any) -> dict[str, Any]:
    config = torch.__config__.show()
    match = re.search(r"(?:oneDNN|MKL-DNN)\s+v([\w.]+)", config)
    facts = {
        "framework": "pytorch",
        "framework_version": torch.__version__,
        "torch_version": torch.__version__,
        "onednn_build_version": match.group(1) if match else None,
        "python": sys.version.split()[0],
        "mkldnn_available": torch.backends.mkldnn.is_available(),
    }
    with contextlib.suppress(Exception):
        facts["bf16_supported"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return facts


def _list_models() -> int:
    from dnnprof.profiler.models import MODELS, summarize

    # params, input and FLOPs come from the meta device: nothing is allocated or run
    print(f"{'model':18} {'params':>9} {'GFLOP':>8}  {'input':24} description")
    for name, spec in MODELS.items():
        facts = summarize(name)
        shapes = " + ".join("x".join(str(d) for d in shape) for shape in facts["input_shapes"])
        print(
            f"{name:18} {facts['params'] / 1e6:8.1f}M {facts['flops'] / 1e9:8.3g}  "
            f"{shapes:24} {spec.description}"
        )
    return EXIT_OK


def emit_run_meta(args: argparse.Namespace, spec: Any, threads: int) -> None:
    """The meta lines that say what runs: model, variant, batch, threads, input, iterations."""
    emit_meta("model", spec.name)
    emit_meta("model_description", spec.description)
    emit_meta("variant", args.variant)
    emit_meta("variants", args.modifiers + [args.precision])
    emit_meta("batch", args.batch)
    emit_meta("threads", threads)
    emit_meta("input_shape", spec.input_shapes(args.batch, args.input_size))
    emit_meta("warmup", args.warmup)
    emit_meta("iters", args.iters)
    emit_meta("argv", sys.argv)
    emit_meta("pid", os.getpid())


def build_float_model(args: argparse.Namespace, spec: Any, notes: list[str]) -> tuple[Any, Any]:
    """The zoo model in fp32 with the modifiers applied (mlp_reduced, pruned), and its input."""
    from dnnprof.profiler.models import (
        build_model,
        count_flops,
        count_params,
        layer_table,
        prune_model,
    )

    try:
        model = build_model(
            spec.name,
            width=args.width,
            mlp_reduced="mlp_reduced" in args.modifiers,
            seed=args.seed,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if "mlp_reduced" in args.modifiers and not spec.mlp_reduced_note and spec.family != "dlrm":
        notes.append(f"mlp_reduced: {spec.name} has no hidden MLP widths to reduce")
    elif "mlp_reduced" in args.modifiers:
        emit_meta("mlp_reduced", spec.mlp_reduced_note)
    if "pruned" in args.modifiers:
        emit_meta("prune", prune_model(model, args.pruned, args.prune_mode))
        if args.prune_mode == "unstructured":
            notes.append("unstructured pruning keeps shapes: the log looks like the dense model's")
    example = spec.make_input(args.batch, args.input_size, seed=args.seed)
    emit_meta("params", count_params(model))
    if args.layer_table:
        # On the meta device: no kernel runs, so the layer table adds nothing to the log.
        # (The first meta run imports torch's meta kernels: a second or two.)
        table = layer_table(model, example)
        emit_meta("flops", count_flops(table))
        emit_meta("layer_table", table)
    return model, example


def run(args: argparse.Namespace) -> int:
    emit_phase("setup")
    import torch

    from dnnprof.profiler.models import (
        describe_call,
        get_spec,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        spec = get_spec(args.model)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    route = resolve_route(args, spec)
    notes: list[str] = []

    facts = _torch_facts(torch)
    for key, value in facts.items():
        emit_meta(key, value)
    emit_run_meta(args, spec, torch.get_num_threads())

    emit_phase("build")
    started = time.perf_counter()
    with torch.no_grad():
        model, example = build_float_model(args, spec, notes)

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
            model = FirstCallFallback(
                compile_inductor(model), lambda: trace_jit(eager_model, example)
            )
            notes.append("torch.compile compiles in the first warm-up iteration")
        elif route == "jit":
            if args.route == "auto":
                notes.append("no C++ compiler for inductor: fused falls back to jit trace+freeze")
            model = trace_jit(model, example)
    if route == "eager" and spec.family == "dlrm":
        notes.append("fp32 eager DLRM makes no oneDNN calls (Linear runs in MKL)")
    if route in ("inductor", "jit") and spec.linear_heavy:
        notes.append(
            f"{route} keeps fp32 Linear in MKL / generated C++: expect few or no oneDNN lines"
        )
    if route == "autocast" and not facts.get("bf16_supported", True):
        notes.append(
            "this CPU has no oneDNN bf16 support (needs AVX512BW/VL/DQ or AVX-NE-CONVERT): "
            "ATen runs bf16 ops itself, so the log shows no bf16 primitives"
        )
    emit_meta("route", route)
    emit_meta("build_seconds", round(time.perf_counter() - started, 4))

    hookable = route in ("eager", "mkldnn", "fx_int8", "autocast")
    emit_meta("hookable", hookable)
    markers = (
        ModuleMarkers(model, args.marker_scope, describe_call)
        if args.markers and hookable
        else None
    )
    if args.markers and not hookable:
        notes.append(f"route {route}: hooks do not fire in compiled graphs, iteration markers only")
    if notes:
        emit_meta("notes", notes)

    emit_phase("run")
    precision = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if route == "autocast"
        else contextlib.nullcontext()
    )
    leaf_calls: list[dict] = []

    def start_recording(index: int) -> None:
        if markers is not None and index == 0:
            markers.recorded = []

    def stop_recording(index: int) -> None:
        nonlocal leaf_calls
        if markers is not None and markers.recorded is not None and index == 0:
            leaf_calls, markers.recorded = markers.recorded, None

    with torch.no_grad(), precision:
        timed_iterations(
            args.warmup, args.iters, lambda: model(*example), args.crash_after,
            before=start_recording, after=stop_recording,
        )
    if markers is not None:
        markers.remove()
        emit_meta("leaf_modules", leaf_calls)
    emit_phase("done")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 usage, 3 the workload raised."""
    args = parse_args(argv)
    if args.list_models:
        return _list_models()
    return guarded_main("workload.py", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
