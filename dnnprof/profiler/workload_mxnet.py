"""The MXNet workload child: a Gluon model-zoo network, one variant, ``#DNNPROF`` markers.

Run it under an interpreter with MXNet 1.9 (its own virtualenv: MXNet 1.9.1 needs
numpy<1.24)::

    DNNL_VERBOSE=1 DNNL_VERBOSE_TIMESTAMP=1 \\
        ~/.cache/dnnprof/venvs/mxnet/bin/python dnnprof/profiler/workload_mxnet.py \\
        --model resnet50 --variant int8

Same command line, marker syntax and exit status as ``workload.py`` (the torch child); see
docs/workload.md, section "MXNet back-end". It imports only the standard library, numpy,
mxnet and dnnprof's stdlib-only child modules (`child`, the marker writers every child
shares, and `mxnet_routes`); never the analyzer, which needs pandas.

MXNet 1.9's oneDNN (v2.4.4) reads ``DNNL_VERBOSE``, not ``ONEDNN_VERBOSE``; the runner sets
both. Exit status: 0 ok, 2 bad arguments / unknown model / variant this build or CPU cannot
run, 3 the workload raised (traceback on stderr, markers so far on stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

if __package__ in (None, ""):
    # Run as a script: the sibling script_path makes the repository importable.
    import script_path

    script_path.put_repository_first()

from dnnprof.profiler import child  # noqa: E402  (needs the path set above)
from dnnprof.profiler.child import UsageError, emit_meta, emit_phase  # noqa: E402
from dnnprof.profiler.mxnet_routes import (  # noqa: E402
    IMPERATIVE,
    BlockMarkers,
    build_route,
    executed_graph,
    layer_table,
    route_of,
)
from dnnprof.vocabulary import DEFAULT_VARIANT, DONE, SETUP, VARIANTS, ExitCode  # noqa: E402

PRECISIONS = VARIANTS
_ALIASES = {
    "eager": "fp32",
    "fp32_eager": "fp32",
    "float": "fp32",
    "hybrid": "fp32",
    "mkldnn": "fused",
    "optimize_for": "fused",
    "quantized": "int8",
    "quantize_net": "int8",
    "bfloat16": "bf16",
}
# Modifiers of the torch child that have no MXNet implementation: refused with exit 2
# rather than silently ignored, so a comparison never mislabels an unpruned run.
_TORCH_ONLY = ("pruned", "prune", "pruned_structured", "pruned_unstructured", "mlp_reduced")

# dnnprof name -> Gluon model-zoo name; MobileNet picks its width with --width.
RESNET_DEPTHS = (18, 34, 50, 101, 152)
MODELS = {
    **{f"resnet{depth}": f"resnet{depth}_v1" for depth in RESNET_DEPTHS},
    "alexnet": "alexnet",
    "vgg16": "vgg16",
    "mobilenet_v1": "mobilenet{width}",
}
_MODEL_ALIASES = {
    **{f"resnet{depth}_v1": f"resnet{depth}" for depth in RESNET_DEPTHS},
    "mobilenet": "mobilenet_v1",
    **{f"mobilenet{w}": "mobilenet_v1" for w in ("1.0", "0.75", "0.5", "0.25")},
}
MOBILENET_WIDTHS = (1.0, 0.75, 0.5, 0.25)
DEFAULT_INPUT_SIZE = 224
DEFAULT_ENGINE = "ThreadedEnginePerDevice"


# ---------------------------------------------------------------------------- arguments


def parse_variant(values: list[str]) -> str:
    """``["int8"]`` -> ``"int8"``; a mix of precisions or a torch-only modifier -> UsageError."""
    names: list[str] = []
    for raw, name in child.variant_names(values):
        if name in _TORCH_ONLY:
            raise UsageError(
                f"variant {raw!r} exists for the torch zoo only (dnnprof/profiler/models); "
                "the MXNet back-end runs the Gluon model zoo unchanged"
            )
        name = _ALIASES.get(name, name)
        if name not in PRECISIONS:
            raise UsageError(f"unknown variant {raw!r}; choose from {', '.join(PRECISIONS)}")
        if name not in names:
            names.append(name)
    if len(names) > 1:
        raise UsageError(
            f"variants {' and '.join(names)} exclude each other: pick one of {', '.join(PRECISIONS)}"
        )
    return names[0] if names else DEFAULT_VARIANT


def resolve_model(name: str, width: float | None) -> tuple[str, str]:
    """dnnprof model name (+ width) -> (canonical dnnprof name, Gluon model-zoo name)."""
    key = name.strip().lower().replace("-", "_")
    if key.startswith("mobilenet") and key[len("mobilenet") :] in ("1.0", "0.75", "0.5", "0.25"):
        width = width if width is not None else float(key[len("mobilenet") :])
    key = _MODEL_ALIASES.get(key, key)
    if key not in MODELS:
        raise UsageError(
            f"unknown model {name!r} for the MXNet back-end; choose from {', '.join(MODELS)}"
        )
    if key != "mobilenet_v1":
        if width not in (None, 1.0):
            raise UsageError(f"--width applies to mobilenet_v1 only, not {key}")
        return key, MODELS[key]
    width = 1.0 if width is None else width
    if width not in MOBILENET_WIDTHS:
        raise UsageError(
            f"--width {width}: the Gluon zoo has MobileNet v1 at "
            f"{', '.join(str(w) for w in MOBILENET_WIDTHS)}"
        )
    # Gluon spells the widths "1.0", "0.75", "0.5", "0.25"
    return key, MODELS[key].format(width=f"{width:g}" if width != 1.0 else "1.0")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the command line; a bad one exits 2 (argparse's status)."""
    return child.parse_checked(build_parser(), argv, _check_args)


