"""The MXNet child's routes and graph facts: how a Gluon network becomes the variant that runs.

Routes: `hybridized` / `imperative` (fp32), `optimize_for_mkldnn` (fused), `quantize_net`
(int8), `amp_bf16` (bf16); see docs/workload.md, section "MXNet back-end". Standard
library at import: MXNet is passed in (`mx`) or imported inside the functions, so this
module loads under the MXNet virtualenv, which has no pandas.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Iterator
from typing import Any

from dnnprof.profiler.child import emit_phase, module_hooks
from dnnprof.vocabulary import BUILD, CALIBRATE

ROUTES = {
    "fp32": "hybridized",  # "imperative" with --imperative
    "fused": "optimize_for_mkldnn",
    "int8": "quantize_net",
    "bf16": "amp_bf16",
}
IMPERATIVE = "imperative"


def route_of(args: argparse.Namespace) -> str:
    """The route of the variant (fp32 runs imperative with --imperative)."""
    return IMPERATIVE if args.imperative else ROUTES[args.variant]


def build_route(route: str, net: Any, mx: Any, example: Any, args: argparse.Namespace) -> Any:
    """The initialized fp32 network turned into what `route` runs."""
    if route != IMPERATIVE:
        net.hybridize(static_alloc=True, static_shape=True)
    if route == "optimize_for_mkldnn":
        # partitions the graph into MKLDNN subgraphs (conv+BN+ReLU+add fused); runs nothing
        net.optimize_for(example, backend="MKLDNN", static_alloc=True, static_shape=True)
    elif route == "quantize_net":
        net = quantize(net, mx, example, args)
    elif route == "amp_bf16":
        from mxnet.contrib import amp

        # convert_hybrid_block converts the cached graph, which exists only after a forward
        # of the hybridized net: one fp32 forward here, in phase build
        net(example)
        mx.nd.waitall()
        with warnings.catch_warnings():
            # the converted SymbolBlock cannot infer the dtype of "data": harmless
            warnings.filterwarnings("ignore", message="Cannot decide type")
            net = amp.convert_hybrid_block(net, target_dtype="bfloat16", ctx=mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
    return net


def quantize(net: Any, mx: Any, example: Any, args: argparse.Namespace) -> Any:
    """``quantize_net`` with naive calibration on ``--calib`` random batches (MKLDNN backend).

    The calibration forwards (and quantize_net's own shape-probing forward) are fp32 and land
    in phase ``calibrate``; the quantized SymbolBlock is hybridized in phase ``build``.
    """
    from mxnet.contrib.quantization import quantize_net

    shape = example.shape
    calibration = mx.nd.random.uniform(shape=(args.calib * shape[0], *shape[1:]))
    calib_iter = mx.io.NDArrayIter(calibration, batch_size=shape[0], data_name="data")
    emit_phase(CALIBRATE)
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
    emit_phase(BUILD)
    quantized.hybridize(static_alloc=True, static_shape=True)
    return quantized


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
        before, after = module_hooks(name, type(block).__name__)
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
