"""Issue 12, part A: nothing overwritten, nothing lost on the way in, no traceback on the way out.

Each test names the row of the issue's table it reproduces (docs/reliability.md lists them).
The tests run as root in CI; the ones that need it (mknod, mount) say so and skip otherwise.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import dnnprof
from dnnprof.cli import main
from dnnprof.errors import LogReadError, OutputError, TraceFileError
from dnnprof.exporters.base import EndpointError, parse_endpoint
from dnnprof.files import atomic_path, check_output
from dnnprof.storage import writer_options
from dnnprof.vocabulary import ExitCode
from support.corpus import CORPUS, REPO

LOG = CORPUS / "torch_resnet50_fp32_eager_b1.log"  # the issue's `L`: 851 lines
NO_ONEDNN = "no oneDNN verbose lines found"
ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def parsed():
    return dnnprof.parse(LOG)


@pytest.fixture
def log(tmp_path):
    copy = tmp_path / "a.log"
    shutil.copy(LOG, copy)
    return copy


@pytest.fixture
def stored(parsed, tmp_path):
    return parsed.save(tmp_path / "t.parquet")


def run(args, capsys):
    """`dnnprof ARGS` in this process: (status, stdout, stderr)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def dnnprof_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "dnnprof", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=300, **kwargs)


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------- row 1: an output that is the input --


@pytest.mark.parametrize("command", [
    ["parse", "{log}", "-o", "{log}"],
    ["parse", "{log}", "--events", "{log}"],
    ["report", "{trace}", "-o", "{trace}"],
    ["compare", "{trace}", "{log}", "-o", "{log}"],
    ["export", "{trace}", "--chrome", "{trace}"],
    ["export", "{trace}", "--jaeger-json", "{trace}"],
    ["check", "{log}", "--baseline", "{trace}", "--junit", "{trace}"],
    ["check", "{log}", "--baseline", "{trace}", "--markdown", "{log}"],
    ["check", "{trace}", "--baseline", "{trace}", "--update-baseline"],
    ["baseline", "save", "{trace}", "--to", "{trace}"],
], ids=lambda c: " ".join(c))
def test_row1_an_input_is_never_overwritten(command, log, stored, capsys):
    before = {path: path.read_bytes() for path in (log, stored)}
    args = [a.format(log=log, trace=stored) for a in command]
    status, _, err = run(args, capsys)
    assert status == ExitCode.USAGE
    assert "refusing to write" in one_line_error(err) and "it is the input" in err
    assert {path: path.read_bytes() for path in before} == before


def test_row1_a_link_to_the_input_is_the_input(log, capsys, tmp_path):
    (tmp_path / "soft.log").symlink_to(log)
    os.link(log, tmp_path / "hard.log")
    for alias in ("soft.log", "hard.log", f"../{tmp_path.name}/a.log"):
        status, _, err = run(["parse", log, "-o", tmp_path / alias], capsys)
        assert status == ExitCode.USAGE, alias
        assert "it is the input" in err
    assert log.read_bytes() == LOG.read_bytes()


def test_row1_a_run_folder_input_protects_its_trace(stored, capsys):
    folder = stored.parent
    stored.rename(folder / "trace.parquet")
    status, _, err = run(["report", folder, "-o", folder / "trace.parquet"], capsys)
    assert status == ExitCode.USAGE and "it is the input" in err


def test_row1_two_outputs_naming_one_file_are_refused(stored, tmp_path, capsys):
    out = tmp_path / "out.json"
    status, _, err = run(["export", stored, "--chrome", out, "--jaeger-json", out], capsys)
    assert status == ExitCode.USAGE and "two outputs name it" in err
    assert not out.exists()


def test_row1_the_python_api_refuses_to_save_over_the_parsed_log(log):
    trace = dnnprof.parse(log)
    with pytest.raises(OutputError, match="it is the input"):
        trace.save(log)
    assert log.read_bytes() == LOG.read_bytes()


# --------------------------------------------------------- row 2: a device node --


@pytest.mark.skipif(not ROOT, reason="mknod needs root")
@pytest.mark.parametrize("flag", ["-o", "--events", "--jaeger-json-via-export", "--junit"])
def test_row2_a_device_node_is_never_replaced(flag, log, stored, tmp_path, capsys):
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the issue's `mknod … c 1 3`
    if flag == "--jaeger-json-via-export":
        args = ["export", stored, "--jaeger-json", node]
    elif flag == "--junit":
        args = ["check", log, "--baseline", stored, "--junit", node]
    else:
        args = ["parse", log, flag, node]
    status, _, err = run(args, capsys)
    assert status == ExitCode.USAGE
    assert "it is a character device, not a regular file" in one_line_error(err)
    assert stat.S_ISCHR(node.stat().st_mode)


