"""Checkpoints: reading them without running code, a run's trained model (``load_model``, for ``bench eval`` and
``bench lift``), and writing them.

Every checkpoint this project writes holds only tensors, numbers, strings and plain containers, so it is read with
``torch.load(..., weights_only=True)``: unpickling such a file builds data and never calls code named in the file. A
file that needs more (any other class or function) is refused with a :class:`CheckpointError` naming it, unless the
caller trusts it (``--trust-checkpoint``), which loads it with ``weights_only=False``.
"""
from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from baselines.base import Lifter
from bench.errors import CheckpointError
from bench.io import atomic_path
from bench.runs import config as cfg
from bench.runs.lifters import build_from_config, is_part_based
from bench.skeleton import NUM_JOINTS, NUM_KEYPOINTS

TRUST_HINT = ("pass --trust-checkpoint to load it anyway, only if you trust where the file came from (a file that "
              "needs more than tensors, numbers and plain containers can run any code when it is loaded)")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


@dataclass(frozen=True)
class Model:
    """A trained lifter and where it came from."""

    lifter: Lifter
    config: dict
    checkpoint: Path
    epoch: int


def read_checkpoint(path: str | Path, device: str | torch.device | None = None, trust: bool = False):
    """``torch.load`` a checkpoint with ``weights_only=True`` (``weights_only=False`` with ``trust``).

    Raises:
        CheckpointError: naming the file: missing, empty, truncated or not written by ``torch.save``, or refused
            because it needs a global that ``weights_only`` does not allow (with the name of that global).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint" + (" (a folder)" if path.exists() else ""))
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: an empty file (0 bytes), not a checkpoint")
    try:
        return torch.load(path, map_location=device, weights_only=not trust)
    except pickle.UnpicklingError as error:
        refused = _GLOBAL.search(str(error))
        if refused:
            raise CheckpointError(f"{path}: refused: loading it needs {refused.group(1)}, not only tensors, numbers "
                                  f"and plain containers; {TRUST_HINT}") from None
        raise _unreadable(path, size, error) from None
    except Exception as error:  # a truncated or foreign file: say which, whatever torch raises
        raise _unreadable(path, size, error) from None


def _unreadable(path: Path, size: int, error: Exception) -> CheckpointError:
    text = str(error).strip()
    detail = text.split("WeightsUnpickler error:")[-1].strip().splitlines()[0].split(". ")[0] if text else ""
    return CheckpointError(f"{path}: not a readable checkpoint ({size:,} bytes: truncated, or not written by "
                           f"torch.save; {type(error).__name__}{': ' + detail[:160] if detail else ''})")


def model_name(config: dict) -> str:
    """How checkpoints name the model they hold, e.g. ``pafuse`` or ``mixste (part-based)`` (a lifter that is
    part-based by itself needs no mark)."""
    wrapped = config["part_based"] and not is_part_based(config["model"])
    return config["model"] + (" (part-based)" if wrapped else "")


def check_weights(lifter: torch.nn.Module, checkpoint, path: Path, expected_name: str | None = None) -> dict:
    """The ``model`` state dict of a loaded checkpoint, checked against ``lifter``.

    Raises:
        CheckpointError: not a dict with a ``model`` state dict; a checkpoint saved for another model (both names);
            missing, unexpected or mis-shaped keys (listed).
    """
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict, found "
                              + (f"keys {sorted(map(str, checkpoint))[:8]}" if isinstance(checkpoint, dict)
                                 else type(checkpoint).__name__))
    saved_name = checkpoint.get("model_name")
    other = expected_name is not None and saved_name is not None and saved_name != expected_name
    own = lifter.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state)
                    if not torch.is_tensor(state[k]) or tuple(own[k].shape) != tuple(state[k].shape))
    if other or missing or unexpected or shapes:
        def some(keys):
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
        head = f"{path}: a checkpoint of {saved_name}, not of {expected_name}" if other else str(path)
        keys = (f"missing keys [{some(missing)}], unexpected keys [{some(unexpected)}], different shapes "
                f"[{some(shapes)}]")
        raise CheckpointError(head + (f": does not match the model: {keys}" if missing or unexpected or shapes
                                      else ""))
    return state


def load_model(run: str | Path | None = None, checkpoint: str | Path | None = None,
               device: str | torch.device | None = None, trust_checkpoint: bool = False) -> Model:
    """The lifter of a run folder with its weights.

    Args:
        run: a run folder (``config.yaml``, ``best.pt``); without it the folder of ``checkpoint``.
        checkpoint: weights to load (default ``run/best.pt``).
        device: where the lifter runs (default: the run's configured device).
        trust_checkpoint: load a file that needs more than tensors and plain containers (it may run code).

    Raises:
        CheckpointError: no configuration, weights that do not fit the configured model (e.g. another
            joint layout), or a file that ``weights_only`` refuses.
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
    checkpoint_data = read_checkpoint(path, device, trust_checkpoint)
    try:
        state = check_weights(lifter, checkpoint_data, path, model_name(config))
    except CheckpointError as error:
        raise CheckpointError(f"{error}; expected weights of the run's {model_name(config)} model over the "
                              f"{NUM_JOINTS}-joint whole-body layout ({NUM_KEYPOINTS} COCO-WholeBody keypoints plus "
                              f"the pelvis), {config['frames']} frames, as configured in {config_path}") from error
    lifter.load_state_dict(state)
    lifter.eval()
    return Model(lifter, config, path, int(checkpoint_data.get("epoch", -1)))


def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` ``payload`` to ``path`` atomically: the file appears whole or not at all. The payload holds
    only tensors, numbers, strings and plain containers, so that it reads back with ``weights_only=True``."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
