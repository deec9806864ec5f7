"""Field decoders: each verbose field parsed with its own start rule of the grammar, memoised."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from lark import Token, Tree
from lark.exceptions import LarkError

from dnnprof.parsers.events import Attributes, MemoryDesc, PostOp, Problem
from dnnprof.parsers.grammar import grammar_parser

# A field string repeats thousands of times in a run, so each decoder keeps a memo.
_FIELD_MEMO = 65536


class FieldError(ValueError):
    """A field that the grammar rejects; the message says which field and why."""


def parse_rule(start: str, text: str) -> Tree:
    """Parse `text` with one start rule; raises FieldError with a short reason."""
    try:
        return grammar_parser().parse(text, start=start)
    except LarkError as exc:
        reason = str(exc).strip().splitlines()[0][:160]
        raise FieldError(f"{start}: {reason}") from None


@cache
def _terminal_re(name: str) -> re.Pattern[str]:
    """A terminal of the grammar as a compiled regular expression."""
    return re.compile(grammar_parser().get_terminal(name).pattern.to_regexp())


def _tokens(tree: Tree) -> list[Token]:
    return [c for c in tree.children if isinstance(c, Token)]


# ------------------------------------------------------------------ line ----


@dataclass(frozen=True, slots=True)
class HeaderShape:
    """Which header field each leading comma field is, as the grammar split a line of this shape."""

    names: tuple[str, ...]  # marker, version, timestamp, component, operation: those present
    ts_index: int  # position of the timestamp field; -1 when the line has none

    def without_timestamp(self, line: str) -> str:
        """The line with its timestamp field cut out (the line itself when it has none)."""
        if self.ts_index < 0:
            return line
        parts = line.split(",", self.ts_index + 1)
        del parts[self.ts_index]
        return ",".join(parts)

    def timestamp_prefix(self, line: str) -> str:
        """The text before the timestamp field, comma included (`onednn_verbose,v1,`)."""
        return ",".join(line.split(",", self.ts_index)[: self.ts_index]) + ","


@dataclass(slots=True)
class Header:
    """A verbose line's header fields and its payload (the rest of the line)."""

    shape: HeaderShape
    marker: str = ""
    version: str = ""
    timestamp: str = ""
    component: str = ""
    operation: str = ""
    payload: str = ""


def split_line(text: str) -> Header:
    """Split a verbose line into its header fields and payload, as the grammar's `line` does."""
    # The header (at most five fields) repeats on every line of a log, so its parse is
    # memoised on those fields, with a timestamp field standing for any timestamp.
    parts = text.split(",", 5)
    shape = _HEADER_MEMO.get(tuple(parts[:5]))
    if shape is None:
        key = tuple("#" if _looks_numeric(p) else p for p in parts[:5])
        shape = _HEADER_MEMO.get(key)
        if shape is None:
            shape = _header_shape(text)
            if len(_HEADER_MEMO) < 4096:
                _HEADER_MEMO[key] = shape
    n_fields = len(shape.names)
    values = dict(zip(shape.names, parts, strict=False))
    if len(parts) > n_fields:
        values["payload"] = text.split(",", n_fields)[n_fields]
    return Header(shape, **values)


_HEADER_MEMO: dict[tuple[str, ...], HeaderShape] = {}
_HEADER_FIELDS = {
    "MARKER": "marker",
    "VERSION": "version",
    "TIMESTAMP": "timestamp",
    "COMPONENT": "component",
    "OPERATION": "operation",
}


def _looks_numeric(field: str) -> bool:
    return field[:1].isdigit() and field.replace(".", "", 1).isdigit()


def _header_shape(text: str) -> HeaderShape:
    """The header fields of a line and where its timestamp sits, from the grammar."""
    tree = parse_rule("line", text)
    names = tuple(_HEADER_FIELDS[tok.type] for tok in _tokens(tree) if tok.type != "PAYLOAD")
    return HeaderShape(names, names.index("timestamp") if "timestamp" in names else -1)


def is_engine(text: str) -> bool:
    """True for an engine field (`cpu`, `gpu`, `gpu:1`, `cpu2gpu`): the grammar's ENGINE."""
    return _terminal_re("ENGINE").fullmatch(text) is not None


def is_source_location(text: str) -> bool:
    """True for oneDNN's `file.cpp:123` at the end of a message: the grammar's SOURCE_LOCATION."""
    return _terminal_re("SOURCE_LOCATION").fullmatch(text) is not None


def parse_marker(text: str) -> tuple[str, ...]:
    """Fields of a `#DNNPROF,...` marker line (empty fields kept as '')."""
    tree = parse_rule("marker", text)
    if tree.data == "marker_meta":
        return tuple(str(t) for t in _tokens(tree))
    return tuple(text.split(",")[1:])