def test_row2_dev_null_and_folders_are_refused_by_the_library(parsed, tmp_path):
    with pytest.raises(OutputError, match="character device"):
        dnnprof.export(parsed, "benchdnn", os.devnull)
    with pytest.raises(OutputError, match="a folder"):
        dnnprof.export(parsed, "chrome_trace", tmp_path)


def test_a_fifo_output_receives_the_whole_file(parsed, tmp_path):
    # the documented exception: a FIFO (or `-o /dev/stdout | …`) is written to, not replaced
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    parsed.save(fifo)
    reader.join(timeout=60)
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(received[0])
    assert dnnprof.load(copy).events.equals(parsed.events)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_dev_stdout_as_a_pipe_is_written_to(stored):
    done = dnnprof_cli("export", stored, "--benchdnn", "/dev/stdout")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# benchdnn reproducers written by dnnprof")


# -------------------------------------------------- row 3: a pipe is read once --


def test_row3_process_substitution_gives_every_line():
    command = f"{sys.executable} -m dnnprof parse <(cat {LOG}) --json --no-layers"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lines"] == 851


def test_row3_a_fifo_gives_every_line(parsed, tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)

    def write_slowly():  # the first bytes in pieces, as a live process may print them
        data = LOG.read_bytes()
        with fifo.open("wb", buffering=0) as pipe:
            for start in range(0, 12, 3):
                pipe.write(data[start:start + 3])
                time.sleep(0.01)
            pipe.write(data[12:])

    writer = threading.Thread(target=write_slowly)
    writer.start()
    trace = dnnprof.parse(fifo)
    writer.join(timeout=60)
    assert trace.metadata.counts.lines == parsed.metadata.counts.lines == 851
    assert trace.summary()["exec"] == parsed.summary()["exec"]


def test_row3_a_fifo_is_read_once_by_report_too(tmp_path, capsys):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(LOG.read_bytes()))
    writer.start()
    status, out, _ = run(["report", fifo, "--json"], capsys)
    writer.join(timeout=60)
    assert status == 0
    assert json.loads(out)  # parsed, not refused as a trace and not cut short


# ------------------------------------- rows 12, 13: a failed write is exit 2, one line --


UNWRITABLE = Path("/sys/dnnprof-cannot-write-here")  # sysfs: no new files, even for root


@pytest.fixture
def unwritable():
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here")
    return UNWRITABLE


@pytest.mark.parametrize("flag", ["-o", "--events"])
def test_row12_parse_into_an_unwritable_folder_exits_2(flag, log, unwritable, capsys):
    status, _, err = run(["parse", log, "--no-layers", flag, unwritable / "t.out"], capsys)
    assert status == ExitCode.USAGE
    line = one_line_error(err)
    assert str(unwritable / "t.out") in line and "cannot write" in line


@pytest.mark.parametrize("flag", ["--junit", "--markdown"])
def test_row12_check_never_reports_its_failed_write_as_a_regression(flag, log, stored,
                                                                     unwritable, capsys):
    status, _, err = run(["check", log, "--baseline", stored, flag, unwritable / "x"], capsys)
    assert status == ExitCode.USAGE  # never 1: that would read as "regression"
    assert f"cannot write {unwritable / 'x'}" in err and "Traceback" not in err


def test_row12_report_and_export_into_an_unwritable_folder_exit_2(stored, unwritable,
                                                                  capsys):
    status, _, err = run(["report", stored, "-o", unwritable / "r.html"], capsys)
    assert status == ExitCode.USAGE and "Traceback" not in err
    status, _, err = run(["export", stored, "--benchdnn", unwritable / "b.txt"], capsys)
    assert status == ExitCode.USAGE and f"cannot write {unwritable / 'b.txt'}" in err


@pytest.mark.skipif(not ROOT, reason="mounting needs root")
def test_row12_a_read_only_file_system_exits_2(log, tmp_path, capsys):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        status, _, err = run(["parse", log, "--no-layers", "-o", mount / "t.parquet"], capsys)
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert status == ExitCode.USAGE
    assert "Read-only file system" in one_line_error(err)


def test_row13_a_file_where_a_folder_should_be_exits_2(log, stored, capsys):
    status, _, err = run(["parse", log, "--no-layers", "-o", stored / "t.parquet"], capsys)
    assert status == ExitCode.USAGE
    assert one_line_error(err) == (f"dnnprof: cannot write {stored / 't.parquet'}: "
                                   f"{stored} is a file, not a folder")
    status, _, err = run(["export", stored, "--chrome", stored / "deeper" / "x.json"], capsys)
    assert status == ExitCode.USAGE and "is a file, not a folder" in err


