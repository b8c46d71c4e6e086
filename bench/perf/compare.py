"""``bench perf --compare`` and ``--sweep``: each fast path timed against its plain counterpart, and scaling.

Fast paths (``FAST_PATHS``), each timed side by side in one process, interleaved (``bench.perf.time_calls``):

* ``sampler``: each sampler path (``baselines.diffusion.SAMPLER_PATHS``: all H hypotheses and both flips in one
  denoiser forward per DDIM step, or one forward per hypothesis and flip) against the reference's way, one forward
  per flip with the H hypotheses batched; same noise, so the samples must agree. The note marks the device's
  default.
* ``part-based``: the part-based version of a lifter against the vanilla one at the same parameter budget
  (``widths="match"`` unless other part options are given; for a lifter that is part-based already, e.g. pafuse,
  its vanilla counterpart is the lifter it wraps, e.g. d3dp). Different models, so no output check.
* ``bf16``: bf16 autocast against fp32.
* ``compile``: ``torch.compile`` of the networks against eager; only with a backend given (inductor compiles for
  minutes on CPU), and reported as unavailable when compiling fails.
* ``fused-attention``: the default kernels (fused ``scaled_dot_product_attention`` from
  ``baselines.layers.FUSED_MIN_TOKENS`` tokens, explicit softmax below) and the fused kernel everywhere, each against
  the explicit softmax everywhere (the reference code's), for the forward and the training step.

Rows report ``speedup = plain time / fast time`` (above 1: the fast path wins) and, where both sides compute the
same function, the largest absolute difference of their outputs (metres).
"""
from __future__ import annotations

import contextlib
import copy
import time

import torch
from tabulate import tabulate
from timm.layers.attention import Attention

from baselines.base import count_parameters
from baselines.diffusion import REFERENCE_SAMPLER, SAMPLER_PATHS, GaussianDiffusion, default_sampler
from baselines.layers import FUSED_MIN_TOKENS
from bench.perf.measure import (
    MB,
    OPERATIONS,
    PerfSettings,
    format_number,
    make_lifter,
    measure_lifter,
    predictor,
    synchronize,
    time_calls,
    train_step,
)
from bench.runs.lifters import compile_networks, is_part_based

FAST_PATHS = ("sampler", "part-based", "bf16", "compile", "fused-attention")
SAMPLER_LABELS = {"together": "1 forward/step (all H + flip)", "per-flip": "1 forward per flip (all H)",
                  "per-hypothesis": "1 forward per hypothesis and flip"}
SWEEP_AXES = {"frames": OPERATIONS, "joints": OPERATIONS, "batch": ("train", "infer"),
              "hypotheses": ("sample",), "steps": ("sample",)}
"""Settings a sweep can vary, and the operations worth re-measuring for each."""


@contextlib.contextmanager
def _attribute(modules: list[torch.nn.Module], name: str, value):
    """Set attribute ``name`` of every module in ``modules`` to ``value``, yield their count, then restore."""
    before = [getattr(module, name) for module in modules]
    for module in modules:
        setattr(module, name, value)
    try:
        yield len(modules)
    finally:
        for module, old in zip(modules, before):
            setattr(module, name, old)


def sampler_path(lifter: torch.nn.Module, sampler: str | None):
    """Set the sampler path of every diffusion inside ``lifter`` (see ``GaussianDiffusion.sample``), then restore."""
    return _attribute([m for m in lifter.modules() if isinstance(m, GaussianDiffusion)], "sampler", sampler)


def attention_modules(lifter: torch.nn.Module) -> list[Attention]:
    """Every timm attention module inside ``lifter``."""
    return [m for m in lifter.modules() if isinstance(m, Attention)]


def attention_path(lifter: torch.nn.Module, fused: bool | None):
    """Pin every timm attention of ``lifter`` to fused SDPA (True) or explicit softmax (False), or to its device's
    default (None, ``baselines.layers.Attention`` only), then restore."""
    return _attribute(attention_modules(lifter), "fused_attn", fused)


