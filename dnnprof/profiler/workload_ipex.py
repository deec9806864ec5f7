"""The IPEX workload child: a zoo model through Intel Extension for PyTorch, with markers.

Run it under the IPEX virtualenv (IPEX 2.8 needs torch 2.8, so it lives apart from the
project's torch)::

    ONEDNN_VERBOSE=1 ONEDNN_VERBOSE_TIMESTAMP=1 \\
        ~/.cache/dnnprof/venvs/ipex/bin/python dnnprof/profiler/workload_ipex.py \\
        --model resnet50 --variant int8

It is workload.py with IPEX routes: the same command line, argument checks, marker helpers,
module hooks and zoo (``dnnprof.profiler.models``, torch + stdlib only), imported from there
rather than copied. Only the precision routes differ; see docs/workload.md, section "IPEX
back-end". Exit status: 0 ok, 2 bad arguments, 3 the workload raised.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from typing import Any

if __package__ in (None, ""):
    # Run as a script: the sibling script_path makes the repository importable.
    import script_path

    script_path.put_repository_first()

from dnnprof.profiler import workload as base  # noqa: E402  (needs the path set above)
from dnnprof.profiler.child import (  # noqa: E402
    UsageError,
    build_phase,
    child_main,
    emit_meta,
    emit_phase,
)
from dnnprof.vocabulary import BUILD, CALIBRATE  # noqa: E402

# variant -> route (meta,route): eager routes keep module hooks, jit routes do not
ROUTES = {"fp32": "ipex_eager", "bf16": "ipex_bf16", "fused": "ipex_jit", "int8": "ipex_int8"}
HOOKABLE = ("ipex_eager", "ipex_bf16")
# The TorchScript profiling executor specializes and fuses on the 2nd call: make these
# calls while building, so that every --warmup/--iters iteration runs the fused graph.
JIT_PROFILING_CALLS = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """workload.py's command line; --route is workload.py's torch routes, so only auto here."""
    args = base.parse_args(argv)
    if args.route != "auto":
        raise UsageError(
            f"--route {args.route} is a torch route; IPEX picks its own from the variant "
            f"({', '.join(f'{v}: {r}' for v, r in ROUTES.items())})"
        )
    return args


def ipex_facts(torch: Any, ipex: Any) -> dict[str, Any]:
    """workload.py's torch facts, relabelled: the framework is IPEX on top of that torch."""
    facts = base.torch_facts(torch)
    facts.update(
        framework="ipex", framework_version=ipex.__version__, ipex_version=ipex.__version__
    )
    # IPEX brings its own oneDNN: its answer is the one that decides bf16 prepacking
    with contextlib.suppress(Exception):  # a private function that other builds may lack
        facts["bf16_supported"] = bool(ipex._C.onednn_has_bf16_support())
    return facts


def trace_freeze(model: Any, example: tuple) -> Any:
    """torch.jit.trace + freeze, then the profiling calls after which the fused graph runs.

    IPEX's JIT passes, registered at import, fuse conv/linear with their post-ops here.
    """
    import torch

    traced = torch.jit.freeze(torch.jit.trace(model, example, check_trace=False).eval())
    for _ in range(JIT_PROFILING_CALLS):
        traced(*example)
    return traced


def quantize_static(model: Any, example: tuple, calibration: list[tuple]) -> Any:
    """IPEX post-training static quantization: prepare, calibrate, convert, trace + freeze.

    Emits ``phase,calibrate`` around the calibration passes (fp32 lines) and ``phase,build``
    again for convert and the trace.
    """
    import intel_extension_for_pytorch as ipex
    from intel_extension_for_pytorch.quantization import convert, prepare

    prepared = prepare(
        model, ipex.quantization.default_static_qconfig_mapping, example_inputs=example,
        inplace=False,
    )  # fmt: skip
    emit_phase(CALIBRATE)
    for batch in calibration:
        prepared(*batch)
    emit_phase(BUILD)
    return trace_freeze(convert(prepared), example)


def build_route(
    route: str, model: Any, example: tuple, args: argparse.Namespace, spec: Any, notes: list[str]
) -> Any:
    """The fp32 model turned into what `route` runs (called under torch.no_grad)."""
    import intel_extension_for_pytorch as ipex
    import torch

    if route == "ipex_int8":
        calibration = [
            spec.make_input(args.batch, args.input_size, seed=args.seed + 1 + index)
            for index in range(args.calib)
        ]
        model = quantize_static(model, example, calibration)
    else:
        dtype = torch.bfloat16 if route == "ipex_bf16" else torch.float32
        # weight pre-packing for oneDNN; the modules stay modules (hooks still fire)
        # sample_input: pack the weights in the layout the kernels choose for this input
        # shape; without it IPEX guesses, and on AVX2 it guesses Acdb16a where the
        # kernel wants Acdb24a, so every conv reorders its weights on every call
        model = ipex.optimize(model, dtype=dtype, inplace=True, sample_input=example)
        if route == "ipex_jit":
            model = trace_freeze(model, example)
    if route in ("ipex_jit", "ipex_int8"):
        notes.append(
            f"jit: {JIT_PROFILING_CALLS} profiling calls in phase build, so every "
            "iteration runs the fused graph"
        )
    return model


def run(args: argparse.Namespace) -> int:
    """Build, optimize and run the model, printing markers; returns the exit status."""
    torch, spec = base.start(args)
    import intel_extension_for_pytorch as ipex

    # said at every traced call; the JIT route is still the one that fuses through oneDNN
    warnings.filterwarnings("ignore", message="JIT pass will be deprecated")
    route = ROUTES[args.precision]
    facts = ipex_facts(torch, ipex)
    base.emit_setup_meta(args, spec, torch.get_num_threads(), facts)
    if route == "ipex_bf16" and facts.get("bf16_supported") is False:
        # ipex.optimize(dtype=bfloat16) asserts here; without its prepacking ATen would run
        # bf16 itself and the log would hold nothing of the bf16 variant to profile
        raise UsageError(
            "bf16 is not available on this CPU: IPEX's oneDNN runs bf16 only with AVX512BW/VL/DQ "
            "or AVX-NE-CONVERT, which this CPU lacks. Run fp32, fused or int8 instead"
        )
    notes: list[str] = []
    with build_phase(), torch.no_grad():
        model, example = base.build_float_model(args, spec, notes)
        model = build_route(route, model, example, args, spec, notes)
        emit_meta("route", route)
    return base.run_model(
        args, model, example, route, notes, hookable=route in HOOKABLE,
        bf16_autocast=route == "ipex_bf16", unhooked="TorchScript", record_calls=False,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 usage, 3 the workload raised."""
    return child_main("workload_ipex.py", lambda: parse_args(argv), base.list_models, run)


if __name__ == "__main__":
    sys.exit(main())