# ---------------------------------------------- row 14: a URL is checked before use --


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:99999", "Port out of range"),
    ("http://[::1", "Invalid IPv6 URL"),
    ("ftp://collector:4317", "the scheme must be"),
    ("http://:4317", "no host"),
    ("http://collector:0", "port 0"),
    ("http://collector:43a7", "Port could not be cast"),
])
def test_row14_a_bad_collector_url_is_exit_2_before_any_work(url, reason, stored, capsys):
    with pytest.raises(SystemExit) as raised:  # argparse's own usage error
        main(["export", str(stored), "--otlp", url])
    assert raised.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err


def test_row14_the_library_says_the_same(parsed):
    with pytest.raises(EndpointError, match="Invalid IPv6 URL") as raised:
        dnnprof.export(parsed, "otlp", "http://[::1")
    assert raised.value.exit_code == ExitCode.USAGE
    with pytest.raises(EndpointError, match="Port out of range"):
        dnnprof.export(parsed, "otlp", "http://127.0.0.1:99999", protocol="http")


def test_an_ipv6_collector_keeps_its_brackets():
    from dnnprof.exporters.otlp import normalize_endpoint

    assert normalize_endpoint("http://[::1]:4317", "grpc") == ("http://[::1]:4317", "::1", 4317)
    assert normalize_endpoint("[::1]", "http")[0] == "http://[::1]:4318/v1/traces"
    assert parse_endpoint("udp://agent:6831").url(6831, "") == "udp://agent:6831"


# ------------------------------------------- row 19: SIGTERM leaves no temp file --


KILL_WHILE_WRITING = """
import sys, time
from dnnprof.files import atomic_path
with atomic_path(sys.argv[1]) as temp:
    temp.write_text("half of the new file")
    print(temp, flush=True)
    time.sleep(60)
"""


def test_row19_sigterm_while_writing_removes_the_temp_file(tmp_path):
    target = tmp_path / "t.parquet"
    target.write_text("the old file")
    child = subprocess.Popen([sys.executable, "-c", KILL_WHILE_WRITING, str(target)],
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    temp = Path(child.stdout.readline().strip())
    assert temp.exists() and temp.parent == tmp_path
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == -signal.SIGTERM  # still dies of the signal
    assert not temp.exists()
    assert target.read_text() == "the old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


SAVE_FOREVER = """
import sys
import dnnprof
trace = dnnprof.load(sys.argv[1])
print("loaded", flush=True)
while True:
    trace.save(sys.argv[2])
"""


def test_row19_sigterm_during_real_saves_leaves_the_old_trace_and_no_temp(stored, tmp_path):
    target = tmp_path / "saved" / "t.parquet"
    target.parent.mkdir()
    shutil.copy(stored, target)
    child = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(stored), str(target)],
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert child.stdout.readline().strip() == "loaded"
    deadline = time.monotonic() + 30
    while not list(target.parent.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.001)  # wait until a save is under way
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == -signal.SIGTERM
    assert [p.name for p in target.parent.iterdir()] == ["t.parquet"]
    assert dnnprof.load(target).events.equals(dnnprof.load(stored).events)


FORKED_CHILD_KILLED = """
import os, signal, sys
from dnnprof.files import atomic_path
with atomic_path(sys.argv[1]) as temp:
    temp.write_text("the new file")
    child = os.fork()
    if child == 0:  # a forked worker, killed as a pool kills its workers
        os.kill(os.getpid(), signal.SIGTERM)
        os._exit(0)
    os.waitpid(child, 0)
    print(temp.exists(), flush=True)
"""


