"""The training loop: token-weighted gradient accumulation and every precision policy."""

import math

import pytest
import torch

from bench import data
from bench.measure.timer import StepTimer
from bench.run.matrix import build_matrix
from bench.run.profile import load_profile
from bench.training import loop as train, methods, precision


@pytest.fixture(scope="module")
def tokenizer(tiny_path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_path)


def spec(method="full", policy="fp32", **extra):
    (one,) = build_matrix(load_profile("smoke", overrides={"run": {"methods": [method]}}))
    return precision.apply(dict(one, device="cpu", **extra), precision.FIXED[policy])


class CaptureGrads:
    """An optimizer stand-in that keeps the gradients it is asked to apply."""

    def __init__(self, model):
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.grads = None

    def step(self):
        self.grads = {n: p.grad.detach().clone() for n, p in self.params}

    def zero_grad(self, set_to_none=True):
        for _, p in self.params:
            p.grad = None


class NoSchedule:
    def step(self):
        pass


def one_step(batches, *, grad_accum):
    torch.manual_seed(0)
    model = methods.build(spec("full"))
    capture = CaptureGrads(model)
    model.eval()  # no dropout: the two splits must see the same function
    model.train = lambda mode=True: model  # keep eval mode inside train.train
    (loss,) = train.train(model, batches, optimizer=capture, scheduler=NoSchedule(), grad_accum=grad_accum,
                          device="cpu", timer=StepTimer("cpu"))
    return loss, capture.grads