def _check_args(args: argparse.Namespace) -> None:
    """Check the arguments (--pruned is refused) and resolve the variant and the model."""
    args.variant = parse_variant(args.variants or [DEFAULT_VARIANT])
    if args.pruned is not None:
        raise UsageError("--pruned: pruning exists for the torch zoo only")
    if not args.list_models:
        if not args.model:
            raise UsageError("--model is required")
        args.model, args.zoo_name = resolve_model(args.model, args.width)
    child.check_counts(args)
    if args.warmup < 0 or args.calib < 1 and args.variant == "int8":
        raise UsageError("--warmup cannot be negative and int8 needs --calib 1 or more")
    if args.imperative and args.variant != DEFAULT_VARIANT:
        raise UsageError(
            f"--imperative goes with fp32 only: {args.variant} needs the hybridized graph "
            "(optimize_for / quantize_net / amp work on symbols)"
        )


def build_parser() -> argparse.ArgumentParser:
    """The command line: workload.py's, plus --imperative and --quantized-dtype."""
    parser = child.base_parser(
        "workload_mxnet.py",
        "dnnprof MXNet workload child: a Gluon model-zoo network with #DNNPROF markers on stdout.",
        variant=("V", "fp32 (default) | fused | int8 | bf16"),
        threads="OMP_NUM_THREADS",
        input_size="image side (default 224)",
        markers_help="block begin/end markers (with --imperative only; default on)",
        layer_table="print the symbol's nodes as meta (default on)",
    )
    # Accepted so the runner can pass the torch child's arguments; refused when given.
    parser.add_argument("--pruned", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prune-mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--imperative", action="store_true",
        help="fp32 only: run the Gluon blocks un-hybridized under MXNET_ENGINE_TYPE=NaiveEngine, "
        "so forward hooks give per-layer markers (slower than the hybridized graph)",
    )  # fmt: skip
    parser.add_argument(
        "--quantized-dtype", choices=("auto", "uint8", "int8"), default="auto",
        help="quantize_net's quantized_dtype for int8 (default auto: u8 after ReLU, else s8)",
    )  # fmt: skip
    return parser


# ---------------------------------------------------------------------------- CPU


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where that file does not exist."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return set()