def _row(model: str, fast_path: str, operation: str, fast: str, plain: str, **fields) -> dict:
    return {"model": model, "fast_path": fast_path, "operation": operation, "fast": fast, "plain": plain,
            "fast_ms": None, "plain_ms": None, "speedup": None, "max_abs_diff": None, "fast_peak_mb": None,
            "plain_peak_mb": None, "note": "", **fields}


def _timed_row(row: dict, fast, plain, settings: PerfSettings, check: bool) -> dict:
    """Fill ``row`` with the interleaved timings of two closures, and their output difference when ``check``."""
    difference = None
    if check:
        difference = (fast().float() - plain().float()).abs().max().item()
    fast_time, plain_time = time_calls([fast, plain], settings.torch_device, settings.repeats, settings.warmup)
    return dict(row, fast_ms=fast_time.seconds * 1e3, plain_ms=plain_time.seconds * 1e3,
                speedup=plain_time.seconds / fast_time.seconds, max_abs_diff=difference,
                fast_peak_mb=fast_time.peak_bytes / MB, plain_peak_mb=plain_time.peak_bytes / MB)


def _with_path(context, fn):
    """``fn`` run inside ``context()`` (a fresh context manager per call)."""
    def call():
        with context():
            return fn()
    return call


def sampler_rows(name: str, lifter, settings: PerfSettings) -> list[dict]:
    """Every other sampler path against the reference's (one forward per flip), sampling as the evaluation does."""
    if not lifter.generative:
        return []
    operation = f"sample H={settings.hypotheses} K={settings.steps} flip, B={settings.sample_batch}"
    sample = predictor(lifter, settings.sample_batch, settings.dtype == "bf16", hypotheses=settings.hypotheses,
                       steps=settings.steps, flip=True, seed=settings.seed)
    diffusion = next(m for m in lifter.modules() if isinstance(m, GaussianDiffusion))
    default = default_sampler(settings.torch_device, diffusion.denoiser)
    note = f"default on {settings.torch_device.type}: {default}" + (" (the reference's way)"
                                                                  if default == REFERENCE_SAMPLER else "")
    plain = _with_path(lambda: sampler_path(lifter, REFERENCE_SAMPLER), sample)
    return [_timed_row(_row(name, "sampler", operation, SAMPLER_LABELS[path], SAMPLER_LABELS[REFERENCE_SAMPLER],
                            note=note),
                       _with_path(lambda p=path: sampler_path(lifter, p), sample), plain, settings, check=True)
            for path in SAMPLER_PATHS if path != REFERENCE_SAMPLER]


def counterparts(name: str, settings: PerfSettings) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(vanilla, part-based) versions of ``name`` at the same parameter budget; eager, on the settings' device."""
    eager = settings.replace(compile=None, parts={"widths": "match", **settings.parts})
    if not is_part_based(name):
        return make_lifter(name, eager, part_based=False), make_lifter(name, eager, part_based=True)
    part = make_lifter(name, eager)
    base = part.options["lifter"]
    vanilla = make_lifter(base, eager.replace(model_args={}, per_lifter={base: settings.lifter_model_args(name)}),
                          part_based=False)
    return vanilla, part


def part_rows(name: str, settings: PerfSettings) -> list[dict]:
    """Part-based against vanilla at the same budget: the forward (batch B) and the training step."""
    try:
        vanilla, part = counterparts(name, settings)
    except ValueError as error:
        return [_row(name, "part-based", "forward", "part-based", "vanilla", note=f"cannot build: {error}")]
    counts = [count_parameters(model) for model in (part, vanilla)]
    labels = (f"part-based, {counts[0]:,} params", f"vanilla, {counts[1]:,} params")
    bf16, batch = settings.dtype == "bf16", settings.batch
    forward = _timed_row(_row(name, "part-based", f"forward, B={batch}", *labels),
                         predictor(part, batch, bf16, seed=settings.seed),
                         predictor(vanilla, batch, bf16, seed=settings.seed), settings, check=False)
    train = _timed_row(_row(name, "part-based", f"train step, B={batch}", *labels),
                       train_step(part, batch, bf16, settings.seed), train_step(vanilla, batch, bf16, settings.seed),
                       settings, check=False)
    return [forward, train]


