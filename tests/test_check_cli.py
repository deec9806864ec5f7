"""`dnnprof check` / `dnnprof baseline` end to end through the command line: exit codes,
outputs (terminal, JUnit, markdown, JSON), configuration, and bad input (exit 2)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import dnnprof
from dnnprof.cli import main
from support.check_logs import replicated_log, slower, without_post_op

INT8 = "torch_resnet50_int8_fx_b1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six-iteration int8 ResNet-50 logs built from real lines, and a stored baseline."""
    root = tmp_path_factory.mktemp("runs")
    paths = {
        "base_log": replicated_log(INT8, 6, root / "base.log"),
        "same": replicated_log(INT8, 6, root / "same.log", start=1),
        "slow": replicated_log(INT8, 6, root / "slow.log", edit=slower(1.3), start=2),
        "unfused": replicated_log(INT8, 6, root / "unfused.log",
                                  edit=without_post_op("eltwise_relu"), start=2),
    }
    paths["base"] = dnnprof.parse(paths["base_log"]).save(root / "base.parquet")
    return paths


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------- verdicts --

def test_same_model_passes(runs, capsys) -> None:
    code, out, _ = run(["check", runs["same"], "--baseline", runs["base"]], capsys)
    assert code == 0
    assert "dnnprof check: PASS" in out


def test_slowdown_fails_with_the_timing_verdict(runs, capsys) -> None:
    code, out, _ = run(["check", runs["slow"], "--baseline", runs["base"], "--json"], capsys)
    assert code == 1
    report = json.loads(out)
    assert report["verdict"] == "fail"
    assert report["timing"]["total"]["verdict"] == "slower"
    assert report["timing"]["total"]["ratio"] == pytest.approx(1.3, rel=0.02)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert {(f["check"], f["code"]) for f in errors} == {("timing", "timing_regression")}


def test_lost_fusion_fails_naming_each_layer(runs, tmp_path, capsys) -> None:
    junit, markdown = tmp_path / "out" / "check.xml", tmp_path / "out" / "check.md"
    code, out, _ = run(["check", runs["unfused"], "--baseline", runs["base"],
                        "--junit", junit, "--markdown", markdown], capsys)
    assert code == 1
    assert "FAIL: 33 error(s)" in out
    assert "lost eltwise_relu" in out

    root = ET.parse(junit).getroot()
    fusion = root.find("testsuite[@name='dnnprof.check.fusion']")
    assert fusion is not None
    cases = fusion.findall("testcase")
    # one case for the check as a whole, then one per layer with a finding
    assert len(cases) == 1 + 33
    assert all(case.find("failure") is not None for case in cases)
    assert cases[1].get("name") == "convolution[mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3]#0"
    assert root.get("failures") == "34"
    timing = root.find("testsuite[@name='dnnprof.check.timing']")
    assert timing is not None and timing.get("failures") == "0"
    reorders = root.find("testsuite[@name='dnnprof.check.reorders']")
    assert reorders is not None and [c.get("name") for c in reorders] == ["reorders: all layers"]

    text = markdown.read_text()
    assert text.startswith("## ❌ dnnprof check: FAIL")
    assert "**❌ fused post-ops**: 33 layer(s)" in text
    assert "<details>" in text  # long lists fold away


def test_markdown_to_stdout_and_too_few_iterations(capsys) -> None:
    from support.corpus import CORPUS

    log = CORPUS / f"{INT8}.log"
    code, out, _ = run(["check", log, "--baseline", log, "--markdown", "-"], capsys)
    assert code == 0
    assert out.startswith("## ✅ dnnprof check: pass")
    assert "too few iterations to judge: 3 baseline and 3 new" in out


# ------------------------------------------------------------ configuration --

def test_pyproject_settings_apply(runs, tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dnnprof.check]\ntolerance = "50%"\n'
        '[tool.dnnprof.check.severity]\nfusion_lost = "warning"\n'
    )
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(["check", runs["slow"], "--baseline", runs["base"]], capsys)
    assert code == 0  # 30 % slower, 50 % tolerated
    code, _, _ = run(["check", runs["unfused"], "--baseline", runs["base"]], capsys)
    assert code == 0  # fusion loss demoted to a warning
    code, _, _ = run(["check", runs["slow"], "--baseline", runs["base"], "--tolerance", "10%"],
                     capsys)
    assert code == 1  # the flag wins over the file


