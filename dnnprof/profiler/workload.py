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
The IPEX child (workload_ipex.py) reuses everything here but the routes.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):
    # Run as a script: the sibling script_path makes the repository importable.
    import script_path

    script_path.put_repository_first()

from dnnprof.profiler import child  # noqa: E402  (needs the path set above)
from dnnprof.profiler.child import UsageError, emit_meta, emit_phase  # noqa: E402
from dnnprof.profiler.torch_routes import (  # noqa: E402
    AUTOCAST,
    HOOKABLE,
    ROUTES,
    build_route,
    resolve_route,
    route_notes,
)
from dnnprof.vocabulary import DEFAULT_VARIANT, DONE, SETUP, VARIANTS, ExitCode  # noqa: E402

PRECISIONS = VARIANTS  # at most one of these
MODIFIERS = ("pruned", "mlp_reduced")  # combine with any precision
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
    for raw, name in child.variant_names(values):
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
    return (precisions[0] if precisions else DEFAULT_VARIANT), modifiers, prune_mode


def build_parser() -> argparse.ArgumentParser:
    """The command line: every child's arguments, plus pruning, hook scope and route."""
    parser = child.base_parser(
        "workload.py",
        "dnnprof workload child: run a zoo model with #DNNPROF markers on stdout.",
        variant=(
            "V[,V...]",
            "fp32 (default) | fused | int8 | bf16, plus modifiers pruned, mlp_reduced; "
            "comma-separated or repeated, e.g. --variant pruned,int8",
        ),
        threads="torch.set_num_threads",
        input_size="image side, or sequence length for BERT",
        markers_help="module begin/end markers from forward hooks (eager routes only; default on)",
        layer_table="print the layer table and FLOPs as meta (default on; a meta-device pass)",
    )
    parser.add_argument(
        "--pruned", type=float, default=None, metavar="SPARSITY",
        help="prune this fraction (implies the pruned variant; default 0.5 when pruned)",
    )  # fmt: skip
    parser.add_argument(
        "--prune-mode", choices=("unstructured", "structured"), default=None,
        help="unstructured (default; shapes unchanged) or structured (channels removed)",
    )  # fmt: skip
    parser.add_argument(
        "--marker-scope", choices=("leaf", "all"), default="leaf",
        help="hook leaf modules only (default) or every submodule",
    )  # fmt: skip
    parser.add_argument(
        "--route", choices=ROUTES, default="auto",
        help="execution route; auto picks one from the variant (see docs/workload.md)",
    )  # fmt: skip
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the command line; a bad one exits 2 (argparse's status)."""
    return child.parse_checked(build_parser(), argv, _check_args)


def _check_args(args: argparse.Namespace) -> None:
    """Check the arguments and derive precision, modifiers, pruning and the variant's name."""
    args.precision, args.modifiers, implied_mode = parse_variants(
        args.variants or [DEFAULT_VARIANT]
    )
    if args.pruned is not None and "pruned" not in args.modifiers:
        args.modifiers.insert(0, "pruned")
    args.prune_mode = args.prune_mode or implied_mode or "unstructured"
    if args.pruned is None:
        args.pruned = 0.5
    if not 0.0 < args.pruned < 1.0:
        raise UsageError("--pruned SPARSITY must be between 0 and 1 (exclusive)")
    child.check_counts(args)
    if args.warmup < 0 or args.calib < 0:
        raise UsageError("--warmup and --calib cannot be negative")
    if not args.model and not args.list_models:
        raise UsageError("--model is required")
    # fp32 is the default, so it is left out of combined names: "pruned", "pruned+int8"
    shown = args.modifiers + ([args.precision] if args.precision != DEFAULT_VARIANT else [])
    args.variant = "+".join(shown) or DEFAULT_VARIANT


# ---------------------------------------------------------------------------- hooks


class ModuleMarkers:
    """Forward pre/post hooks that print begin/end markers; record iteration 0's calls."""

    def __init__(self, model: Any, scope: str, describe: Callable[..., dict] | None) -> None:
        self.calls: list[dict] = []  # describe(...) of every hooked call in iteration 0
        self._recording = False
        self._describe = describe
        self._handles: list[Any] = []
        for name, module in model.named_modules():
            if not name:
                continue  # the root is covered by the iteration markers
            if scope == "leaf" and next(module.children(), None) is not None:
                continue
            self._attach(name, module)

    def _attach(self, name: str, module: Any) -> None:
        def record(module: Any, inputs: Any, output: Any) -> None:
            if self._recording and self._describe is not None:
                self.calls.append(self._describe(name, module, inputs, output))

        before, after = child.module_hooks(name, type(module).__name__, record)
        self._handles.append(module.register_forward_pre_hook(before))
        try:  # always_call: an `end` even when the forward raises, so nesting stays valid
            self._handles.append(module.register_forward_hook(after, always_call=True))
        except TypeError:  # torch < 2.0
            self._handles.append(module.register_forward_hook(after))

    def before_iteration(self, index: int) -> None:
        """Record the calls of the first iteration only (one forward describes the model)."""
        self._recording = index == 0

    def after_iteration(self, index: int) -> None:
        """Stop recording."""
        self._recording = False

    def remove(self) -> None:
        """Detach every hook."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


# ---------------------------------------------------------------------------- run


def torch_facts(torch: Any) -> dict[str, Any]:
    """The framework, its versions, oneDNN's build version and bf16 support, as meta."""
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
    with contextlib.suppress(Exception):  # a private op that older builds lack
        facts["bf16_supported"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return facts


def list_models() -> int:
    """Print the zoo: params, input and FLOPs (from the meta device: nothing runs)."""
    from dnnprof.profiler.models import MODELS, summarize

    print(f"{'model':18} {'params':>9} {'GFLOP':>8}  {'input':24} description")
    for name, spec in MODELS.items():
        facts = summarize(name)
        shapes = " + ".join("x".join(str(d) for d in shape) for shape in facts["input_shapes"])
        print(
            f"{name:18} {facts['params'] / 1e6:8.1f}M {facts['flops'] / 1e9:8.3g}  "
            f"{shapes:24} {spec.description}"
        )
    return ExitCode.OK


def start(args: argparse.Namespace) -> tuple[Any, Any]:
    """Phase `setup`: import torch, set the threads, find the zoo spec -> (torch, spec)."""
    emit_phase(SETUP)
    import torch

    from dnnprof.profiler.models import get_spec

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return torch, get_spec(args.model)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def emit_setup_meta(args: argparse.Namespace, spec: Any, threads: int, facts: dict) -> None:
    """The framework facts, then what runs (model, variant, batch, threads, input, iterations)."""
    for key, value in facts.items():
        emit_meta(key, value)
    child.emit_run_meta(
        args, model=spec.name, description=spec.description,
        variants=args.modifiers + [args.precision], threads=threads,
        input_shape=spec.input_shapes(args.batch, args.input_size),
    )  # fmt: skip


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
            spec.name, width=args.width, mlp_reduced="mlp_reduced" in args.modifiers,
            seed=args.seed,
        )  # fmt: skip
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


def run_model(
    args: argparse.Namespace, model: Any, example: tuple, route: str, notes: list[str], *,
    hookable: bool, bf16_autocast: bool, unhooked: str, record_calls: bool,
) -> int:  # fmt: skip
    """Hooks, then phase `run` (the timed iterations), then phase `done`; exit 0."""
    import torch

    from dnnprof.profiler.models import describe_call

    emit_meta("hookable", hookable)
    hooks = None
    if args.markers and hookable:
        hooks = ModuleMarkers(model, args.marker_scope, describe_call if record_calls else None)
    elif args.markers:
        notes.append(f"route {route}: hooks do not fire in {unhooked}, iteration markers only")
    if notes:
        emit_meta("notes", notes)
    precision = (
        torch.autocast("cpu", dtype=torch.bfloat16) if bf16_autocast else contextlib.nullcontext()
    )
    with torch.no_grad(), precision:
        child.measure(
            args, lambda: model(*example),
            before=hooks.before_iteration if hooks else None,
            after=hooks.after_iteration if hooks else None,
        )  # fmt: skip
    if hooks is not None:
        hooks.remove()
        if record_calls:
            emit_meta("leaf_modules", hooks.calls)
    emit_phase(DONE)
    return ExitCode.OK


def run(args: argparse.Namespace) -> int:
    """Build the variant on its torch route and run it, printing markers; exit 0."""
    torch, spec = start(args)
    route = resolve_route(args, spec)
    facts = torch_facts(torch)
    emit_setup_meta(args, spec, torch.get_num_threads(), facts)
    notes: list[str] = []
    with child.build_phase(), torch.no_grad():
        model, example = build_float_model(args, spec, notes)
        model = build_route(route, model, example, args, spec, notes)
        notes += route_notes(route, spec, facts.get("bf16_supported"))
        emit_meta("route", route)
    return run_model(
        args, model, example, route, notes, hookable=route in HOOKABLE,
        bf16_autocast=route == AUTOCAST, unhooked="compiled graphs", record_calls=True,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 usage, 3 the workload raised."""
    return child.child_main("workload.py", lambda: parse_args(argv), list_models, run)


if __name__ == "__main__":
    sys.exit(main())
