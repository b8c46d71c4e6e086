"""The one way the harness builds a lifter: vanilla from the registry, or wrapped by the part-based wrapper.

Both registries meet here: ``baselines`` registers the whole-body lifters and ``parts`` registers PAFUSE, so the
harness lists, checks and builds lifters through this module and never through either package alone.
"""
from __future__ import annotations

import contextlib
import functools

import torch

from baselines.base import Lifter, count_parameters
from baselines.registry import create_lifter, is_lifter, list_lifters
from bench.errors import ConfigError
from bench.skeleton import NUM_JOINTS
from parts import PartLifter, part_counts
from parts import part_based as wrap_in_parts

__all__ = ["build", "build_from_config", "compile_networks", "is_lifter", "is_part_based", "lifter_rows",
           "list_lifters", "pafuse_variant_rows", "part_based_rows"]


def build(name: str, *, joints: int = NUM_JOINTS, frames: int = 27, part_based: bool = False,
          parts: dict | None = None, model_args: dict | None = None, meta: bool = False) -> Lifter:
    """The lifter ``name``, part-based when asked (a lifter that is part-based itself, e.g. pafuse, stays as it is).

    Args:
        name: a registered lifter.
        joints, frames: J and N.
        part_based: wrap a whole-body lifter with :func:`parts.part_based`.
        parts: part-based options (``widths``, ``hands``, ...), for the wrapper or a part-based lifter; a
            vanilla lifter refuses them with a TypeError.
        model_args: the lifter's arguments (e.g. ``width``, ``depth``).
        meta: build on the meta device: no memory, no initialisation, for counting parameters and checking options.
    """
    options, model_args = dict(parts or {}), dict(model_args or {})
    with torch.device("meta") if meta else contextlib.nullcontext():
        if part_based and not is_part_based(name):
            return wrap_in_parts(name, joints=joints, frames=frames, **options, **model_args)
        return create_lifter(name, joints=joints, frames=frames, **options, **model_args)


@functools.cache
def is_part_based(name: str) -> bool:
    """Whether the registered lifter ``name`` is part-based itself (e.g. pafuse); cached per name."""
    return isinstance(build(name, meta=True), PartLifter)


def build_from_config(config: dict, meta: bool = False) -> Lifter:
    """The (untrained) lifter of a resolved configuration, at 134 joints and ``config['frames']`` frames."""
    name, part_based = config["model"], config["part_based"]
    options = {key: value for key, value in config["parts"].items() if value is not None}
    try:
        return build(name, frames=config["frames"], part_based=part_based, parts=options,
                     model_args=config["model_args"], meta=meta)
    except TypeError as error:
        hint = "" if part_based or not options else " (part options need --part-based)"
        raise ConfigError(f"model {name!r} does not accept these options "
                          f"{sorted(options) + sorted(config['model_args'])}{hint}: {error}") from error


def compile_networks(lifter: torch.nn.Module, backend: str = "inductor") -> None:
    """``torch.compile`` every deterministic network inside ``lifter`` (for D3DP and PAFUSE: the denoisers).

    Compiling the networks rather than the lifter keeps ``loss`` and ``predict`` (Python control flow around the
    networks, e.g. the DDIM loop) eager, and works the same for vanilla and part-based lifters. Shapes are marked
    dynamic because part networks share one ``forward`` at several joint counts, and batch sizes vary.
    """
    for module in lifter.modules():
        innermost = not any(isinstance(inner, Lifter) for inner in module.modules() if inner is not module)
        if isinstance(module, Lifter) and not module.generative and innermost:   # the networks, not their wrappers
            module.compile(backend=backend, dynamic=True)


def lifter_rows(joints: int, frames: int, pattern: str = "*") -> list[dict]:
    """One row per registered lifter: its parameter count and window geometry, or why it cannot be built."""
    rows = []
    for name in list_lifters(pattern):
        try:
            model = build(name, joints=joints, frames=frames, meta=True)
        except ValueError as error:
            rows.append(dict(lifter=name, parameters=None, note=str(error)))
            continue
        rows.append(dict(lifter=name, parameters=count_parameters(model), receptive_field=model.receptive_field,
                         output="seq2seq" if model.seq2seq else "receptive field",
                         kind="generative" if model.generative else "deterministic", note=""))
    return rows


def part_based_rows(joints: int, frames: int, widths: str = "balanced", pattern: str = "*") -> list[dict]:
    """Per whole-body lifter: vanilla count, part widths and counts of its part-based version, and their ratio.

    Part-based lifters themselves (e.g. pafuse) are skipped: they are already split.
    """
    rows = []
    for name in list_lifters(pattern):
        if is_part_based(name):
            continue
        try:
            vanilla = build(name, joints=joints, frames=frames, meta=True)
            model = build(name, joints=joints, frames=frames, part_based=True, parts={"widths": widths},
                          meta=True)
        except ValueError as error:
            rows.append(dict(lifter=name, vanilla=None, note=str(error)))
            continue
        vanilla_count, counts = count_parameters(vanilla), part_counts(model)
        rows.append(dict(lifter=name, vanilla=vanilla_count, widths=model.widths, parts=counts,
                         total=counts["total"], ratio=counts["total"] / vanilla_count, note=""))
    return rows


PAFUSE_VARIANTS: dict[str, dict] = {
    "PAFUSE (default: attach roots)": {},
    "reference attach (body nose, wrists)": {"attach": "reference"},
    "only part-frame shift (one network)": {"split": False},
    "only part denoisers (no shift)": {"shift": False},
    "part loss -> WB loss": {"loss": "wb"},
    "MPJPE -> MSE": {"error": "mse"},
    "balanced -> uniform widths": {"widths": "uniform"},
    "hands shared (left mirrored)": {"hands": "shared"},
}
"""The paper's ablations (Tables 2 and 3) and our options, as part options of the registered ``pafuse``."""


def pafuse_variant_rows(joints: int, frames: int) -> list[dict]:
    """Parameter count of vanilla D3DP, every PAFUSE variant at ``frames`` and PAFUSE at N = 81, with the ratio."""
    d3dp = count_parameters(build("d3dp", joints=joints, frames=frames, meta=True))
    variants = [(name, frames, options) for name, options in PAFUSE_VARIANTS.items()] + [("N = 81", 81, {})]
    rows = [dict(variant="D3DP (vanilla)", frames=frames, parameters=d3dp, ratio=1.0)]
    for name, n, options in variants:
        count = count_parameters(build("pafuse", joints=joints, frames=n, parts=options, meta=True))
        rows.append(dict(variant=name, frames=n, parameters=count, ratio=count / d3dp))
    return rows
