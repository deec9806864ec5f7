"""Where the corpus lives: tests/data/corpus in the repository (DNNPROF_CORPUS may point elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
CORPUS = Path(os.environ.get("DNNPROF_CORPUS", DATA / "corpus"))
CORPUS_LOGS = sorted(CORPUS.glob("*.log"))
