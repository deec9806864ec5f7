"""The block-at-a-time parse (parsers.chunked) gives the Trace of the line-at-a-time loop:
every column, every count, warning and sample, on every corpus log and on logs mixing
known, new, timestamped, malformed and untimed lines, wherever the windows are cut."""

from __future__ import annotations

import dataclasses
import gzip
import io
import random
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dnnprof
from dnnprof.errors import LogReadError
from dnnprof.parsers import chunked
from dnnprof.parsers.inputs import open_text, text_blocks
from dnnprof.parsers.stream import TraceBuilder, iter_events, parse_to_trace
from support.corpus import CORPUS, CORPUS_LOGS, REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from long_log import write_long_log  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_parser_fuzz import damaged_logs  # noqa: E402


def per_line(data: bytes) -> dnnprof.Trace:
    """The reference: every line through TraceBuilder.feed_lines, as a text file gives them."""
    builder = TraceBuilder("<log>")
    with open_text(io.BytesIO(data)) as text:
        builder.feed_lines(text)
    return builder.finish()


class CountingBuilder(TraceBuilder):
    """Counts the lines resolved a window at a time (the rest went through feed_lines)."""

    resolved = 0

    def append_resolved(self, ids, times, ts_rows, ts) -> None:  # noqa: ANN001 - as the base
        self.resolved += len(ids) // 4
        super().append_resolved(ids, times, ts_rows, ts)


class Trickle(io.RawIOBase):
    """A stream giving at most `step` bytes a read, as a pipe does: pieces of a block are
    then bytes and decoded text in turn, with characters and CR LF pairs cut between reads."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__()
        self.data, self.at, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - as RawIOBase
        piece = self.data[self.at : self.at + min(self.step, len(buffer))]
        buffer[: len(piece)] = piece
        self.at += len(piece)
        return len(piece)


def blockwise(data: bytes, size: int = 1 << 22, at_least: float = 0.0, step: int = 0
              ) -> dnnprof.Trace:
    """The Trace of the block-at-a-time path, which must resolve that share of the lines."""
    builder = CountingBuilder("<log>")
    with open_text(io.BufferedReader(Trickle(data, step)) if step else io.BytesIO(data)) as text:
        builder.feed_text(text_blocks(text, size))
    assert builder.resolved >= at_least * builder.line_no
    return builder.finish()


def assert_same(got: dnnprof.Trace, want: dnnprof.Trace) -> None:
    pd.testing.assert_frame_equal(got.events, want.events, check_exact=True)
    assert dataclasses.asdict(got.metadata) == dataclasses.asdict(want.metadata)


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows of 1 to 8 lines: window edges fall everywhere, inside runs of new lines too."""
    monkeypatch.setattr(chunked, "MIN_WINDOW", 1)
    monkeypatch.setattr(chunked, "MAX_WINDOW", 8)


@pytest.mark.parametrize("log", CORPUS_LOGS, ids=lambda p: p.stem)
def test_corpus_logs_give_the_same_trace(log: Path) -> None:
    data = log.read_bytes()
    want = per_line(data)
    assert want.metadata.counts.exec > 0
    assert_same(blockwise(data), want)
    assert_same(blockwise(data, size=4096), want)  # many blocks
    lines = log.read_text().splitlines(keepends=True)
    assert_same(dnnprof.parse(log), dnnprof.parse(lines, name=str(log)))


@pytest.mark.parametrize("log", CORPUS_LOGS[:2], ids=lambda p: p.stem)
def test_corpus_logs_with_tiny_windows(log: Path, small_windows: None) -> None:
    data = log.read_bytes()
    assert_same(blockwise(data, size=1000), per_line(data))


def test_timestamped_long_log(tmp_path: Path) -> None:
    """The scale benchmark's log: timestamps on every line, messages memoised before the
    timestamp prefix was known."""
    path = tmp_path / "long.log"
    write_long_log(path, 8000)
    data = path.read_bytes()
    want = per_line(data)
    assert want.metadata.timeline == "timestamps" and want.metadata.counts.messages > 1000
    assert_same(blockwise(data, at_least=0.8), want)
    assert_same(dnnprof.parse(path, name="<log>"), want)


