"""benchdnn knobs from a primitive's logged fields: memory descriptors (data types, tags,
bias) and attributes (post-ops, scales, zero points ...), as oneDNN's verbose converter
(scripts/verbose_converter) writes them. The drivers in `benchdnn_drivers` combine these.
"""

from __future__ import annotations

from collections.abc import Sequence

from dnnprof.parsers.events import Attributes, MemoryDesc, PostOp
from dnnprof.parsers.fields import parse_mds

# The log names the scales and zero points a primitive uses, never their values: these
# stand in for them (the values oneDNN's own verbose converter uses).
SCALE_PLACEHOLDER = "0.5"
ZERO_POINT_PLACEHOLDER = "1"
DROPOUT_PLACEHOLDER = "0.5:12345"

DIRECTIONS = {
    "forward_training": "FWD_D",
    "forward": "FWD_D",
    "forward_inference": "FWD_I",
    "forward_scoring": "FWD_I",
    "backward_data": "BWD_D",
    "backward_weights": "BWD_W",
    "backward": "BWD_DW",
}
# v0 and some v1 logs name arguments differently from current oneDNN.
ARG_ALIASES = {"in": "src", "out": "dst", "diff_src": "diff_src", "weights": "wei", "bias": "bia"}

MemoryDescs = dict[str, MemoryDesc]


# ---------------------------------------------------------------- descriptors --


def memory_descs(text: str) -> MemoryDescs:
    """Memory descriptors by (current) argument name; the first one of a name wins."""
    out: MemoryDescs = {}
    for mem_desc in parse_mds(text):
        out.setdefault(ARG_ALIASES.get(mem_desc.arg, mem_desc.arg), mem_desc)
    return out


def sources_and_destination(text: str) -> tuple[list[MemoryDesc], MemoryDesc | None]:
    """Every `src*` descriptor in order, and the first `dst` (sum, concat, binary)."""
    sources, dst = [], None
    for mem_desc in parse_mds(text):
        arg = ARG_ALIASES.get(mem_desc.arg, mem_desc.arg)
        if arg.startswith("src"):
            sources.append(mem_desc)
        elif arg == "dst" and dst is None:
            dst = mem_desc
    return sources, dst


def tag_of(mem_desc: MemoryDesc) -> str:
    """The benchdnn tag: `any` where the user let oneDNN choose the layout."""
    if "a" in mem_desc.props or mem_desc.format_kind == "any" or not mem_desc.tag:
        return "any"
    return mem_desc.tag


def dt_of(mem_desc: MemoryDesc | None) -> str:
    """The descriptor's data type, or "" (v0 logs print none)."""
    return mem_desc.data_type if mem_desc is not None and mem_desc.data_type else ""


def has_compensation(mem_desc: MemoryDesc) -> bool:
    """Weights carrying s8s8 or zero-point compensation: benchdnn must pick the tag itself."""
    flags = mem_desc.flags.split("_")[0]
    return bool(flags) and flags != "f0" or any(
        e.startswith(("s8m", "zpm")) for e in mem_desc.extra
    )


def norm_flags(flags: str) -> str:
    """Normalization flags; oneDNN <= v2 `S` (scale and shift in one tensor) is `CH` today."""
    return flags.replace("S", "CH") if "S" in flags else flags


def strip_alg(alg: str, *prefixes: str) -> str:
    """`convolution_direct` -> `direct`: benchdnn names algorithms without the kind."""
    for prefix in prefixes:
        if alg.startswith(prefix + "_"):
            return alg[len(prefix) + 1 :]
    return alg


def triplet_tags(mds: MemoryDescs, weights: bool = True) -> list[str]:
    """--stag, --wtag and --dtag of a src/wei/dst primitive."""
    dst = mds.get("src_fused") or mds.get("dst")  # a fused depthwise conv writes src_fused
    knobs = []
    if "src" in mds:
        knobs.append(f"--stag={tag_of(mds['src'])}")
    if weights and "wei" in mds:
        wtag = "any" if has_compensation(mds["wei"]) else tag_of(mds["wei"])
        knobs.append(f"--wtag={wtag}")
    if dst is not None:
        knobs.append(f"--dtag={tag_of(dst)}")
    return knobs


def triplet_dts(mds: MemoryDescs, weights: bool = True) -> str:
    """--dt=src:wei:dst (only the types the log names)."""
    dst = mds.get("src_fused") or mds.get("dst")
    dts = [dt_of(mds.get("src")), dt_of(mds.get("wei")) if weights else "", dt_of(dst)]
    dts = [d for d in dts if d]
    return "--dt=" + ":".join(dts) if dts else ""


def bias_knobs(mds: MemoryDescs) -> list[str]:
    """--bia-dt, and --bia_mask for a masked (matmul) bias."""
    bias = mds.get("bia")
    if bias is None:
        return []
    knobs = [f"--bia-dt={bias.data_type or 'undef'}"]
    if "_mask" in bias.flags:
        knobs.append(f"--bia_mask={bias.flags.split('_mask', 1)[1]}")
    return knobs


