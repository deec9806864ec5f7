"""The repository stands alone: nothing in it reads a path outside the clone."""

from __future__ import annotations

import os
import re

from support.corpus import CORPUS, REPO

# Ways a file could reach outside the clone: the sibling `shared/` folder the team
# works beside, absolute paths of this workplace, or walking above the repository root.
OUTSIDE = re.compile(
    r"\.\./shared|/work/shared|/work/main|REPO\.parent|parent\s*/\s*[\"']shared[\"']"
)
SCANNED = ("dnnprof", "tests", "benchmarks", "docs", "tools", ".ci", "studies")
SUFFIXES = {".py", ".md", ".sh", ".toml", ".json", ".lark", ""}


def _files() -> list:
    found = []
    for top in SCANNED:
        root = REPO / top
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if path.is_file() and path.suffix in SUFFIXES and "corpus" not in path.parts[-2:]:
                found.append(path)
    return found


def test_no_file_reads_outside_the_repository() -> None:
    offenders = []
    for path in _files():
        if path == REPO / "tests" / "test_standalone.py":
            continue
        text = path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_corpus_is_inside_the_repository() -> None:
    if "DNNPROF_CORPUS" not in os.environ:
        assert CORPUS.resolve().is_relative_to(REPO)
    logs = sorted(CORPUS.glob("*.log"))
    assert len(logs) >= 5
    for log in logs:
        assert (CORPUS / f"{log.stem}.truth.json").exists(), log
        assert (CORPUS / f"{log.stem}.meta.json").exists(), log
