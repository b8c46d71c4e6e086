"""Where an epoch's time goes: wall seconds per phase (data, forward, backward, optimizer, validation).

Off by default, at no cost. On (``bench run --log-level debug``), each phase waits for the device before and after,
so on a GPU a phase's time is its own work, not its launch; the run's log gets one line per epoch.
"""
from __future__ import annotations

import contextlib
import time

import torch

PHASES = ("data", "forward", "backward", "optimizer", "validation")


class EpochTimer:
    """Accumulates wall seconds per phase over one epoch; a no-op when not ``enabled``."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device, self.enabled = device, enabled
        self.seconds = dict.fromkeys(PHASES, 0.0)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time the block as phase ``name``."""
        if not self.enabled:
            yield
            return
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.seconds[name] += time.perf_counter() - start

    def summary(self) -> str:
        total = sum(self.seconds.values()) or 1.0
        return ", ".join(f"{name} {seconds:.2f} s ({100 * seconds / total:.0f}%)"
                         for name, seconds in self.seconds.items())
