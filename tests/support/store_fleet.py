"""A fleet of runs for store tests and benchmarks/store_scale.py, made from a real corpus run.

`corpus_run()` is a real log, parsed and aligned with ResNet-50's layers as
`dnnprof store add --model resnet50` does. `lost_fusion()` is the same run as if one
convolution had lost its fused ReLU: the convolution's post-op is gone and the ReLU runs as
its own eltwise primitive. `fleet()` yields store rows for many runs made from those two:
every layer's per-iteration time jittered, a share of runs busy (contention spikes on some
layers) or unreliable (anything goes), one layer slower from one run on, and the lost
fusion from another run on.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import cache

import numpy as np
import pandas as pd

import dnnprof
from dnnprof.store.context import RunContext
from dnnprof.store.rows import RunRows, run_rows
from dnnprof.trace import Trace, normalize_events
from support.corpus import CORPUS

CORPUS_LOG = "torch_resnet50_compile_freezing_b1"  # conv + bn + relu fused, as inference runs
FUSED_CONV = "layer1.0.conv1"  # its post-op eltwise_relu folds layer1.0.relu1
UNFUSED_RELU = "layer1.0.relu1"
SLOW_LAYER = "layer4.0.conv2"
START = datetime(2025, 1, 6, tzinfo=timezone.utc)


@cache
def corpus_run(name: str = CORPUS_LOG) -> Trace:
    """A real corpus log, aligned with ResNet-50's layer table (do not modify: cached)."""
    return dnnprof.open(CORPUS / f"{name}.log", model="resnet50")


def lost_fusion(trace: Trace, conv: str = FUSED_CONV, relu: str = UNFUSED_RELU) -> Trace:
    """The run as if `conv` had lost its fused ReLU: a separate eltwise primitive runs it."""
    events = trace.events.copy()
    for column in ("post_ops", "fused_layers", "kind", "layer", "layer_type", "impl", "attrs",
                   "alg"):
        events[column] = events[column].astype(str)
    convs = (events["layer"] == conv) & (events["kind"] == "convolution")
    if not convs.any():
        raise ValueError(f"{conv} runs no convolution in this trace")
    events.loc[convs, "post_ops"] = ""
    events.loc[convs, "attrs"] = "attr-scratchpad:user"
    events.loc[convs, "fused_layers"] = "+".join(
        f for f in events.loc[convs, "fused_layers"].iloc[0].split("+") if f != relu)
    relus = events[convs].copy()
    relus["kind"], relus["layer"], relus["layer_type"] = "eltwise", relu, "ReLU"
    relus["impl"], relus["alg"], relus["fused_layers"] = "jit:avx512_core", "eltwise_relu", ""
    relus["duration_ms"] = relus["duration_ms"] * 0.12  # a memory-bound pass over the output
    relus["flops"] = np.nan
    merged = pd.concat([events, relus]).sort_values("line", kind="stable")
    return Trace(normalize_events(merged.reset_index(drop=True)), trace.metadata.copy())


@dataclass(frozen=True)
class Noise:
    """How runs vary: per-iteration jitter, busy and unreliable shares."""

    jitter: float = 0.03  # log-normal sigma of each layer's time in each iteration
    machine: float = 0.01  # log-normal sigma of a whole run (a slightly faster/slower host)
    busy: float = 0.10  # share of runs on a busy machine
    unreliable: float = 0.02  # share of runs whose times mean nothing


@dataclass(frozen=True)
class Events:
    """What happens in the fleet: a layer slower from one run, a fusion lost from another."""

    slow_from: int = 7000  # run number (1-based) of the first slower run
    slowdown: float = 0.15
    slow_layer: str = SLOW_LAYER
    lost_from: int = 8500  # first run without the fusion


def fleet(runs: int, events: Events, noise: Noise = Noise(), seed: int = 7,
          model: str = "resnet50", variant: str = "compiled",
          runner: str = "ci-epyc-2vcpu") -> Iterator[RunRows]:
    """Rows of `runs` runs, numbered 1..runs, ten minutes apart, without stored events."""
    rng = np.random.default_rng(seed)
    context = RunContext(runner=runner, host="fleet", time=START)
    templates = [run_rows(corpus_run(), context, model, variant, "template", events=False),
                 run_rows(lost_fusion(corpus_run()), context, model, variant, "template",
                          events=False)]
    conditions = rng.choice(["quiet", "busy", "unreliable"], size=runs,
                            p=[1 - noise.busy - noise.unreliable, noise.busy, noise.unreliable])
    # the runs that carry a change are measured on a quiet machine: a busy or unreliable run
    # cannot be named as the first slow one (history names the first quiet run after it)
    for number in (events.slow_from, events.lost_from):
        if 1 <= number <= runs:
            conditions[number - 1] = "quiet"
    for number in range(1, runs + 1):
        template = templates[number >= events.lost_from]
        yield _one_run(template, number, str(conditions[number - 1]), events, noise, rng)


def _one_run(template: RunRows, number: int, condition: str, events: Events, noise: Noise,
             rng: np.random.Generator) -> RunRows:
    layers = template.layers.copy()
    base = np.array([list(s) for s in layers["samples"]])  # layers x iterations
    factor = np.exp(rng.normal(0.0, noise.jitter, base.shape) + rng.normal(0.0, noise.machine))
    if condition == "busy":  # contention: some layers in some iterations take much longer
        spikes = rng.random(base.shape) < 0.4
        factor = np.where(spikes, factor * rng.uniform(1.05, 1.8, base.shape), factor)
    elif condition == "unreliable":
        factor = factor * rng.uniform(0.6, 2.5) * rng.uniform(1.0, 3.0, base.shape)
    if number >= events.slow_from:
        factor[(layers["layer"] == events.slow_layer).to_numpy()] *= 1.0 + events.slowdown
    samples = base * factor
    layers["samples"] = [list(row) for row in samples]
    layers["median_ms"] = np.median(samples, axis=1)
    run_id = f"run-{number:05d}"
    layers["run_id"] = run_id
    # time outside layers (unlabelled primitives) keeps the run's machine factor
    outside = np.asarray(template.run["samples"]) - base.sum(axis=0)
    totals = samples.sum(axis=0) + outside * factor.mean(axis=0)
    when = START + timedelta(minutes=10 * number)
    run = copy.copy(template.run)
    run.update(run_id=run_id, run_time=when, added_time=when, conditions=condition,
               git_commit=hashlib.sha1(str(number).encode()).hexdigest(),
               git_branch="main", samples=[float(t) for t in totals],
               median_ms=float(np.median(totals)))
    return replace(template, run_id=run_id, run_date=when.date().isoformat(), run=run,
                   layers=layers)
