"""The training loop. It trains; it measures nothing itself and takes a timer from the caller."""

import math


def train(model, micro_batches: list, *, optimizer, scheduler, grad_accum: int, device: str, timer, on_step=None) -> list:
    """Run len(micro_batches) / grad_accum optimizer steps. Returns the loss of each step.

    Real-token counts (attention_mask sum, padding excluded) go to the timer with each step.
    """
    model.train()
    losses = []
    for step_start in range(0, len(micro_batches), grad_accum):
        group = micro_batches[step_start:step_start + grad_accum]
        timer.start()
        step_loss, tokens = 0.0, 0
        for batch in group:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss / len(group)
            loss.backward()
            step_loss += loss.item()
            tokens += int(batch["attention_mask"].sum())
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
