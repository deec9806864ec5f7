"""Bad input gets a clear account and loses nothing that did parse."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dnnprof
from dnnprof.parsers.stream import parse_to_trace
from support.corpus import CORPUS

EAGER = CORPUS / "torch_resnet50_fp32_eager_b1.log"
CONV = (
    "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,forward_training,"
    "src:f32:a:blocked:abcd::f0 wei:f32:a:blocked:Acdb16a::f0 bia:undef::undef::: "
    "dst:f32:a:blocked:aBcd16b::f0,attr-scratchpad:user,alg:convolution_direct,"
    "mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,24.9109"
)


def test_truncated_last_line(tmp_path):
    text = EAGER.read_text()
    cut = tmp_path / "cut.log"
    last = text.rstrip("\n").rindex("\n") + 1
    cut.write_text(text[: last + 100])  # the last line stops in its memory descriptors
    trace = dnnprof.parse(cut)
    full = dnnprof.parse(EAGER)
    assert trace.summary()["exec"] == full.summary()["exec"] - 1
    assert trace.summary()["unparsed"] == 1
    sample = trace.metadata["unparsed_samples"][0]
    assert sample["line"] == full.summary()["lines"] and "truncated" in sample["reason"]
    assert any("no newline" in w for w in trace.metadata["warnings"])


def test_crlf_line_endings(tmp_path):
    crlf = tmp_path / "crlf.log"
    crlf.write_bytes(EAGER.read_bytes().replace(b"\n", b"\r\n"))
    a, b = dnnprof.parse(crlf).summary(), dnnprof.parse(EAGER).summary()
    assert a["exec"] == b["exec"] and a["unparsed"] == 0 and a["kinds"] == b["kinds"]


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    trace = dnnprof.parse(empty)
    assert trace.summary()["lines"] == 0 and len(trace.events) == 0
    assert trace.by_kind().empty and trace.top().empty


def test_gzip_and_truncated_gzip(tmp_path):
    gz = tmp_path / "log.gz"
    gz.write_bytes(gzip.compress(EAGER.read_bytes()))
    assert dnnprof.parse(gz).summary()["exec"] == dnnprof.parse(EAGER).summary()["exec"]
    broken = tmp_path / "broken.gz"
    data = gz.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    trace = dnnprof.parse(broken)  # what was read before the cut is kept
    assert 0 < trace.summary()["exec"] < dnnprof.parse(EAGER).summary()["exec"]
    assert any("read failed part-way" in w for w in trace.metadata["warnings"])


def test_binary_garbage(tmp_path):
    junk = tmp_path / "junk.log"
    junk.write_bytes(bytes(range(256)) * 50 + b"\n" + CONV.encode() + b"\n\xff\xfe\x00\n")
    trace = dnnprof.parse(junk)
    s = trace.summary()
    assert s["exec"] == 1 and s["foreign"] >= 1


def test_one_megabyte_line(tmp_path):
    big = tmp_path / "big.log"
    big.write_text(CONV + "\n" + "onednn_verbose," + "x" * (1 << 20) + "\n" + CONV + "\n")
    s = dnnprof.parse(big).summary()
    assert s["exec"] == 2 and s["unparsed"] == 1 and s["lines"] == 3


def test_interleaved_foreign_output():
    lines = [
        "Epoch 1 starting\n",
        CONV + "\n",
        "loss=0.3" + CONV + "\n",  # an unflushed print glued in front of a verbose line
        "Traceback (most recent call last):\n",
        "\n",
    ]
    trace = dnnprof.parse(lines)
    s = trace.summary()
    # the glued line is an exec line with a prefix, not a foreign line (issue 12)
    assert s["exec"] == 2 and s["foreign"] == 2 and s["blank"] == 1 and s["unparsed"] == 0
    assert trace.metadata.lines_with_prefix == 1
    assert any("interleaved" in w for w in s["warnings"])
    assert list(trace.events["line"]) == [2, 3]


def test_unknown_primitive_kind_and_version_token_are_kept_and_warned():
    line = CONV.replace("v1,", "v2,").replace("convolution,jit", "super_conv,jit")
    trace = dnnprof.parse([line])
    s = trace.summary()
    assert s["exec"] == 1 and s["unparsed"] == 0
    assert list(trace.events["kind"]) == ["super_conv"]
    assert trace.metadata["version_token"] == "v2"
    assert any("'v2'" in w for w in s["warnings"])
    assert any("super_conv" in w for w in s["warnings"])


def test_unparsed_lines_are_counted_with_their_reason():
    lines = [CONV, "onednn_verbose,v1,primitive,exec,cpu,convolution,notatime", "onednn_verbose,v1,bogus"]
    trace = dnnprof.parse(lines)
    reasons = [u["reason"] for u in trace.metadata["unparsed_samples"]]
    assert trace.summary()["unparsed"] == 2 and len(reasons) == 2
    assert trace.metadata["unparsed_samples"][1]["line"] == 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.text(max_size=200),
    st.sampled_from([CONV, CONV[:120], "onednn_verbose,v1,", "#DNNPROF,begin", "dnnl_verbose,info,"]).flatmap(
        lambda prefix: st.text(max_size=80).map(lambda tail: prefix + tail)
    ),
), max_size=20))
def test_parser_never_raises_on_arbitrary_text(lines):
    trace = parse_to_trace(lines)
    s = trace.summary()
    assert s["lines"] == len(lines)
    assert s["exec"] + s["unparsed"] + s["foreign"] + s["blank"] + s["info"] <= len(lines) + s["markers"] + s["messages"] + s["create"] + s["graph"]


def test_cli_json_and_exit_codes(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "dnnprof", "parse", str(EAGER), "--json", "-o", str(tmp_path / "t.parquet")],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("lines", "exec", "unparsed", "foreign", "onednn_version", "dialect", "kinds"):
        assert key in data
    assert data["kinds"]["convolution"]["calls"] == 212
    assert set(data["kinds"]["reorder"]) >= {"calls", "total_ms"}
    assert dnnprof.load(tmp_path / "t.parquet").summary()["exec"] == data["exec"]
    missing = subprocess.run(
        [sys.executable, "-m", "dnnprof", "parse", str(tmp_path / "nope.log")],
        capture_output=True, text=True, check=False,
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    table = subprocess.run(
        [sys.executable, "-m", "dnnprof", "parse", str(EAGER)], capture_output=True, text=True, check=False
    )
    assert table.returncode == 0 and "convolution" in table.stdout and "v3.12.0" in table.stdout