def _mixed_lines(seed: int) -> list[str]:
    """Known, new, timestamped, malformed and untimed lines, shuffled in runs."""
    rng = random.Random(seed)
    plain = (CORPUS / "torch_resnet50_fp32_eager_b1_verbose_all.log").read_text().splitlines()
    other = (CORPUS / "mxnet_resnet50_v1_fp32_b1.log").read_text().splitlines()
    execs = [line for line in plain if ",exec,cpu," in line]
    out: list[str] = []
    for _ in range(60):
        kind = rng.choice(["known", "new", "stamped", "bad", "untimed", "other", "odd"])
        start = rng.randrange(len(plain))
        if kind == "known":
            out += plain[start : start + rng.randint(1, 40)]
        elif kind == "new":  # a run of descriptors never seen, as in a warm-up
            out += [line.replace(",mb1_", f",mb{rng.randint(2, 10**6)}_", 1)
                    for line in execs[:rng.randint(1, 30)]]
        elif kind == "stamped":
            for line in plain[start : start + rng.randint(1, 30)]:
                head, _, rest = line.partition(",v1,")
                ts = f"{rng.uniform(1e12, 2e12):.6f}" if rng.random() < 0.9 else rng.choice(
                    ["nan", "1_0", "x", "", "1e5"])
                out.append(f"{head},v1,{ts},{rest}" if rest else line)
        elif kind == "bad":
            line = rng.choice(execs)
            out.append(line.rpartition(",")[0] + "," + rng.choice(
                ["nan", "inf", "1_000", "-1", "1e400", "", " 2", "0.5x", "1e-05", "+3", ".5"]))
        elif kind == "untimed":
            out += [line for line in plain[start : start + 20] if ",exec:check," in line
                    or "dispatch" in line] or ["onednn_verbose,v1,info,cpu,runtime:OpenMP"]
        elif kind == "other":
            out += other[start % len(other) : start % len(other) + rng.randint(1, 20)]
        else:
            out.append(rng.choice(["", "   ", "Epoch 1 loss 0.5", "garbage,,,", "onednn_verbose",
                                   "onednn_verbose,v1,", "#DNNPROF,iteration,start,3",
                                   "[rank0] " + rng.choice(execs), "onednn_verbose,v1,12"]))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_mixed_log_with_tiny_windows(seed: int, small_windows: None) -> None:
    lines = _mixed_lines(seed)
    data = ("\n".join(lines) + ("\n" if seed % 2 else "")).encode()
    want = per_line(data)
    assert want.metadata.counts.exec > 0
    assert_same(blockwise(data, size=700), want)
    assert_same(blockwise(data), want)


@pytest.mark.parametrize("seed", range(3))
def test_mixed_log_with_default_windows(seed: int) -> None:
    lines = _mixed_lines(100 + seed) * 30  # long enough for the windows to grow
    data = "\n".join(lines).encode()
    assert_same(blockwise(data, size=50_000, at_least=0.5), per_line(data))


@pytest.mark.parametrize("step", [0, 5, 333])
def test_crlf_non_ascii_and_missing_newline(step: int) -> None:
    log = (CORPUS / "torch_resnet50_fp32_eager_b1.log").read_bytes()
    data = log[:20000].replace(b"\n", b"\r\n") + log[20000:40000] + "é,\xe9\r".encode() + log[40000:]
    data += b"onednn_verbose,v1,primitive,exec,cpu,truncated"
    assert_same(blockwise(data, size=3000, step=step), per_line(data))


