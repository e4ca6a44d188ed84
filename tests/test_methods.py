"""Each method on tiny-llama, in-process: what trains, what is counted, and that it learns."""

import math

import pytest

from bench import data, methods, train
from bench.matrix import build_matrix
from bench.measure.params import count_params
from bench.measure.timer import StepTimer, throughput
from bench.profile import load_profile


@pytest.fixture(scope="module")
def spec_for():
    specs = {s["method"]: s for s in build_matrix(load_profile("smoke", overrides={
        "run": {"methods": list(methods.METHODS), "device": "cpu"}}))}
    return lambda method, **extra: dict(specs[method], **extra)


@pytest.fixture(scope="module")
def tokenizer(tiny_path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_path)


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "dora", "lora8"])
def test_each_method_trains_on_tiny_llama(method, spec_for, tokenizer):
    spec = spec_for(method, steps=3, warmup_steps=1)
    model = methods.build(spec)
    counts = count_params(model)
    batches = data.batches(tokenizer, seed=0, steps=3, grad_accum=1, batch_size=2, seq_len=32)
    optimizer = methods.make_optimizer(model, spec)
    timer = StepTimer("cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    losses = train.train(model, batches, optimizer=optimizer, scheduler=methods.make_scheduler(optimizer, spec),
                         grad_accum=1, device="cpu", timer=timer)
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert counts["trainable"] > 0 and counts["trainable"] == sum(p.numel() for p in before.values())
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not p.detach().equal(before[n])]
    assert moved, "no trainable parameter changed"
    stats = throughput(timer.times_s, timer.tokens, warmup_steps=1)
    assert stats["tokens"] == sum(int(b["attention_mask"].sum()) for b in batches[1:])


def test_trainable_counts_relate_as_the_methods_say(spec_for):
    counts = {m: count_params(methods.build(spec_for(m))) for m in methods.METHODS}
    assert counts["base"]["trainable"] == 0
    assert counts["full"]["trainable"] == counts["full"]["total"]
    assert counts["lora"]["trainable"] == counts["qlora"]["trainable"] == counts["lora8"]["trainable"]
    assert counts["dora"]["trainable"] > counts["lora"]["trainable"]
    # a 4-bit (or 8-bit) base reports the same total as its full-precision base
    assert counts["qlora"]["total"] == counts["lora"]["total"] == counts["lora8"]["total"]
    assert counts["lora"]["total"] - counts["lora"]["trainable"] == counts["full"]["total"]


def test_four_bit_base_counts_as_its_sixteen_bit_total(spec_for):
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig

    full = methods.build(spec_for("base"))
    quant = methods._load(spec_for("base"), quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True))
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in quant.modules())
    naive = sum(p.numel() for p in quant.parameters())
    assert naive < count_params(full)["total"]          # what sum(numel) would wrongly say
    assert count_params(quant)["total"] == count_params(full)["total"]


def test_same_data_same_order_for_every_method(tokenizer):
    a = data.batches(tokenizer, seed=3, steps=2, grad_accum=2, batch_size=2, seq_len=16)
    b = data.batches(tokenizer, seed=3, steps=2, grad_accum=2, batch_size=2, seq_len=16)
    c = data.batches(tokenizer, seed=4, steps=2, grad_accum=2, batch_size=2, seq_len=16)
    assert len(a) == 4 and all(x["input_ids"].equal(y["input_ids"]) for x, y in zip(a, b))
    assert not all(x["input_ids"].equal(y["input_ids"]) for x, y in zip(a, c))
    assert (a[0]["labels"][a[0]["attention_mask"] == 0] == -100).all()
