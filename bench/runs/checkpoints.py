"""Checkpoints: a run's trained model (``load_model``, for ``bench eval`` and ``bench lift``), and writing them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from baselines.base import Lifter
from bench.errors import CheckpointError
from bench.io import atomic_path
from bench.runs import config as cfg
from bench.runs.lifters import build_from_config
from bench.skeleton import NUM_JOINTS, NUM_KEYPOINTS


@dataclass(frozen=True)
class Model:
    """A trained lifter and where it came from."""

    lifter: Lifter
    config: dict
    checkpoint: Path
    epoch: int


def load_weights(lifter: torch.nn.Module, path: Path, device: torch.device) -> int:
    """Load ``path`` strictly into ``lifter``; the error lists missing, unexpected and mis-shaped keys."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # a truncated or foreign file: say which, whatever torch raises
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict")
    own = lifter.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        def some(keys):
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
        raise CheckpointError(f"{path}: does not match the model: missing keys [{some(missing)}], unexpected keys "
                              f"[{some(unexpected)}], different shapes [{some(shapes)}]")
    lifter.load_state_dict(state)
    return int(checkpoint.get("epoch", -1))


def load_model(run: str | Path | None = None, checkpoint: str | Path | None = None,
               device: str | torch.device | None = None) -> Model:
    """The lifter of a run folder with its weights.

    Args:
        run: a run folder (``config.yaml``, ``best.pt``); without it the folder of ``checkpoint``.
        checkpoint: weights to load (default ``run/best.pt``).
        device: where the lifter runs (default: the run's configured device).

    Raises:
        CheckpointError: no configuration, or weights that do not fit the configured model (e.g. another
            joint layout).
    """
    if run is None and checkpoint is None:
        raise ValueError("this command needs a trained model: pass --run DIR or --checkpoint FILE")
    folder = Path(run) if run is not None else Path(checkpoint).parent
    config_path = folder / "config.yaml"
    if not config_path.exists():
        raise CheckpointError(f"{config_path}: no run configuration; expected a run folder holding config.yaml "
                              "(pass --run DIR with the checkpoint's run folder)")
    config = cfg.merge(cfg.DEFAULTS, cfg.load_yaml(config_path), str(config_path))
    device = torch.device(device or config["device"])
    lifter = build_from_config(config).to(device)
    path = Path(checkpoint) if checkpoint is not None else folder / "best.pt"
    try:
        epoch = load_weights(lifter, path, device)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; expected weights of the run's {config['model']} model over the "
                              f"{NUM_JOINTS}-joint whole-body layout ({NUM_KEYPOINTS} COCO-WholeBody keypoints plus "
                              f"the pelvis), {config['frames']} frames, as configured in {config_path}") from error
    lifter.eval()
    return Model(lifter, config, path, epoch)


def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` ``payload`` to ``path`` atomically: the file appears whole or not at all."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
