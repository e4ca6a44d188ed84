"""The training loop. It trains; it measures nothing itself and takes a timer from the caller."""

import math


def train(model, micro_batches: list, *, optimizer, scheduler, grad_accum: int, device: str, timer, on_step=None,
          ranks=None) -> list:
    """Run len(micro_batches) / grad_accum optimizer steps. Returns the loss of each step.

    Real-token counts (attention_mask sum, padding excluded) go to the timer with each step.
    With `ranks` (bench.distributed, nproc > 1) each micro-batch is this rank's share and carries
    the global token count, and loss and tokens are summed over ranks: global figures.
    """
    world = ranks.size if ranks else 1
    model.train()
    losses = []
    for step_start in range(0, len(micro_batches), grad_accum):
        group = micro_batches[step_start:step_start + grad_accum]
        timer.start()
        step_loss, tokens = 0.0, 0
        for batch in group:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss / len(group)
            # DDP and FSDP average gradients over ranks; this rank's loss is a share of the global sum
            (loss * world if world > 1 else loss).backward()
            step_loss += loss.item()
            tokens += int(batch["attention_mask"].sum())
        if world > 1:
            step_loss, tokens = ranks.reduce(step_loss, tokens)
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
