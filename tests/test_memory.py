"""Memory a step freed goes back to the system after steps over long traces."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dnnprof.memory import _malloc_trim

# In a fresh interpreter: the heap's layout in a long test process is anyone's guess.
SCRIPT = """
import json, numpy as np
from pathlib import Path
from dnnprof.memory import RELEASE_FROM_ROWS, release_freed_memory
def rss(): return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 >> 20
big = np.ones(2 << 20)  # 16 MB, mmapped: freeing it raises glibc's mmap threshold
del big
arrays = [np.ones(1 << 19) for _ in range(40)]  # 40 x 4 MB, now carved from the heap
keep = [np.ones(100) for _ in range(1000)]  # allocated above them: no automatic trim
sizes = {"allocated": rss()}
del arrays
sizes["freed"] = rss()
release_freed_memory(RELEASE_FROM_ROWS - 1)  # a short trace: nothing is asked
sizes["short"] = rss()
release_freed_memory(RELEASE_FROM_ROWS)
sizes["released"] = rss()
print(json.dumps(sizes))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None,
                    reason="glibc's malloc_trim is what gives heap memory back")
def test_column_sized_arrays_freed_on_the_heap_are_given_back():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=True)
    mb = json.loads(done.stdout)
    assert mb["freed"] > mb["allocated"] - 40  # freed, but still held by the process
    assert mb["short"] > mb["allocated"] - 40
    assert mb["released"] < mb["allocated"] - 100
