"""Regenerate the layer tables the analyzer ships (dnnprof/reconstruct/tables/*.json).

Needs torch (the analyzer itself never imports it)::

    PYTHONPATH=. /path/to/torch-python tools/make_layer_tables.py [model ...]

Each table is the zoo's `layer_table(model, example_input)`: one forward pass on the meta
device, batch 1, default input size, leaf calls in order. Only the fields the reconstructor
reads are kept (name, type, in_shapes, out_shape, params).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dnnprof.profiler.models import MODELS, build_model, layer_table

OUT = Path(__file__).resolve().parents[1] / "dnnprof" / "reconstruct" / "tables"
KEEP = ("name", "type", "in_shapes", "out_shape", "params")


def main(names: list[str]) -> int:
    """Write one JSON table per requested (default: every) zoo model."""
    for name in names or list(MODELS):
        spec = MODELS[name]
        model = build_model(name)
        rows = [{k: row[k] for k in KEEP if k in row} for row in layer_table(model, spec.make_input(1))]
        document = {
            "model": name,
            "description": spec.description,
            "source": "dnnprof.profiler.models.layer_table on the meta device, batch 1, "
                      f"input {spec.input_shapes(1)}",
            "layers": rows,
        }
        target = OUT / f"{name}.json"
        target.write_text(json.dumps(document, separators=(",", ":")) + "\n")
        print(f"{target.name}: {len(rows)} layers, {target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
