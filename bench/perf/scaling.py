"""``bench perf --devices N``: how training throughput scales from one process to N, as ``bench run --devices N``
trains (``bench.runs.processes``): the same global batch of ``batch`` windows, split over the processes, gradients
summed every step.

Each figure is windows per second of the global batch: the median of ``repeats`` timed training steps after
``warmup`` untimed ones, taken by the leader (every step waits for the others' gradients, so it is the step of the
slowest process). One process runs here with this process's threads; the N processes are spawned on this machine,
each on ``cuda:RANK`` for a CUDA device, or on the CPU with ``threads // N`` threads (the same cores, shared), so
the comparison is one process against N on the same hardware. Where N processes are not at least ``GAIN`` times as
fast, the table says so (N CPU processes on the cores one process already uses gain nothing).
"""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
from tabulate import tabulate

from bench.data.windows import shard
from bench.perf.measure import PerfSettings, format_number, make_lifter, random_windows, time_call
from bench.runs import training
from bench.runs.processes import SINGLE, Processes, from_environment

GAIN = 1.1
"""The least speed-up that counts as a gain."""


def step_seconds(name: str, settings: PerfSettings, processes: Processes = SINGLE) -> float:
    """Median seconds of one training step of lifter ``name`` on a global batch of ``settings.batch`` random
    windows, this process taking its slice of it."""
    lifter = make_lifter(name, settings)   # seeded: the same weights in every process
    x2d, y3d = random_windows(lifter, settings.batch, settings.seed)
    rows = shard(settings.batch, processes.rank, processes.world)
    optimizer = torch.optim.AdamW(lifter.parameters(), lr=1e-5)

    def step() -> torch.Tensor:
        lifter.train()
        return training.train_step(lifter, optimizer, x2d[rows], y3d[rows], bf16=settings.dtype == "bf16",
                                   processes=processes, rows=settings.batch)

    return time_call(step, settings.torch_device, settings.repeats, settings.warmup).seconds


def measure_scaling(name: str, settings: PerfSettings, devices: int) -> dict:
    """One row of the scaling table: {"model", "devices", "windows_per_s_1", "windows_per_s_n", "speedup", "note"}.

    Raises:
        ValueError: ``devices`` < 2, or more CUDA processes than GPUs.
    """
    if devices < 2:
        raise ValueError(f"--devices: expected an integer >= 2 (processes to compare with one), got {devices}")
    device = settings.torch_device
    if device.type == "cuda" and devices > torch.cuda.device_count():
        raise ValueError(f"--devices {devices}: one GPU per process, but this machine has "
                         f"{torch.cuda.device_count()}")
    one = settings.batch / step_seconds(name, settings)
    many = settings.batch / _spawned_step_seconds(name, settings, devices)
    speedup = many / one
    where = (f"{devices} GPUs" if device.type == "cuda" else
             f"{devices} processes share {os.cpu_count()} CPU cores ({torch.get_num_threads()} threads in one)")
    note = "" if speedup >= GAIN else f"no gain on this hardware: {where}"
    return {"model": name, "devices": devices, "windows_per_s_1": one, "windows_per_s_n": many, "speedup": speedup,
            "note": note}


def _spawned_step_seconds(name: str, settings: PerfSettings, devices: int) -> float:
    """The leader's :func:`step_seconds` with ``devices`` processes spawned on this machine."""
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    with socket.socket() as probe:   # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    threads = max(1, torch.get_num_threads() // devices)
    mp.start_processes(_worker, args=(name, settings, devices, port, threads, results), nprocs=devices,
                       start_method="spawn")
    return results.get()


def _worker(rank: int, name: str, settings: PerfSettings, devices: int, port: int, threads: int, results) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(devices), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    processes = from_environment(devices)
    device = processes.device(settings.torch_device.type)
    processes.start(device)
    try:
        seconds = step_seconds(name, settings.replace(device=str(device)), processes)
    finally:
        processes.stop()
    if processes.leader:
        results.put(seconds)


def scaling_table(rows: list[dict]) -> str:
    """The table ``bench perf --devices N`` prints: one row per lifter."""
    devices = rows[0]["devices"] if rows else "N"
    headers = ["lifter", "train win/s, 1 process", f"train win/s, {devices} processes", "speed-up", "note"]
    table = [[row["model"], format_number(row["windows_per_s_1"]), format_number(row["windows_per_s_n"]),
              f"{row['speedup']:.2f}x", row["note"]] for row in rows]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
