"""Pose metrics of the paper and of the H3WB leaderboard, as pure torch functions returning per-sample values.

Conventions: poses are torch tensors in the j134 layout of :mod:`bench.skeleton` (pelvis at index 0), in metres;
every returned error is in **millimetres**. Nothing here averages over samples: each function keeps the leading
dimensions, so results never depend on how samples were batched (the one deliberate exception is the ``pafuse``
protocol's P-Best, below). :func:`summarize` takes the final mean over valid frames.

Single pose, any joint set (:func:`mpjpe`): mean L2 error over joints, after no alignment (MPJPE, "Protocol #1"),
after the least-squares scale (N-MPJPE) or after the optimal similarity transform, i.e. rotation, scale and
translation (P-MPJPE, Procrustes, computed in float64 and never a reflection).

Whole-body errors of one hypothesis (:func:`whole_body_errors`), keys WB, PB, Body, Face, Hands, LeftHand,
RightHand, in one of two protocols. Both work on ``diff = pred - gt``; "aligned at joint r" means that ``diff[r]``
is subtracted from the diff of every joint, i.e. pred and gt are both translated so that their joint r coincides.

``h3wb`` (default): the official H3WB leaderboard (wholebody3d ``test_leaderboard.py:test_score``). The pelvis is
dropped and the 133 COCO-WholeBody keypoints are used.
    * the diff is pelvis-aligned: the mean of the diffs at the two hips is subtracted;
    * WB = mean over the 133 keypoints; Body = mean over the 23 body and feet keypoints (pelvis-aligned);
    * Face = the 68 face keypoints aligned at the **body nose**;
    * LeftHand / RightHand = the 21 keypoints of each hand aligned at its hand root; Hands = (LeftHand + RightHand) / 2;
    * PB = (Body + Face + Hands) / 3, the paper's "average of those part-specific MPJPE".

``pafuse``: reproduces the numbers of the PAFUSE reference code (``main_h3wb.py:evaluate``, ``loss.py``).
    * WB = mean over all 134 joints after aligning at the pelvis, which therefore counts as a zero-error joint
      (133/134 of the 133-keypoint mean);
    * every part is aligned at its own root (``skeleton.PART_ROOTS``): Body at the pelvis, over its 24 joints
      including the pelvis; Face at the **face-landmark nose tip**, over its 68 joints including that root;
      LeftHand / RightHand at their hand roots, over 21 joints each including the root; Hands = (L + R) / 2;
    * PB = mean over all 134 part-aligned joints, i.e. the joint-count-weighted mean of the four parts.
    * For a part-based model the reference evaluates against the *reassembled* GT (GT split into part frames and
      re-attached to the body nose and wrists), not the original GT. This module compares whatever it is given:
      to reproduce the reference, the caller passes that reassembled GT; to score against the dataset, the original.
    * Face differs from h3wb's Face by its reference point (nose tip vs body nose): the two are not comparable.

Several hypotheses (:func:`hypothesis_errors`), pred (B, H, N, 134, 3) for B windows, H hypotheses, N frames:
    * P-Agg: the errors of the mean pose over the H hypotheses.
    * J-Best: for every (window, frame, joint) and every metric, the minimum over H of that metric's aligned
      per-joint error, then that metric's joint averaging (an oracle per joint; never above P-Best, except for
      ``pafuse``'s WB, which P-Best aligns at the pelvis and J-Best does not).
    * P-Best, ``h3wb``: per window, the hypothesis whose WB averaged over the window's valid frames is lowest; every
      metric of that window is read at that one hypothesis (one consistent pose sequence, independent of batching).
    * P-Best, ``pafuse``: one hypothesis for the **whole batch**, as the reference's ``loss.py:mpjpe_diffusion``
      does: the one with the lowest WB averaged over all valid frames and joints of the batch. The part metrics are
      read at a second hypothesis chosen the same way from PB. These values change with the batch composition (the
      reference batches up to 1024 windows, in practice one whole test sequence), so callers must batch the same way.
    * In ``pafuse``, as in the reference, P-Agg and J-Best leave WB in the given coordinates (no pelvis alignment).
      The reference reports no part J-Best; here parts get the per-joint minimum of their part-aligned errors.
"""
from __future__ import annotations

import torch

from bench.skeleton import (
    C133_GROUPS,
    H3WB_BODY_C133,
    H3WB_FACE_ALIGN_C133,
    H3WB_FACE_C133,
    H3WB_LEFT_HAND_ALIGN_C133,
    H3WB_RIGHT_HAND_ALIGN_C133,
    HIPS_C133,
    NUM_JOINTS,
    PART_ROOTS,
    PARTS,
    PELVIS,
)

MM_PER_M = 1000.0
ALIGNMENTS = ("none", "procrustes", "scale")
PROTOCOLS = {"h3wb": "the official H3WB leaderboard definitions",
             "pafuse": "the PAFUSE reference code's definitions"}
