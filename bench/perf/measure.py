"""``bench perf``: what each lifter costs, measured: parameters, training and inference speed, sampling, memory.

Every figure is the **median** of ``repeats`` timed calls after ``warmup`` untimed ones (which also absorb one-off
costs: allocator growth, cuDNN/oneDNN autotuning, ``torch.compile``). On CUDA the device is synchronised before and
after each timed call, so a time covers the work, not just its launch.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` over the timed calls (the counter is reset before each),
i.e. what that operation holds at its peak, weights and optimizer state included. On CPU it is **process-wide**: the
peak resident set size of the whole process (interpreter, libraries, every model alive), reset before each timed call
through Linux's ``/proc/self/clear_refs``; where that is not available, ``resource.getrusage``'s peak, which never
decreases, so it reads as "the process needed at most this much so far" and only grows along a table.

Operations (B windows, N frames, J joints, H hypotheses, K DDIM steps):

* train step: forward + backward + optimizer step (AdamW) on B random windows, reported as windows/s;
* inference: one ``predict`` without flip (one hypothesis, one step for diffusion models), at batch 1 (latency
  per window) and at batch B (windows/s);
* sampling (generative lifters): ``predict`` with H hypotheses, K steps and flip test-time augmentation, as the
  evaluation runs it, per batch of ``sample_batch`` windows.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tabulate import tabulate

from baselines.base import Lifter, count_parameters
from bench.data.windows import WindowSpec
from bench.runs import training
from bench.runs.evaluation import autocast
from bench.runs.lifters import build, compile_networks, is_part_based
from bench.skeleton import FLIP_PERMUTATION, NUM_JOINTS

DTYPES = ("fp32", "bf16")
OPERATIONS = ("train", "infer", "sample")
MB = 2 ** 20


@dataclass(frozen=True)
class PerfSettings:
    """What to measure and how.

    Attributes:
        joints, frames: J and N of every lifter (part-based lifters need J = 134).
        hypotheses, steps: H and K of the sampling measurement.
        batch: B windows of the training step and of the inference throughput.
        sample_batch: windows per sampling call (each is expanded to H hypotheses x 2 flips inside).
        device: "cpu", "cuda" or "cuda:N".
        dtype: "fp32" or "bf16" (bf16 autocast around every operation).
        compile: a ``torch.compile`` backend for the networks (``bench.runs.lifters.compile_networks``), or None.
        repeats, warmup: timed and untimed calls per measurement.
        part_based: wrap every whole-body lifter with the part-based wrapper.
        model_args: the arguments of every lifter (e.g. ``{"width": 128}``).
        per_lifter: the arguments of one lifter, {name: model_args}, applied after ``model_args``.
        parts: part-based options (``parts.part_based`` keywords, e.g. ``{"widths": "match"}``).
        seed: seed of the weights and of the random inputs.
    """

    joints: int = NUM_JOINTS
    frames: int = 27
    hypotheses: int = 20
    steps: int = 10
    batch: int = 16
    sample_batch: int = 1
    device: str = "cpu"
    dtype: str = "fp32"
    compile: str | None = None
    repeats: int = 5
    warmup: int = 1
    part_based: bool = False
    model_args: dict = field(default_factory=dict)
    per_lifter: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        positive = {name: getattr(self, name) for name in ("joints", "frames", "hypotheses", "steps", "batch",
                                                           "sample_batch", "repeats")}
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"perf settings: {name} must be an integer >= 1, got {value!r}")
        if self.warmup < 0:
            raise ValueError(f"perf settings: warmup must be >= 0, got {self.warmup}")
        if self.dtype not in DTYPES:
            raise ValueError(f"perf settings: dtype must be one of {DTYPES}, got {self.dtype!r}")

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def lifter_model_args(self, name: str) -> dict:
        """The arguments of the lifter ``name``: ``model_args``, then its own in ``per_lifter``."""
        return {**self.model_args, **self.per_lifter.get(name, {})}

    def replace(self, **changes) -> PerfSettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Timing:
    """One measurement: the median seconds per call and the peak memory in bytes (see the module docstring)."""

    seconds: float
    peak_bytes: int


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (CUDA only: CPU work is synchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PROC_STATUS, PROC_CLEAR_REFS = "/proc/self/status", "/proc/self/clear_refs"


def reset_peak_memory(device: torch.device) -> None:
    """Restart the peak counter: CUDA's allocator statistics, or on Linux the process's resident high-water mark."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif resettable_rss():
        with open(PROC_CLEAR_REFS, "w") as clear_refs:
            clear_refs.write("5")   # 5: reset the peak resident set size (VmHWM) to the current one


