"""Which records measured a model with random weights (a shape model), and what that rules out.

A shape model is a real architecture at its real size with seeded random weights. Memory does
not depend on the weights' values, so its peaks, breakdown, throughput and estimate are
measurements like any other run's. Its accuracy and loss measure no trained model: no accuracy
chart, benefit chart or paired verdict may read them. The report (bench.results.report.load) and
`compare` (bench.results.compare.pairs) both ask `random_weights` before they read a benefit figure.
"""

SHAPE_PREFIX = "shape:"
WHY = "random weights (a shape model): its memory is measured, its accuracy and loss measure no trained model"


def is_shape(model) -> bool:
    """Whether `model` names a shape model (`shape:NAME`): the one test every module asks."""
    return isinstance(model, str) and model.startswith(SHAPE_PREFIX)


def random_weights(record: dict) -> bool:
    """True for a record of a model with random weights: `weights: "random"` at the top level or in
    a top-level block (how the model was built, e.g. `shape`), or a model named `shape:...`."""
    if record.get("weights") == "random":
        return True
    if any(isinstance(block, dict) and block.get("weights") == "random" for block in record.values()):
        return True
    return is_shape(record.get("model"))
