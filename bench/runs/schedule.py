"""The learning rate of every optimizer step, and VideoPose's BatchNorm momentum of every epoch.

Two schedules, both after an optional linear warm-up of ``train.warmup_steps`` steps:

- ``exponential`` (the reference recipes): ``lr * lr_decay ** epoch``, constant within an epoch;
- ``cosine``: from ``lr`` down to zero over all ``epochs * steps_per_epoch`` steps, a step at a time (``lr_decay``
  is not used). Suited to short runs, where a per-epoch decay tuned for hundreds of epochs barely moves.
"""
from __future__ import annotations

import math

SCHEDULES = ("exponential", "cosine")


def learning_rate(train_cfg: dict, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (counted from 0 over the whole run)."""
    lr = train_cfg["lr"]
    if train_cfg["schedule"] == "cosine":
        total = train_cfg["epochs"] * steps_per_epoch
        lr *= 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    else:
        lr *= train_cfg["lr_decay"] ** (step // steps_per_epoch)
    warmup = train_cfg["warmup_steps"]
    return lr * (step + 1) / warmup if step < warmup else lr


def set_learning_rate(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def set_bn_momentum(lifter, train_cfg: dict, epoch: int) -> None:
    """VideoPose's BatchNorm momentum decay from ``bn_momentum_start`` to ``bn_momentum_end``, when the recipe has
    one."""
    start, end = train_cfg["bn_momentum_start"], train_cfg["bn_momentum_end"]
    if start and end:
        momentum = start * (end / start) ** (epoch / train_cfg["epochs"])
        for module in lifter.modules():
            if hasattr(module, "set_bn_momentum"):
                module.set_bn_momentum(momentum)
