"""The import rule of the project, read off every module's imports with ``ast``.

Layers, top to bottom: ``bench.cli`` -> the feature packages (``bench.sweeps``, ``bench.reports``, ``bench.perf``,
``bench.lift``) -> ``bench.runs`` -> the shared modules (``bench.data``, ``bench.metrics``, ``bench.viz``, ``bench.io``,
``bench.errors``, ``bench.skeleton``) -> ``parts`` -> ``baselines``. A module imports its own unit and the units its
rule lists, never one above it or beside it: nothing imports ``bench.cli`` (but ``python -m bench``), features do not
import each other, ``baselines`` imports nothing of ours, and ``parts`` only ``baselines`` and the index constants of
``bench.skeleton``. Every import counts, also one inside a function, and the module graph has no cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "baselines", "parts")
SHARED = {"bench.data", "bench.metrics", "bench.viz", "bench.io", "bench.errors", "bench.skeleton", "parts",
          "baselines"}
FEATURES = ("bench.sweeps", "bench.reports", "bench.perf", "bench.lift")
RULES: dict[str, set[str]] = {
    "bench": {"bench.cli"},                                   # bench/__main__.py: python -m bench
    "bench.cli": {*FEATURES, "bench.runs", *SHARED},
    **{feature: {"bench.runs", *SHARED} for feature in FEATURES},
    "bench.runs": SHARED,
    "bench.data": {"bench.io", "bench.errors", "bench.skeleton", "baselines"},
    "bench.metrics": {"bench.skeleton"},
    "bench.viz": {"bench.io", "bench.skeleton"},
    "bench.io": {"bench.errors"},
    "bench.errors": set(),
    "bench.skeleton": set(),
    "parts": {"baselines", "bench.skeleton"},
    "baselines": set(),
}
"""Unit -> the other units its modules may import."""


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``path`` imports, anywhere in it: ``from a import b`` names ``a.b`` when that is a
    module, else ``a``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
    return {name for name in found if name in modules}


def unit(module: str, rules: dict[str, set[str]]) -> str:
    """The unit of a module: the longest rule key it is, or lies in."""
    owners = [key for key in rules if module == key or module.startswith(key + ".")]
    if not owners:
        raise KeyError(f"{module}: no import rule covers it; add its package to RULES")
    return max(owners, key=len)


def graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    modules = module_files(root, packages)
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


def violations(edges: dict[str, set[str]], rules: dict[str, set[str]]) -> list[str]:
    """Every import that crosses the layers the wrong way, as ``importer -> imported``."""
    bad = []
    for module, targets in sorted(edges.items()):
        own = unit(module, rules)
        for target in sorted(targets):
            other = unit(target, rules)
            if other != own and other not in rules[own]:
                bad.append(f"{module} -> {target} ({own} may import {sorted(rules[own]) or 'nothing of ours'})")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a cycle of imports."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_import_follows_the_layers():
    assert violations(graph(ROOT), RULES) == []


def test_no_import_cycles():
    assert cycles(graph(ROOT)) == []


def test_every_module_has_a_rule():
    for module in graph(ROOT):
        unit(module, RULES)


@pytest.fixture
def fake_tree(tmp_path):
    """A tiny project: baselines/model.py, bench/runs/train.py, bench/cli/__init__.py."""
    files = {
        "baselines/__init__.py": "",
        "baselines/model.py": "import torch\n",
        "parts/__init__.py": "",
        "bench/__init__.py": "",
        "bench/skeleton.py": "",
        "bench/runs/__init__.py": "",
        "bench/runs/train.py": "from baselines import model\n",
        "bench/cli/__init__.py": "from bench.runs.train import x\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_checker_passes_a_clean_fake_tree(fake_tree):
    edges = graph(fake_tree)
    assert edges["bench.runs.train"] == {"baselines.model"} and edges["bench.cli"] == {"bench.runs.train"}
    assert violations(edges, RULES) == [] and cycles(edges) == []


def test_checker_catches_a_planted_upward_import(fake_tree):
    # The model zoo reaching into the harness, inside a function: still an import of the module.
    (fake_tree / "baselines" / "model.py").write_text("def f():\n    from bench.skeleton import NUM_JOINTS\n")
    assert violations(graph(fake_tree), RULES) == [
        "baselines.model -> bench.skeleton (baselines may import nothing of ours)"]


def test_checker_catches_an_import_of_the_cli(fake_tree):
    (fake_tree / "bench" / "runs" / "train.py").write_text("import bench.cli\n")
    assert [v.split(" (")[0] for v in violations(graph(fake_tree), RULES)] == ["bench.runs.train -> bench.cli"]


def test_checker_catches_a_planted_cycle(fake_tree):
    (fake_tree / "bench" / "runs" / "other.py").write_text("from bench.runs import train\n")
    (fake_tree / "bench" / "runs" / "train.py").write_text("from bench.runs.other import y\n")
    assert cycles(graph(fake_tree)) == [["bench.runs.other", "bench.runs.train"]]