"""The metric protocols (see the module docstring), each with what it follows."""
ESTIMATORS = ("P-Best", "P-Agg", "J-Best")
"""How a metric reads several hypotheses: the best window, their mean, the best per joint."""
METRIC_KEYS = ("WB", "PB", "Body", "Face", "Hands", "LeftHand", "RightHand")
TABLE_METRICS = METRIC_KEYS[:5]
"""The metrics of the paper's tables and of every summary: WB, PB, Body, Face, Hands."""

# Metric key -> skeleton part, for the keys measured on one part each.
_PART_OF_KEY = {"Body": "body", "Face": "face", "LeftHand": "left_hand", "RightHand": "right_hand"}
# j134 positions of the c133 keypoints, in c133 order: indexing with it drops the pelvis.
_C133_IN_J134 = [j for j in range(NUM_JOINTS) if j != PELVIS]
# Guards the divisions by a pose's spread against a degenerate (all joints equal) prediction.
_TINY = 1e-12


def _norm_mm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm over the last axis, metres -> millimetres: (..., 3) -> (...)."""
    return torch.linalg.vector_norm(x, dim=-1) * MM_PER_M


def _check_poses(pred: torch.Tensor, gt: torch.Tensor, joints: int | None = None) -> None:
    """Raise ValueError unless pred and gt have one shape (..., J, 3), with J = ``joints`` when given."""
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {tuple(pred.shape)} "
                         f"and gt {tuple(gt.shape)}")
    if pred.dim() < 2 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must be (..., J, 3) poses, got shape {tuple(pred.shape)}")
    if joints is not None and pred.shape[-2] != joints:
        raise ValueError(f"pred and gt must have {joints} joints on axis -2 (the j134 layout), "
                         f"got shape {tuple(pred.shape)}")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {tuple(PROTOCOLS)}")


def _procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Apply to each (J, 3) pred the rotation, scale and translation that best fit it to gt (least squares).

    Args:
        pred: (..., J, 3) poses, metres.
        gt: (..., J, 3) poses, metres.

    Returns:
        (..., J, 3) aligned pred in float64, metres.
    """
    pred, gt = pred.double(), gt.double()
    pred_mean, gt_mean = pred.mean(dim=-2, keepdim=True), gt.mean(dim=-2, keepdim=True)
    pred_c, gt_c = pred - pred_mean, gt - gt_mean
    u, s, vh = torch.linalg.svd(pred_c.transpose(-1, -2) @ gt_c)
    # When U V^T is a reflection, flipping the axis of the smallest singular value gives the best proper rotation.
    sign = torch.sign(torch.linalg.det(u @ vh)).unsqueeze(-1)
    signs = torch.cat([torch.ones_like(s[..., :-1]), sign], dim=-1)
    rotation = u @ (signs.unsqueeze(-1) * vh)
    scale = (s * signs).sum(dim=-1) / pred_c.square().sum(dim=(-2, -1)).clamp_min(_TINY)
    return scale[..., None, None] * (pred_c @ rotation) + gt_mean


def _scale_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Multiply each (J, 3) pred by the scale that best fits it to gt (least squares, no translation)."""
    scale = (pred * gt).sum(dim=(-2, -1), keepdim=True) / pred.square().sum(dim=(-2, -1), keepdim=True).clamp_min(
        _TINY)
    return scale * pred


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, alignment: str = "none") -> torch.Tensor:
    """Mean per-joint position error of each pose, optionally after aligning pred to gt.

    Args:
        pred: (..., J, 3) predicted poses, metres.
        gt: (..., J, 3) ground-truth poses, metres.
        alignment: "none" (MPJPE), "procrustes" (P-MPJPE: rotation, scale and translation per pose, fitted in
            float64) or "scale" (N-MPJPE: least-squares scale per pose).

    Returns:
        (...) mean L2 error over the J joints, millimetres, in pred's dtype.

    Raises:
        ValueError: if the shapes differ or are not (..., J, 3), or if ``alignment`` is unknown.
    """
    _check_poses(pred, gt)
    if alignment == "none":
        aligned = pred
    elif alignment == "procrustes":
        return _norm_mm(_procrustes_align(pred, gt) - gt.double()).mean(dim=-1).to(pred.dtype)
    elif alignment == "scale":
        aligned = _scale_align(pred, gt)
    else:
        raise ValueError(f"unknown alignment {alignment!r}; expected one of {ALIGNMENTS}")
    return _norm_mm(aligned - gt).mean(dim=-1)


def _aligned(diff: torch.Tensor, joints, anchor: int) -> torch.Tensor:
    """Per-joint errors (..., len(joints)) in mm of ``joints`` after aligning at ``anchor``; diff is (..., J, 3)."""
    return _norm_mm(diff[..., list(joints), :] - diff[..., anchor:anchor + 1, :])


def _h3wb_joint_errors(diff: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-joint errors of the ``h3wb`` protocol from a (..., 134, 3) diff, keyed by metric (all but the means)."""
    keypoints = diff[..., _C133_IN_J134, :]
    keypoints = keypoints - keypoints[..., list(HIPS_C133), :].mean(dim=-2, keepdim=True)
    return {
        "WB": _norm_mm(keypoints),
        "Body": _norm_mm(keypoints[..., list(H3WB_BODY_C133), :]),
        "Face": _aligned(keypoints, H3WB_FACE_C133, H3WB_FACE_ALIGN_C133),
        "LeftHand": _aligned(keypoints, C133_GROUPS["left_hand"], H3WB_LEFT_HAND_ALIGN_C133),
        "RightHand": _aligned(keypoints, C133_GROUPS["right_hand"], H3WB_RIGHT_HAND_ALIGN_C133),
    }