def data_knobs(mds: MemoryDescs, *names: str) -> list[str]:
    """--dt and --tag of a one-tensor primitive (the first of `names` the log has)."""
    mem_desc = next((mds[name] for name in names if name in mds), None)
    if mem_desc is None:
        mem_desc = next(iter(mds.values()), None)
    if mem_desc is None:
        return []
    dt = f"--dt={mem_desc.data_type}" if mem_desc.data_type else ""
    return [dt, f"--tag={tag_of(mem_desc)}"]


def sdt_ddt(mds: MemoryDescs) -> list[str]:
    """--sdt and --ddt (source and destination types)."""
    src, dst = dt_of(mds.get("src")), dt_of(mds.get("dst"))
    return [f"--sdt={src}" if src else "", f"--ddt={dst}" if dst else ""]


# ------------------------------------------------------------------ attributes --


def _policy(mask: int, kind: str) -> str:
    """Quantization mask -> benchdnn policy name, as oneDNN's converter maps it."""
    if kind == "matmul":
        policies = ("common", "per_oc", "per_ocic")
        table = (0, 1, 1, 2, 1, 3, 2, 3, 1, 3, 3, 3, 2)
    elif kind == "reorder":
        policies = ("common", "per_dim_0", "per_dim_1", "per_dim_01")
        table = (0, 1, 2, 3)
    else:
        policies = ("common", "per_oc")
        table = (0, 1, 1, 1)
    if 0 <= mask < len(table) and table[mask] < len(policies):
        return policies[table[mask]]
    return "per_tensor"


def _quantization(entries: Sequence[str], kind: str, value: str, default_dt: str) -> str:
    """`src0:0:f32` (v3: arg:mask[:dt[:groups...]]) -> `src0:common:0.5`, `wei:per_oc`."""
    parts = []
    for entry in entries:
        fields = entry.split(":")
        if len(fields) < 2:
            continue
        arg, mask_text, rest = fields[0], fields[1], fields[2:]
        if mask_text.isdigit():
            policy = _policy(int(mask_text), kind)
        else:  # already a policy name (`common`), as some versions print
            policy = mask_text
            rest = [r for r in rest if not _is_number(r)]
        item = f"{arg}:{policy}"
        if policy == "common":
            item += f":{value}"
        dt = rest[0] if rest and not _is_number(rest[0]) else default_dt
        groups = next((r for r in rest[1:] if "x" in r and r.replace("x", "").isdigit()), "")
        if dt != default_dt or groups:
            item += f":{dt}"
        if groups:
            item += f":{groups}"
        parts.append(item)
    return "+".join(parts)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _post_op(post_op: PostOp, kind: str) -> str:
    if post_op.name == "prelu":
        mask = int(post_op.args[0]) if post_op.args and post_op.args[0].isdigit() else 0
        return "prelu" if mask == 0 else f"prelu:{_policy(mask, kind)}"
    return ":".join([post_op.name, *post_op.args])


def _other_knob(name: str, value: str) -> str:
    """A newer attribute oneDNN prints as `attr-<name>:<value>`, as its benchdnn knob."""
    bare = name.removeprefix("attr-")
    if bare in ("acc-mode", "acc_mode"):
        return f"--attr-acc-mode={value}"
    if bare == "deterministic":
        return f"--attr-deterministic={'true' if value in ('1', 'true') else 'false'}"
    if bare == "rounding-mode":
        return f"--attr-rounding-mode={value}"
    if bare == "dropout":
        tag = value.split(":")[0] if value else ""
        return f"--attr-dropout={DROPOUT_PLACEHOLDER}" + (f":{tag}" if tag else "")
    return ""


def attribute_knobs(attrs: Attributes, kind: str) -> list[str]:
    """The --attr-* knobs of a primitive's attributes, with placeholder quantization values."""
    knobs = []
    if attrs.post_ops:
        knobs.append("--attr-post-ops=" + "+".join(_post_op(p, kind) for p in attrs.post_ops))
    if attrs.scales:
        knobs.append("--attr-scales=" + _quantization(attrs.scales, kind, SCALE_PLACEHOLDER, "f32"))
    if attrs.zero_points:
        knobs.append(
            "--attr-zero-points="
            + _quantization(attrs.zero_points, kind, ZERO_POINT_PLACEHOLDER, "s32")
        )
    if attrs.oscale:  # oneDNN <= v2.7 output scales
        mask = attrs.oscale.split(":")[0]
        policy = "common" if mask in ("", "0", "common") else "per_oc"
        knobs.append(f"--attr-oscale={policy}:{SCALE_PLACEHOLDER}")
    if attrs.scratchpad:
        knobs.append(f"--attr-scratchpad={attrs.scratchpad}")
    if attrs.fpmath:
        knobs.append(f"--attr-fpmath={attrs.fpmath}")
    knobs += [knob for name, value in attrs.other if (knob := _other_knob(name, value))]
    return knobs
