"""The synthetic hand: 21 COCO-WholeBody hand keypoints with animated finger flexion and spread.

Hands are built in the *wrist frame* of a right hand in millimetres for an average hand (scale 1): origin at
the body's wrist keypoint, fingers pointing along -z, palm facing -x, thumb toward +y (the neutral standing hand,
palm against the thigh). A left hand is the mirror image (x negated) of a right hand with the same angles.

Keypoint order (as in COCO-WholeBody): the hand root, then thumb, forefinger, middle, ring and pinky fingers,
four keypoints each from base to tip. For the four fingers these are the knuckle (MCP), the two finger joints
and the tip; for the thumb the carpal joint (CMC), MCP, IP and tip.
"""
from __future__ import annotations

import numpy as np

from bench.data.rotations import rot_axis, rot_x, rot_y

FINGERS = ("thumb", "fore", "middle", "ring", "pinky")
NUM_HAND_KEYPOINTS = 1 + 4 * len(FINGERS)

# The hand root (H3WB's hand keypoint 0) lies on the forearm's axis a little past the body wrist, which is why
# the two annotations of the "same" wrist differ by 1-2 cm in H3WB.
_ROOT = np.array([-3.0, 2.0, -16.0])
# Knuckles relative to the hand root, and the three finger segment lengths (proximal, middle, distal to tip).
# The middle finger reaches 188 mm from the hand root, a typical adult hand length.
_KNUCKLES = np.array([[-2.0, 27.0, -80.0], [0.0, 8.0, -84.0], [-2.0, -11.0, -79.0], [-5.0, -28.0, -70.0]])
_SEGMENTS = np.array([[43.0, 26.0, 22.0], [48.0, 30.0, 26.0], [45.0, 28.0, 24.0], [35.0, 21.0, 21.0]])
# Spread fans the fingers about the palm normal, relative to the middle finger.
_SPREAD_GAIN = np.array([1.0, 0.0, -0.7, -1.4])
# Full curl (a fist) bends the knuckle, middle and end joints by these angles (radians).
_CURL_ANGLES = np.array([1.5, 1.75, 1.2])

_THUMB_BASE = np.array([-10.0, 20.0, -18.0])
_THUMB_DIRECTION = np.array([-0.3, 0.5, -0.81]) / np.linalg.norm([-0.3, 0.5, -0.81])
_THUMB_SEGMENTS = np.array([44.0, 32.0, 27.0])
# The thumb folds across the palm toward the little finger; its joints share one bending axis.
_THUMB_AXIS = np.cross(_THUMB_DIRECTION, np.array([-0.45, -0.8, -0.4]))
_THUMB_CURL_ANGLES = np.array([0.5, 0.8, 0.9])

HAND_SHAPES: dict[str, tuple[tuple[float, float, float, float, float], float]] = {
    "open": ((0.05, 0.05, 0.05, 0.05, 0.05), 0.15),
    "relaxed": ((0.25, 0.25, 0.3, 0.35, 0.4), 0.05),
    "fist": ((0.9, 1.0, 1.0, 1.0, 1.0), 0.0),
    "point": ((0.8, 0.0, 1.0, 1.0, 1.0), 0.0),
    "hold": ((0.5, 0.55, 0.6, 0.6, 0.65), 0.0),
}
"""Named hand shapes: (curl of thumb, fore, middle, ring, pinky in [0, 1]; spread in radians)."""


def _finger(knuckle: np.ndarray, segments: np.ndarray, spread: np.ndarray, curl: np.ndarray) -> np.ndarray:
    """Knuckle, two finger joints and tip of one finger: (T,) spread and curl -> (T, 4, 3)."""
    frames = curl.shape[0]
    orientation = rot_x(spread)
    points = [np.broadcast_to(knuckle, (frames, 3))]
    for length, angle in zip(segments, _CURL_ANGLES):
        # Flexing about +y moves the finger toward -x, i.e. into the palm of a right hand.
        orientation = orientation @ rot_y(angle * curl)
        points.append(points[-1] + orientation[:, :, 2] * -length)
    return np.stack(points, axis=1)


def _thumb(curl: np.ndarray) -> np.ndarray:
    """CMC, MCP, IP and tip of the thumb: (T,) curl -> (T, 4, 3)."""
    frames = curl.shape[0]
    orientation = np.broadcast_to(np.eye(3), (frames, 3, 3))
    points = [np.broadcast_to(_THUMB_BASE, (frames, 3))]
    for length, angle in zip(_THUMB_SEGMENTS, _THUMB_CURL_ANGLES):
        orientation = orientation @ rot_axis(_THUMB_AXIS, angle * curl)
        points.append(points[-1] + orientation @ (_THUMB_DIRECTION * length))
    return np.stack(points, axis=1)


def hand_keypoints(curls: np.ndarray, spread: np.ndarray, scale: float, side: int) -> np.ndarray:
    """The 21 hand keypoints in the wrist frame.

    Args:
        curls: (T, 5) flexion of thumb, fore, middle, ring and pinky fingers; 0 straight, 1 a fist.
        spread: (T,) finger fan angle in radians (0 parallel fingers).
        scale: the subject's hand size relative to the template (about 1).
        side: +1 for a right hand, -1 for a left hand (mirrored across the wrist frame's x = 0 plane).

    Returns:
        (T, 21, 3) keypoints in mm in the wrist frame, in COCO-WholeBody hand order.
    """
    if curls.ndim != 2 or curls.shape[1] != len(FINGERS):
        raise ValueError(f"hand_keypoints: expected curls of shape (T, {len(FINGERS)}), got {curls.shape}")
    frames = curls.shape[0]
    fingers = [_thumb(curls[:, 0])]
    for f in range(4):
        fingers.append(_finger(_KNUCKLES[f], _SEGMENTS[f], _SPREAD_GAIN[f] * spread, curls[:, f + 1]))
    local = np.concatenate([np.zeros((frames, 1, 3))] + fingers, axis=1) + _ROOT
    return local * scale * np.array([side, 1.0, 1.0])
