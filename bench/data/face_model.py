"""The synthetic face: 68 iBUG landmarks on the head, the body's head keypoints, and animated expressions.

All coordinates are in the *head frame* in millimetres for an average head (scale 1): origin at the head's pivot
on the neck, x toward the subject's right, y forward (out of the face), z up. The subject's right is +x so that
iBUG landmark 0 (the jaw end on the subject's right, the left of a frontal image) has x > 0.

The template is written for the subject's right half and the midline; the left half is its mirror image through
the mirror pairs of ``bench.skeleton``, so the neutral face is exactly symmetric.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench.skeleton import C133_GROUPS, MIRROR_PAIRS_C133

NUM_LANDMARKS = len(C133_GROUPS["face"])
_FACE_START = C133_GROUPS["face"][0]

# The template below is laid out in a face-local frame with its origin at the chin's height and the eye
# corners' depth; these offsets put that frame on the head (chin 85 mm below the pivot, eyes 80 mm in front).
_FACE_ORIGIN_IN_HEAD = np.array([0.0, 80.0, -85.0])

EXPRESSIONS = ("mouth_open", "smile", "brow_raise", "blink")
"""Expression channels, each a weight in [0, 1] per frame."""


def _face_mirror_pairs() -> list[tuple[int, int]]:
    """(subject's left, subject's right) landmark pairs in 0..67 face numbering."""
    face = set(C133_GROUPS["face"])
    return [(left - _FACE_START, right - _FACE_START) for left, right in MIRROR_PAIRS_C133
            if left in face and right in face]


def _jaw() -> dict[int, tuple[float, float, float]]:
    """Jaw contour 0..16: a squared-off U from the right ear's level (0) through the chin (8) to the left."""
    points = {}
    for i in range(9):
        a = np.pi * i / 16.0  # 0 at the subject's right end, pi/2 at the chin
        c, s = (np.cos(a), np.sin(a)) if i < 8 else (0.0, 1.0)  # the chin lies exactly on the midline
        points[i] = (72.0 * c ** 0.7, 5.0 - 75.0 * c ** 2, 140.0 * (1.0 - s ** 1.5))
    return points


# Right half and midline of the neutral face, (x, y, z) in mm in the face-local frame. Brows and eyes run
# from the outer end inward, the nose bridge from top to tip, the mouth from the right corner over the top.
_RIGHT_AND_MIDLINE: dict[int, tuple[float, float, float]] = {
    17: (62, -18, 170), 18: (50, -6, 179), 19: (37, 2, 183), 20: (24, 7, 182), 21: (12, 10, 178),
    27: (0, 10, 158), 28: (0, 17, 140), 29: (0, 24, 121), 30: (0, 32, 102),
    31: (15, 12, 90), 32: (8, 17, 87), 33: (0, 19, 85),
    36: (47, -8, 150), 37: (39, -3, 155), 38: (27, -2, 155), 39: (18, 0, 150), 40: (27, -2, 146), 41: (39, -3, 146),
    48: (26, 2, 57), 49: (17, 10, 63), 50: (7, 14, 66), 51: (0, 15, 65),
    57: (0, 13, 45), 58: (8, 12, 46), 59: (17, 9, 50),
    60: (20, 4, 57), 61: (8, 10, 59), 62: (0, 11, 59), 66: (0, 10, 55), 67: (8, 9, 55),
}


def _face_template() -> np.ndarray:
    """Neutral face (68, 3) in the head frame, mm, exactly mirror-symmetric about x = 0."""
    half = {**_jaw(), **_RIGHT_AND_MIDLINE}
    template = np.full((NUM_LANDMARKS, 3), np.nan)
    for index, point in half.items():
        template[index] = point
    for left, right in _face_mirror_pairs():
        template[left] = template[right] * np.array([-1.0, 1.0, 1.0])
    if np.isnan(template).any():
        raise RuntimeError("face template: some landmarks are neither given nor mirrored")
    return template + _FACE_ORIGIN_IN_HEAD


