"""Training losses of part-based lifters (PAFUSE Eq. 2 and 3) and the per-joint weights that balance parts.

* *Part loss* (Eq. 2, PAFUSE's default): the prediction and the target are both in part frames (tokens of
  :class:`parts.frames.PartLayout`) and are compared as they are.
* *Whole-body loss* (Eq. 3): the prediction is first reassembled into a root-relative whole body and compared with
  the whole-body target, so errors of the anchors (body nose and wrists, or the predicted part roots) count too.

Either compares per-joint errors with ``error``: ``"mpjpe"``, the L2 norm (PAFUSE's default), or ``"mse"``, the
squared L2 norm, as the reference's ``mse_loss`` option does (not a per-coordinate mean). Optional per-joint
weights are normalized to mean 1, so weighting changes the balance between joints but not the scale of the loss.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from parts.frames import PartLayout

ERRORS = ("mpjpe", "mse")


def normalized_weights(weights: torch.Tensor, joints: int) -> torch.Tensor:
    """Check (J,) positive weights and scale them to mean 1 (once, where the weights are made)."""
    if tuple(weights.shape) != (joints,):
        raise ValueError(f"weights: expected ({joints},) per-joint weights, got shape {tuple(weights.shape)}")
    if not weights.is_meta and not bool((weights > 0).all()):   # a model built on "meta" has no values yet
        raise ValueError(f"weights: expected positive per-joint weights, got minimum {weights.min().item()}")
    return weights / weights.mean()


def pose_error(pred: torch.Tensor, target: torch.Tensor, error: str = "mpjpe",
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-joint error over every window, frame and joint.

    Args:
        pred, target: (B, N, J, 3) poses in metres.
        error: ``"mpjpe"`` (mean L2 norm, metres) or ``"mse"`` (mean squared L2 norm, square metres).
        weights: optional (J,) positive per-joint weights, normalized here to mean 1.

    Returns:
        The scalar loss.
    """
    if weights is not None:
        weights = normalized_weights(weights.to(pred), pred.shape[-2])
    return weighted_error(pred, target, error, weights)


def weighted_error(pred: torch.Tensor, target: torch.Tensor, error: str,
                   weights: torch.Tensor | None) -> torch.Tensor:
    """``pose_error`` with ``weights`` already normalized (``normalized_weights``): the per-step training loss,
    which never reads a value back from the device."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if error not in ERRORS:
        raise ValueError(f"error: expected one of {ERRORS}, got {error!r}")
    per_joint = (pred - target).norm(dim=-1)
    if error == "mse":
        per_joint = per_joint.square()
    if weights is not None:
        per_joint = per_joint * weights
    return per_joint.mean()


def part_loss(pred: torch.Tensor, target: torch.Tensor, error: str = "mpjpe",
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """PAFUSE Eq. 2: ``pose_error`` between (B, N, T, 3) part-frame tokens, compared as they are."""
    return pose_error(pred, target, error, weights)


def whole_body_loss(pred: torch.Tensor, target: torch.Tensor, layout: PartLayout, error: str = "mpjpe",
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """PAFUSE Eq. 3: reassemble (B, N, T, 3) part-frame predictions and compare with (B, N, 134, 3) poses.

    Args:
        pred: part-frame tokens; the anchors are read off the prediction's own body tokens.
        target: root-relative whole-body poses.
        layout: the token layout that ``pred`` is in.
        error, weights: as in :func:`pose_error`, with (134,) weights.
    """
    return pose_error(layout.reassemble(pred), target, error, weights)


def balanced_weights(groups: Mapping[str, Sequence[int]], joints: int) -> torch.Tensor:
    """Per-token weights that give every group of tokens the same total weight (mean 1).

    The "only part-frame shift" ablation trains one network on all tokens; unweighted, the face's 68 joints would
    carry about half of the loss and the body's 24 under a fifth. With groups body / face / hands each carries a
    third.

    Args:
        groups: group name -> its token indices; together they must cover ``joints`` tokens exactly once.
        joints: T, the number of tokens.

    Returns:
        (T,) float32 weights.
    """
    covered = sorted(index for indices in groups.values() for index in indices)
    if covered != list(range(joints)):
        raise ValueError(f"balanced_weights: the groups must cover tokens 0..{joints - 1} exactly once, "
                         f"got {len(covered)} indices")
    weights = torch.empty(joints)
    for indices in groups.values():
        weights[list(indices)] = joints / (len(groups) * len(indices))
    return weights
