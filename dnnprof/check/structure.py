"""Exact structural differences per layer: fusion, reorders, kinds, data types, impl, shapes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher

from dnnprof.check.config import SEVERITIES, CheckConfig
from dnnprof.check.report import Finding
from dnnprof.check.steady import Primitive, Unit
from dnnprof.vocabulary import dtype_change, impl_change, post_op_changes


@dataclass
class UnitPair:
    """A layer as seen in the baseline and in the new trace (either may be missing)."""

    name: str
    base: Unit | None
    new: Unit | None

    @property
    def layer_type(self) -> str:
        """Layer type from whichever side knows it."""
        return (self.base.layer_type if self.base else "") or (
            self.new.layer_type if self.new else ""
        )

    @property
    def order(self) -> tuple[int, int]:
        """Sort key: model order, added layers after the layer they follow."""
        if self.base is not None:
            return self.base.position, 0
        assert self.new is not None
        return self.new.position, 1


def match_units(base: list[Unit], new: list[Unit]) -> list[UnitPair]:
    """Pair layers by name, then align the rest by (kind, problem) sequence."""
    new_by_name = {unit.name: unit for unit in new}
    pairs: list[UnitPair] = []
    used_new: set[str] = set()
    left_base: list[Unit] = []
    for unit in base:
        partner = new_by_name.get(unit.name)
        if partner is not None:
            pairs.append(UnitPair(unit.name, unit, partner))
            used_new.add(partner.name)
        else:
            left_base.append(unit)
    left_new = [unit for unit in new if unit.name not in used_new]
    # Names cannot match when one side has layer labels and the other only identities,
    # or when a shape changed the identity: align the leftovers in model order instead.
    matcher = SequenceMatcher(
        None, [u.anchor for u in left_base], [u.anchor for u in left_new], autojunk=False
    )
    paired_new: set[int] = set()
    paired_base: set[int] = set()
    for tag, b_lo, b_hi, n_lo, n_hi in matcher.get_opcodes():
        if tag == "equal":
            for b, n in zip(range(b_lo, b_hi), range(n_lo, n_hi), strict=True):
                pairs.append(_pair(left_base[b], left_new[n]))
                paired_base.add(b)
                paired_new.add(n)
        elif tag == "replace":
            for b in range(b_lo, b_hi):
                unit = left_base[b]
                for n in range(n_lo, n_hi):
                    other = left_new[n]
                    if n in paired_new or other.anchor[0] != unit.anchor[0]:
                        continue
                    if unit.labeled and other.labeled:
                        continue  # two differently named layers are two layers
                    pairs.append(_pair(unit, other))
                    paired_base.add(b)
                    paired_new.add(n)
                    break
    pairs += [UnitPair(u.name, u, None) for i, u in enumerate(left_base) if i not in paired_base]
    pairs += [UnitPair(u.name, None, u) for i, u in enumerate(left_new) if i not in paired_new]
    return sorted(pairs, key=lambda p: p.order)


def _pair(base: Unit, new: Unit) -> UnitPair:
    if base.labeled or not new.labeled:
        return UnitPair(base.name, base, new)
    return UnitPair(new.name, base, new)


def completeness_findings(
    pairs: list[UnitPair],
    base_iterations: int,
    new_iterations: int,
    config: CheckConfig,
    new_stopped: bool = False,
) -> tuple[list[Finding], set[str]]:
    """What the new run never ran: iterations, or the model's last layers (a crash, a cut log).

    Returns the findings and the layers they cover (no per-layer finding repeats them). A
    layer missing in the middle of the model is a structural change (fusion folds layers
    away), and so is a last layer gone from a run that completed its iterations (it now
    runs outside oneDNN); the last layers missing from a run that stopped early
    (`new_stopped`, or fewer iterations) were never reached.
    """
    findings: list[Finding] = []
    stopped = new_stopped or new_iterations < base_iterations
    if new_iterations < base_iterations:
        code = "iterations_missing"
        findings.append(Finding(
            "coverage", code, "(run)",
            f"{new_iterations} steady-state iteration(s) where the baseline has "
            f"{base_iterations}: the run stopped early (crashed, interrupted, its log cut) or "
            "ran fewer iterations; run as many iterations as the baseline",
            config.severity_of(code)))
    missing = _missing_tail(pairs, config) if stopped else []
    if missing:
        code = "layers_missing"
        names = missing[0] if len(missing) == 1 else f"{missing[0]} ... {missing[-1]}"
        findings.append(Finding(
            "coverage", code, missing[0],
            f"the new run never ran the baseline's last {len(missing)} layer(s) ({names}): it "
            "stopped before the end of the model (crashed, interrupted, its log cut)",
            config.severity_of(code)))
    return findings, set(missing)


def _missing_tail(pairs: list[UnitPair], config: CheckConfig) -> list[str]:
    """Baseline layers after the last one both runs ran, when the new run has none of them."""
    tail: list[str] = []
    for pair in reversed(pairs):  # pairs are in model order
        if pair.base is not None and pair.new is not None:
            return tail[::-1]
        if pair.base is not None and not config.ignores(pair.name):
            tail.append(pair.name)
    return []  # nothing in common: a different model, judged layer by layer


def structural_findings(
    pairs: list[UnitPair], config: CheckConfig, covered: set[str] | None = None
) -> list[Finding]:
    """Every structural difference, at most one finding per (check, layer).

    `covered`: layers a completeness finding already names.
    """
    findings: list[Finding] = []
    for pair in pairs:
        if config.ignores(pair.name) or (covered and pair.name in covered):
            continue
        raw: list[tuple[str, str, str]] = []  # (check, code, detail)
        if pair.base is None or pair.new is None:
            raw += _one_sided(pair)
        else:
            raw += _compare_units(pair.base, pair.new)
        for check, codes_details in _merge_per_check(raw, config).items():
            code, detail = codes_details
            findings.append(Finding(check, code, pair.name, detail, config.severity_of(code),
                                    pair.layer_type))
    return findings


def _one_sided(pair: UnitPair) -> list[tuple[str, str, str]]:
    unit = pair.base or pair.new
    assert unit is not None
    removed = pair.new is None
    out: list[tuple[str, str, str]] = []
    if unit.primitives:
        listed = ", ".join(f"{p.kind} [{p.problem}]" for p in unit.primitives)
        if removed:
            out.append(("kinds", "kind_removed", f"no longer runs in oneDNN: {listed}"))
        else:
            out.append(("kinds", "kind_added", f"new in oneDNN: {listed}"))
    if unit.reorders:
        if removed:
            out.append(("reorders", "reorders_removed", f"{unit.reorders} → 0 reorders per iteration"))
        else:
            out.append(("reorders", "reorders_added", f"0 → {unit.reorders} reorders per iteration"))
    return out


def _compare_units(base: Unit, new: Unit) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    if base.reorders != new.reorders:
        code = "reorders_added" if new.reorders > base.reorders else "reorders_removed"
        out.append(("reorders", code, f"{base.reorders} → {new.reorders} reorders per iteration"))
    added = new.kinds - base.kinds
    removed = base.kinds - new.kinds
    if removed:
        out.append(("kinds", "kind_removed", "no longer runs in oneDNN: " + _counted(removed)))
    if added:
        out.append(("kinds", "kind_added", "new in oneDNN: " + _counted(added)))
    for old, now in _pair_primitives(base.primitives, new.primitives):
        out += _compare_primitives(old, now)
    return out


def _counted(kinds: Counter[str]) -> str:
    return ", ".join(kind if n == 1 else f"{n}x {kind}" for kind, n in sorted(kinds.items()))


def _pair_primitives(
    base: list[Primitive], new: list[Primitive]
) -> list[tuple[Primitive, Primitive]]:
    """Same-kind primitives of a layer, paired in order (extra ones are kind findings)."""
    pairs = []
    for kind in dict.fromkeys(p.kind for p in base):
        olds = [p for p in base if p.kind == kind]
        news = [p for p in new if p.kind == kind]
        pairs += list(zip(olds, news, strict=False))
    return pairs


def _compare_primitives(old: Primitive, new: Primitive) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    lost, gained = post_op_changes(old.post_ops, new.post_ops)
    if lost or gained:
        change = f"post-ops {old.post_ops or 'none'} → {new.post_ops or 'none'}"
        if lost:
            out.append(("fusion", "fusion_lost", f"{change} (lost {', '.join(lost)})"))
        else:
            out.append(("fusion", "fusion_gained", f"{change} (gained {', '.join(gained)})"))
    old_types = (old.src_dt, old.wei_dt, old.dst_dt)
    new_types = (new.src_dt, new.wei_dt, new.dst_dt)
    if old_types != new_types:
        out.append(("dtype", dtype_change(old_types, new_types),
                    f"{old.kind} {_types(old_types)} → {_types(new_types)}"))
    if old.impl != new.impl:
        out.append(("impl", impl_change(old.impl, old.isa, new.impl, new.isa),
                    f"{old.kind} {old.impl} → {new.impl}"))
    if old.prop != new.prop:
        out.append(("impl", "prop_changed", f"{old.kind} {old.prop} → {new.prop}"))
    if old.problem != new.problem:
        out.append(("shape", "shape_changed", f"{old.kind} {old.problem} → {new.problem}"))
    return out


def _types(types: tuple[str, str, str]) -> str:
    return "/".join(t or "-" for t in types)


def _merge_per_check(
    raw: list[tuple[str, str, str]], config: CheckConfig
) -> dict[str, tuple[str, str]]:
    """One finding per check: the most severe code, with every detail joined."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for check, code, detail in raw:
        if check not in merged:
            merged[check] = (code, [detail])
            continue
        current, details = merged[check]
        if detail not in details:
            details.append(detail)
        if _rank(config.severity_of(code)) < _rank(config.severity_of(current)):
            merged[check] = (code, details)
    return {check: (code, "; ".join(details)) for check, (code, details) in merged.items()}


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)