def test_truncated_gzip_keeps_the_same_lines(tmp_path: Path) -> None:
    log = (CORPUS / "torch_resnet50_fp32_eager_b1.log").read_bytes()
    whole = gzip.compress(log)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    got = parse_to_trace(path)
    builder = TraceBuilder(str(path))
    with pytest.raises(LogReadError), open_text(path) as text:
        builder.feed_lines(text)
    want = builder.finish()
    assert 0 < want.metadata.counts.lines < log.count(b"\n")
    pd.testing.assert_frame_equal(got.events, want.events, check_exact=True)
    assert got.metadata.counts == want.metadata.counts
    assert got.metadata.warnings[-1].startswith(f"{path}: read failed part-way")


@pytest.mark.parametrize("step", [1, 7, 100, 4096])
def test_text_blocks_give_the_lines_of_iteration(step: int) -> None:
    data = (b"plain,1\n" * 3000 + b"a\r\nb\rc\n\xff\xfe,d\n" * 500 + b"\xe2\x82" + b"tail\r"
            + b"plain,2\n" * 3000 + b"\r" + b"\nx" * 2000 + "\u00e9\r".encode() + b"\n\xe2")
    with open_text(io.BufferedReader(Trickle(data, step))) as text:
        blocks = list(text_blocks(text, size=64))
    assert {type(block) for block in blocks} == {bytes, str}
    with open_text(io.BytesIO(data)) as text:
        lines = list(text)
    texts = [block.decode("ascii") if isinstance(block, bytes) else block for block in blocks]
    assert [line for text in texts for line in chunked.split_lines(text)] == lines
    assert all(text.endswith("\n") for text in texts[:-1])


def test_pyarrow_reads_numbers_as_float_does() -> None:
    """What the vectorised path trusts: every string pyarrow casts, float() reads the same."""
    texts = ["1", "0.5", "1e-05", "1E5", "+1.5", "-0", ".5", "5.", "inf", "-inf", "nan", "NaN",
             "Infinity", "1e400", "007", "0.0249023", "1795230460059.874512", " 1", "1 ",
             "1_0", "0x10", "1e", ".", "", "1d5", "1..5", "--1", "\t1", "1e5.5", "9" * 400]
    for text in texts:
        try:
            value = pc.cast(pa.array([text]), pa.float64())[0].as_py()
        except pa.ArrowInvalid:
            continue
        assert value == float(text) or (value != value and float(text) != float(text)), text


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(damaged_logs(), st.integers(1, 6), st.integers(0, 40))
def test_damaged_logs_give_the_same_trace(lines: list[str], window: int, known: int) -> None:
    head = (CORPUS / "torch_resnet50_fp32_eager_b1.log").read_text().splitlines(keepends=True)
    data = "".join(head[:known] + lines + head[:known]).encode("utf-8", "surrogatepass")
    saved = chunked.MIN_WINDOW, chunked.MAX_WINDOW
    chunked.MIN_WINDOW, chunked.MAX_WINDOW = 1, window
    try:
        got = blockwise(data, size=window * 200, step=window * 37)
    finally:
        chunked.MIN_WINDOW, chunked.MAX_WINDOW = saved
    assert_same(got, per_line(data))


def test_repeated_info_lines_are_decoded_once_each_event_its_own_values() -> None:
    line = "onednn_verbose,v1,info,cpu,runtime:OpenMP,nthr:2\n"
    first, second = [e for e in iter_events([line, line]) if hasattr(e, "values")]
    assert first.values == second.values == {"engine": "cpu", "runtime": "OpenMP", "threads": "2"}
    first.values["threads"] = "changed"
    assert second.values["threads"] == "2"


def test_finish_hands_the_per_line_arrays_over() -> None:
    """The per-line ids and times are freed before the frame is built, not held beside it."""
    log = (CORPUS / "torch_resnet50_fp32_eager_b1.log").read_bytes()
    builder = TraceBuilder("<log>")
    with open_text(io.BytesIO(log)) as text:
        builder.feed_text(text_blocks(text))
    lines = builder.line_no
    trace = builder.finish()
    assert builder.line_no == 0 and trace.metadata.counts.lines == lines == log.count(b"\n")
    assert_same(trace, per_line(log))
