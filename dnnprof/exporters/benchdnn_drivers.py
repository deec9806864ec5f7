"""One benchdnn case per distinct primitive: a table from benchdnn driver to the function
that writes its knobs. Which driver reproduces a primitive kind is the vocabulary's word
(`dnnprof.vocabulary.benchdnn_driver`); a kind without one gets no case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dnnprof.exporters.benchdnn_args import (
    DIRECTIONS,
    MemoryDescs,
    attribute_knobs,
    bias_knobs,
    data_knobs,
    dt_of,
    memory_descs,
    norm_flags,
    sdt_ddt,
    sources_and_destination,
    strip_alg,
    tag_of,
    triplet_dts,
    triplet_tags,
)
from dnnprof.parsers.fields import parse_attrs, parse_aux
from dnnprof.vocabulary import benchdnn_driver


@dataclass
class Case:
    """One benchdnn command line: driver, knobs, problem descriptor."""

    driver: str
    args: list[str]
    problem: str

    def line(self) -> str:
        """The case as benchdnn takes it (empty knobs left out)."""
        knobs = [a for a in self.args if a]
        return " ".join(
            [f"--{self.driver}", "--reset", "--allow-enum-tags-only=0", *knobs, self.problem]
        )


@dataclass(frozen=True)
class Primitive:
    """The fields of one distinct primitive that its driver's knobs are made of."""

    kind: str
    driver: str
    mds: MemoryDescs
    mds_text: str
    aux: dict[str, str]
    direction: str  # FWD_I, BWD_D ... ("" when the log has no prop kind)
    alg: str


def _dir(p: Primitive) -> str:
    return f"--dir={p.direction}" if p.direction else ""


def _alg(p: Primitive, *prefixes: str) -> str:
    return f"--alg={strip_alg(p.alg, *prefixes)}" if p.alg else ""


def _aux(p: Primitive, key: str) -> str:
    return f"--{key}={p.aux[key]}" if key in p.aux else ""


def _flags(p: Primitive) -> str:
    return f"--flags={norm_flags(p.aux['flags'])}" if p.aux.get("flags") else ""


def _strides(p: Primitive, *args: str) -> str:
    strides = [p.mds[a].strides if a in p.mds else "" for a in args]
    return "--strides=" + ":".join(strides) if any(strides) else ""


def _src_tag(p: Primitive) -> str:
    return f"--tag={tag_of(p.mds['src'])}" if "src" in p.mds else ""


# --------------------------------------------------------------------- drivers --


def _conv(p: Primitive) -> list[str]:
    alg = _alg(p, "convolution", "deconvolution")
    return [_dir(p), alg, triplet_dts(p.mds), *bias_knobs(p.mds), *triplet_tags(p.mds)]


def _ip(p: Primitive) -> list[str]:
    return [_dir(p), triplet_dts(p.mds), *bias_knobs(p.mds), *triplet_tags(p.mds)]


def _matmul(p: Primitive) -> list[str]:
    knobs = [triplet_dts(p.mds), *bias_knobs(p.mds), *triplet_tags(p.mds)]
    return knobs + [_strides(p, "src", "wei", "dst"), _aux(p, "runtime_dims_masks")]


def _reorder(p: Primitive) -> list[str]:
    knobs = sdt_ddt(p.mds) + triplet_tags(p.mds, weights=False) + [_strides(p, "src", "dst")]
    for prefix, arg in (("i", "src"), ("o", "dst")):
        extra = p.mds[arg].extra if arg in p.mds else ()
        flags = [f"s8s8_comp:{e[3:]}" for e in extra if e.startswith("s8m")]
        flags += [f"zp_comp:{e[3:]}" for e in extra if e.startswith("zpm")]
        if flags:
            knobs.append(f"--{prefix}flag=" + "+".join(flags))
    return knobs + [_aux(p, "runtime-dim-mask")]


def _eltwise(p: Primitive) -> list[str]:
    knobs = [_dir(p), _alg(p), _aux(p, "alpha"), _aux(p, "beta")]
    return knobs + data_knobs(p.mds, "data", "src")


def _pool(p: Primitive) -> list[str]:
    return [_dir(p), _alg(p, "pooling"), triplet_dts(p.mds, weights=False), _src_tag(p)]


def _bnorm(p: Primitive) -> list[str]:
    return [_dir(p), _flags(p), *data_knobs(p.mds, "data", "src")]


def _norm(p: Primitive) -> list[str]:
    """Layer and group normalization."""
    tags = [tag_of(p.mds[a]) for a in ("src", "dst") if a in p.mds]
    knobs = [_dir(p), _flags(p), triplet_dts(p.mds, weights=False)]
    knobs.append("--tag=" + ":".join(tags) if tags else "")
    if p.driver == "lnorm" and "stats" in p.mds:
        knobs.append(f"--stat_tag={tag_of(p.mds['stats'])}")
    scale = p.mds.get("scale") or p.mds.get("shift")
    if scale is not None and scale.data_type:
        knobs.append(f"--ss_dt={scale.data_type}")
    return knobs


def _lrn(p: Primitive) -> list[str]:
    alg = {"lrn_across_channels": "ACROSS", "lrn_within_channel": "WITHIN"}.get(p.alg, "")
    return [_dir(p), f"--alg={alg}" if alg else "", *data_knobs(p.mds, "data", "src")]


def _softmax(p: Primitive) -> list[str]:
    alg = {"softmax_accurate": "SOFTMAX", "softmax_log": "LOGSOFTMAX"}.get(p.alg, "")
    if p.kind == "logsoftmax":
        alg = "LOGSOFTMAX"
    knobs = [_dir(p), f"--alg={alg}" if alg else "", _aux(p, "axis")]
    return knobs + sdt_ddt(p.mds) + triplet_tags(p.mds, weights=False)


