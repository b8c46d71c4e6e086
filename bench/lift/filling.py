"""Missing 2D keypoints: which ones are missing, and how they are filled before lifting.

A keypoint is missing when its coordinates are not finite (NaN), its score is below the threshold, or it lies more
than one image size outside the image (a detector's sentinel or an overflow such as 1e30 px: not data). Lifters need
every keypoint, so each missing one is filled and flagged:

* if the keypoint is seen in some frame of the track: linear interpolation in time between the nearest frames where
  it is seen, and the nearest seen value before the first or after the last one;
* if it is never seen (e.g. a hand the detector never found): the keypoint its part hangs from in every frame (the
  body nose for the face, the wrist for a hand; ``skeleton.PART_ATTACH``), or, for body keypoints and when that one
  is never seen either, the mean of the frame's seen keypoints. The part collapses onto one point: a flagged
  placeholder rather than a guess of its shape.
"""
from __future__ import annotations

import numpy as np

from bench.errors import DataError
from bench.lift.formats.base import DEFAULT_THRESHOLD, outside_image, usable_mask
from bench.lift.readers import Track
from bench.skeleton import NUM_JOINTS, NUM_KEYPOINTS, PART_ATTACH, PARTS

__all__ = ["DEFAULT_THRESHOLD", "fill_missing", "fill_track", "missing_mask", "outside_count"]


def missing_mask(keypoints: np.ndarray, scores: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                 image_size: tuple[int, int] | None = None) -> np.ndarray:
    """(T, 133) bool, True where a keypoint (T, 133, 2) is NaN, its score (T, 133) is below ``threshold`` (a NaN
    score too) or, given the image size, it lies more than one image size outside the image (not data: e.g. 1e30)."""
    return ~usable_mask(keypoints, scores, threshold, image_size)


def outside_count(track: Track, threshold: float = DEFAULT_THRESHOLD) -> int:
    """How many of a track's keypoints scored >= ``threshold`` are missing only for lying far outside the image."""
    scored = usable_mask(track.keypoints, track.scores, threshold)
    return int((scored & outside_image(track.keypoints, track.image_size)).sum())


def fill_missing(keypoints: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fill missing keypoints (see module docstring).

    Args:
        keypoints: (T, 133, 2) pixels; missing entries may hold anything, NaN included.
        missing: (T, 133) bool, with at least one False.

    Returns:
        (T, 133, 2) float64 pixels, equal to ``keypoints`` where not missing.
    """
    if missing.all():
        raise ValueError("every keypoint is missing: nothing to fill from")
    filled = np.where(missing[..., None], np.nan, keypoints).astype(np.float64)
    seen = ~missing
    frames = np.arange(len(keypoints))
    for joint in np.flatnonzero(seen.any(axis=0) & missing.any(axis=0)):
        gaps, known = missing[:, joint], seen[:, joint]
        for axis in range(2):
            filled[gaps, joint, axis] = np.interp(frames[gaps], frames[known], filled[known, joint, axis])
    never = ~seen.any(axis=0)
    if never.any():
        centroid = filled[:, ~never].mean(axis=1)  # (T, 2), over keypoints seen somewhere in the track
        anchors = _anchors()
        for joint in np.flatnonzero(never):
            anchor = anchors[joint]
            filled[:, joint] = filled[:, anchor] if anchor >= 0 and not never[anchor] else centroid
    return filled


def fill_track(track: Track, threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """A track's filled keypoints (T, 133, 2) pixels and its (T, 133) bool mask of filled keypoints.

    Raises:
        DataError: if no keypoint of the track is usable (all NaN or below ``threshold``).
    """
    missing = missing_mask(track.keypoints, track.scores, threshold, track.image_size)
    if missing.all():
        where = f"person {track.person}" if track.image is None else f"image {track.image}/person {track.person}"
        raise DataError(track.source, where, f"at least one keypoint with finite coordinates and a score >= "
                        f"{threshold}", f"none in {track.frames} frames (all NaN, below it or far outside the image)")
    return fill_missing(track.keypoints, missing), missing


def _anchors() -> np.ndarray:
    """(133,) c133 keypoint each keypoint falls back on when never seen: its part's attachment, or -1 (none)."""
    anchors = np.full(NUM_KEYPOINTS, -1)
    offset = NUM_JOINTS - NUM_KEYPOINTS  # j134 = c133 + 1: the pelvis is inserted first
    for part, attach in PART_ATTACH.items():
        anchors[np.asarray(PARTS[part]) - offset] = attach - offset
    return anchors
