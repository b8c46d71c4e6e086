"""The processes that train one run together (``devices`` > 1): who they are, how they meet, what they exchange.

One run over N processes is data-parallel: every process holds the whole lifter and optimizer and takes a contiguous
slice of every global batch (``bench.data.windows.shard``); after its backward pass the gradients are summed over the
processes (:meth:`Processes.reduce_gradients`), so every process takes the same optimizer step. Each process weighs
its loss by its share of the global batch (its rows / the batch's rows): the training loss is a mean over the batch's
windows, so the sum of the weighted gradients is the gradient of the whole batch, as one process computes it. This is
what ``DistributedDataParallel`` computes for equal shards (it averages the gradients), written out so that unequal
shards (the last, smaller batch of an epoch) and empty ones stay exact, and parameters without a gradient keep none.

Processes meet through ``torch.distributed``'s ``env://`` rendezvous: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` come from ``torchrun`` (``bench run --devices N`` starts it) or, on SLURM, from
the job's tasks (``bench.sweeps.jobs`` exports them with submitit). The backend is NCCL on CUDA, gloo on CPU, and
process ``r`` uses ``cuda:LOCAL_RANK`` when the run's device is CUDA.

What equals the single-process run. The global batch is the configuration's ``train.batch_size`` whatever the number
of processes (each takes ``batch_size / devices`` windows, rounded up for the first ones), so the learning rate and
schedule stay as they are. Evaluation is exact for every lifter (each test batch is the same batch, sampled from the
same seed, whichever process predicts it). The diffusion lifters (D3DP, PAFUSE) draw each training step's diffusion
steps and noise for the whole batch from a generator seeded by (seed, step) alike in every process, and each process
keeps its rows (``baselines.diffusion.shared_draws``). Training is therefore exact, up to float rounding (the
gradient is summed in another order), for every lifter without dropout, stochastic depth or batch statistics: MixSTE,
PoseFormer, D3DP and PAFUSE with ``drop_path: 0`` (the quick preset's) and the part-based versions. It matches only
in distribution for the others: the leader draws its dropout and stochastic depth as a single process would and
every other process draws its own (:func:`rank_seed`); and VideoPose's BatchNorm normalizes each process's slice with
its own statistics (they are not synchronized). A run resumed on as many processes as it was saved by goes on exactly
as it would have, for every lifter: ``last.pt`` holds every process's random states.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from bench.errors import ConfigError

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""The ``env://`` variables a process of a run over several devices needs."""
TIMEOUT = datetime.timedelta(minutes=30)
"""How long a process waits for the others at one exchange (a slow evaluation on the leader included)."""


@dataclass(frozen=True)
class Processes:
    """This process's place among the ``world`` processes of a run: ``rank`` (0 is the leader, the only one that
    writes files) and ``local_rank`` (its index on its node, which picks its GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """The device of this process for a run configured on ``name``: ``cuda:LOCAL_RANK`` for CUDA with several
        processes, else ``name`` itself."""
        device = torch.device(name)
        if device.type == "cuda" and self.world > 1:
            return torch.device("cuda", self.local_rank)
        return device

    def reduce_gradients(self, parameters, rows: int) -> None:
        """Sum every parameter's gradient over the processes, in one exchange, for a global batch of ``rows``.

        Which parameters get a gradient does not depend on the data, so every process that had rows has the same
        ones. When ``rows < world`` some process had none (and no gradient at all): then the exchange also says
        which parameters had one anywhere, and the others keep none (the optimizer leaves them alone, as in one
        process). Otherwise nothing is read back to the host."""
        if self.world == 1:
            return
        parameters = [p for p in parameters if p.requires_grad]
        flat = torch.cat([p.grad.detach().reshape(-1) if p.grad is not None else
                          torch.zeros(p.numel(), device=p.device, dtype=p.dtype) for p in parameters]
                         + ([torch.tensor([p.grad is not None for p in parameters], dtype=parameters[0].dtype,
                                          device=parameters[0].device)] if rows < self.world else []))
        dist.all_reduce(flat)
        present = flat[-len(parameters):].tolist() if rows < self.world else [1] * len(parameters)
        offset = 0
        for p, has in zip(parameters, present):
            p.grad = flat[offset:offset + p.numel()].view_as(p) if has else None
            offset += p.numel()

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """``values`` summed over the processes (float64)."""
        if self.world == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value) -> list:
        """Every process's ``value`` (picklable), in rank order, on every process."""
        if self.world == 1:
            return [value]
        values = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def share(self, value=None):
        """The leader's ``value``, on every process (the others pass nothing)."""
        if self.world == 1:
            return value
        box = [value if self.leader else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def start(self, device: torch.device) -> None:
        """Join the run's process group (NCCL on CUDA, gloo on CPU); nothing for a single process, or when this
        process has joined already."""
        if self.world == 1 or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://", rank=self.rank,
                                world_size=self.world, timeout=TIMEOUT)

    def stop(self) -> None:
        """Leave the process group (once the run is over)."""
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def wait(self) -> None:
        """Wait until every process has come here (e.g. until the leader has written a file the others read)."""
        if self.world > 1:
            dist.barrier()


SINGLE = Processes()
"""A run in one process."""


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s random generators in training (dropout, stochastic depth; the diffusion's
    training draws come from a generator of their own, alike in every process):
    ``seed`` itself for the leader, so that it draws as a single process would, and seeds derived from
    ``(seed, rank)`` for the others, so that no two processes draw the same numbers."""
    return seed if rank == 0 else derived_seed(seed, rank)


def derived_seed(seed: int, *key: int) -> int:
    """A seed for stream ``key`` (one or more integers) of a computation seeded by ``seed``: distinct keys give
    unrelated streams."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])


def from_environment(devices: int) -> Processes:
    """This process's place in a run over ``devices`` processes, read from the ``env://`` variables.

    Raises:
        ConfigError: ``devices`` > 1 without the variables (naming how to start the processes), or a
            ``WORLD_SIZE`` other than ``devices``.
    """
    if devices == 1:
        return SINGLE
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if missing:
        raise ConfigError(f"devices is {devices}, but this process was not started as one of {devices} processes "
                          f"(no {', '.join(missing)} in its environment): start them with `bench run --devices "
                          f"{devices}` (torchrun) or as SLURM tasks (a sweep's executor tasks_per_node and nodes)")
    world = int(os.environ["WORLD_SIZE"])
    if world != devices:
        raise ConfigError(f"devices is {devices}, but WORLD_SIZE is {world}: the run needs exactly one process per "
                          f"device")
    return Processes(int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]))