# --------------------------------------------------- memory descriptors ----


@lru_cache(maxsize=_FIELD_MEMO)
def parse_mds(text: str) -> tuple[MemoryDesc, ...]:
    """Decode the memory-descriptor field (every dialect) into MemoryDesc tuples."""
    if not text.strip():
        return ()
    tree = parse_rule("mds", text)
    return tuple(_one_md(md) for md in tree.children if isinstance(md, Tree))


def _one_md(md: Tree) -> MemoryDesc:
    toks = _tokens(md)
    by_type: dict[str, str] = {}
    extra: list[str] = []
    for tok in toks:
        if tok.type == "MD_EXTRA":
            extra.append(str(tok))
        else:
            by_type[tok.type] = str(tok)
    if md.data == "md_v0_typed":
        dt, _, tag = by_type["V0_DT_TAG"].partition("_")
        return MemoryDesc(arg=by_type["MD_ARG"], data_type=dt, tag=tag, format_kind="blocked")
    if md.data == "md_v0":
        # v0 prints formats only: `fsrc:nChw8c`; the data type is not on the line
        arg = by_type["MD_ARG"]
        tag = by_type.get("MD_TAG") or by_type.get("DATA_TYPE", "")
        if arg.startswith("f") and len(arg) > 1:
            arg = arg[1:]
        return MemoryDesc(arg=arg, tag=tag, format_kind="blocked" if tag != "undef" else "undef")
    if "MD_ARG_DT" in by_type:
        arg, dt = _split_arg_dt(by_type["MD_ARG_DT"])
    else:
        arg, dt = by_type["MD_ARG"], by_type.get("DATA_TYPE", "")
    return MemoryDesc(
        arg=arg,
        data_type=dt,
        props=by_type.get("MD_PROPS", ""),
        format_kind=by_type.get("FORMAT_KIND", ""),
        tag=by_type.get("MD_TAG", ""),
        strides=by_type.get("MD_STRIDES", ""),
        flags=by_type.get("MD_FLAGS", ""),
        extra=tuple(extra),
    )


def _split_arg_dt(arg_dt: str) -> tuple[str, str]:
    """`diff_dst_bf16` -> (`diff_dst`, `bf16`): the first `_` after which a DATA_TYPE follows."""
    data_type = _terminal_re("DATA_TYPE")
    at = arg_dt.find("_")
    while at > 0:
        if data_type.fullmatch(arg_dt, at + 1):
            return arg_dt[:at], arg_dt[at + 1 :]
        at = arg_dt.find("_", at + 1)
    return arg_dt, ""


# ------------------------------------------------------------ attributes ----


@lru_cache(maxsize=_FIELD_MEMO)
def parse_attrs(text: str) -> Attributes:
    """Decode the attribute field (v3 `attr-*`, v2 `attr-oscale`, v1 `post_ops:'..';`)."""
    if not text.strip():
        return Attributes()
    tree = parse_rule("attrs", text)
    post_ops: list[PostOp] = []
    scales: list[str] = []
    zero_points: list[str] = []
    other: list[tuple[str, str]] = []
    oscale = fpmath = scratchpad = ""
    for item in tree.children:
        if not isinstance(item, Tree):
            continue
        kind = item.data
        trees = [c for c in item.children if isinstance(c, Tree)]
        if kind == "attr_post_ops":
            for po in trees[0].children:
                toks = _tokens(po)
                post_ops.append(PostOp(str(toks[0]), tuple(str(t) for t in toks[1:])))
        elif kind in ("attr_scales", "attr_zero_points"):
            target = scales if kind == "attr_scales" else zero_points
            for qp in trees[0].children:
                target.append(":".join(str(t) for t in _tokens(qp)))
        elif kind == "attr_oscale":
            oscale = str(_tokens(item)[-1])
        elif kind == "legacy_post_ops":
            for tok in _tokens(item)[1:]:
                name, *args = str(tok).split(":")
                post_ops.append(PostOp(name, tuple(args)))
        else:  # attr_other / legacy_other
            toks = _tokens(item)
            name = str(toks[0])
            value = str(toks[1]) if len(toks) > 1 else ""
            bare = name.removeprefix("attr-")
            if bare in ("fpmath", "fpmath_mode"):
                fpmath = value.split(":")[0]
            elif bare in ("scratchpad", "scratchpad_mode"):
                scratchpad = value
            elif bare == "oscale":
                oscale = value
            elif bare == "scales":
                scales.append(value.strip("'"))
            elif bare == "zero_points":
                zero_points.append(value.strip("'"))
            else:
                other.append((name, value))
    return Attributes(
        post_ops=tuple(post_ops),
        scales=tuple(scales),
        zero_points=tuple(zero_points),
        oscale=oscale,
        fpmath=fpmath,
        scratchpad=scratchpad,
        other=tuple(other),
    )