@functools.cache
def resettable_rss() -> bool:
    """Whether this process can reset and read its resident high-water mark (Linux /proc), tried once."""
    try:
        with open(PROC_CLEAR_REFS, "w") as clear_refs:
            clear_refs.write("5")
        return _vm_hwm_bytes() is not None
    except OSError:
        return False


def _vm_hwm_bytes() -> int | None:
    with open(PROC_STATUS) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024   # reported in kB
    return None


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory since the last ``reset_peak_memory`` (see ``memory_kind``)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if resettable_rss():
        return _vm_hwm_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere


def memory_kind(device: torch.device) -> str:
    """How ``peak_memory_bytes`` is measured on ``device``, for reports."""
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated per operation (reset before each timed call)"
    if resettable_rss():
        return "process peak RSS per operation (Linux VmHWM, reset before each timed call; includes the process)"
    return "process peak RSS (getrusage ru_maxrss): cumulative over the whole run, never decreases"


def time_calls(fns: list[Callable[[], object]], device: torch.device, repeats: int, warmup: int) -> list[Timing]:
    """Median wall time and peak memory of each of ``fns``, timed in turn within every repeat.

    Interleaving puts the functions under the same conditions when other processes share the machine (a burst
    of load slows one repeat of each, not every repeat of one). Each function gets ``warmup`` untimed calls first.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    seconds: list[list[float]] = [[] for _ in fns]
    peaks = [0] * len(fns)
    for _ in range(repeats):
        for index, fn in enumerate(fns):
            synchronize(device)
            reset_peak_memory(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            seconds[index].append(time.perf_counter() - start)
            peaks[index] = max(peaks[index], peak_memory_bytes(device))
    return [Timing(statistics.median(s), peak) for s, peak in zip(seconds, peaks)]


def time_call(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> Timing:
    """Median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, and the peak memory."""
    return time_calls([fn], device, repeats, warmup)[0]


def machine_info(settings: PerfSettings) -> dict:
    """The machine and software the figures were taken on."""
    device = settings.torch_device
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "dtype": settings.dtype,
        "compile": settings.compile,
        "memory": memory_kind(device),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_lifter(name: str, settings: PerfSettings, part_based: bool | None = None) -> Lifter:
    """The lifter ``name`` at the settings' J, N and sizes, on the settings' device, compiled if asked.

    Args:
        name: a registered lifter.
        settings: sizes and options.
        part_based: wrap it with the part-based wrapper (default: ``settings.part_based``); ignored for lifters
            that are part-based already, which take ``settings.parts`` themselves.

    Raises:
        ValueError: the lifter does not accept these sizes or options (the message names them).
    """
    part_based = settings.part_based if part_based is None else part_based
    args = settings.lifter_model_args(name)
    parts = settings.parts if part_based or is_part_based(name) else {}
    torch.manual_seed(settings.seed)
    try:
        lifter = build(name, joints=settings.joints, frames=settings.frames, part_based=part_based, parts=parts,
                       model_args=args)
    except TypeError as error:
        raise ValueError(f"{name}: does not accept {sorted({**settings.parts, **args})}: {error}") from error
    lifter = lifter.to(settings.torch_device)
    if settings.compile:
        compile_networks(lifter, backend=settings.compile)
    return lifter


def random_windows(lifter: Lifter, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 2D windows (B, L, J, 2) in [-1, 1] and 3D targets (B, L, J, 3) in metres, L = the input length."""
    device = next(lifter.parameters()).device
    frames = WindowSpec.for_lifter(lifter).frames_in
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x2d = torch.rand(batch, frames, lifter.joints, 2, generator=generator) * 2 - 1
    y3d = torch.randn(batch, frames, lifter.joints, 3, generator=generator) * 0.3
    return x2d.to(device), y3d.to(device)


def flip_permutation(lifter: Lifter) -> torch.Tensor:
    """The j134 mirror permutation; at other joint counts the identity order (same cost: it is only a gather)."""
    device = next(lifter.parameters()).device
    if lifter.joints == NUM_JOINTS:
        return torch.as_tensor(FLIP_PERMUTATION, device=device)
    return torch.arange(lifter.joints, device=device)


