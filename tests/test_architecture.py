"""The package's layering: lower layers never import higher ones (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dnnprof"

# Lowest first. A module may import its own layer's package and any lower layer; peers in
# one layer (exporters, reports, check, store) never import each other.
LAYERS: list[set[str]] = [
    {"vocabulary"},
    {"errors", "markers", "display", "memory"},
    {"metadata", "files"},
    {"views", "storage"},
    {"trace"},
    {"parsers", "grammars"},
    {"reconstruct"},
    {"loader"},
    {"exporters", "reports", "check", "store"},
    {"profiler"},
    {"cli"},
    {"__main__"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def _component(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "dnnprof":
        return None
    return parts[1] if len(parts) > 1 else ""  # "" is the package root (the public facade)


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "dnnprof":  # `from dnnprof import views` names a component
                found += [(node.lineno, f"dnnprof.{a.name}") for a in node.names
                          if (PACKAGE / a.name).is_dir() or (PACKAGE / f"{a.name}.py").is_file()]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_component_has_a_layer() -> None:
    components = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()}
    assert components - set(LEVEL) == set(), "add new components to LAYERS and docs/architecture.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downwards(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    wrong = []
    for line, module in _imports(path):
        target = _component(module)
        if target is None or target == own or target == "":
            continue  # not dnnprof, the same component, or the package root (__version__)
        if target not in LEVEL:
            wrong.append(f"line {line}: {module} is in no layer")
        elif LEVEL[target] > LEVEL[own] or (LEVEL[target] == LEVEL[own]):
            wrong.append(f"line {line}: {own} (layer {LEVEL[own]}) imports {module} "
                         f"(layer {LEVEL[target]})")
    assert not wrong, "\n".join(wrong)


def test_every_module_is_in_the_architecture_doc() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py" and f"`{p.relative_to(PACKAGE.parent)}`" not in doc]
    assert not missing, "list them in docs/architecture.md (python tools/module_index.py):\n" + (
        "\n".join(missing))
