"""The training loop. It trains; it measures nothing itself and takes a timer from the caller.

The loss of an optimizer step is the mean over every supervised token of the step, however the
step is split: into grad_accum micro-batches, over ranks, or both. Each micro-batch's loss is its
token sum divided by the step's supervised-token count (`num_items_in_batch`), so grad_accum=2 at
batch 2 gives the loss and gradients of grad_accum=1 at batch 4 (tests/test_train.py).
"""

import math

from bench.training import precision as P


def supervised_tokens(batch: dict) -> int:
    """Tokens whose label counts, after the one-position shift causal LMs apply."""
    return int((batch["labels"][:, 1:] != -100).sum())


def train(model, micro_batches: list, *, optimizer, scheduler, grad_accum: int, device: str, timer,
          policy=P.FIXED["fp32"], on_step=None, ranks=None) -> list:
    """Run len(micro_batches) / grad_accum optimizer steps under `policy`. Returns each step's loss.

    Real-token counts (attention_mask sum, padding excluded) go to the timer with each step.
    With `ranks` (bench.training.distributed, nproc > 1) each micro-batch is this rank's share and carries
    `global_supervised` (the whole micro-batch's count): loss and tokens are global figures.
    """
    world = ranks.size if ranks else 1
    scaler = P.grad_scaler(policy, device)
    model.train()
    losses = []
    for step_start in range(0, len(micro_batches), grad_accum):
        group = micro_batches[step_start:step_start + grad_accum]
        timer.start()
        step_loss, tokens = _accumulate(model, group, device=device, policy=policy, scaler=scaler, world=world)
        if world > 1:
            step_loss, tokens = ranks.reduce(step_loss, tokens)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        timer.stop(tokens=tokens)
        if not math.isfinite(step_loss):
            raise FloatingPointError(f"loss became {step_loss} at step {len(losses) + 1}")
        losses.append(step_loss)
        if on_step:
            on_step(len(losses), step_loss, timer.times_s[-1])
    return losses


def _accumulate(model, group: list, *, device, policy, scaler, world) -> tuple:
    """Forward and backward over one step's micro-batches; (this rank's loss share, real tokens)."""
    count = sum(b.get("global_supervised", None) or supervised_tokens(b) for b in group)
    step_loss, tokens = 0.0, 0
    for batch in group:
        inputs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}
        with P.autocast(policy, device):
            loss = model(**inputs, num_items_in_batch=max(count, 1)).loss
        # DDP and FSDP average gradients over ranks; this rank's loss is a share of the global sum
        scaled = loss * world if world > 1 else loss
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        step_loss += loss.item()
        tokens += int(batch["attention_mask"].sum())
    return step_loss, tokens
