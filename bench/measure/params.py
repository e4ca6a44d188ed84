"""Parameter counts, with 4-bit packed weights counted as the weights they represent."""


def count_params(model) -> dict:
    """{'trainable', 'total', 'trainable_pct'}.

    bitsandbytes packs two 4-bit weights per uint8 element, so sum(p.numel()) undercounts a 4-bit
    model; a Params4bit knows its logical shape in quant_state.shape. 8-bit weights are one
    element per weight and need no correction.
    """
    trainable = total = 0
    for param in model.parameters():
        quant_state = getattr(param, "quant_state", None)
        n = param.numel()
        if quant_state is not None and getattr(quant_state, "shape", None) is not None:
            n = 1
            for dim in quant_state.shape:
                n *= int(dim)
        total += n
        if param.requires_grad:
            trainable += n
    return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / total if total else 0.0}
