"""Facts with one home in the package: what makes a model a shape model (bench.models.random_weights)."""

import ast
from pathlib import Path

from bench.models.random_weights import SHAPE_PREFIX, is_shape, random_weights

PACKAGE = Path(__file__).resolve().parents[1] / "bench"


def _constants(value: str, *, home: str) -> list:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == home:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == value:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_only_weights_spells_the_shape_prefix():
    """Every "is this a shape model" asks bench.models.random_weights.is_shape (or its SHAPE_PREFIX)."""
    assert not _constants("shape:", home="models/random_weights.py")


def test_is_shape():
    assert is_shape(SHAPE_PREFIX + "llama-3.2-1b") and is_shape("shape:x")
    assert not any(is_shape(m) for m in ("smollm2-135m", "org/shape:x", None, 3, "Shape:x"))
    assert random_weights({"model": "shape:llama-3.2-1b"}) and not random_weights({"model": "tiny-llama"})


def _is_power(node, exp: int) -> bool:
    return (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and getattr(node.left, "value", None) == 2
            and getattr(node.right, "value", None) == exp)


def test_byte_units_go_through_bench_units():
    """No module divides bytes by 2**20, 2**30 or 1e9 itself: bench.util.units.mib / gb do (a count of
    parameters or FLOPs in billions is not bytes and may divide by 1e9)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == "util/units.py":
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
                continue
            binary = _is_power(node.right, 20) or _is_power(node.right, 30) or getattr(node.right, "value", None) in (
                2**20, 2**30)
            decimal = getattr(node.right, "value", None) in (1e9, 10**9)
            numerator = (ast.get_source_segment(source, node.left) or "").lower()
            if binary or (decimal and not any(w in numerator for w in ("param", "flop"))):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                             f"{ast.get_source_segment(source, node)}")
    assert not found, "\n".join(found)
