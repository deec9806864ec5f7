"""Every file dnnprof writes: never over an input or a device, never half-written.

`check_output` refuses a path before any work is done: one that names an input (by path,
symlink or hard link: the inode decides), a device node, a socket, a folder, or a file
under a path whose parent is a file. `atomic_path` is the one way to write a file: into a
temp file beside the target, renamed over it only when complete; the temp file is removed
when the write fails, on Ctrl-C, and on SIGTERM/SIGHUP. New files follow the umask (the
temp file is created 0o666 & ~umask, unlike `tempfile.mkstemp`'s 0o600).

A FIFO (or a pipe such as /dev/stdout in `... -o /dev/stdout | consumer`) cannot be
replaced by a rename, and nobody names one by accident: it receives the finished file.
A device node is refused, /dev/null included (leave the output out to discard it).

Standard library only: `dnnprof --help` and the command line's early checks import it.
Any failure is an OutputError (exit 2) naming the path and the reason.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from dnnprof.errors import OutputError

PathLike = str | os.PathLike[str]
COPY_BYTES = 1 << 20

# temp files being written right now, and the process writing each: the signal handler
# removes its own process's before it dies (a forked child inherits this, not the files)
_PENDING: dict[str, int] = {}
# signals whose default action kills the process without unwinding (no `finally` runs)
_FATAL_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def cache_dir() -> Path:
    """dnnprof's cache folder: $DNNPROF_CACHE, else ~/.cache/dnnprof (not created here)."""
    return Path(os.environ.get("DNNPROF_CACHE") or Path.home() / ".cache" / "dnnprof")


def check_output(path: PathLike, inputs: Iterable[PathLike] = ()) -> Path:
    """`path` as a Path if a file may be written there, else OutputError saying why.

    Refused: an existing folder, device node or socket; a path under a file; the same
    file as any of `inputs` (compared by device and inode, so symlinks, hard links and
    /dev/fd names are caught). A missing file and a FIFO are fine.
    """
    target = Path(path)
    try:
        status = target.stat()
    except FileNotFoundError:
        return target  # a new file cannot be an input
    except NotADirectoryError:
        raise OutputError(f"cannot write {path}: {_file_in_the_way(target)} is a file, "
                          "not a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    for is_kind, kind in _FILE_KINDS:
        if is_kind(status.st_mode):
            raise OutputError(f"refusing to write {path}: it is {kind}, not a regular file")
    for source in inputs:
        if _same_file(status, source):
            raise OutputError(
                f"refusing to write {path}: it is the input {source}; name another output file"
            )
    return target


def check_outputs(outputs: Iterable[PathLike | None], inputs: Iterable[PathLike] = ()) -> None:
    """`check_output` for each output given, and no two outputs naming the same file."""
    sources = list(inputs)
    seen: list[Path] = []
    for output in outputs:
        if output is None or str(output) in ("", "-"):
            continue  # not asked for, or standard output
        target = check_output(output, sources)
        if any(_names_same_file(target, other) for other in seen):
            raise OutputError(f"refusing to write {output} twice: two outputs name it")
        seen.append(target)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temp path to write the whole file to; it replaces `path` when the block succeeds.

    The folder is created if needed. On an error, Ctrl-C or SIGTERM the temp file is
    removed and `path` is left as it was. OSError becomes OutputError naming `path`.
    A FIFO is not replaced: the finished temp file (in the temp folder) is copied into it.
    """
    target = check_output(path)
    streamed = target.exists() and stat.S_ISFIFO(target.stat().st_mode)
    with _reasons(path):
        if streamed:  # writers such as pyarrow seek, which a pipe cannot
            temp = _create_temp(Path(tempfile.gettempdir()) / target.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = _create_temp(target)
    try:
        with _reasons(path):
            yield temp
            if streamed:
                with temp.open("rb") as finished, target.open("wb") as pipe:
                    shutil.copyfileobj(finished, pipe, COPY_BYTES)
            else:
                os.replace(temp, target)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        _PENDING.pop(str(temp), None)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through `atomic_path`; returns the path."""
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def writing(path: PathLike) -> Iterator[None]:
    """Turn a failed write into an OutputError (exit 2) that names the file."""
    with _reasons(path):
        yield


@contextmanager
def _reasons(path: PathLike) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _create_temp(target: Path) -> Path:
    """A new empty file beside `target` (same file system, so the rename is atomic)."""
    _remove_temp_files_on_signals()
    temp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    _PENDING[str(temp)] = os.getpid()
    try:
        # 0o666 & ~umask, as any new file; O_EXCL: never follow a planted symlink
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError:
        _PENDING.pop(str(temp), None)
        raise
    return temp


_installed = False


def _remove_temp_files_on_signals() -> None:
    """Install the SIGTERM/SIGHUP handler once, where the default action is still set.

    A handler of the application's own is left alone: it either exits through Python
    (and `atomic_path`'s `finally` removes the temp file) or is its owner's choice.
    Only the main thread may install a handler.
    """
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    for signum in _FATAL_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _die_cleanly)


def _die_cleanly(signum: int, frame: object) -> None:
    """Remove the temp files being written, then die of the same signal as before."""
    for temp, writer in list(_PENDING.items()):
        if writer == os.getpid():
            with suppress(OSError):
                os.unlink(temp)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _same_file(status: os.stat_result, other: PathLike) -> bool:
    try:
        theirs = os.stat(other)
    except (OSError, ValueError):  # a name that is no file (`-`, `<lines>`, a NUL byte)
        return False
    return (status.st_dev, status.st_ino) == (theirs.st_dev, theirs.st_ino)


def _names_same_file(one: Path, other: Path) -> bool:
    if os.path.abspath(one) == os.path.abspath(other):
        return True
    return one.exists() and _same_file(one.stat(), other)


def _file_in_the_way(target: Path) -> Path:
    """The first ancestor of `target` that exists and is not a folder."""
    for parent in reversed(target.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return target.parent
