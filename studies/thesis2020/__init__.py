"""The 2020 thesis' chapter-4 findings, re-measured with dnnprof on this machine.

    experiments  the runs to make (`dnnprof.profiler.runner`), one run folder each
    runs         what each run is (model, precision, pruning, width), from its metadata
    claims       each published claim, our measurement of it and the verdict
    findings     findings.md (and report.html) from the claims and the runs
    cli          `main(argv)`: what `dnnprof study` and `python -m studies.thesis2020` run
"""

from __future__ import annotations

from studies.thesis2020.cli import main

__all__ = ["main"]
