"""Corpus ground truth for the reconstructor: markers put back, and per-line expected labels.

The corpus logs had their `#DNNPROF` markers removed and the labels moved to
`<name>.truth.json`. `with_markers` re-inserts equivalent markers (phase changes,
iteration begin/end, module begin/end from the stack changes, the layer table as a meta
marker), so mode 1 can be tested on real logs; the logs are read in place.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from support.corpus import CORPUS

TRUTH_LOGS = (
    "torch_resnet50_fp32_eager_b1",
    "torch_resnet50_fp32_eager_b1_verbose_all",
    "torch_resnet50_int8_fx_b1",
    "torch_resnet50_compile_freezing_b1",
    "mxnet_resnet50_v1_fp32_b1",
)


# Logs whose marker copies also carry the layer table as a meta marker: the ones that need
# it (no module labels, or fusion to report). The eager logs' 42 kB meta line would only
# slow their parse down.
META_TABLE_LOGS = ("torch_resnet50_int8_fx_b1", "torch_resnet50_compile_freezing_b1",
                   "mxnet_resnet50_v1_fp32_b1")


@cache
def truth(name: str) -> dict[str, Any]:
    """The parsed `<name>.truth.json`."""
    return json.loads((CORPUS / f"{name}.truth.json").read_text())


def log_path(name: str) -> Path:
    """The corpus log, read in place."""
    return CORPUS / f"{name}.log"


def truth_layer(entry: dict[str, Any]) -> str | None:
    """The innermost open module of a labelled line (FX's functional fc has module null
    but stack ['fc']), or None where the truth has no module."""
    stack = entry.get("stack")
    if stack:
        return stack[-1]
    return entry.get("module")


def expected_phase(entry: dict[str, Any]) -> str:
    """The phase label dnnprof should give: warmup/measure inside iterations, else the phase."""
    return entry["iter_kind"] if entry.get("iter") is not None else (entry.get("phase") or "")


@cache
def with_markers(name: str, modules: bool = True, layer_table: bool = True,
                 leaf_only: bool = False) -> tuple[str, ...]:
    """The log's lines with equivalent `#DNNPROF` markers put back from its truth
    (`leaf_only`: only the innermost leaf module, as the workload's default hook scope)."""
    data = truth(name)
    lines = log_path(name).read_text().splitlines()
    types = dict(data.get("runtime_module_types") or {})
    labelled = {e["line"]: e for e in data["exec_lines"] + data.get("create_lines", [])}
    before: dict[int, list[str]] = {}
    after: dict[int, list[str]] = {}
    t = 1_795_000_000_000.0

    def add(where: dict[int, list[str]], index: int, text: str) -> None:
        where.setdefault(index, []).append(text)

    if layer_table and data.get("layer_table"):
        add(before, 0, "#DNNPROF,meta,layer_table," + json.dumps(data["layer_table"]))
    for ph in sorted(data["phases"], key=lambda p: p["first_line"]):
        add(before, ph["first_line"], f"#DNNPROF,phase,{ph['phase']},{t}")
    iterations = {it["iter"]: it for it in data["iterations"]}
    for it in data["iterations"]:
        add(before, it["first_line"], f"#DNNPROF,iter_begin,{it['iter']},{it['kind']},{t}")
        add(after, it["last_line"],
            f"#DNNPROF,iter_end,{it['iter']},{it['kind']},{t},{it['wall_ms_python']}")
    if modules and data["labels"].get("module"):
        stack: list[str] = []
        current_iter = None
        for index in sorted(labelled):
            entry = labelled[index]
            wanted = list(entry.get("stack") or [])
            if leaf_only:
                wanted = [entry["module"]] if entry.get("module") else []
            if entry.get("iter") != current_iter and stack:
                # close what the previous iteration left open, before its iter_end
                last = iterations.get(current_iter, {}).get("last_line", index - 1)
                for module in reversed(stack):
                    add(after, last, f"#DNNPROF,end,{module},{types.get(module, 'Module')},{t}")
                stack = []
            current_iter = entry.get("iter")
            common = 0
            while common < min(len(stack), len(wanted)) and stack[common] == wanted[common]:
                common += 1
            for module in reversed(stack[common:]):
                add(before, index, f"#DNNPROF,end,{module},{types.get(module, 'Module')},{t}")
            for module in wanted[common:]:
                add(before, index, f"#DNNPROF,begin,{module},{types.get(module, 'Module')},{t}")
            stack = wanted
        if stack:
            last = iterations.get(current_iter, {}).get("last_line", len(lines) - 1)
            for module in reversed(stack):
                add(after, last, f"#DNNPROF,end,{module},{types.get(module, 'Module')},{t}")
    out: list[str] = []
    for index, line in enumerate(lines):
        out.extend(before.get(index, []))
        out.append(line)
        # module ends first, then the iteration end
        ends = after.get(index, [])
        out.extend(sorted(ends, key=lambda text: text.startswith("#DNNPROF,iter_end")))
    return tuple(line + "\n" for line in out)


def original_line(name: str) -> dict[int, int]:
    """Map from a line number in `with_markers(name)` (1-based) to the log's (1-based)."""
    mapping: dict[int, int] = {}
    original = 0
    for number, text in enumerate(with_markers(name, layer_table=name in META_TABLE_LOGS), start=1):
        if not text.startswith("#DNNPROF"):
            original += 1
            mapping[number] = original
    return mapping


def accuracy(trace: Any, name: str, line_map: dict[int, int] | None = None) -> dict[str, Any]:
    """Share of exec lines whose layer / iteration / phase agrees with the truth."""
    data = truth(name)
    ex = trace.events[(trace.events["op"] == "exec") & (trace.events["api"] != "graph")]
    lines = ex["line"].to_numpy()
    if line_map is not None:
        lines = [line_map[int(x)] for x in lines]
    ours = {int(line) - 1: (str(layer), int(it), str(ph)) for line, layer, it, ph in zip(
        lines, ex["layer"].astype(str), ex["iteration"], ex["phase"].astype(str), strict=True)}
    layer_total = layer_ok = it_ok = phase_ok = 0
    wrong: list[tuple[int, str | None, str]] = []
    for entry in data["exec_lines"]:
        mine = ours.get(entry["line"])
        assert mine is not None, f"{name}: exec line {entry['line']} missing from the trace"
        expected = truth_layer(entry)
        it_ok += mine[1] == (entry["iter"] if entry.get("iter") is not None else -1)
        phase_ok += mine[2] == expected_phase(entry)
        if expected is None:
            continue
        layer_total += 1
        if mine[0] == expected:
            layer_ok += 1
        elif len(wrong) < 10:
            wrong.append((entry["line"], expected, mine[0]))
    n = len(data["exec_lines"])
    return {
        "exec_lines": n,
        "layer_lines": layer_total,
        "layer_accuracy": layer_ok / layer_total if layer_total else None,
        "iteration_accuracy": it_ok / n,
        "phase_accuracy": phase_ok / n,
        "wrong": wrong,
    }


# primitive kind -> table types (torch class / MXNet op) that run as that primitive
_KIND_TYPES = {
    "convolution": ("Conv2d", "Convolution"),
    "batch_normalization": ("BatchNorm2d", "BatchNorm"),
    "eltwise": ("ReLU", "Activation"),
    "sum": ("elemwise_add",),
    "pooling": ("MaxPool2d", "AdaptiveAvgPool2d", "Pooling"),
    "pooling_v2": ("MaxPool2d", "AdaptiveAvgPool2d", "Pooling"),
    "inner_product": ("Linear", "FullyConnected"),
    "matmul": ("Linear", "FullyConnected"),
}


@cache
def positional_layers(name: str) -> dict[int, str]:
    """Expected layer per non-reorder exec line (0-based) where the truth has no module labels.

    Derived without the reconstructor: in each labelled iteration the k-th non-reorder
    primitive is the k-th layer-table row of a type that runs in oneDNN in this log. The
    derivation is checked (kinds agree at every position, conv output channels agree) and
    raises if the log does not allow it.
    """
    data = truth(name)
    lines = log_path(name).read_text().splitlines()
    table = data["layer_table"]
    result: dict[int, str] = {}
    for it in data["iterations"]:
        entries = [e for e in data["exec_lines"] if e.get("iter") == it["iter"] and e["kind"] != "reorder"]
        kinds = {e["kind"] for e in entries}
        types = {t for k in kinds for t in _KIND_TYPES.get(k, ())}
        rows = [r for r in table if (r.get("type") or r.get("op")) in types]
        if len(rows) != len(entries):
            raise AssertionError(f"{name} iteration {it['iter']}: {len(entries)} primitives, {len(rows)} rows")
        for entry, row in zip(entries, rows, strict=True):
            row_type = row.get("type") or row.get("op")
            if row_type not in _KIND_TYPES.get(entry["kind"], ()):
                raise AssertionError(f"{name} line {entry['line']}: {entry['kind']} vs {row_type}")
            if entry["kind"] == "convolution":
                channels = row["out_shape"][1]
                if f"oc{channels}_" not in lines[entry["line"]]:
                    raise AssertionError(f"{name} line {entry['line']}: oc != {channels}")
            result[entry["line"]] = row["name"]
    return result


def positional_accuracy(trace: Any, name: str, line_map: dict[int, int] | None = None) -> dict[str, Any]:
    """Share of non-reorder exec lines in iterations whose layer is the positional truth."""
    expected = positional_layers(name)
    ex = trace.events[(trace.events["op"] == "exec") & (trace.events["api"] != "graph")]
    lines = ex["line"].to_numpy()
    if line_map is not None:
        lines = [line_map[int(x)] for x in lines]
    ours = {int(line) - 1: str(layer) for line, layer in zip(lines, ex["layer"].astype(str), strict=True)}
    ok = sum(ours.get(line) == layer for line, layer in expected.items())
    wrong = [(line, layer, ours.get(line)) for line, layer in expected.items() if ours.get(line) != layer]
    return {"layer_lines": len(expected), "layer_accuracy": ok / len(expected), "wrong": wrong[:10]}


def grouping_agreement(trace: Any, name: str) -> float:
    """Mode 3 against module truth: share of exec lines whose heuristic layer's majority truth
    module (within its iteration) is their own truth module. 1.0 = the grouping never splits
    or merges truth layers' lines wrongly."""
    from collections import Counter, defaultdict

    data = truth(name)
    ex = trace.events[(trace.events["op"] == "exec") & (trace.events["api"] != "graph")]
    ours = {int(line) - 1: (int(it), str(layer)) for line, it, layer in zip(
        ex["line"], ex["iteration"], ex["layer"].astype(str), strict=True)}
    members: dict[tuple[int, str], Counter] = defaultdict(Counter)
    labelled = [(e["line"], truth_layer(e)) for e in data["exec_lines"] if truth_layer(e) is not None]
    for line, module in labelled:
        members[ours[line]][module] += 1
    ok = sum(members[ours[line]].most_common(1)[0][0] == module for line, module in labelled)
    return ok / len(labelled) if labelled else float("nan")


@cache
def parsed(name: str) -> Any:
    """The corpus log as dnnprof.parse gives it (markers stripped, as stored)."""
    import dnnprof

    return dnnprof.parse(log_path(name))


@cache
def parsed_with_markers(name: str) -> Any:
    """The corpus log with its markers put back, parsed."""
    import dnnprof

    return dnnprof.parse(list(with_markers(name, layer_table=name in META_TABLE_LOGS)))


def mode_accuracy(trace: Any, name: str, with_marker_lines: bool = False) -> dict[str, Any]:
    """Layer accuracy against what the truth allows: module labels where the log has them,
    else the positional derivation (non-reorder primitives in iterations)."""
    line_map = original_line(name) if with_marker_lines else None
    if truth(name)["labels"].get("module"):
        return accuracy(trace, name, line_map)
    result = accuracy(trace, name, line_map)
    result.update(positional_accuracy(trace, name, line_map))
    return result
