"""The import rule of docs/architecture.md, checked on every module's source with `ast`.

The driver (cli, run, results, plan, util, data, evaluate, models) never imports torch and its
stack at module level; results and plan never import run or training; only cli and run import
run; util imports nothing else of bench at module level, and the method table nothing of bench at all.
An import inside a function is where a
driver-side module reaches worker-side code on purpose (the worker's phases, the set-up command).
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

HEAVY = {"torch", "transformers", "peft", "bitsandbytes", "accelerate", "lm_eval", "datasets"}
# Worker-side code that may import the heavy stack at module level.
HEAVY_ALLOWED = ("bench.training", "bench.measure", "bench.models.shape_load")
# Imports of run from outside cli and run, each deliberate and inside a function.
RUN_IMPORT_ALLOWED = {("bench.models.identity", "bench.run.matrix")}  # work_hash: the matrix owns the hash


def _module_name(path: Path, root: Path = BENCH) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module):
    """(imported module, at module level?) for every import in the tree."""
    def walk(node, top):
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, top, child.lineno
            elif isinstance(child, ast.ImportFrom) and not child.level:
                yield child.module, top, child.lineno
                if child.module == "bench":
                    for alias in child.names:
                        yield f"bench.{alias.name}", top, child.lineno
            yield from walk(child, inner)
    yield from walk(tree, True)


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def violations(root: Path = BENCH) -> list:
    """Every import in bench/ that breaks the rule, as 'module:line: why'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        layer = _layer(module)
        for target, top, line in _imports(ast.parse(path.read_text(), filename=str(path))):
            where = f"{module}:{line}: imports {target}"
            if top and target.split(".")[0] in HEAVY and not module.startswith(HEAVY_ALLOWED):
                found.append(f"{where} at module level (driver side stays free of the torch stack)")
            if not target.startswith("bench."):
                continue
            to = _layer(target)
            if layer in ("bench.results", "bench.plan") and to in ("bench.run", "bench.training"):
                found.append(f"{where} ({layer} never imports run or training)")
            elif to == "bench.run" and layer not in ("bench.run", "bench.cli") \
                    and (module, target) not in RUN_IMPORT_ALLOWED:
                found.append(f"{where} (only cli and run import run)")
            if layer == "bench.util" and to != "bench.util" and top:
                found.append(f"{where} at module level (util imports only util)")
            if module == "bench.method_table":
                found.append(f"{where} (the method table imports nothing of bench: every layer reads it)")
    return found


def test_every_import_follows_the_rule():
    assert violations() == []


def test_a_broken_import_is_caught(tmp_path):
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "bad.py").write_text("import torch\nfrom bench.run import matrix\n")
    found = violations(tmp_path / "bench")
    assert len(found) == 2 and "module level" in found[0] and "never imports run" in found[1]


def test_the_driver_imports_no_torch():
    """Importing every driver-side module (cli, run, results, plan, util, data) loads no torch."""
    driver = [_module_name(p) for p in sorted(BENCH.rglob("*.py"))
              if _layer(_module_name(p)) in ("bench.cli", "bench.run", "bench.results", "bench.plan",
                                             "bench.util", "bench.data")]
    code = ("import importlib, sys\n"
            f"for m in {driver!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{sorted(HEAVY)!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
