"""Print docs/architecture.md's module index: one line per module, from its docstring.

Run `python tools/module_index.py` and paste the output under "Modules" when modules
change; tests/test_architecture.py checks that every module is listed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_line(path: Path) -> str:
    """The first line of a module's docstring ('' when it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def main() -> None:
    for top in ("dnnprof", "studies"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.name == "__init__.py" and not first_line(path):
                continue
            print(f"- `{path.relative_to(ROOT)}` — {first_line(path)}")


if __name__ == "__main__":
    main()