FACE_TEMPLATE_MM = _face_template()
"""(68, 3) neutral iBUG-68 landmarks in the head frame, mm, for a head of scale 1."""


def _head_markers() -> dict[str, np.ndarray]:
    """The body's head keypoints: close to, but not on, the matching face landmarks (as H3WB annotates them)."""
    right_eye = FACE_TEMPLATE_MM[36:42].mean(axis=0) + np.array([0.0, -4.0, 3.0])
    right_ear = np.array([78.0, -88.0, 138.0]) + _FACE_ORIGIN_IN_HEAD
    mirror = np.array([-1.0, 1.0, 1.0])
    return {
        # The body nose sits a little above and behind the landmark nose tip (about 16 mm away).
        "nose": FACE_TEMPLATE_MM[30] + np.array([0.0, -12.0, 10.0]),
        "right_eye": right_eye, "left_eye": right_eye * mirror,
        "right_ear": right_ear, "left_ear": right_ear * mirror,
    }


HEAD_MARKERS_MM = _head_markers()
"""Body keypoint name -> (3,) position in the head frame, mm, for a head of scale 1."""


def _expression_bases() -> dict[str, np.ndarray]:
    """Landmark displacement (68, 3) in mm at full strength of each expression channel."""
    x_sign = np.sign(FACE_TEMPLATE_MM[:, 0])
    bases = {name: np.zeros((NUM_LANDMARKS, 3)) for name in EXPRESSIONS}

    # Opening the mouth drops the jaw: the chin most, the jaw line less toward the ears, the lower lip with it.
    jaw = np.arange(17)
    bases["mouth_open"][jaw, 2] = -14.0 * np.sin(np.pi * jaw / 16.0) ** 2
    bases["mouth_open"][jaw, 1] = -4.0 * np.sin(np.pi * jaw / 16.0) ** 2
    bases["mouth_open"][[55, 56, 57, 58, 59], 2] = -18.0
    bases["mouth_open"][[65, 66, 67], 2] = -16.0
    bases["mouth_open"][[61, 62, 63], 2] = 1.0
    bases["mouth_open"][[48, 54, 60, 64], 2] = -6.0

    # A smile pulls the mouth corners outward and up, and their neighbours half as much.
    for corners, pull in (([48, 54, 60, 64], 1.0), ([49, 53, 55, 59], 0.4)):
        bases["smile"][corners, 0] = 5.0 * pull * x_sign[corners]
        bases["smile"][corners, 2] = 4.0 * pull

    bases["brow_raise"][17:27, 2] = 7.0
    bases["brow_raise"][[20, 21, 22, 23], 2] = 8.0

    # A blink brings the upper eyelids down onto the lower ones.
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        bases["blink"][upper] = FACE_TEMPLATE_MM[lower] - FACE_TEMPLATE_MM[upper] + np.array([0.0, 0.0, 1.0])
    return bases


EXPRESSION_BASES_MM = _expression_bases()
"""Expression channel -> (68, 3) landmark displacement in mm at weight 1."""


def face_landmarks(expression: Mapping[str, np.ndarray], head_scale: float, frames: int) -> np.ndarray:
    """The 68 landmarks in the head frame for each frame.

    Args:
        expression: channel name (see ``EXPRESSIONS``) -> (T,) weight in [0, 1]; missing channels are 0.
        head_scale: the subject's head size relative to the template (about 1).
        frames: T, the number of frames (used when no channel is given).

    Returns:
        (T, 68, 3) landmarks in mm, head frame.
    """
    landmarks = np.broadcast_to(FACE_TEMPLATE_MM, (frames, NUM_LANDMARKS, 3)).copy()
    for name in EXPRESSIONS:
        if name in expression:
            landmarks += np.asarray(expression[name])[:, None, None] * EXPRESSION_BASES_MM[name]
    return landmarks * head_scale
