"""The rooms depend downward only (docs/architecture.md): checked on the import statements
of every module in ``src/splitlab``, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "splitlab"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every splitlab module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "splitlab" or name.startswith("splitlab.")}


MODULES = {_module_name(path): _imports(path) for path in sorted(SOURCE.rglob("*.py"))}


def _importers(target: str) -> list[str]:
    return sorted(
        module
        for module, imported in MODULES.items()
        if any(name == target or name.startswith(f"{target}.") for name in imported)
        and not (module == target or module.startswith(f"{target}."))
    )


def test_the_import_scan_sees_the_package():
    assert "splitlab.analyzer.analyzer" in MODULES
    assert "splitlab.stats.moments" in MODULES["splitlab.stats.frequentist"]


@pytest.mark.parametrize(
    ("room", "must_not_import"),
    [
        ("splitlab.stats", ["splitlab.sequential", "splitlab.bandits", "splitlab.analyzer",
                            "splitlab.allocator", "splitlab.ope", "splitlab.simulate",
                            "splitlab.rollout"]),
        ("splitlab.sequential", ["splitlab.bandits", "splitlab.analyzer", "splitlab.allocator",
                                 "splitlab.ope", "splitlab.simulate", "splitlab.rollout"]),
        ("splitlab.bandits", ["splitlab.allocator", "splitlab.analyzer", "splitlab.ope",
                              "splitlab.rollout"]),
        ("splitlab.allocator", ["splitlab.rollout"]),
        ("splitlab.rollout", ["splitlab.analyzer", "splitlab.ope", "splitlab.simulate",
                              "splitlab.sources", "splitlab.cli"]),
        ("splitlab.ope", ["splitlab.analyzer", "splitlab.allocator", "splitlab.rollout"]),
        ("splitlab.sources", ["splitlab.analyzer", "splitlab.ope", "splitlab.stats",
                              "splitlab.rollout"]),
        ("splitlab.analyzer.report", ["splitlab.analyzer.analyzer"]),
        ("splitlab.analyzer.readout", ["splitlab.analyzer.analyzer", "splitlab.analyzer.report"]),
    ],
)  # fmt: skip
def test_rooms_depend_downward_only(room, must_not_import):
    for module, imported in MODULES.items():
        if module != room and not module.startswith(f"{room}."):
            continue
        for forbidden in must_not_import:
            wrong = sorted(n for n in imported if n == forbidden or n.startswith(f"{forbidden}."))
            assert not wrong, f"{module} imports {wrong}"


def test_nothing_in_the_library_imports_the_command_line():
    assert _importers("splitlab.cli") == ["splitlab.__main__"]


def test_only_the_command_line_and_the_suites_import_the_benchmarks():
    outside = [m for m in _importers("splitlab.bench") if m not in ("splitlab.cli",)]
    assert outside == []
