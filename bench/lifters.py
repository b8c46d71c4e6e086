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
    options = {key: value for key, value in config["parts"].items() if value is not None}
    try:
        if not config["part_based"]:
            # A lifter registered part-based (pafuse) takes the part options itself; a vanilla one refuses them.
            return baselines.create_lifter(name, joints=NUM_JOINTS, frames=frames, **options, **model_args)
        from parts import PartLifter, part_based

        with torch.device("meta"):
            if isinstance(baselines.create_lifter(name, **model_args), PartLifter):
                raise ConfigError(f"model {name!r} is part-based already: drop --part-based")
        return part_based(name, joints=NUM_JOINTS, frames=frames, **options, **model_args)
    except TypeError as error:
        hint = "" if config["part_based"] or not options else " (part options need --part-based)"
        raise ConfigError(f"model {name!r} does not accept these options "
                          f"{sorted(options) + sorted(model_args)}{hint}: {error}") from error


def compile_networks(lifter: torch.nn.Module, backend: str = "inductor") -> None:
    """``torch.compile`` every deterministic network inside ``lifter`` (for D3DP and PAFUSE: the denoisers).

    Compiling the networks rather than the lifter keeps ``loss`` and ``predict`` (Python control flow around the
    networks, e.g. the DDIM loop) eager, and works the same for vanilla and part-based lifters. Shapes are marked
    dynamic because part networks share one ``forward`` at several joint counts, and batch sizes vary.
    """
    for module in lifter.modules():
        if isinstance(module, Lifter) and not module.generative and type(module).__module__.startswith("baselines"):
            module.compile(backend=backend, dynamic=True)