def bf16_rows(name: str, lifter, settings: PerfSettings) -> list[dict]:
    """bf16 autocast against fp32: the training step and the forward (batch B)."""
    batch = settings.batch
    train = _timed_row(_row(name, "bf16", f"train step, B={batch}", "bf16 autocast", "fp32"),
                       train_step(lifter, batch, True, settings.seed), train_step(lifter, batch, False, settings.seed),
                       settings, check=False)
    forward = _timed_row(_row(name, "bf16", f"forward, B={batch}", "bf16 autocast", "fp32"),
                         predictor(lifter, batch, True, seed=settings.seed),
                         predictor(lifter, batch, False, seed=settings.seed), settings, check=True)
    return [train, forward]


def compile_rows(name: str, lifter, settings: PerfSettings) -> list[dict]:
    """``torch.compile`` (settings.compile backend) against eager: the forward and the training step (batch B)."""
    backend, batch, bf16 = settings.compile, settings.batch, settings.dtype == "bf16"
    labels = (f"torch.compile ({backend})" if backend else "torch.compile", "eager")
    rows = [_row(name, "compile", f"forward, B={batch}", *labels),
            _row(name, "compile", f"train step, B={batch}", *labels)]
    if not backend:
        return [dict(row, note="skipped: pass --compile [BACKEND] (inductor compiles for minutes on CPU)")
                for row in rows]
    compiled = copy.deepcopy(lifter)
    compile_networks(compiled, backend=backend)
    device = settings.torch_device
    # The compiled forward is checked against eager before any training step moves the compiled copy's weights.
    fast_predict = predictor(compiled, batch, bf16, seed=settings.seed)
    try:
        seconds = _first_call_seconds(fast_predict, device)
    except Exception as error:  # whatever the compiler raises means "unavailable here"
        return [_unavailable(row, error) for row in rows]
    forward = _timed_row(dict(rows[0], note=f"first call (compiling) {seconds:.1f} s"), fast_predict,
                         predictor(lifter, batch, bf16, seed=settings.seed), settings, check=True)
    fast_train = train_step(compiled, batch, bf16, settings.seed)
    try:
        seconds = _first_call_seconds(fast_train, device)
    except Exception as error:  # as above, for the backward graph
        return [forward, _unavailable(rows[1], error)]
    train = _timed_row(dict(rows[1], note=f"first call (compiling) {seconds:.1f} s"), fast_train,
                       train_step(lifter, batch, bf16, settings.seed), settings, check=False)
    return [forward, train]


def _unavailable(row: dict, error: Exception) -> dict:
    return dict(row, note=f"unavailable: {type(error).__name__}: {str(error).splitlines()[0][:120]}")


def _first_call_seconds(fn, device: torch.device) -> float:
    """Seconds of one call of ``fn`` (for a freshly compiled network: mostly compiling)."""
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def attention_rows(name: str, lifter, settings: PerfSettings) -> list[dict]:
    """The default attention kernels (by sequence length) and the fused kernel everywhere, each against the explicit
    softmax everywhere (the reference's way): the forward and the training step."""
    count = len(attention_modules(lifter))
    batch, bf16 = settings.batch, settings.dtype == "bf16"
    operations = {f"forward, B={batch}": (predictor(lifter, batch, bf16, seed=settings.seed), True),
                  f"train step, B={batch}": (train_step(lifter, batch, bf16, settings.seed), False)}
    threshold = FUSED_MIN_TOKENS.get(settings.torch_device.type, 0)
    paths = {f"default: fused from {threshold} tokens" if threshold else "default: fused SDPA": None,
             "fused SDPA everywhere": True}
    if not count:
        return [_row(name, "fused-attention", operation, label, "explicit softmax", note="no timm attention modules")
                for operation in operations for label in paths]
    note = f"{count} attention modules"
    return [_timed_row(_row(name, "fused-attention", operation, label, "explicit softmax", note=note),
                       _with_path(lambda fused=fused: attention_path(lifter, fused), fn),
                       _with_path(lambda: attention_path(lifter, False), fn), settings, check=check)
            for operation, (fn, check) in operations.items() for label, fused in paths.items()]