def _multi_source(p: Primitive) -> list[str]:
    """binary, sum and concat: one type and tag per source."""
    sources, dst = sources_and_destination(p.mds_text)
    return [
        _alg(p, "binary") if p.driver == "binary" else "",
        "--sdt=" + ":".join(s.data_type for s in sources) if sources else "",
        f"--ddt={dst.data_type}" if dst is not None and dst.data_type else "",
        "--stag=" + ":".join(tag_of(s) for s in sources) if sources else "",
        f"--dtag={tag_of(dst)}" if dst is not None else "",
        _aux(p, "axis") if p.driver == "concat" else "",
    ]


def _shuffle(p: Primitive) -> list[str]:
    return [_dir(p), *data_knobs(p.mds, "data", "src"), _aux(p, "axis"), _aux(p, "group")]


def _resampling(p: Primitive) -> list[str]:
    return [_dir(p), _alg(p, "resampling"), *sdt_ddt(p.mds), _src_tag(p)]


def _reduction(p: Primitive) -> list[str]:
    knobs = [_alg(p, "reduction"), _aux(p, "p"), _aux(p, "eps")]
    return knobs + sdt_ddt(p.mds) + triplet_tags(p.mds, weights=False)


def _prelu(p: Primitive) -> list[str]:
    data, wei = p.mds.get("data") or p.mds.get("src"), p.mds.get("wei")
    return [
        _dir(p),
        f"--sdt={dt_of(data)}:{dt_of(wei)}",
        f"--stag={tag_of(data) if data else 'any'}:{tag_of(wei) if wei else 'any'}",
    ]


RNN_ALGS = {
    "vanilla_rnn": "VANILLA_RNN",
    "vanilla_lstm": "VANILLA_LSTM",
    "vanilla_gru": "VANILLA_GRU",
    "vanilla_augru": "VANILLA_AUGRU",
    "lbr_gru": "LBR_GRU",
    "lbr_augru": "LBR_AUGRU",
}
RNN_DIRECTIONS = {
    "unidirectional_left2right": "left2right",
    "unidirectional_right2left": "right2left",
    "bidirectional_concat": "concat",
    "bidirectional_sum": "sum",
}
RNN_ACTIVATIONS = {"eltwise_relu": "RELU", "eltwise_logistic": "LOGISTIC", "eltwise_tanh": "TANH"}


def _rnn(p: Primitive) -> list[str]:
    mds, aux = p.mds, p.aux
    knobs = [f"--prop={p.direction}" if p.direction else ""]
    for key, table in (("alg", RNN_ALGS), ("direction", RNN_DIRECTIONS),
                       ("activation", RNN_ACTIVATIONS)):
        if aux.get(key) in table:
            knobs.append(f"--{key}={table[aux[key]]}")
    knobs.append(_aux(p, "flags"))
    data_args = ("src_iter", "src_iter_c", "src_layer", "dst_iter", "dst_layer")
    dts = [mds[a].data_type for a in data_args if a in mds and mds[a].data_type not in ("", "undef")]
    if dts:
        knobs.append(f"--cfg={dts[0]}" if len(set(dts)) == 1 else "--cfg=" + "".join(dts))
    tags = [tag_of(mds[a]) for a in ("src_layer", "wei_layer", "dst_layer") if a in mds]
    if tags:
        knobs.append("--tag=" + ":".join(tags))
    strided = any(mds[a].strides for a in ("src_iter", "src_layer") if a in mds)
    knobs.append(f"--trivial-strides={'false' if strided else 'true'}")
    return knobs


# benchdnn driver -> its knobs (every driver the vocabulary names has an entry)
DRIVER_KNOBS: dict[str, Callable[[Primitive], list[str]]] = {
    "conv": _conv,
    "deconv": _conv,
    "ip": _ip,
    "matmul": _matmul,
    "reorder": _reorder,
    "eltwise": _eltwise,
    "pool": _pool,
    "bnorm": _bnorm,
    "lnorm": _norm,
    "gnorm": _norm,
    "lrn": _lrn,
    "softmax": _softmax,
    "binary": _multi_source,
    "sum": _multi_source,
    "concat": _multi_source,
    "shuffle": _shuffle,
    "resampling": _resampling,
    "reduction": _reduction,
    "prelu": _prelu,
    "rnn": _rnn,
}


def _engine_knobs(engine: str) -> list[str]:
    if engine in ("cpu2gpu", "gpu2cpu"):  # a cross-engine reorder
        return ["--engine=gpu", f"--cross-engine={engine[:3]}"]
    return [f"--engine={engine}"]


def case_for(row: Any) -> Case | None:
    """The benchdnn case for one distinct primitive (a row of `distinct_primitives`), or None
    when benchdnn has no driver for its kind. Raises FieldError for a field that does not
    parse."""
    kind = str(row.kind)
    driver = benchdnn_driver(kind)
    if not driver:
        return None
    mds = memory_descs(str(row.mds))
    attrs = parse_attrs(str(row.attrs))
    aux = dict(parse_aux(str(row.aux)))
    direction = DIRECTIONS.get(str(row.prop), "")
    primitive = Primitive(kind, driver, mds, str(row.mds), aux, direction, aux.get("alg", ""))
    args = _engine_knobs(str(row.engine) or "cpu") + DRIVER_KNOBS[driver](primitive)
    problem = str(row.problem)
    if driver == "binary":  # benchdnn takes the `d0:d1[:d2]` dims alone, nothing after them
        problem = problem.split(" ", 1)[0]
    return Case(driver=driver, args=args + attribute_knobs(attrs, kind), problem=problem)
