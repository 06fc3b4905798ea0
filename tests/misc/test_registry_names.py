"""The registries are the only lists of names: a registered space, strategy or executor
name is written once in ``src/mbnas``, where it is registered, and read from the registry
everywhere else. ``if space == "macro"`` anywhere else fails this test."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mbnas
from mbnas.spaces.registry import space_names
from mbnas.strategies import strategy_names
from mbnas.training.executors import executor_names

SRC = Path(mbnas.__file__).resolve().parent

# (file under src/mbnas, string): why that string there is not the registered name.
ALLOWED = {
    ("cli/__init__.py", "mbnas"): "the program's name (argparse prog)",
    ("commands/common/dataset.py", "mbnas"): "the cache folder ~/.cache/mbnas",
    ("commands/common/runlog.py", "mbnas"): "the package's logger name",
    ("api.py", "mbnas"): "the package's logger name",
    ("data/cropped.py", "mbnas"): "the package's logger name",
    ("reporting/card.py", "mbnas"): "the distribution whose version the card shows",
    ("store/records.py", "mbnas"): "the distribution whose version a run records",
    ("store/optuna_mirror.py", "mbnas"): "the Optuna study's name",
    ("export/nnunet_plans.py", "mbnas"): "our key in nnU-Net's plans file",
    ("data/phantom.py", "mbnas"): "the phantom dataset's reference field",
    ("training/ray_executor.py", "local"): "Ray's own address keyword (ray.init)",
    ("commands/search/run.py", "ray"): "the config's `ray` settings section (a field name)",
    ("commands/evaluate/run.py", "ray"): "the config's `ray` settings section (a field name)",
    ("cli/settings.py", "ray"): "the config's `ray` settings section (a field name)",
    ("cli/search.py", "ray"): "the config's `ray` settings section (a field name)",
    ("cli/evaluate_report.py", "ray"): "the config's `ray` settings section (a field name)",
    ("spaces/registry.py", "random"): "RANDOM_START, the --start option, not the strategy",
    ("commands/common/runfolder.py", "dnas"): "the folder of the DNAS phase's files",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def name_constants(names: set[str]) -> dict[str, list[str]]:
    """{name: ["file:line", ...]} of every string constant equal to one of ``names``."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=rel)
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value in names and id(node) not in skip
                    and (rel, node.value) not in ALLOWED):
                found[node.value].append(f"{rel}:{node.lineno}")
    return found


def test_every_registered_name_is_written_once_in_src() -> None:
    names = {*space_names(), *strategy_names(), *executor_names()}
    found = name_constants(names)
    repeated = {n: where for n, where in found.items() if len(where) != 1}
    assert not repeated, (
        "a registered name is written outside its registration; read it from the "
        f"registry (or add a reason to ALLOWED): {repeated}")
    assert set(found) == names  # each registration itself was found


def test_the_scan_catches_a_name_outside_its_registration(tmp_path: Path,
                                                          monkeypatch) -> None:
    bad = SRC / "_registry_names_probe.py"
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: iter([bad]))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (
        '"""A docstring that says "macro" is fine."""\n'
        'def f(space):\n    return space == "macro"\n'))
    assert name_constants({"macro"}) == {"macro": ["_registry_names_probe.py:3"]}


def test_allowlist_entries_are_still_needed() -> None:
    """An allowance whose string is gone from its file is stale: remove it."""
    for rel, value in ALLOWED:
        tree = ast.parse((SRC / rel).read_text())
        assert any(isinstance(n, ast.Constant) and n.value == value for n in ast.walk(tree)), \
            (rel, value)