def test_dnnprof_toml_ignores_layers(runs, tmp_path, capsys) -> None:
    config = tmp_path / "dnnprof.toml"
    config.write_text('[check]\nignore_layers = ["convolution*"]\n')
    code, out, _ = run(["check", runs["unfused"], "--baseline", runs["base"],
                        "--config", config, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["findings"] == []


@pytest.mark.parametrize("content, message", [
    ('[tool.dnnprof.check]\ntolerence = 0.1\n', "unknown key 'tolerence'"),
    ('[tool.dnnprof.check.severity]\nfusion_lost = "fatal"\n', "use one of error, warning"),
    ('[tool.dnnprof.check]\ntolerance = "five"\n', "expected a fraction"),
    ('[tool.dnnprof.check\n', "cannot read the configuration"),
])
def test_bad_configuration_exits_2(runs, tmp_path, capsys, content, message) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(content)
    code, _, err = run(["check", runs["same"], "--baseline", runs["base"], "--config", config],
                       capsys)
    assert code == 2
    assert message in err


# ---------------------------------------------------------------- bad input --

def _foreign_version(source: Path, target: Path) -> Path:
    table = pq.read_table(source)
    meta = dict(table.schema.metadata)
    meta[b"dnnprof_format"] = b"99"
    pq.write_table(table.replace_schema_metadata(meta), target)
    return target


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such trace, run folder or log; create one with `dnnprof baseline save"),
    ("corrupt", "not a readable dnnprof trace"),
    ("truncated", "not a readable dnnprof trace"),
    ("foreign-version", "written by a newer dnnprof (trace format 99"),
    ("not-dnnprof", "not one written by dnnprof"),
    ("empty-folder", "a folder without trace.parquet"),
    ("log-without-onednn", "no oneDNN exec lines"),
])
def test_bad_baseline_exits_2_with_a_clear_message(runs, tmp_path, capsys, kind, message) -> None:
    base = tmp_path / "baseline.parquet"
    if kind == "corrupt":
        base.write_bytes(b"\x00\x13garbage" * 100)
    elif kind == "truncated":
        data = runs["base"].read_bytes()
        base.write_bytes(data[: len(data) // 2])
    elif kind == "foreign-version":
        _foreign_version(runs["base"], base)
    elif kind == "not-dnnprof":
        pq.write_table(pq.read_table(runs["base"]).replace_schema_metadata({}), base)
    elif kind == "empty-folder":
        base = tmp_path / "run"
        base.mkdir()
    elif kind == "log-without-onednn":
        base = tmp_path / "empty.log"
        base.write_text("hello\nno verbose here\n")
    code, out, err = run(["check", runs["same"], "--baseline", base], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("dnnprof check: baseline")
    assert message in err


def test_bad_new_trace_exits_2(runs, tmp_path, capsys) -> None:
    code, _, err = run(["check", tmp_path / "nope.parquet", "--baseline", runs["base"]], capsys)
    assert code == 2
    assert "new" in err and "no such trace" in err


def test_usage_errors_exit_2(runs, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(runs["same"])])  # no --baseline
    assert exit_info.value.code == 2
    code, _, _ = run(["baseline"], capsys)
    assert code == 2


# --------------------------------------------------------- baseline flow --

def test_baseline_save_then_accept_an_intended_change(runs, tmp_path, capsys) -> None:
    baseline = tmp_path / "baselines" / "resnet50_int8.parquet"
    code, _, err = run(["baseline", "save", runs["base_log"], "--to", baseline], capsys)
    assert code == 0
    assert "6 steady-state iterations" in err
    stored = dnnprof.load(baseline)
    assert set(stored.events["phase"].astype(str)) == {"measure"}
    assert stored.events["iteration"].nunique() == 6

    code, _, _ = run(["check", runs["unfused"], "--baseline", baseline], capsys)
    assert code == 1
    code, _, err = run(["check", runs["unfused"], "--baseline", baseline, "--update-baseline"],
                       capsys)
    assert code == 0
    assert "baseline updated" in err
    code, _, _ = run(["check", runs["unfused"], "--baseline", baseline], capsys)
    assert code == 0


def test_update_baseline_creates_a_missing_one(runs, tmp_path, capsys) -> None:
    baseline = tmp_path / "new-baseline.parquet"
    code, _, err = run(["check", runs["same"], "--baseline", baseline, "--update-baseline"],
                       capsys)
    assert code == 0
    assert "saved as the baseline" in err
    assert dnnprof.load(baseline).events["iteration"].nunique() == 6