def onednn_bf16_supported(flags: set[str] | None) -> bool | None:
    """Whether MXNet 1.9's oneDNN 2.4 can run bf16 convolutions on this CPU (None: unknown).

    oneDNN 2.4 has bf16 kernels only from avx512_core (AVX512F/BW/VL/DQ) up; below that,
    MXNet's bf16 Convolution fails with "could not create a primitive descriptor iterator".
    """
    if flags is None:
        return None
    return {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags


def refuse_bf16_without_avx512(args: argparse.Namespace, bf16_supported: bool | None) -> None:
    """Exit 2 before MXNet starts when bf16 is asked for on a CPU that cannot run it."""
    if args.variant == "bf16" and bf16_supported is False:
        # a failed bf16 convolution would leave f32->bf16 reorders in the log, then raise
        emit_meta("framework", "mxnet")
        emit_meta("bf16_supported", False)
        raise UsageError(
            "bf16 is not available on this CPU: MXNet 1.9.1's oneDNN 2.4.4 runs bf16 only with "
            "AVX-512 (avx512f/bw/vl/dq); this CPU lacks them. Run fp32, fused or int8 instead"
        )


# ---------------------------------------------------------------------------- run


def list_models() -> int:
    """Print the MXNet zoo: dnnprof names and their Gluon model-zoo names."""
    for name, zoo_name in MODELS.items():
        zoo = zoo_name.format(width="{1.0,0.75,0.5,0.25} via --width")
        print(f"{name:18} mxnet.gluon.model_zoo.vision {zoo}")
    return ExitCode.OK


def prepare_environment(args: argparse.Namespace) -> list[str]:
    """Environment MXNet reads once, at import: threads and the execution engine."""
    notes = []
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.imperative and args.markers:
        previous = os.environ.get("MXNET_ENGINE_TYPE")
        if previous not in (None, "NaiveEngine"):
            notes.append(f"MXNET_ENGINE_TYPE={previous} replaced by NaiveEngine for block markers")
        os.environ["MXNET_ENGINE_TYPE"] = "NaiveEngine"
    return notes


def emit_setup_meta(args: argparse.Namespace, mx: Any, bf16_supported: bool | None) -> None:
    """The framework facts, then what runs (model, variant, batch, threads, input, iterations)."""
    child.emit_metas(
        {
            "framework": "mxnet",
            "framework_version": mx.__version__,
            "mxnet_version": mx.__version__,
            "numpy_version": __import__("numpy").__version__,
            "python": sys.version.split()[0],
            "mkldnn_available": mx.runtime.Features().is_enabled("MKLDNN"),
            "bf16_supported": bf16_supported,
            "engine": os.environ.get("MXNET_ENGINE_TYPE", DEFAULT_ENGINE),
        }
    )
    threads = os.environ.get("OMP_NUM_THREADS")
    child.emit_run_meta(
        args, model=args.model, variants=[args.variant],
        description=f"mxnet.gluon.model_zoo.vision.{args.zoo_name} (pretrained=False, Xavier init)",
        threads=int(threads) if threads and threads.isdigit() else None,
        input_shape=[list(input_shape(args))],
    )  # fmt: skip


def input_shape(args: argparse.Namespace) -> tuple[int, int, int, int]:
    """NCHW of one batch of images."""
    size = args.input_size or DEFAULT_INPUT_SIZE
    return (args.batch, 3, size, size)


def attach_hooks(args: argparse.Namespace, net: Any, route: str, notes: list[str]) -> Any:
    """Block markers where they mean something (imperative under NaiveEngine), else a note."""
    engine = os.environ.get("MXNET_ENGINE_TYPE", DEFAULT_ENGINE)
    hookable = route == IMPERATIVE and engine == "NaiveEngine"
    emit_meta("hookable", hookable)
    if args.markers and not hookable:
        notes.append(
            "hybridized graph: block hooks do not fire per operator, iteration markers only "
            "(use --imperative for per-layer markers)"
        )
    if route == IMPERATIVE and not args.markers:
        notes.append("--imperative without markers: the threaded engine was kept")
    if notes:
        emit_meta("notes", notes)
    return BlockMarkers(net) if args.markers and hookable else None


def run(args: argparse.Namespace) -> int:
    """Build, transform and run the network, printing markers; returns the exit status."""
    bf16_supported = onednn_bf16_supported(cpu_flags())
    refuse_bf16_without_avx512(args, bf16_supported)
    notes = prepare_environment(args)

    emit_phase(SETUP)
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    emit_setup_meta(args, mx, bf16_supported)
    route = route_of(args)
    with child.build_phase():
        mx.random.seed(args.seed)
        net = vision.get_model(args.zoo_name, pretrained=False)
        net.initialize(mx.init.Xavier(), ctx=mx.cpu())
        example = mx.nd.random.uniform(shape=input_shape(args))
        if args.layer_table:
            # the symbol of the fp32 network, before any transformation: the Gluon layer names
            emit_meta("layer_table", layer_table(net, mx, input_shape(args)))
        net = build_route(route, net, mx, example, args)
        emit_meta("route", route)
    hooks = attach_hooks(args, net, route, notes)

    def forward() -> None:
        net(example)
        # MXNet runs asynchronously: the iteration ends when its work does, not its push
        mx.nd.waitall()

    child.measure(args, forward)
    if hooks is not None:
        hooks.remove()
    if args.layer_table and route != IMPERATIVE:
        with contextlib.suppress(Exception):  # a private attribute: best effort
            emit_meta("executed_graph", executed_graph(net))
    emit_phase(DONE)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 usage, 3 the workload raised."""
    return child.child_main("workload_mxnet.py", lambda: parse_args(argv), list_models, run)


if __name__ == "__main__":
    sys.exit(main())
