"""Build the lifter a run configuration names: vanilla from the registry, or wrapped by the part-based wrapper."""
from __future__ import annotations

import functools

import torch

import baselines
from baselines.base import Lifter
from bench.runs.config import ConfigError
from bench.skeleton import NUM_JOINTS


@functools.cache
def is_part_based(name: str) -> bool:
    """Whether the registered lifter ``name`` is part-based itself (e.g. pafuse); cached: a meta build takes ~0.5 s."""
    from parts import PartLifter

    with torch.device("meta"):
        return isinstance(baselines.create_lifter(name), PartLifter)


def create(name: str, *, joints: int, frames: int, part_based: bool, parts: dict, model_args: dict) -> Lifter:
    """``name`` wrapped by the part-based wrapper when ``part_based`` (unless it is part-based already), else from
    the registry; ``parts`` go to whichever takes them (a vanilla lifter refuses them with a TypeError)."""
    if part_based and not is_part_based(name):
        from parts import part_based as wrap

        return wrap(name, joints=joints, frames=frames, **parts, **model_args)
    return baselines.create_lifter(name, joints=joints, frames=frames, **parts, **model_args)


def build_lifter(config: dict) -> Lifter:
    """The (untrained) lifter of a resolved configuration, at 134 joints and ``config['frames']`` frames."""
    name, part_based = config["model"], config["part_based"]
    options = {key: value for key, value in config["parts"].items() if value is not None}
    if part_based and is_part_based(name):
        raise ConfigError(f"model {name!r} is part-based already: drop --part-based")
    try:
        return create(name, joints=NUM_JOINTS, frames=config["frames"], part_based=part_based, parts=options,
                      model_args=dict(config["model_args"]))
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
