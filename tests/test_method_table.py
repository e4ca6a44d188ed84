"""bench.method_table is the one place that says what a method is: the package names no set of
adapter, k-bit or FSDP-shardable methods, nor tests a method's quantisation by its name,
anywhere else; and bench.training.methods has one builder per row."""

import ast
from pathlib import Path

from bench import method_table as mt

PACKAGE = Path(__file__).resolve().parents[1] / "bench"
QUANT_NAMES = {m.name for m in mt.TABLE if m.kbit or m.dora}  # names whose == tests a storage/adapter fact


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name != "method_table.py":
            yield path, ast.parse(path.read_text(), filename=str(path))


def _strings(nodes) -> set:
    return {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_no_other_module_lists_which_methods_are_adapters_kbit_or_shardable():
    facts = {"adapter": set(mt.ADAPTER), "k-bit": set(mt.KBIT), "fsdp-shardable": set(mt.FSDP_SHARDABLE)}
    names = set(mt.NAMES)
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                listed, extra = _strings(node.elts) & names, {"all methods": names}
            elif isinstance(node, ast.Dict):
                listed, extra = _strings(node.keys) & names, {}
            else:
                continue
            for fact, members in {**facts, **extra}.items():
                if listed == members:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} lists the {fact} methods")
    assert not found, "\n".join(found)


def test_no_other_module_tests_a_quantisation_by_method_name():
    found = []
    for path, tree in _sources():
        if path.name == "methods.py":  # the builders: each knows its own name
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                hit = _strings([node.left, *node.comparators]) & QUANT_NAMES
                if hit:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} compares a method to {sorted(hit)}")
    assert not found, "\n".join(found)


def test_builders_cover_exactly_the_table():
    from bench.training import methods

    assert list(methods.METHODS) == list(mt.NAMES)
    assert all(callable(b) for b in methods.METHODS.values())


def test_table_reads_as_before():
    """The derived facts the callers used to spell out, kept as they were."""
    assert set(mt.ADAPTER) == {"lora", "qlora", "dora", "lora8"}
    assert set(mt.KBIT) == {"qlora", "lora8"}
    assert set(mt.FSDP_SHARDABLE) == {"full", "lora", "dora", "qlora"}
    assert {m.name: m.auto_strategy for m in mt.TABLE if m.auto_strategy} == {
        "full": "fsdp", "lora": "fsdp", "dora": "fsdp", "qlora": "fsdp", "lora8": "ddp"}