def test_grad_accum_2_at_batch_2_equals_grad_accum_1_at_batch_4(tokenizer):
    """Token weighting: the two micro-batches hold different numbers of supervised tokens, so a mean
    of per-micro-batch means would differ from the batch-4 loss; the token-weighted sum does not."""
    (whole,) = data.batches(tokenizer, seed=1, steps=1, grad_accum=1, batch_size=4, seq_len=48)
    whole["labels"][0, :30] = -100  # a prompt masked out, as completion-only training does
    halves = [{k: v[:2] for k, v in whole.items()}, {k: v[2:] for k, v in whole.items()}]
    counts = [train.supervised_tokens(h) for h in halves]
    assert counts[0] != counts[1], "pick data whose halves differ in supervised tokens, or the test proves nothing"
    loss_4, grads_4 = one_step([whole], grad_accum=1)
    loss_2x2, grads_2x2 = one_step(halves, grad_accum=2)
    assert math.isclose(loss_4, loss_2x2, rel_tol=1e-5), (loss_4, loss_2x2)
    for name, grad in grads_4.items():
        torch.testing.assert_close(grads_2x2[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # the old rule (mean of micro-batch means) would not have matched
    per_half = [one_step([h], grad_accum=1)[0] for h in halves]
    assert abs(sum(per_half) / 2 - loss_4) > 1e-3


class Watch:
    """What the loop really did, seen from outside it: the dtype the LM head computed in (autocast
    or weights), and each trainable gradient's norm as backward produced it and as the optimizer
    was handed it (a GradScaler multiplies the first by its scale and divides it out before the
    step)."""

    def __init__(self, model, optimizer):
        self.head_dtypes, self.backward, self.at_step = set(), [], []
        model.get_output_embeddings().register_forward_hook(lambda m, i, out: self.head_dtypes.add(out.dtype))
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        # lora_B: lora_A's gradient is zero while B is still at its zero init
        self.param = next((p for n, p in trainable if "lora_B" in n), trainable[0][1])
        self.param.register_hook(lambda grad: self.backward.append(float(grad.float().norm())))
        step = optimizer.step

        def watched_step(*args, **kwargs):
            self.at_step.append(float(self.param.grad.float().norm()))
            return step(*args, **kwargs)
        optimizer.step = watched_step


@pytest.mark.parametrize("policy", ["fp32", "bf16-true", "bf16-mixed", "fp16-mixed"])
@pytest.mark.parametrize("method", ["full", "qlora"])
def test_every_policy_trains_on_cpu(tokenizer, policy, method):
    run_spec = spec(method, policy)
    model = methods.build(run_spec)
    pol = precision.FIXED[policy]
    weights = {p.dtype for n, p in model.named_parameters() if "lora_" not in n and p.dtype.is_floating_point}
    assert weights == {getattr(torch, pol.weights_dtype)}
    batches = data.batches(tokenizer, seed=0, steps=3, grad_accum=1, batch_size=2, seq_len=24)
    optimizer = methods.make_optimizer(model, run_spec)
    scheduler = methods.make_scheduler(optimizer, run_spec)
    watch = Watch(model, optimizer)  # after the scheduler, which wraps optimizer.step itself
    losses = train.train(model, batches, optimizer=optimizer, scheduler=scheduler, grad_accum=1, device="cpu",
                         timer=StepTimer("cpu"), policy=pol)
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert watch.head_dtypes == {getattr(torch, pol.compute_dtype)}  # autocast (or the weights) really set it
    assert len(watch.backward) == 3 and watch.at_step, "no optimizer step was taken"
    # fp16-mixed: backward saw the loss x the scaler's scale (2**16 to start, halved on an
    # overflow, when the step is skipped), the optimizer the unscaled gradient; else the same
    taken = watch.backward[-len(watch.at_step):] if pol.grad_scaler else watch.backward
    ratios = [b / s for b, s in zip(taken, watch.at_step)]
    if pol.grad_scaler:
        assert all(2**8 <= r <= 2**16 * 1.01 for r in ratios), ratios
    else:
        assert ratios == pytest.approx([1.0] * 3, rel=1e-5)


def test_autocast_really_computes_in_the_policy_dtype():
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with precision.autocast(precision.FIXED["bf16-mixed"], "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with precision.autocast(precision.FIXED["fp32"], "cpu"):
        assert layer(x).dtype == torch.float32


def step_deltas(tokenizer, *, method="full", steps=1, watch=None, **extra):
    """Build `method` on tiny-llama (LoRA dropout off; tiny-llama has none), train `steps` steps in
    train mode, and return the model, the optimizer, the losses and each trainable parameter's
    change. `watch(model)` runs before training."""
    torch.manual_seed(0)
    run_spec = spec(method, "fp32", **{"lora_dropout": 0.0, **extra})  # two runs must see the same function
    model = methods.build(run_spec)
    if watch:
        watch(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = methods.make_optimizer(model, run_spec)
    batches = data.batches(tokenizer, seed=0, steps=steps, grad_accum=1, batch_size=2, seq_len=32)
    losses = train.train(model, batches, optimizer=optimizer, scheduler=methods.make_scheduler(optimizer, run_spec),
                         grad_accum=1, device="cpu", timer=StepTimer("cpu"))
    after = dict(model.named_parameters())
    return model, optimizer, losses, {n: after[n].detach() - b for n, b in before.items()}


def checkpointing(model) -> bool:
    return model.is_gradient_checkpointing  # a peft model forwards the attribute to its base


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing_recomputes_and_trains_the_same_step(tokenizer, method):
    """With --grad-checkpointing each decoder layer runs twice a step (forward, then again in
    backward), and the step's loss and parameter changes are those of the plain step."""
    calls = {False: 0, True: 0}

    def counting(flag):
        # layer 0's attention, a module the layer calls: transformers checkpoints the layer's
        # forward, not its __call__, so the layer's own hooks do not see the recomputation; a
        # pre-hook, since the recomputation stops once it has what backward needs
        def watch(model):
            assert checkpointing(model) == flag
            attention = next(m for n, m in model.named_modules() if n.endswith("layers.0.self_attn"))
            attention.register_forward_pre_hook(lambda *a: calls.__setitem__(flag, calls[flag] + 1))
        return watch

    _, _, plain_loss, plain = step_deltas(tokenizer, method=method, grad_checkpointing=False, watch=counting(False))
    _, _, gc_loss, checkpointed = step_deltas(tokenizer, method=method, grad_checkpointing=True, watch=counting(True))
    assert calls == {False: 1, True: 2}  # the recomputation itself: once a step without, twice with
    assert gc_loss == pytest.approx(plain_loss, rel=1e-6)
    for name, delta in plain.items():
        torch.testing.assert_close(checkpointed[name], delta, rtol=1e-4, atol=1e-7, msg=name)


@pytest.fixture(scope="module")
def adam_step(tokenizer):
    """torch's AdamW: one step's change of every trainable parameter of full fine-tuning."""
    return step_deltas(tokenizer, optimizer="adamw_torch")[3]


@pytest.mark.parametrize("name, cls, state_dtype", [
    ("adamw_8bit", "AdamW8bit", torch.uint8), ("paged_adamw", "PagedAdamW", torch.float32),
    ("paged_adamw_8bit", "PagedAdamW8bit", torch.uint8)])
def test_bitsandbytes_optimizers_take_adams_step(tokenizer, adam_step, name, cls, state_dtype):
    """Each --optimizer is the bitsandbytes class it names, keeps its state in the dtype it
    promises (8-bit: uint8 codes for the 49,152 x 64 embedding), and its first step moves the
    weights as torch's AdamW does (Adam's first step is lr x sign(gradient), quantised state or not)."""
    _, optimizer, losses, moved = step_deltas(tokenizer, optimizer=name)
    assert type(optimizer).__name__ == cls and type(optimizer).__module__.startswith("bitsandbytes")
    embedding = next(p for p in optimizer.param_groups[0]["params"] if p.numel() >= 49_152 * 64)
    assert optimizer.state[embedding]["state1"].dtype == state_dtype
    assert math.isfinite(losses[0])
    delta, want = moved["model.embed_tokens.weight"], adam_step["model.embed_tokens.weight"]
    touched = want != 0  # rows of tokens in the batch
    assert touched.sum() > 1000
    agree = (torch.sign(delta[touched]) == torch.sign(want[touched])).float().mean()
    assert agree > 0.95, float(agree)
    assert (delta[touched].abs().mean() / want[touched].abs().mean()).item() == pytest.approx(1.0, rel=0.1)
