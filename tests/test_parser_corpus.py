"""The corpus parses completely, and the parser's counts match an independent count."""

from __future__ import annotations

import json
from collections import Counter

import pytest

import dnnprof
from support.corpus import CORPUS, CORPUS_LOGS


def test_corpus_is_present():
    assert CORPUS_LOGS, f"corpus missing at {CORPUS}"


def _independent_counts(path):
    """Count exec lines and per-kind totals by plain splitting, without the parser."""
    calls: Counter[str] = Counter()
    total: Counter[str] = Counter()
    with open(path) as handle:
        for line in handle:
            fields = line.rstrip("\n").split(",")
            if fields[0] == "onednn_verbose" and fields[1] == "v1":
                fields = fields[2:]
            elif fields[0] == "dnnl_verbose":
                fields = ["primitive"] + fields[1:]
            else:
                continue
            if fields[0] == "primitive" and fields[1] == "exec":
                calls[fields[3]] += 1
                total[fields[3]] += float(fields[-1])
    return calls, total


@pytest.mark.parametrize("log", CORPUS_LOGS, ids=lambda p: p.stem)
def test_corpus_log_parses_with_zero_unparsed(log):
    trace = dnnprof.parse(log)
    summary = trace.summary()
    assert summary["unparsed"] == 0, trace.metadata["unparsed_samples"][:3]
    assert summary["foreign"] == 0
    calls, total = _independent_counts(log)
    assert summary["exec"] == sum(calls.values())
    assert {k: v["calls"] for k, v in summary["kinds"].items()} == dict(calls)
    for kind, ms in total.items():
        assert summary["kinds"][kind]["total_ms"] == pytest.approx(ms, rel=1e-9)
    meta = json.loads(log.with_suffix(".meta.json").read_text())
    assert summary["onednn_version"] == meta["onednn_version"]
    assert summary["lines"] == sum(1 for _ in open(log))


def test_verbose_all_counts_every_line_type():
    log = CORPUS / "torch_resnet50_fp32_eager_b1_verbose_all.log"
    trace = dnnprof.parse(log)
    ops = trace.events["op"].astype(str).value_counts().to_dict()
    caches = trace.events.loc[trace.events["op"] == "create", "cache"].astype(str).value_counts()
    assert ops == {"exec": 844, "create": 844, "check": 820, "dispatch": 139}
    assert caches.to_dict() == {"cache_hit": 787, "cache_miss": 57}
    s = trace.summary()
    assert s["lines"] == s["exec"] + s["create"] + s["messages"] + s["info"]


def test_int8_evidence_is_typed():
    trace = dnnprof.parse(CORPUS / "torch_resnet50_int8_fx_b1.log")
    conv = trace.events[(trace.events["kind"] == "convolution") & (trace.events["src_dt"] == "u8")]
    assert len(conv) > 0
    assert set(conv["wei_dt"].astype(str)) == {"s8"}
    assert conv["has_scales"].all()
    assert (conv["post_ops"] == "eltwise_relu").sum() == 132
    assert set(conv["isa"].astype(str)) == {"avx512_core_vnni"}


def test_mxnet_v2_dialect():
    trace = dnnprof.parse(CORPUS / "mxnet_resnet50_v1_fp32_b1.log")
    assert trace.metadata["dialect"] == "dnnl"
    assert trace.metadata["templates_announced"] == ["primitive"]
    bn = trace.events[trace.events["kind"] == "batch_normalization"]
    assert set(bn["aux"].astype(str)) == {"flags:GS"}
    conv = trace.events[trace.events["kind"] == "convolution"]
    assert "acdb" in set(conv["src_fmt"].astype(str))
    assert conv["flops"].notna().all()
