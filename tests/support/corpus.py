"""Where the shared corpus lives: read in place from ../shared/corpus, never copied wholesale."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("DNNPROF_CORPUS", REPO.parent / "shared" / "corpus"))
DATA = REPO / "tests" / "data"
CORPUS_LOGS = sorted(CORPUS.glob("*.log"))
