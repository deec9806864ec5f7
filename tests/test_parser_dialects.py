"""Each verbose dialect, with real-syntax lines, decodes into the same typed fields."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

import dnnprof
from dnnprof.parsers import fields
from dnnprof.parsers.events import ExecEvent, InfoEvent, MessageEvent
from dnnprof.parsers.flops import conv_flops
from dnnprof.parsers.grammar import grammar_parser
from dnnprof.parsers.lines import VERBOSE_MARKERS
from dnnprof.parsers.stream import iter_events
from dnnprof.trace import Trace
from dnnprof.vocabulary import DATA_TYPES
from support.corpus import DATA

V3_CONV = (
    "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,forward_training,"
    "src:f32:a:blocked:abcd::f0 wei:f32:a:blocked:Acdb16a::f0 bia:undef::undef::: "
    "dst:f32:a:blocked:aBcd16b::f0,attr-scratchpad:user,alg:convolution_direct,"
    "mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,24.9109"
)


def _rows(trace, kind):
    return trace.events[trace.events["kind"] == kind]


def test_mkldnn_v0_lines():
    trace = dnnprof.parse(DATA / "mkldnn_v0_alexnet.log")
    assert trace.metadata["dialect"] == "v0"
    assert trace.metadata["onednn_version"] == "v0.21.0"
    assert trace.metadata["isa"] == "Intel AVX-512 with Intel DL Boost"
    assert trace.summary()["unparsed"] == 0
    conv = _rows(trace, "convolution")
    assert list(conv["src_fmt"].astype(str)) == ["nchw", "nChw16c"]
    assert list(conv["engine"].astype(str)) == ["", ""]  # v0 printed no engine
    reorder = _rows(trace, "reorder").iloc[0]
    assert (reorder["src_dt"], reorder["src_fmt"], reorder["dst_fmt"]) == ("f32", "oihw", "Ohwi16o")
    assert reorder["aux"] == "num:1"
    # v0 puts groups after the minibatch: mb1_g2ic96oc256
    grouped = fields.parse_problem("mb1_g2ic96oc256_ih27oh27kh5sh1dh0ph2_iw27ow27kw5sw1dw0pw2")
    assert grouped.get("g") == 2 and grouped.get("ic") == 96
    ip = _rows(trace, "inner_product").iloc[0]
    assert ip["flops"] == 2 * 256 * 6 * 6 * 4096


def test_dnnl_v1_lines_with_legacy_attributes():
    trace = dnnprof.parse(DATA / "dnnl_v1_sample.log")
    assert trace.metadata["dialect"] == "dnnl"
    assert trace.metadata["product"] == "DNNL"
    conv = _rows(trace, "convolution")
    assert list(conv["post_ops"].astype(str)) == ["eltwise_relu", "", "sum+eltwise_relu"]
    assert list(conv["has_scales"]) == [False, False, True]
    int8 = conv.iloc[2]
    assert (int8["src_dt"], int8["wei_dt"], int8["isa"]) == ("u8", "s8", "avx512_core_vnni")


def test_dnnl_v10_has_no_attribute_field():
    trace = dnnprof.parse(DATA / "dnnl_v10_no_attrs.log")
    assert trace.summary()["unparsed"] == 0
    elt = _rows(trace, "eltwise").iloc[0]
    assert elt["alg"] == "eltwise_relu" and elt["attrs"] == ""
    assert elt["src_dt"] == "f32" and elt["src_fmt"] == "aBcd16b"


def test_onednn_v3x_component_and_timestamp_before_it():
    trace = dnnprof.parse(DATA / "onednn_v3x_mixed.log")
    assert trace.metadata["dialect"] == "onednn"
    assert trace.metadata["threads"] == 4
    assert trace.metadata["timeline"] == "timestamps"
    ex = trace.exec_events
    assert list(ex["start_ms"]) == pytest.approx([0.0, 1.625, 1.875])
    mm = _rows(trace, "matmul").iloc[0]
    assert mm["flops"] == 2 * 2048 * 1000
    assert "ws_undef" in trace.events["mds"].astype(str).iloc[1]


def test_v1_timestamp_after_version_token():
    line = V3_CONV.replace("v1,primitive", "v1,1795230460599.983887,primitive")
    trace = dnnprof.parse([line + "\n", line.replace(",24.9109", ",1.5") + "\n"])
    assert trace.metadata["timeline"] == "timestamps"
    assert list(trace.events["ts_ms"]) == [1795230460599.983887] * 2
    assert list(trace.events["duration_ms"]) == [24.9109, 1.5]
    assert trace.events["desc_id"].nunique() == 1  # same descriptor despite the timestamp


def test_v3_memory_descriptor_details():
    mds = fields.parse_mds(
        "src:u8::blocked:acdb::f0 wei:s8:ap:blocked:AcdB64a4b::f8:zpm1 bia:undef::undef::: "
        "dst:f32::blocked:ab::f0_mask2 src1:f32::blocked:abcd:64s1s8s1:f0"
    )
    assert mds[1].props == "ap" and mds[1].tag == "AcdB64a4b"
    assert mds[1].flags == "f8" and mds[1].extra == ("zpm1",)
    assert mds[2].data_type == "undef" and mds[2].flags == ""
    assert mds[3].flags == "f0_mask2"
    assert mds[4].strides == "64s1s8s1"


def test_problem_descriptor_forms():
    conv = fields.parse_problem("g32mb1_ic32oc32_ih112oh112kh3sh1dh0ph1_iw112ow112kw3sw1dw0pw1")
    assert [conv.get(k) for k in ("g", "mb", "ic", "oc", "oh", "kw", "pw")] == [32, 1, 32, 32, 112, 3, 1]
    conv3d = fields.parse_problem(
        "mb2_ic16oc32_id8od6kd3sd1dd0pd0_ih8oh6kh3sh1dh0ph0_iw8ow6kw3sw1dw0pw0"
    )
    assert conv3d.get("od") == 6 and conv3d.get("kd") == 3
    assert fields.parse_problem("mb1ic96ih55iw55ls5beta0.75").values["beta"] == 0.75
    rnn = fields.parse_problem("l1t10mb4sic128slc64dhc128dic128")
    assert rnn.get("slc") == 64
    assert fields.parse_problem("8x64x256:8x256x64").dims == ((8, 64, 256), (8, 256, 64))
    assert fields.parse_problem("*x512:512x1000").dims == ((None, 512), (512, 1000))
    assert fields.parse_problem("1x64x56x56:1x64x56x56 1x128x56x56").dims[-1] == (1, 128, 56, 56)


def test_conv_flops_exclude_padding_taps():
    # benchdnn's convention, checked in the reference against real logs
    p = fields.parse_problem("mb1_ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1")
    assert conv_flops(p) == pytest.approx(0.2257e9, rel=1e-3)
    small = fields.parse_problem("mb1_ic512oc512_ih7oh7kh3sh1dh0ph1_iw7ow7kw3sw1dw0pw1")
    assert conv_flops(small) == pytest.approx(0.1893e9, rel=1e-3)
    naive = 2 * 512 * 512 * 7 * 7 * 9
    assert conv_flops(small) < naive


def test_create_dispatch_and_check_messages_keep_their_commas():
    lines = [
        "onednn_verbose,v1,primitive,create:dispatch,convolution,unsupported feature for padding: f,t,l padding not supported,src/cpu/x64/jit_avx512_common_1x1_conv_kernel.cpp:680",
        "onednn_verbose,v1,primitive,create:dispatch,convolution,cpu,convolution,brdgmm_dw:undef,forward_training,src:f32:a:any:any::f0 wei:f32:a:any:any::f0 bia:undef::undef::: dst:f32:a:any:any::f0,attr-scratchpad:user,alg:convolution_direct,mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,unsupported isa, or no support for groups,src/cpu/x64/brgemm/brgemm_utils.cpp:12",
        "onednn_verbose,v1,primitive,exec:check,primitive,unused primitive execution argument (80),src/common/primitive_exec_types.cpp:136",
        "onednn_verbose,v1,primitive,create:check,matmul,bad,comma,separated,text",
        "onednn_verbose,v1,common,error,ocl,Error during the build of OpenCL program.",
        "onednn_verbose,v1,primitive,warning,cpu,matmul,unsupported fpmath mode",
        "onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,jit:avx512_core,forward_training,src:f32::blocked:abcd::f0 dst:f32::blocked:abcd::f0,,alg:convolution_direct,mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,0.5",
    ]
    events = list(iter_events(lines))
    first, second, check, create_check, error, warning, create = events
    assert isinstance(first, MessageEvent) and first.op == "dispatch"
    assert first.message == "unsupported feature for padding: f,t,l padding not supported"
    assert first.source.endswith("kernel.cpp:680")
    assert second.context[1] == "convolution" and second.message.startswith("unsupported isa, or")
    assert check.op == "check" and check.stage == "exec" and "(80)" in check.message
    assert create_check.message == "bad,comma,separated,text" and create_check.source == ""
    assert error.op == "error" and error.component == "ocl"
    assert warning.op == "warning"
    assert isinstance(create, ExecEvent) and create.descriptor.op == "create"
    assert create.descriptor.cache == "cache_miss" and create.duration_ms == 0.5


def test_graph_lines_including_undeclared_scratchpad():
    lt = (
        "in0_f32:0:strided:variable:2x16x28x28:12544s784s28s1 in1_f32:1:strided:constant:"
        "32x16x3x3:144s9s3s1 out0_f32:9:strided:variable:2x32x26x26:21632s1s832s32"
    )
    lines = [
        "onednn_verbose,v1,graph,info,template:operation,engine,partition_id,partition_kind,op_names,data_formats,logical_tensors,fpmath_mode,implementation,backend,exec_time",
        f"onednn_verbose,v1,graph,compile:cache_miss,cpu,100017,convolution_post_ops,aten::_convolution;aten::relu,data:NCX; filter:OIX;;,{lt},fpm:strict,conv_fwd_t,dnnl_backend,1.82788",
        f"onednn_verbose,v1,graph,exec,cpu,100017,convolution_post_ops,aten::_convolution;aten::relu,data:NCX; filter:OIX;;,{lt},fpm:strict,conv_fwd_t,dnnl_backend,0.25",
        f"onednn_verbose,v1,graph,exec,cpu,100017,convolution_post_ops,aten::_convolution;aten::relu,data:NCX; filter:OIX;;,{lt},fpm:strict,scratchpad:4096,conv_fwd_t,dnnl_backend,0.5",
    ]
    trace = dnnprof.parse(lines)
    assert trace.summary()["unparsed"] == 0
    graph = trace.events[trace.events["api"] == "graph"]
    assert list(graph["op"].astype(str)) == ["compile", "exec", "exec"]
    assert set(graph["kind"].astype(str)) == {"convolution_post_ops"}
    assert set(graph["problem"].astype(str)) == {"aten::_convolution;aten::relu"}
    assert set(graph["src_dt"].astype(str)) == {"f32"}
    assert set(graph["fpmath"].astype(str)) == {"strict"}
    assert trace.summary()["graph"] == 2 and trace.summary()["exec"] == 0
    assert trace.summary()["graph_exec_ms"] == pytest.approx(0.75)


def test_info_lines_and_templates():
    events = list(
        iter_events(
            [
                "onednn_verbose,v1,info,oneDNN v3.12.0 (commit 80afa71049cd69a3df32adcccb623b12cd7baa22)",
                "onednn_verbose,v1,info,cpu,runtime:OpenMP,nthr:2",
                "onednn_verbose,v1,info,gpu,engine,opencl device count:1",
                "onednn_verbose,v1,info,graph,backend,0:dnnl_backend",
            ]
        )
    )
    assert all(isinstance(e, InfoEvent) for e in events)
    assert events[0].values["commit"].startswith("80afa71")
    assert events[1].values == {"engine": "cpu", "runtime": "OpenMP", "threads": "2"}


def test_ukernel_and_gemm_api_lines():
    lines = [
        "onednn_verbose,v1,primitive,exec,cpu,gemm_api,,undef,src_f32::blocked:ab:f0 wei_f32::blocked:ab:f0 dst_f32::blocked:ab:f0,,,64x128:128x32,0.01",
        "onednn_verbose,v1,ukernel,exec,cpu,brgemm,,undef,bs:1 beta:0,0.002",
    ]
    trace = dnnprof.parse(lines)
    assert trace.summary()["unparsed"] == 0
    gemm = _rows(trace, "gemm_api").iloc[0]
    assert gemm["src_dt"] == "f32" and gemm["flops"] == 2 * 64 * 128 * 32
    assert _rows(trace, "brgemm").iloc[0]["api"] == "ukernel"
    assert math.isnan(_rows(trace, "brgemm").iloc[0]["flops"])


_TEMPLATE = (
    "onednn_verbose,v1,primitive,info,template:timestamp,operation,engine,primitive,"
    "implementation,prop_kind,memory_descriptors,attributes,auxiliary,problem_desc,{fields}"
)
_CONV_FIELDS = V3_CONV.rpartition(",")[0]  # the v1 line up to its problem descriptor


@pytest.mark.parametrize(
    "order", ["numa_node,exec_time", "exec_time,numa_node"], ids=["before_time", "after_time"]
)
def test_unknown_template_field_is_kept_as_text_column(tmp_path, order):
    # A template field dnnprof does not know keeps its values in the Trace, as text,
    # wherever the template puts it (even after the time, where the hot loop cuts)
    def line(node, ms):
        tail = f"{node},{ms}" if order.startswith("numa_node") else f"{ms},{node}"
        return f"{_CONV_FIELDS},{tail}\n"

    log = [_TEMPLATE.format(fields=order) + "\n", line(0, 1.5), line(1, 2.5), line(0, 1.5), line(0, 3.5)]
    trace = dnnprof.parse(log)
    assert trace.summary()["unparsed"] == 0 and trace.summary()["exec"] == 4
    assert list(trace.events["duration_ms"]) == [1.5, 2.5, 1.5, 3.5]
    assert list(trace.events["field_numa_node"].astype(str)) == ["0", "1", "0", "0"]
    assert trace.events["desc_id"].nunique() == 2  # the field is part of the descriptor
    assert trace.metadata.unknown_fields == ["numa_node"]
    assert any("numa_node" in w for w in trace.metadata.warnings)
    back = Trace.load(trace.save(tmp_path / "t.parquet"))
    assert list(back.events["field_numa_node"].astype(str)) == ["0", "1", "0", "0"]
    assert isinstance(back.events["field_numa_node"].dtype, pd.CategoricalDtype)
    assert back.metadata.unknown_fields == ["numa_node"]
    events = [e for e in iter_events(log) if isinstance(e, ExecEvent)]
    assert [e.descriptor.extra_fields for e in events[:2]] == [
        (("numa_node", "0"),), (("numa_node", "1"),)
    ]


def test_iter_events_is_the_same_loop_with_its_guards():
    lines = [CONV_LINE := V3_CONV + "\n", "onednn_verbose," + "x" * (1 << 20) + "\n", CONV_LINE]
    events = list(iter_events(lines))
    assert [type(e).__name__ for e in events] == ["ExecEvent", "Unparsed", "ExecEvent"]
    assert "longer than" in events[1].reason and events[1].line == 2
    assert events[0].descriptor is events[2].descriptor  # memoised on the descriptor


def test_grammar_and_vocabulary_name_the_same_data_types():
    pattern = grammar_parser().get_terminal("DATA_TYPE").pattern.to_regexp()
    named = set(re.search(r"\(([a-z0-9_|]+)\)", pattern).group(1).split("|"))
    assert named == set(DATA_TYPES)
    verbose = grammar_parser().get_terminal("MARKER").pattern.to_regexp()
    assert all(re.fullmatch(verbose, marker) for marker in VERBOSE_MARKERS)