def _pafuse_joint_errors(diff: torch.Tensor, align_wb: bool) -> dict[str, torch.Tensor]:
    """Per-joint errors of the ``pafuse`` protocol from a (..., 134, 3) diff; WB pelvis-aligned iff ``align_wb``."""
    errors = {"WB": _aligned(diff, range(NUM_JOINTS), PELVIS) if align_wb else _norm_mm(diff)}
    for key, part in _PART_OF_KEY.items():
        errors[key] = _aligned(diff, PARTS[part], PART_ROOTS[part])
    return errors


def _joint_errors(diff: torch.Tensor, protocol: str, align_wb: bool = True) -> dict[str, torch.Tensor]:
    """Per-joint errors in mm, keyed by WB, Body, Face, LeftHand, RightHand; each (..., joints of that metric).

    Args:
        diff: (..., 134, 3) pred - gt, metres.
        protocol: "h3wb" or "pafuse".
        align_wb: ``pafuse`` only: align WB at the pelvis (P-Best) or not (the reference's P-Agg and J-Best).
    """
    if protocol == "h3wb":
        return _h3wb_joint_errors(diff)
    return _pafuse_joint_errors(diff, align_wb)


def _average(joint_errors: dict[str, torch.Tensor], protocol: str) -> dict[str, torch.Tensor]:
    """Turn per-joint errors into the metrics of ``METRIC_KEYS``, each (...) in mm."""
    means = {key: errors.mean(dim=-1) for key, errors in joint_errors.items()}
    means["Hands"] = (means["LeftHand"] + means["RightHand"]) / 2
    if protocol == "h3wb":
        means["PB"] = (means["Body"] + means["Face"] + means["Hands"]) / 3
    else:
        # Pooling the joints of the four parts weights each part by its joint count, as the reference does.
        means["PB"] = torch.cat([joint_errors[key] for key in _PART_OF_KEY], dim=-1).mean(dim=-1)
    return {key: means[key] for key in METRIC_KEYS}


def whole_body_errors(pred: torch.Tensor, gt: torch.Tensor, protocol: str = "h3wb") -> dict[str, torch.Tensor]:
    """Whole-body and part errors of single poses (see the module docstring for both protocols).

    Args:
        pred: (..., 134, 3) predicted poses in the j134 layout, metres.
        gt: (..., 134, 3) ground-truth poses in the j134 layout, metres.
        protocol: "h3wb" (official leaderboard) or "pafuse" (the reference code's numbers).

    Returns:
        {"WB", "PB", "Body", "Face", "Hands", "LeftHand", "RightHand"} -> (...) errors, millimetres.

    Raises:
        ValueError: on an unknown protocol, or if pred and gt are not both (..., 134, 3).
    """
    _check_protocol(protocol)
    _check_poses(pred, gt, NUM_JOINTS)
    return _average(_joint_errors(pred - gt, protocol), protocol)


