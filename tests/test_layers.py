"""Packages import each other one way only: no two packages (directly or through others) import each other."""

from __future__ import annotations

import ast

from tests.helpers import REPO

PACKAGES = sorted(p.name for p in REPO.iterdir() if (p / "__init__.py").is_file() and p.name != "tests")


def package_imports() -> dict[str, set[str]]:
    """Package -> the other packages its modules import (top-level and function-level imports alike)."""
    edges: dict[str, set[str]] = {name: set() for name in PACKAGES}
    for name in PACKAGES:
        for path in (REPO / name).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                edges[name] |= {m.split(".")[0] for m in modules} & set(PACKAGES) - {name}
    return edges


def test_no_package_imports_one_that_imports_it_back():
    edges = package_imports()

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    cycles = sorted(f"{a} <-> {b}" for a in PACKAGES for b in edges[a] if a in reaches(b))
    assert not cycles, f"packages that import each other: {', '.join(cycles)}"
