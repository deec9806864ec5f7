"""The command line itself: a fast `--help`, one parser built from the command modules, the
exit codes every command shares, and the public functions the commands call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dnnprof
from dnnprof.check import check
from dnnprof.cli import build_parser, main
from dnnprof.cli.app import COMMANDS
from dnnprof.errors import DnnprofError, InputError
from dnnprof.reconstruct import reconstruct
from dnnprof.vocabulary import ExitCode
from support.corpus import CORPUS

# What `dnnprof --help` must not load: the analyzer's heavy dependencies and the frameworks.
HEAVY = ("pandas", "pyarrow", "plotly", "lark", "numpy", "opentelemetry.sdk", "torch")
COMMAND_NAMES = ("parse", "trace", "models", "study", "export", "report", "compare", "check",
                 "baseline", "store", "history")


def modules_loaded_by(argv: list[str]) -> tuple[int, list[str]]:
    """Exit status of `dnnprof.cli.main(argv)` in a fresh interpreter, and the heavy modules
    it left in sys.modules."""
    code = (
        "import json, sys\n"
        "from dnnprof.cli import main\n"
        "try:\n"
        f"    status = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules or any("
        "name.startswith(m + '.') for name in sys.modules)]\n"
        "sys.stdout = sys.__stdout__\n"
        "print(json.dumps([status, heavy]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    status, heavy = json.loads(done.stdout.splitlines()[-1])
    return status, heavy


@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in COMMAND_NAMES),
                                  ["baseline", "save", "--help"], ["store", "add", "--help"],
                                  ["store", "ls", "--help"], []],
                         ids=lambda argv: " ".join(argv) or "no command")
def test_help_loads_no_heavy_module(argv: list[str]) -> None:
    status, heavy = modules_loaded_by(argv)
    assert heavy == []
    assert status == (ExitCode.USAGE if not argv else ExitCode.OK)


def test_every_command_has_one_module() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "subcommand")
    assert tuple(subparsers.choices) == COMMAND_NAMES
    assert [module.__name__.rsplit(".", 1)[1] for module in COMMANDS] == list(COMMAND_NAMES)


def test_console_script_entry_point_is_console_main() -> None:
    from dnnprof.cli import console_main

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    scripts = pyproject.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert 'dnnprof = "dnnprof.cli:console_main"' in scripts
    assert callable(console_main)


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "dnnprof", "--version"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"dnnprof {dnnprof.__version__}"


# ------------------------------------------------------------- exit codes --

def test_exit_codes_are_the_documented_ones() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "REGRESSION": 1, "USAGE": 2, "UNREACHABLE": 3, "INTERRUPTED": 130}
    for code in ExitCode:
        assert f"{int(code)}" in dnnprof.cli.__doc__ and code.name in dnnprof.cli.__doc__


def _failing_handler(error: BaseException):
    def handler(args) -> int:
        raise error

    return handler


@pytest.mark.parametrize("error, status, message", [
    (InputError("input x.log: no such log"), ExitCode.USAGE,
     "dnnprof models: input x.log: no such log\n"),
    (KeyboardInterrupt(), ExitCode.INTERRUPTED, "dnnprof: interrupted\n"),
    (BrokenPipeError(), ExitCode.OK, ""),
])
def test_main_turns_errors_into_exit_codes(monkeypatch, capsys, error, status, message) -> None:
    from dnnprof.cli import models

    monkeypatch.setattr(models, "run", _failing_handler(error))
    # register() binds `run` when the parser is built, so the patched one is used
    assert main(["models"]) == status
    assert capsys.readouterr().err == message


def test_a_dnnprof_error_keeps_its_own_exit_code(monkeypatch, capsys) -> None:
    from dnnprof.cli import models

    class Unreachable(DnnprofError):
        exit_code = ExitCode.UNREACHABLE

    monkeypatch.setattr(models, "run", _failing_handler(Unreachable("collector down")))
    assert main(["models"]) == ExitCode.UNREACHABLE
    assert capsys.readouterr().err == "dnnprof models: collector down\n"


def test_a_bug_keeps_its_traceback_but_never_exits_1(monkeypatch, capsys) -> None:
    # Python's own status for an uncaught exception is 1, `check`'s "regression": a crash
    # would read as the user's slowdown (issue 12, rows 5 and 12)
    from dnnprof.cli import models

    monkeypatch.setattr(models, "run", _failing_handler(ValueError("a bug")))
    assert main(["models"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ValueError: a bug" in err
    assert "internal error" in err


def test_a_missing_log_exits_2_with_one_line(tmp_path, capsys) -> None:
    assert main(["parse", str(tmp_path / "missing.log")]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("dnnprof: ") and err.count("\n") == 1


def test_a_closed_pipe_ends_the_command_with_0() -> None:
    """`dnnprof parse x.log | head -1`: rich alone would exit 1 ("regression" for check)."""
    command = subprocess.Popen(
        [sys.executable, "-m", "dnnprof", "parse", str(CORPUS / "torch_resnet50_int8_fx_b1.log")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert command.stdout is not None and command.stderr is not None
    command.stdout.close()  # the reader goes away before the summary is printed
    errors = command.stderr.read().decode()
    assert command.wait(timeout=120) == ExitCode.OK
    assert "Traceback" not in errors and "Exception ignored" not in errors


@pytest.mark.parametrize("command", ["parse", "report"])
def test_an_ascii_terminal_gets_the_output_not_an_encoding_error(command, tmp_path) -> None:
    # LC_ALL=C makes stdout ASCII; the tables' × and – used to end the command with a
    # UnicodeEncodeError (exit 2) after all the work was done
    log = CORPUS / "torch_resnet50_int8_fx_b1.log"
    argv = [sys.executable, "-m", "dnnprof", command, str(log)]
    if command == "report":
        argv += ["-o", str(tmp_path / "r.html")]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONIOENCODING": ""}
    out = subprocess.run(argv, capture_output=True, env=env, check=False)
    assert out.returncode == 0, out.stderr.decode("ascii", "replace")
    assert b"convolution" in out.stdout and b"UnicodeEncodeError" not in out.stderr


def test_only_trace_takes_a_command_after_dashes(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", str(CORPUS / "torch_resnet50_int8_fx_b1.log"), "--", "echo"])
    assert exit_info.value.code == ExitCode.USAGE
    assert "only `dnnprof trace` takes a command after --" in capsys.readouterr().err


def test_study_gets_every_argument_after_its_name(tmp_path, capsys) -> None:
    log = CORPUS / "torch_resnet50_int8_fx_b1.log"
    assert main(["study", str(log), "-o", str(tmp_path / "out"), "--no-html"]) == ExitCode.OK
    findings = (tmp_path / "out" / "findings.md").read_text()
    assert "| # | Claim |" in findings and "dnnprof study " in findings
    assert capsys.readouterr().out.startswith(findings[:40])
    with pytest.raises(SystemExit) as exit_info:  # the study's own argument check
        main(["study", str(log), "--iters", "3"])
    assert exit_info.value.code == ExitCode.USAGE


# ------------------------------------------------------------ public API --

def test_public_functions_run_the_commands_steps(tmp_path) -> None:
    log = CORPUS / "torch_resnet50_int8_fx_b1.log"
    trace = reconstruct(dnnprof.parse(log), model="resnet50")
    assert trace.metadata.reconstruction.mode == "align"
    report = check(log, baseline=trace)
    assert report.passed and report.exit_code == ExitCode.OK
    assert report.new.path == str(log)


def test_the_console_script_freezes_the_heap_before_exiting_and_main_does_not(
        monkeypatch, capsys):
    """The shutdown's last collection skips frozen objects (0.15-0.2 s with pandas loaded);
    main(), called by tests and notebooks in a living process, never freezes anything."""
    import gc

    from dnnprof.cli import console_main

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    log = str(CORPUS / "torch_resnet50_int8_fx_b1.log")
    monkeypatch.setattr(sys, "argv", ["dnnprof", "parse", log, "--json"])
    assert main() == ExitCode.OK and not frozen
    by_main = json.loads(capsys.readouterr().out)
    assert console_main() == ExitCode.OK and frozen == [True]
    assert json.loads(capsys.readouterr().out) == by_main
