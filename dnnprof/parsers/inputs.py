"""Reading a log once: a path (plain or compressed), a binary file object, or lines.

A path is opened once and never reopened, and nothing is read twice: the first bytes,
read to recognise a compression, are handed back before the rest. So a pipe, a FIFO,
`<(cmd)` and standard input give every line. gzip, bz2 and xz are read with the standard
library, zstd with pyarrow (a dependency already, loaded only for a zstd log). An archive
(zip, 7z), another compression (lz4) and a stored trace are named and refused rather than
read as text without a single oneDNN line.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dnnprof.errors import LogReadError

HEAD_BYTES = 10  # the longest signature below (bzip2's)
BUFFER_BYTES = 1 << 20  # one Python-level read per MiB: the per-line cost stays in C
TEXT_CHUNK_BYTES = 1 << 16
BLOCK_CHARS = 1 << 21  # text handed over at a time by text_blocks
SIGNATURES = (  # (leading bytes, compression) of what open_text decompresses
    (b"\x1f\x8b\x08", "gzip"),  # with "deflate", the only method gzip defines
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
BZIP2_BLOCKS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
REFUSED = (  # (leading bytes, what the file is and what to do instead)
    (b"PK\x03\x04", "a ZIP archive: unpack it and pass the log inside"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive: unpack it and pass the log inside"),
    (b"\x04\x22\x4d\x18", "lz4-compressed: pipe it in with `lz4 -dc FILE | dnnprof parse -`"),
    (b"PAR1", "a stored trace (Parquet), not a log: open it with dnnprof.load() or "
     "`dnnprof report`"),
)
# what a decompressor raises on a damaged or truncated stream (zlib's and lzma's errors are
# not OSErrors)
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


@contextmanager
def open_text(source: Any) -> Iterator[Iterable[str]]:
    """Lines of a path (plain, gzip, bz2, xz or zstd), a binary file object (compressed or
    not), or an iterable of str/bytes. Read once, front to back: pipes lose nothing."""
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        try:
            raw: IO[bytes] = Path(source).open("rb", buffering=0)
        except OSError as exc:
            raise LogReadError(f"cannot read {name}: {exc.strerror or exc}") from None
        owned = True
    elif isinstance(source, (io.RawIOBase, io.BufferedIOBase)):
        raw, name, owned = source, str(getattr(source, "name", "<stream>")), False
    else:
        yield (item.decode("utf-8", "replace") if isinstance(item, bytes) else item
               for item in source)
        return
    try:
        # binary read + 'replace': garbage bytes become U+FFFD instead of an exception;
        # iterating the wrapper directly keeps the per-line cost in C
        with io.TextIOWrapper(_binary(raw, name), encoding="utf-8", errors="replace") as text:
            # decode 64 KiB at a time, not 8: reading a plain log takes ~30% less time
            text._CHUNK_SIZE = TEXT_CHUNK_BYTES  # noqa: SLF001 - honoured by C and _pyio alike
            try:
                yield text
            except READ_ERRORS as exc:
                # a truncated .gz: what was read stays, the caller is told where it stopped
                raise LogReadError(f"{name}: read failed part-way ({exc})") from None
    finally:
        if owned:
            raw.close()


def text_blocks(text: io.TextIOWrapper, size: int = BLOCK_CHARS) -> Iterator[bytes | str]:
    """The content of a log opened by open_text, in blocks of about `size` characters cut
    after a newline: the lines iterating `text` would give, the same characters in the same
    places. A block is `bytes` where it is ASCII without a carriage return (decoding would
    change nothing), decoded text elsewhere.

    A read that fails part-way gives the lines completed before it, then raises, as a
    `for line in text` loop would.
    """
    # TextIOWrapper's own decoding: UTF-8 with replacement, universal newlines translated
    decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")("replace"),
                                           translate=True)
    binary = text.buffer
    read = getattr(binary, "read1", binary.read)
    parts: list[bytes | str] = []
    held = 0
    while True:
        try:
            data = read(BUFFER_BYTES)
        except READ_ERRORS:
            whole = _joined(parts)
            if _NEWLINES[type(whole)] in whole:
                yield whole[: whole.rindex(_NEWLINES[type(whole)]) + 1]
            raise
        pending, flag = decoder.getstate()
        if data and not pending and not flag & 1 and data.isascii() and b"\r" not in data:
            parts.append(data)  # no half character or carriage return held: the same text
        else:
            parts.append(decoder.decode(data, final=not data))
        held += len(parts[-1])
        if not data:
            yield _joined(parts)
            return
        last = parts[-1]
        newline = _NEWLINES[type(last)]
        if held >= size and newline in last:
            cut = last.rindex(newline) + 1
            parts[-1] = last[:cut]
            yield _joined(parts)
            parts, held = [last[cut:]], len(last) - cut


_NEWLINES: dict[type, Any] = {bytes: b"\n", str: "\n"}


def _joined(parts: list[bytes | str]) -> bytes | str:
    """One block of the pieces: bytes if every piece is, else text (bytes pieces are ASCII)."""
    if all(isinstance(part, bytes) for part in parts):
        return b"".join(parts)  # type: ignore[arg-type]
    return "".join(part.decode("ascii") if isinstance(part, bytes) else part for part in parts)


def source_name(source: Any) -> str:
    """The name a Trace records for its source: the path, or `<lines>`."""
    return str(source) if isinstance(source, (str, os.PathLike)) else "<lines>"


def compression_of(head: bytes) -> str | None:
    """The compression whose signature `head` starts with (gzip, bz2, xz, zstd), or None."""
    for signature, compression in SIGNATURES:
        if head.startswith(signature):
            return compression
    # bzip2: "BZh", the block size digit, then a block (pi's digits) or the end (sqrt(pi)):
    # a text line that happens to start with "BZh9" stays a line
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] in BZIP2_BLOCKS:
        return "bz2"
    return None


def _binary(raw: IO[bytes], name: str) -> IO[bytes]:
    """The log's bytes, decompressed if they are compressed; the head is read only once."""
    try:
        head = _read_head(raw)
    except OSError as exc:
        raise LogReadError(f"cannot read {name}: {exc.strerror or exc}") from None
    for signature, refusal in REFUSED:
        if head.startswith(signature):
            raise LogReadError(f"{name} is {refusal}")
    stream = io.BufferedReader(_Rejoined(head, raw), buffer_size=BUFFER_BYTES)
    compression = compression_of(head)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if compression == "bz2":
        return bz2.BZ2File(stream)
    if compression == "xz":
        return lzma.LZMAFile(stream)
    if compression == "zstd":
        import pyarrow as pa

        return pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), "zstd")
    return stream


def _read_head(raw: IO[bytes]) -> bytes:
    """Up to HEAD_BYTES bytes: a pipe may deliver fewer per read, so read until enough."""
    head = b""
    while len(head) < HEAD_BYTES:
        chunk = raw.read(HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head


class _Rejoined(io.RawIOBase):
    """A stream whose first bytes were already read, giving them back before the rest.

    Closing it leaves the underlying stream open: its owner (open_text for a path, the
    caller for a file object such as standard input) closes it.
    """

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._rest = rest
        # at most one read of the source per call: a pipe's lines arrive as they come
        self._read_into = getattr(rest, "readinto1", None) or rest.readinto

    def readable(self) -> bool:
        """Always: this is an input stream."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the head first, then from the rest of the stream."""
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        return self._read_into(buffer) or 0