def test_a_killed_forked_child_leaves_the_parents_temp_file_alone(tmp_path):
    target = tmp_path / "t.txt"
    done = subprocess.run([sys.executable, "-c", FORKED_CHILD_KILLED, str(target)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert target.read_text() == "the new file"


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(ZeroDivisionError), atomic_path(target) as temp:
        temp.write_text("new")
        1 / 0  # noqa: B018 - the writer fails part-way
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


# --------------------------------------- row 20: compressed, empty, foreign inputs --


def _zstd(data: bytes) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


COMPRESSORS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zst": _zstd}


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_row20_compressed_logs_are_read(suffix, parsed, tmp_path):
    path = tmp_path / f"l.log.{suffix}"
    path.write_bytes(COMPRESSORS[suffix](LOG.read_bytes()))
    trace = dnnprof.parse(path)
    assert trace.metadata.counts == parsed.metadata.counts
    assert trace.events["duration_ms"].equals(parsed.events["duration_ms"])


@pytest.mark.parametrize("suffix", ["gz", "xz"])
def test_row20_compressed_standard_input_is_read(suffix):
    done = subprocess.run([sys.executable, "-m", "dnnprof", "parse", "-", "--json", "--no-layers"],
                          input=COMPRESSORS[suffix](LOG.read_bytes()), capture_output=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lines"] == 851


@pytest.mark.parametrize("content", [b"", b"hello\nworld\n", "random"], ids=["empty", "foreign",
                                                                            "random"])
def test_row20_no_onednn_line_is_said(content, tmp_path, capsys):
    if content == "random":
        content = random.Random(12).randbytes(20000)
    path = tmp_path / "x.log"
    path.write_bytes(content)
    assert any(NO_ONEDNN in w for w in dnnprof.parse(path).metadata.warnings)
    status, out, _ = run(["parse", path, "--no-layers"], capsys)
    assert status == 0 and NO_ONEDNN in " ".join(out.split())
    status, out, _ = run(["parse", path, "--no-layers", "--json"], capsys)
    assert any(NO_ONEDNN in w for w in json.loads(out)["warnings"])


def test_row20_a_real_log_has_no_such_warning(parsed):
    assert not any(NO_ONEDNN in w for w in parsed.metadata.warnings)


@pytest.mark.parametrize("head, named", [
    (b"PK\x03\x04rest of a zip", "a ZIP archive"),
    (b"\x04\x22\x4d\x18lz4 frame", "lz4-compressed"),
    (b"7z\xbc\xaf\x27\x1c....", "a 7z archive"),
    (b"PAR1....", "a stored trace (Parquet)"),
])
def test_row20_other_containers_are_named(head, named, tmp_path, capsys):
    path = tmp_path / "x.log"
    path.write_bytes(head)
    with pytest.raises(LogReadError, match=re.escape(named)):
        dnnprof.parse(path)
    status, _, err = run(["parse", path], capsys)
    assert status == ExitCode.USAGE and named in one_line_error(err)


def test_a_text_line_that_starts_like_bzip2_is_a_line(tmp_path):
    path = tmp_path / "x.log"
    path.write_bytes(b"BZh91 is not bzip2 without the block magic\n")
    assert dnnprof.parse(path).metadata.counts.lines == 1


# ------------------------------------------------------ row 24: files follow the umask --


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_row24_written_files_follow_the_umask(umask, mode, parsed, tmp_path, capsys):
    previous = os.umask(umask)
    try:
        trace = parsed.save(tmp_path / "t.parquet")
        cases = tmp_path / "cases.txt"
        dnnprof.export(parsed, "benchdnn", cases)
        events = tmp_path / "e.csv"
        dnnprof.export(parsed, "events_csv", events)
    finally:
        os.umask(previous)
    for path in (trace, cases, events):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


# ----------------------------- rows 17, 25: corrupt stored traces are reported, on one line --


def test_row17_flipped_bits_are_reported_never_loaded_as_other_numbers(stored, tmp_path):
    original = dnnprof.load(stored).events
    data = stored.read_bytes()
    footer = int.from_bytes(data[-8:-4], "little")
    pages_end = len(data) - 8 - footer  # the data pages: between the magic and the footer
    rng = random.Random(17)
    flipped = tmp_path / "flipped.parquet"
    outcomes = {"reported": 0, "unchanged": 0}
    for _ in range(150):
        damaged = bytearray(data)
        damaged[rng.randrange(4, pages_end)] ^= 1 << rng.randrange(8)
        flipped.write_bytes(damaged)
        try:
            loaded = dnnprof.load(flipped)
        except TraceFileError as exc:
            assert "\n" not in str(exc)
            outcomes["reported"] += 1
            continue
        # a flip in a page's statistics or padding changes no value: that is no loss
        assert loaded.events.equals(original), "a flipped bit was loaded as other numbers"
        outcomes["unchanged"] += 1
    assert outcomes["reported"] > 100


def test_row17_stored_pages_carry_checksums(stored, tmp_path):
    # the same file written without checksums loads flipped bits silently: this is why
    table = pq.read_table(stored)
    bare = tmp_path / "bare.parquet"
    pq.write_table(table, bare, **{**writer_options(table.schema), "write_page_checksum": False})
    assert stored.stat().st_size > bare.stat().st_size  # a CRC-32 per page


@pytest.mark.parametrize("damage", ["truncate", "garbage_footer", "no_magic"])
def test_row25_corrupt_parquet_messages_are_one_line(damage, stored, capsys):
    data = stored.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage_footer":
        data = data[:-60] + b"\xff" * 52 + data[-8:]
    else:
        data = data[:-4] + b"XXXX"
    stored.write_bytes(data)
    with pytest.raises(TraceFileError) as raised:
        dnnprof.load(stored)
    assert "\n" not in str(raised.value)
    status, _, err = run(["export", stored, "--benchdnn", stored.with_suffix(".txt")], capsys)
    assert status == ExitCode.USAGE
    assert str(stored) in one_line_error(err)


def test_check_output_accepts_a_new_file_and_an_existing_regular_one(tmp_path):
    assert check_output(tmp_path / "new.txt") == tmp_path / "new.txt"
    (tmp_path / "old.txt").write_text("x")
    assert check_output(tmp_path / "old.txt", inputs=[tmp_path / "other"]).name == "old.txt"
