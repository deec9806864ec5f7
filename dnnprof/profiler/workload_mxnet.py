"""The MXNet workload child: a Gluon model-zoo network, one variant, ``#DNNPROF`` markers.

Run it under an interpreter with MXNet 1.9 (its own virtualenv: MXNet 1.9.1 needs
numpy<1.24)::

    DNNL_VERBOSE=1 DNNL_VERBOSE_TIMESTAMP=1 \\
        ~/.cache/dnnprof/venvs/mxnet/bin/python dnnprof/profiler/workload_mxnet.py \\
        --model resnet50 --variant int8

Same command line, marker syntax and exit status as ``workload.py`` (the torch child); see
docs/workload.md, section "MXNet back-end". It imports only the standard library, numpy,
mxnet and the stdlib-only `dnnprof.profiler.child` (the marker writers every child shares);
never the analyzer, which needs pandas.

MXNet 1.9's oneDNN (v2.4.4) reads ``DNNL_VERBOSE``, not ``ONEDNN_VERBOSE``; the runner sets
both. Exit status: 0 ok, 2 bad arguments / unknown model / variant this build or CPU cannot
run, 3 the workload raised (traceback on stderr, markers so far on stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script under the MXNet virtualenv: make the repository importable for the
    # stdlib-only marker helpers (dnnprof/__init__.py imports nothing heavy)
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

PRECISIONS = ("fp32", "fused", "int8", "bf16")
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


# ---------------------------------------------------------------------------- arguments


def parse_variant(values: list[str]) -> str:
    """``["int8"]`` -> ``"int8"``; a mix of precisions or a torch-only modifier -> UsageError."""
    names: list[str] = []
    for value in values:
        for raw in re.split(r"[,+]", value):
            name = raw.strip().lower()
            if not name:
                continue
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
    return names[0] if names else "fp32"


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


def build_parser() -> argparse.ArgumentParser:
    """The command line: workload.py's, plus --imperative and --quantized-dtype."""
    parser = argparse.ArgumentParser(
        prog="workload_mxnet.py",
        description="dnnprof MXNet workload child: a Gluon model-zoo network with #DNNPROF "
        "markers on stdout.",
    )
    parser.add_argument("--model", help="zoo model name (see --list-models)")
    parser.add_argument(
        "--variant", "--variants", dest="variants", action="append", default=[],
        metavar="V", help="fp32 (default) | fused | int8 | bf16",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up iterations (default 1)")
    parser.add_argument("--iters", type=int, default=5, help="measured iterations (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS")
    parser.add_argument("--input-size", type=int, default=None, help="image side (default 224)")
    parser.add_argument("--width", type=float, default=None, help="MobileNet width multiplier")
    # Accepted so the runner can pass the torch child's arguments; refused when given.
    parser.add_argument("--pruned", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prune-mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--markers", action=argparse.BooleanOptionalAction, default=True,
        help="block begin/end markers (with --imperative only; default on)",
    )  # fmt: skip
    parser.add_argument(
        "--imperative", action="store_true",
        help="fp32 only: run the Gluon blocks un-hybridized under MXNET_ENGINE_TYPE=NaiveEngine, "
        "so forward hooks give per-layer markers (slower than the hybridized graph)",
    )  # fmt: skip
    parser.add_argument("--calib", type=int, default=2, help="int8 calibration batches")
    parser.add_argument(
        "--quantized-dtype", choices=("auto", "uint8", "int8"), default="auto",
        help="quantize_net's quantized_dtype for int8 (default auto: u8 after ReLU, else s8)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    parser.add_argument(
        "--layer-table", action=argparse.BooleanOptionalAction, default=True,
        help="print the symbol's nodes as meta (default on)",
    )  # fmt: skip
    parser.add_argument("--list-models", action="store_true", help="print the zoo and exit")
    parser.add_argument("--crash-after", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the command line; a bad one exits 2 (argparse's status)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.variant = parse_variant(args.variants or ["fp32"])
        if args.pruned is not None:
            raise UsageError("--pruned: pruning exists for the torch zoo only")
        if not args.list_models:
            if not args.model:
                raise UsageError("--model is required")
            args.model, args.zoo_name = resolve_model(args.model, args.width)
    except UsageError as exc:
        parser.error(str(exc))
    for name in ("batch", "iters"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.calib < 1 and args.variant == "int8":
        parser.error("--warmup cannot be negative and int8 needs --calib 1 or more")
    if args.imperative and args.variant != "fp32":
        parser.error(
            f"--imperative goes with fp32 only: {args.variant} needs the hybridized graph "
            "(optimize_for / quantize_net / amp work on symbols)"
        )
    return args


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


# ---------------------------------------------------------------------------- the model


def layer_table(net: Any, mx: Any, input_shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """The symbol's operator nodes: name, op, attrs, inferred output shape (no kernel runs).

    Same rows as the shipped table dnnprof/reconstruct/tables/mxnet_resnet50_v1.json.
    """
    symbol = net(mx.sym.var("data"))
    internals = symbol.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=input_shape)
    shapes = dict(zip(internals.list_outputs(), out_shapes or [], strict=False))
    rows = []
    for node in json.loads(symbol.tojson())["nodes"]:
        if node["op"] == "null":
            continue  # data and parameters
        shape = shapes.get(f"{node['name']}_output") or shapes.get(f"{node['name']}_output0")
        rows.append(
            {
                "name": node["name"],
                "op": node["op"],
                "attrs": node.get("attrs", {}),
                "out_shape": list(shape) if shape else None,
            }
        )
    return rows


def executed_graph(net: Any) -> list[dict[str, Any]] | None:
    """The operator nodes of the graph MXNet actually ran (after fusion or quantization)."""
    cached = getattr(net, "_cached_graph", None)
    if not cached:
        return None
    nodes = json.loads(cached[1].tojson())["nodes"]
    return [
        {"name": node["name"], "op": node["op"], "attrs": node.get("attrs", {})}
        for node in nodes
        if node["op"] != "null"
    ]


def quantize(net: Any, mx: Any, example: Any, args: argparse.Namespace) -> Any:
    """``quantize_net`` with naive calibration on ``--calib`` random batches (MKLDNN backend).

    The calibration forwards (and quantize_net's own shape-probing forward) are fp32 and land
    in phase ``calibrate``; the quantized SymbolBlock is hybridized in phase ``build``.
    """
    from mxnet.contrib.quantization import quantize_net

    shape = example.shape
    calibration = mx.nd.random.uniform(shape=(args.calib * shape[0], *shape[1:]))
    calib_iter = mx.io.NDArrayIter(calibration, batch_size=shape[0], data_name="data")
    emit_phase("calibrate")
    with warnings.catch_warnings():
        # "will be deprecated after MXNet 2.0": quantize_net is what 1.9's docs use
        warnings.filterwarnings("ignore", message=".*quantize_net_v2")
        # SymbolBlock cannot infer the dtype of "data" before its first call: harmless
        warnings.filterwarnings("ignore", message="Cannot decide type")
        quantized = quantize_net(
            net,
            quantized_dtype=args.quantized_dtype,
            calib_mode="naive",
            calib_data=calib_iter,
            num_calib_examples=args.calib * shape[0],
            ctx=mx.cpu(),
        )
    emit_phase("build")
    quantized.hybridize(static_alloc=True, static_shape=True)
    return quantized


class BlockMarkers:
    """Forward pre/post hooks on the leaf Gluon blocks that print begin/end markers.

    Only meaningful under NaiveEngine: with the threaded engine a hook fires when an op is
    pushed, not when it runs, so markers and verbose lines would not interleave.
    """

    def __init__(self, net: Any) -> None:
        self._handles: list[Any] = []
        for name, block in _named_blocks(net, ""):
            if name and not block._children:
                self._attach(name, block)

    def _attach(self, name: str, block: Any) -> None:
        type_name = type(block).__name__

        def before(block: Any, inputs: Any) -> None:
            emit("begin", name, type_name, epoch_ms())

        def after(block: Any, inputs: Any, output: Any) -> None:
            emit("end", name, type_name, epoch_ms())

        self._handles.append(block.register_forward_pre_hook(before))
        self._handles.append(block.register_forward_hook(after))

    def remove(self) -> None:
        """Detach every hook."""
        for handle in self._handles:
            handle.detach()
        self._handles.clear()


def _named_blocks(block: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    # Gluon 1.x keys children by attribute name or position: "features.4.0.body.1"
    yield prefix, block
    for key, child in block._children.items():
        yield from _named_blocks(child, f"{prefix}.{key}" if prefix else str(key))


# ---------------------------------------------------------------------------- main


def _list_models() -> int:
    for name, zoo_name in MODELS.items():
        zoo = zoo_name.format(width="{1.0,0.75,0.5,0.25} via --width")
        print(f"{name:18} mxnet.gluon.model_zoo.vision {zoo}")
    return EXIT_OK


def _prepare_environment(args: argparse.Namespace) -> list[str]:
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


def run(args: argparse.Namespace) -> int:
    """Build, transform and run the network, printing markers; returns the exit status."""
    bf16_supported = onednn_bf16_supported(cpu_flags())
    if args.variant == "bf16" and bf16_supported is False:
        # checked before MXNet starts: a failed bf16 convolution leaves f32->bf16 reorders
        # in the log and then raises
        emit_meta("framework", "mxnet")
        emit_meta("bf16_supported", False)
        raise UsageError(
            "bf16 is not available on this CPU: MXNet 1.9.1's oneDNN 2.4.4 runs bf16 only with "
            "AVX-512 (avx512f/bw/vl/dq); this CPU lacks them. Run fp32, fused or int8 instead"
        )
    notes = _prepare_environment(args)

    emit_phase("setup")
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    engine = os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice")
    emit_meta("framework", "mxnet")
    emit_meta("framework_version", mx.__version__)
    emit_meta("mxnet_version", mx.__version__)
    emit_meta("numpy_version", __import__("numpy").__version__)
    emit_meta("python", sys.version.split()[0])
    emit_meta("mkldnn_available", mx.runtime.Features().is_enabled("MKLDNN"))
    emit_meta("bf16_supported", bf16_supported)
    emit_meta("engine", engine)
    emit_meta("model", args.model)
    emit_meta("model_description", f"mxnet.gluon.model_zoo.vision.{args.zoo_name} "
              "(pretrained=False, Xavier init)")  # fmt: skip
    emit_meta("variant", args.variant)
    emit_meta("variants", [args.variant])
    emit_meta("batch", args.batch)
    threads = os.environ.get("OMP_NUM_THREADS")
    emit_meta("threads", int(threads) if threads and threads.isdigit() else None)
    size = args.input_size or DEFAULT_INPUT_SIZE
    input_shape = (args.batch, 3, size, size)
    emit_meta("input_shape", [list(input_shape)])
    emit_meta("warmup", args.warmup)
    emit_meta("iters", args.iters)
    emit_meta("argv", sys.argv)
    emit_meta("pid", os.getpid())

    emit_phase("build")
    started = time.perf_counter()
    mx.random.seed(args.seed)
    net = vision.get_model(args.zoo_name, pretrained=False)
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    example = mx.nd.random.uniform(shape=input_shape)
    if args.layer_table:
        # the symbol of the fp32 network, before any transformation: the Gluon layer names
        emit_meta("layer_table", layer_table(net, mx, input_shape))

    route = {
        "fp32": "imperative" if args.imperative else "hybridized",
        "fused": "optimize_for_mkldnn",
        "int8": "quantize_net",
        "bf16": "amp_bf16",
    }[args.variant]
    if route != "imperative":
        net.hybridize(static_alloc=True, static_shape=True)
    if route == "optimize_for_mkldnn":
        # partitions the graph into MKLDNN subgraphs (conv+BN+ReLU+add fused); runs nothing
        net.optimize_for(example, backend="MKLDNN", static_alloc=True, static_shape=True)
    elif route == "quantize_net":
        net = quantize(net, mx, example, args)
    elif route == "amp_bf16":
        from mxnet.contrib import amp

        net = amp.convert_hybrid_block(net, target_dtype="bfloat16", ctx=mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
    emit_meta("route", route)
    emit_meta("build_seconds", round(time.perf_counter() - started, 4))

    hookable = route == "imperative" and engine == "NaiveEngine"
    emit_meta("hookable", hookable)
    markers = BlockMarkers(net) if args.markers and hookable else None
    if args.markers and not hookable:
        notes.append(
            "hybridized graph: block hooks do not fire per operator, iteration markers only "
            "(use --imperative for per-layer markers)"
        )
    if route == "imperative" and not args.markers:
        notes.append("--imperative without markers: the threaded engine was kept")
    if notes:
        emit_meta("notes", notes)

    emit_phase("run")

    def forward() -> None:
        net(example)
        # MXNet runs asynchronously: the iteration ends when its work does, not its push
        mx.nd.waitall()

    timed_iterations(args.warmup, args.iters, forward, args.crash_after)
    if markers is not None:
        markers.remove()
    if args.layer_table and route != "imperative":
        with contextlib.suppress(Exception):  # a private attribute: best effort
            emit_meta("executed_graph", executed_graph(net))
    emit_phase("done")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 usage, 3 the workload raised."""
    args = parse_args(argv)
    if args.list_models:
        return _list_models()
    return guarded_main("workload_mxnet.py", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