# ------------------------------------------------------------------- aux ----


@lru_cache(maxsize=_FIELD_MEMO)
def parse_aux(text: str) -> tuple[tuple[str, str], ...]:
    """Decode the aux field into (key, value) pairs (`alg:convolution_direct`, `flags:GS`)."""
    if not text.strip():
        return ()
    tree = parse_rule("aux", text)
    pairs = []
    for item in tree.children:
        if isinstance(item, Tree):
            toks = _tokens(item)
            pairs.append((str(toks[0]), str(toks[1]) if len(toks) > 1 else ""))
    return tuple(pairs)


# --------------------------------------------------------------- problem ----

_KV_RE = re.compile(r"([a-z]+)(-?[0-9]+(?:\.[0-9]+)?|\*)")


@lru_cache(maxsize=4096)  # shapes repeat within a run; a dynamic-shape run needs no hoard
def parse_problem(text: str) -> Problem:
    """Decode a problem descriptor into key values (`mb`, `ic`, `kh`...) or dims lists."""
    if not text.strip():
        return Problem(text)
    # `problem` is a choice of two single-token forms, so matching the grammar's own two
    # terminals is the same parse without the parser's per-call set-up (a dynamic-shape
    # run prints a new problem on nearly every line)
    if _terminal_re("PRB_KV").fullmatch(text):
        kv = True
    elif _terminal_re("PRB_DIMS").fullmatch(text):
        kv = False
    else:
        parse_rule("problem", text)  # raises FieldError with the grammar's own message
        kv = True
    if not kv:
        dims = tuple(
            tuple(None if d == "*" else int(d) for d in group.split("x"))
            for group in _DIMS_SPLIT_RE.split(text)
        )
        return Problem(text, {}, dims)
    # a runtime dimension (`*`) is unknown until execution: left out
    values: dict[str, float] = {
        key: float(value) if "." in value else int(value)
        for key, value in _KV_RE.findall(text)
        if value != "*"
    }
    return Problem(text, values, ())


_DIMS_SPLIT_RE = re.compile(r"[: ]")


def problem_shape(text: str) -> bool:
    """True when text is a problem descriptor of either form (the grammar's `problem` rule)."""
    return bool(text) and (
        _terminal_re("PRB_KV").fullmatch(text) is not None
        or _terminal_re("PRB_DIMS").fullmatch(text) is not None
    )


# -------------------------------------------------------- implementation ----


@lru_cache(maxsize=4096)
def parse_impl(text: str) -> tuple[str, str]:
    """Split an implementation string into (name, ISA); ISA is '' when none is named."""
    if not text:
        return "", ""
    tree = parse_rule("impl", text)
    parts = [part.children[0] for part in tree.children if isinstance(part, Tree)]
    isa = next((str(t) for t in reversed(parts) if t.type == "ISA"), "")
    return text, isa


# ------------------------------------------------------------ graph lines ----


@lru_cache(maxsize=_FIELD_MEMO)
def parse_logical_tensors(text: str) -> tuple[tuple[str, ...], ...]:
    """Decode graph logical tensors: (name, id, layout, property, dims, strides) tuples."""
    if not text.strip():
        return ()
    tree = parse_rule("logical_tensors", text)
    return tuple(
        tuple(str(t) for t in _tokens(lt)) for lt in tree.children if isinstance(lt, Tree)
    )


# ------------------------------------------------------------------ info ----


def parse_info(text: str) -> tuple[str, dict[str, str]]:
    """Classify an info line's text: (topic, values)."""
    try:
        tree = parse_rule("info", text)
    except FieldError:
        return "other", {}
    toks = {t.type: str(t) for t in _tokens(tree)}
    if tree.data == "info_version":
        return "version", {
            "product": toks.get("PRODUCT", ""),
            "version": toks.get("VERSION_NUMBER", ""),
            "commit": toks.get("COMMIT", ""),
        }
    if tree.data == "info_runtime":
        values = {"engine": toks["ENGINE_WORD"], "runtime": toks["INFO_WORD"]}
        if "INT" in toks:
            values["threads"] = toks["INT"]
        return "runtime", values
    if tree.data in ("info_isa", "info_isa_legacy"):
        return "isa", {"engine": toks.get("ENGINE_WORD", "cpu"), "isa": toks["INFO_TEXT"].strip()}
    if tree.data == "info_template":
        fields = [str(t) for t in _tokens(tree) if t.type == "TEMPLATE_FIELD"]
        return "template", {"fields": ",".join(fields)}
    return "other", {}
