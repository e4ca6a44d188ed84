"""`oos-llama`: a randomly initialised Llama of a shape the CPU calibration never saw, for the
planner's out-of-sample check (bench.plan.calibration, set "out-of-sample").

Against smollm2-135m (the fit set: h576, 30 layers, 9 heads / 3 kv, tied, i1536) it is wider,
shallower and untied: h768, 12 layers, 12 heads / 4 kv, i2048, separate lm_head; about 151M
parameters, so RSS figures are of the same order but split differently between weights,
activations and logits. Built like tiny-llama (bench.models.tiny), in a child process, because
the planner never imports torch.
"""

from pathlib import Path

CONFIG = dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
              num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=False,
              vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2)
SEED = 4321


def ensure() -> Path:
    from bench.models.tiny import ensure_random

    return ensure_random("oos-llama", config=CONFIG, seed=SEED)
