"""How a workload child run as a script finds the dnnprof it belongs to.

The children (workload.py, workload_ipex.py, workload_mxnet.py) run under other interpreters,
where dnnprof need not be installed. Run as a script, a child's own folder is first on
`sys.path`, so it can import this sibling by its bare name before anything of dnnprof is
importable. Standard library only.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def put_repository_first() -> None:
    """Make the repository root importable, and drop this folder from `sys.path` (its
    `models` package would shadow any top-level module of that name)."""
    if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
        sys.path.pop(0)
    sys.path.insert(0, str(HERE.parents[1]))