def _check_hypotheses(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Validate (B, H, N, 134, 3) pred, (B, N, 134, 3) gt and (B, N) bool mask; return the mask (all True if None)."""
    if pred.dim() != 5 or gt.dim() != 4 or pred.shape[1] == 0:
        raise ValueError(f"expected pred (B, H, N, {NUM_JOINTS}, 3) with H >= 1 and gt (B, N, {NUM_JOINTS}, 3), "
                         f"got pred {tuple(pred.shape)} and gt {tuple(gt.shape)}")
    _check_poses(pred[:, 0], gt, NUM_JOINTS)
    frames_shape = gt.shape[:2]
    if mask is None:
        return torch.ones(frames_shape, dtype=torch.bool, device=gt.device)
    if mask.dtype != torch.bool or mask.shape != frames_shape:
        raise ValueError(f"mask must be a bool tensor of shape (B, N) = {tuple(frames_shape)}, "
                         f"got {mask.dtype} {tuple(mask.shape)}")
    return mask


def _masked_sum(values: torch.Tensor, mask: torch.Tensor, dims) -> torch.Tensor:
    """Sum of (B, H, N) values over ``dims``, counting only frames where the (B, N) mask is True."""
    # where() rather than a product, so that NaN or inf in padded frames cannot leak into the sum.
    return torch.where(mask.unsqueeze(1), values, torch.zeros_like(values)).sum(dim=dims)


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, H, N) values read at hypothesis index (B,) -> (B, N)."""
    return values.gather(1, index.view(-1, 1, 1).expand(-1, 1, values.shape[2])).squeeze(1)


def _best_per_window(per_hypothesis: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """``h3wb`` P-Best: per window, every metric at the hypothesis of lowest window-mean WB; (B, H, N) -> (B, N)."""
    frames = mask.sum(dim=1, keepdim=True).clamp_min(1)
    best = (_masked_sum(per_hypothesis["WB"], mask, dims=2) / frames).argmin(dim=1)
    return {key: _take(values, best) for key, values in per_hypothesis.items()}


def _best_per_batch(per_hypothesis: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """``pafuse`` P-Best: WB at the batch's best WB hypothesis, parts at the batch's best PB hypothesis.

    Every frame has as many joints, so the mean of per-frame values over the valid frames of the batch equals the
    reference's mean over all valid (window, frame, joint) errors.
    """
    frames = mask.sum().clamp_min(1)
    best_wb = (_masked_sum(per_hypothesis["WB"], mask, dims=(0, 2)) / frames).argmin()
    best_pb = (_masked_sum(per_hypothesis["PB"], mask, dims=(0, 2)) / frames).argmin()
    return {key: values[:, best_wb if key == "WB" else best_pb] for key, values in per_hypothesis.items()}


def hypothesis_errors(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None,
                      protocol: str = "h3wb") -> dict[str, dict[str, torch.Tensor]]:
    """P-Best, P-Agg and J-Best of multi-hypothesis predictions, per frame (definitions in the module docstring).

    Args:
        pred: (B, H, N, 134, 3) hypotheses for B windows of N frames, j134 layout, metres.
        gt: (B, N, 134, 3) ground truth, metres.
        mask: (B, N) bool, False for padded or duplicated frames, which never influence any result (their own
            values are returned but meaningless). None means every frame counts.
        protocol: "h3wb" (P-Best per window) or "pafuse" (P-Best per batch: depends on which windows are batched).

    Returns:
        {"P-Best", "P-Agg", "J-Best"} -> {"WB", "PB", "Body", "Face", "Hands", "LeftHand", "RightHand"} -> (B, N)
        errors, millimetres.

    Raises:
        ValueError: on an unknown protocol or inconsistent shapes or mask.
    """
    _check_protocol(protocol)
    mask = _check_hypotheses(pred, gt, mask)
    diff = pred - gt.unsqueeze(1)
    joint_errors = _joint_errors(diff, protocol)
    per_hypothesis = _average(joint_errors, protocol)
    best = _best_per_window if protocol == "h3wb" else _best_per_batch
    # The reference's P-Agg and J-Best leave WB unaligned; h3wb always aligns, so its errors are reused as they are.
    oracle_errors = joint_errors if protocol == "h3wb" else _joint_errors(diff, protocol, align_wb=False)
    return {
        "P-Best": best(per_hypothesis, mask),
        "P-Agg": _average(_joint_errors(pred.mean(dim=1) - gt, protocol, align_wb=False), protocol),
        "J-Best": _average({key: errors.amin(dim=1) for key, errors in oracle_errors.items()}, protocol),
    }


def summarize(per_frame: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, float]:
    """Mean of every per-frame metric over the valid frames: each annotated frame counts once.

    Args:
        per_frame: metric name -> (...) per-frame values (e.g. (B, N) from :func:`hypothesis_errors`).
        mask: bool tensor of the same shape, False for frames to ignore; None means every frame counts.

    Returns:
        metric name -> mean over valid frames (float64 accumulation), in the unit of the inputs.

    Raises:
        ValueError: if a value's shape differs from the mask's, or the mask selects no frame.
    """
    summary = {}
    for name, values in per_frame.items():
        valid = torch.ones_like(values, dtype=torch.bool) if mask is None else mask
        if valid.dtype != torch.bool or valid.shape != values.shape:
            raise ValueError(f"per_frame[{name!r}] has shape {tuple(values.shape)} but mask is "
                             f"{valid.dtype} {tuple(valid.shape)}; expected a bool mask of the same shape")
        if not valid.any():
            raise ValueError(f"mask selects no frame for per_frame[{name!r}]; nothing to average")
        summary[name] = values[valid].double().mean().item()
    return summary
