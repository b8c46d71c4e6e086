"""Build the lifter a run configuration names: vanilla from the registry, or wrapped by the part-based wrapper."""
from __future__ import annotations

import torch

import baselines
from baselines.base import Lifter
from bench.config import ConfigError
from bench.skeleton import NUM_JOINTS


def build_lifter(config: dict) -> Lifter:
    """The (untrained) lifter of a resolved configuration, at 134 joints and ``config['frames']`` frames."""
    name, frames, model_args = config["model"], config["frames"], dict(config["model_args"])
    try:
        if config["part_based"]:
            from parts import part_based

            options = {k: v for k, v in config["parts"].items() if v is not None}
            return part_based(name, joints=NUM_JOINTS, frames=frames, **options, **model_args)
        return baselines.create_lifter(name, joints=NUM_JOINTS, frames=frames, **model_args)
    except TypeError as error:
        raise ConfigError(f"model {name!r} does not accept these options {sorted(model_args)}: {error}") from error


def compile_networks(lifter: torch.nn.Module) -> None:
    """``torch.compile`` every deterministic network inside ``lifter`` (for D3DP and PAFUSE: the denoisers).

    Compiling the networks rather than the lifter keeps ``loss`` and ``predict`` (Python control flow around the
    networks, e.g. the DDIM loop) eager, and works the same for vanilla and part-based lifters.
    """
    for module in lifter.modules():
        if isinstance(module, Lifter) and not module.generative and type(module).__module__.startswith("baselines"):
            module.compile()