def compare_lifter(name: str, settings: PerfSettings, paths=FAST_PATHS) -> list[dict]:
    """The fast ``paths`` of ``name`` (default: all) against their plain counterparts (see the module docstring)."""
    unknown = sorted(set(paths) - set(FAST_PATHS))
    if unknown:
        raise ValueError(f"--compare: unknown fast path(s) {', '.join(unknown)}; known: {', '.join(FAST_PATHS)}")
    try:
        lifter = make_lifter(name, settings.replace(compile=None))
    except ValueError as error:
        return [_row(name, path, "", "", "", note=f"cannot build: {error}") for path in paths]
    rows = {"sampler": lambda: sampler_rows(name, lifter, settings), "part-based": lambda: part_rows(name, settings),
            "bf16": lambda: bf16_rows(name, lifter, settings), "compile": lambda: compile_rows(name, lifter, settings),
            "fused-attention": lambda: attention_rows(name, lifter, settings)}
    return [row for path in FAST_PATHS if path in paths for row in rows[path]()]


def compare_table(rows: list[dict]) -> str:
    """The table ``bench perf --compare`` prints."""
    table = [[row["model"], row["fast_path"], row["operation"], row["fast"], row["plain"],
              format_number(row["fast_ms"]), format_number(row["plain_ms"]), format_number(row["speedup"], 2),
              "" if row["max_abs_diff"] is None else f"{row['max_abs_diff']:.1e}", row["note"]] for row in rows]
    return tabulate(table, headers=["lifter", "fast path", "operation", "fast", "plain", "fast ms", "plain ms",
                                    "speedup", "max abs diff (m)", "note"], tablefmt="github", disable_numparse=True)


def parse_sweep(text: str) -> tuple[str, list[int]]:
    """``"frames=27,81,243"`` -> ("frames", [27, 81, 243]); the axis must be one of ``SWEEP_AXES``."""
    axis, sep, values = text.partition("=")
    if not sep or axis not in SWEEP_AXES:
        raise ValueError(f"--sweep: expected AXIS=V1,V2,... with AXIS one of {', '.join(SWEEP_AXES)}, got {text!r}")
    try:
        numbers = [int(v) for v in values.split(",") if v.strip()]
    except ValueError as error:
        raise ValueError(f"--sweep {axis}: expected comma-separated integers, got {values!r}") from error
    if not numbers or min(numbers) < 1:
        raise ValueError(f"--sweep {axis}: expected integers >= 1, got {values!r}")
    return axis, numbers


def sweep_rows(models: list[str], settings: PerfSettings, axis: str, values: list[int]) -> list[dict]:
    """``measure_lifter`` rows of every model at every value of ``axis``, each with "axis" and "value" added."""
    rows = []
    for value in values:
        for name in models:
            row = measure_lifter(name, settings.replace(**{axis: value}), operations=SWEEP_AXES[axis])
            if SWEEP_AXES[axis] == ("sample",) and row["generative"] is False:
                row["note"] = "deterministic: no sampling"
            rows.append({"axis": axis, "value": value, **row})
    return rows


def sweep_table(rows: list[dict], settings: PerfSettings) -> str:
    """One sweep's table: how time and memory grow with the swept setting."""
    axis = rows[0]["axis"] if rows else "value"
    table = [[row["value"], row["model"] + (" (parts)" if row["part_based"] else ""),
              format_number(row["parameters"]), format_number(row["train_windows_per_s"]),
              format_number(row["infer_latency_ms"]), format_number(row["infer_windows_per_s"]),
              format_number(row["sample_ms"]), format_number(max(row["peak_memory_mb"].values(), default=None), 0),
              row["note"]] for row in rows]
    batch = "B" if axis == "batch" else f"B={settings.batch}"
    return tabulate(table, headers=[axis, "lifter", "parameters", f"train win/s ({batch})", "infer ms (B=1)",
                                    f"infer win/s ({batch})", "sample ms", "peak MB", "note"],
                    tablefmt="github", disable_numparse=True)