def train_step(lifter: Lifter, batch: int, bf16: bool, seed: int = 0) -> Callable[[], torch.Tensor]:
    """A closure running one training step (forward, backward, AdamW step) on a fixed random batch."""
    x2d, y3d = random_windows(lifter, batch, seed)
    optimizer = torch.optim.AdamW(lifter.parameters(), lr=1e-5)

    def step() -> torch.Tensor:
        lifter.train()
        return training.train_step(lifter, optimizer, x2d, y3d, bf16=bf16)

    return step


def predictor(lifter: Lifter, batch: int, bf16: bool, *, hypotheses: int = 1, steps: int = 1, flip: bool = False,
              seed: int = 0) -> Callable[[], torch.Tensor]:
    """A closure returning ``predict`` (B, H, N_out, J, 3) on a fixed random batch, with seeded sampling noise.

    The noise generator is re-seeded on every call, so two closures over equal lifters return equal outputs.
    """
    x2d, _ = random_windows(lifter, batch, seed)
    permutation = flip_permutation(lifter) if flip else None

    def predict() -> torch.Tensor:
        lifter.eval()
        options = {}
        if lifter.generative:
            options["generator"] = torch.Generator(device=x2d.device).manual_seed(seed)
        with autocast(x2d.device, bf16):
            return lifter.predict(x2d, hypotheses=hypotheses, steps=steps, flip_permutation=permutation, **options)

    return predict


def measure_lifter(name: str, settings: PerfSettings, operations=OPERATIONS) -> dict:
    """One row of the perf table for the registered lifter ``name``.

    Returns:
        {"model", "part_based", "generative", "parameters", "train_windows_per_s", "infer_latency_ms",
        "infer_windows_per_s", "sample_ms" (per call of ``sample_batch`` windows; None for deterministic lifters),
        "peak_memory_mb": {operation: MB}, "note"}; figures of operations not asked for are None. A lifter that
        cannot be built at these settings gives a row of None with the reason in "note".
    """
    row = {"model": name, "part_based": settings.part_based or is_part_based(name), "generative": None,
           "parameters": None,
           "train_windows_per_s": None, "infer_latency_ms": None, "infer_windows_per_s": None, "sample_ms": None,
           "peak_memory_mb": {}, "note": ""}
    try:
        lifter = make_lifter(name, settings)
    except ValueError as error:
        return dict(row, note=f"cannot build: {error}")
    row.update(parameters=count_parameters(lifter), generative=lifter.generative)
    device, bf16 = settings.torch_device, settings.dtype == "bf16"
    timed = functools.partial(time_call, device=device, repeats=settings.repeats, warmup=settings.warmup)
    if "train" in operations:
        timing = timed(train_step(lifter, settings.batch, bf16, settings.seed))
        row["train_windows_per_s"] = settings.batch / timing.seconds
        row["peak_memory_mb"]["train"] = timing.peak_bytes / MB
    if "infer" in operations:
        row["infer_latency_ms"] = timed(predictor(lifter, 1, bf16, seed=settings.seed)).seconds * 1e3
        timing = timed(predictor(lifter, settings.batch, bf16, seed=settings.seed))
        row["infer_windows_per_s"] = settings.batch / timing.seconds
        row["peak_memory_mb"]["infer"] = timing.peak_bytes / MB
    if "sample" in operations and lifter.generative:
        timing = timed(predictor(lifter, settings.sample_batch, bf16, hypotheses=settings.hypotheses,
                                 steps=settings.steps, flip=True, seed=settings.seed))
        row["sample_ms"] = timing.seconds * 1e3
        row["peak_memory_mb"]["sample"] = timing.peak_bytes / MB
    return row


def format_number(value, digits: int = 1) -> str:
    """A table cell: thousands separators, ``digits`` decimals for floats, empty for None."""
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"


def perf_table(rows: list[dict], settings: PerfSettings) -> str:
    """The table ``bench perf`` prints: one row per lifter."""
    headers = ["lifter", "parameters", f"train win/s (B={settings.batch})", "infer ms (B=1)",
               f"infer win/s (B={settings.batch})", f"sample ms (H={settings.hypotheses} K={settings.steps} flip, "
               f"B={settings.sample_batch})", "peak MB", "note"]
    table = [[row["model"] + (" (parts)" if row["part_based"] else ""), format_number(row["parameters"]),
              format_number(row["train_windows_per_s"]), format_number(row["infer_latency_ms"]),
              format_number(row["infer_windows_per_s"]), format_number(row["sample_ms"]),
              format_number(max(row["peak_memory_mb"].values(), default=None), 0), row["note"]] for row in rows]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
