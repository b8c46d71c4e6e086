"""One pose per frame from the hypotheses of a diffusion lifter, for ``bench lift``.

* ``mean``: the mean of the hypotheses.
* ``best-2d``: per joint, the hypothesis whose reprojection lands closest to the input 2D. The camera of an
  in-the-wild video is unknown, so the reprojection uses a weak-perspective (scaled orthographic) camera fitted per
  frame by least squares: the scale s and 2D offset c minimising the weighted squared distance between
  ``s * (x, y) + c`` of the mean hypothesis and the input 2D, weighted to use only detected (not filled) keypoints.
  One camera per frame serves every hypothesis, so the choice compares poses, not cameras.
"""
from __future__ import annotations

import numpy as np

AGGREGATES = ("mean", "best-2d")


def fit_weak_perspective(points_3d: np.ndarray, points_2d: np.ndarray,
                         weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares scaled orthographic camera per frame: ``s * points_3d[..., :2] + c ~ points_2d``.

    Args:
        points_3d: (T, J, 3) camera-frame points.
        points_2d: (T, J, 2) image points (any unit, e.g. normalized screen coordinates).
        weights: (T, J) non-negative weight of each point; a frame with fewer than 2 weighted points uses all.

    Returns:
        scale (T,) and offset (T, 2).
    """
    weights = np.where((weights > 0).sum(axis=1, keepdims=True) >= 2, weights, 1.0)[..., None]
    xy = points_3d[..., :2]
    xy_mean = (weights * xy).sum(axis=1, keepdims=True) / weights.sum(axis=1, keepdims=True)
    uv_mean = (weights * points_2d).sum(axis=1, keepdims=True) / weights.sum(axis=1, keepdims=True)
    centred = xy - xy_mean
    spread = (weights * centred ** 2).sum(axis=(1, 2))
    scale = (weights * centred * (points_2d - uv_mean)).sum(axis=(1, 2)) / np.maximum(spread, 1e-12)
    return scale, (uv_mean - scale[:, None, None] * xy_mean)[:, 0]


def aggregate(hypotheses: np.ndarray, pose_2d: np.ndarray, weights: np.ndarray, method: str = "mean") -> np.ndarray:
    """One pose per frame from (T, H, J, 3) hypotheses (see module docstring).

    Args:
        hypotheses: (T, H, J, 3) root-relative metres.
        pose_2d: (T, J, 2) the 2D input the hypotheses were lifted from.
        weights: (T, J) weight of each joint in the camera fit (0 for filled keypoints).
        method: ``mean`` or ``best-2d``.

    Returns:
        (T, J, 3).
    """
    if method not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {method!r}")
    mean = hypotheses.mean(axis=1)
    if method == "mean" or hypotheses.shape[1] == 1:
        return mean
    scale, offset = fit_weak_perspective(mean, pose_2d, weights)
    reprojected = scale[:, None, None, None] * hypotheses[..., :2] + offset[:, None, None, :]
    distance = np.linalg.norm(reprojected - pose_2d[:, None], axis=-1)  # (T, H, J)
    best = distance.argmin(axis=1)[:, None, :, None]
    return np.take_along_axis(hypotheses, best, axis=1)[:, 0]
