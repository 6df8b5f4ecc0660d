"""The benchmark scripts share code only through ``_``-prefixed helper modules (``benchmarks/_common.py``,
``_distill_eval.py``, ``_faults.py``): no script imports another, so each reads and runs on its own."""

from __future__ import annotations

import ast
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at any depth (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_benchmark_script_imports_another():
    files = sorted(BENCHMARKS.glob("*.py"))
    scripts = {f.stem for f in files if not f.stem.startswith("_")}
    assert "distill_quality" in scripts and "_common" not in scripts  # the folder was found
    offenders = {f.name: sorted(imported_modules(f) & scripts) for f in files}
    assert {name: found for name, found in offenders.items() if found} == {}, (
        "a benchmark imports another benchmark script: move what they share into a `_`-prefixed helper module"
    )
