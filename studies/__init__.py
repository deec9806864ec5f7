"""Studies run with dnnprof, outside the library: each uses only dnnprof's public API.

    thesis2020   the 2020 thesis' chapter-4 experiments, re-measured (`dnnprof study`)
"""
