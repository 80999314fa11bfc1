"""Packages import each other one way only: no cycles, and each package imports only the layers below it."""

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


#: The layers, bottom first (README "Layout"): a package may import only packages listed before it.
LAYERS = ["envs", "config", "vecenv", "curriculum", "training", "rlbot_export", "rlbot_harness", "play", "league", "callbacks", "bench", "render"]


def test_every_package_imports_only_the_layers_below_it():
    assert sorted(LAYERS) == PACKAGES, "a new package needs its place in LAYERS"
    edges = package_imports()
    upward = sorted(f"{a} -> {b}" for a in LAYERS for b in edges[a] if LAYERS.index(b) > LAYERS.index(a))
    assert not upward, f"imports that point up: {', '.join(upward)}"
