"""The whole-body skeleton: the 133 COCO-WholeBody keypoints, the 134-joint model layout, parts and symmetry.

Two index spaces are used in pafuse-bench and this module is the only place that spells out indices:

* **c133**: the 0-based COCO-WholeBody order of H3WB's files (17 body, 6 feet, 68 face, 2 x 21 hands).
* **j134**: the layout every model sees, with a derived pelvis (mean of the two hips) inserted at index 0,
  so that ``j134 = c133 + 1`` for every keypoint (e.g. the face nose tip is c133 53 and j134 54).

Parts (in j134): body = pelvis + 17 body + 6 feet (24 joints, rooted at the pelvis), face (68, rooted at the
face-landmark nose tip, attached to the body nose), left hand and right hand (21 each, rooted at their hand roots,
attached to the body wrists). Mirror pairs are written out explicitly and checked by tests.
"""
from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 133
NUM_JOINTS = 134

_BODY = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
         "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
         "right_knee", "left_ankle", "right_ankle")
_FEET = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")


def _hand_names(side: str) -> tuple[str, ...]:
    return (f"{side}_hand_root",) + tuple(f"{side}_{finger}{k}" for finger in _FINGERS for k in range(1, 5))


KEYPOINT_NAMES: tuple[str, ...] = (_BODY + _FEET + tuple(f"face-{i}" for i in range(68))
                                   + _hand_names("left") + _hand_names("right"))
"""The 133 COCO-WholeBody keypoint names in c133 order."""
JOINT_NAMES: tuple[str, ...] = ("pelvis",) + KEYPOINT_NAMES
"""The 134 joint names in j134 order (pelvis first)."""

OPENPOSE_BODY_25: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip", "RKnee",
    "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
    "RSmallToe", "RHeel")
"""OpenPose's BODY_25 keypoints in the order of ``pose_keypoints_2d`` (OpenPose doc/02_output.md,
``POSE_BODY_25_BODY_PARTS``)."""
_BODY_25_AS_C133 = {
    "Nose": "nose", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
    "RShoulder": "right_shoulder", "LShoulder": "left_shoulder", "RElbow": "right_elbow", "LElbow": "left_elbow",
    "RWrist": "right_wrist", "LWrist": "left_wrist", "RHip": "right_hip", "LHip": "left_hip", "RKnee": "right_knee",
    "LKnee": "left_knee", "RAnkle": "right_ankle", "LAnkle": "left_ankle", "LBigToe": "left_big_toe",
    "LSmallToe": "left_small_toe", "LHeel": "left_heel", "RBigToe": "right_big_toe", "RSmallToe": "right_small_toe",
    "RHeel": "right_heel",
}  # Neck and MidHip have no COCO-WholeBody keypoint
OPENPOSE_FIELDS: dict[str, int] = {"pose_keypoints_2d": 25, "face_keypoints_2d": 70, "hand_left_keypoints_2d": 21,
                                   "hand_right_keypoints_2d": 21}
"""Keypoint count of each OpenPose ``--write_json`` field (BODY_25; face: 68 landmarks + 2 pupils)."""
OPENPOSE_TO_C133: dict[str, tuple[tuple[int, int], ...]] = {
    "pose_keypoints_2d": tuple((i, KEYPOINT_NAMES.index(_BODY_25_AS_C133[name]))
                               for i, name in enumerate(OPENPOSE_BODY_25) if name in _BODY_25_AS_C133),
    "face_keypoints_2d": tuple((i, KEYPOINT_NAMES.index(f"face-{i}")) for i in range(68)),
    "hand_left_keypoints_2d": tuple((i, KEYPOINT_NAMES.index("left_hand_root") + i) for i in range(21)),
    "hand_right_keypoints_2d": tuple((i, KEYPOINT_NAMES.index("right_hand_root") + i) for i in range(21)),
}
"""(index in the OpenPose field, c133 index) pairs: 17 body and 6 foot keypoints of BODY_25 (Neck and MidHip
dropped), the 68 face landmarks (the two pupils, 68 and 69, dropped), both hands as they are (same 21-point order).
Every one of the 133 keypoints is covered exactly once."""

# c133 ranges of the COCO-WholeBody groups, as H3WB's metadata lists them.
C133_GROUPS: dict[str, tuple[int, ...]] = {
    "body": tuple(range(0, 17)),
    "left_foot": tuple(range(17, 20)),
    "right_foot": tuple(range(20, 23)),
    "face": tuple(range(23, 91)),
    "left_hand": tuple(range(91, 112)),
    "right_hand": tuple(range(112, 133)),
}
HIPS_C133 = (11, 12)
"""The two hips whose mean is the pelvis."""

# Official H3WB leaderboard subsets (c133) and alignment references.
H3WB_BODY_C133 = tuple(range(0, 23))
H3WB_FACE_C133 = tuple(range(23, 91))
H3WB_HANDS_C133 = tuple(range(91, 133))
H3WB_FACE_ALIGN_C133 = 0  # body nose
H3WB_LEFT_HAND_ALIGN_C133 = 91
H3WB_RIGHT_HAND_ALIGN_C133 = 112

PARTS: dict[str, tuple[int, ...]] = {
    "body": tuple(range(0, 24)),
    "face": tuple(range(24, 92)),
    "left_hand": tuple(range(92, 113)),
    "right_hand": tuple(range(113, 134)),
}
"""j134 joint indices of each part."""
PART_ROOTS: dict[str, int] = {"body": 0, "face": 54, "left_hand": 92, "right_hand": 113}
"""j134 root of each part's local frame (pelvis, face nose tip, hand roots)."""
PART_ATTACH: dict[str, int] = {"face": 1, "left_hand": 10, "right_hand": 11}
"""j134 body joint each non-body part hangs from (body nose, left wrist, right wrist)."""
PELVIS = 0
BODY_NOSE = 1

# Explicit (left, right) mirror pairs in c133. Face pairs follow the iBUG-68 layout, whose landmark 0 is on the
# subject's right: each face pair below is written (subject's right, subject's left) and reversed when used.
_FACE_PAIRS = ([(i, 16 - i) for i in range(8)]                      # jaw line
               + [(17 + i, 26 - i) for i in range(5)]               # eyebrows
               + [(31, 35), (32, 34)]                               # nostrils
               + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
               + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]  # outer lips
               + [(60, 64), (61, 63), (67, 65)])                    # inner lips
MIRROR_PAIRS_C133: tuple[tuple[int, int], ...] = tuple(
    [(2 * i + 1, 2 * i + 2) for i in range(8)]                      # eyes, ears, shoulders ... ankles
    + [(17, 20), (18, 21), (19, 22)]                                # feet
    + [(23 + b, 23 + a) for a, b in _FACE_PAIRS]
    + [(91 + i, 112 + i) for i in range(21)]                        # hands
)
MIDLINE_C133: tuple[int, ...] = (0,) + tuple(23 + i for i in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66))
"""Self-symmetric keypoints: the body nose and the face's midline landmarks."""


def flip_permutation(pairs=MIRROR_PAIRS_C133) -> np.ndarray:
    """The (134,) j134 permutation that swaps every c133 (left, right) keypoint pair of ``pairs``."""
    perm = np.arange(NUM_JOINTS)
    for left, right in pairs:
        perm[left + 1], perm[right + 1] = right + 1, left + 1
    return perm


FLIP_PERMUTATION = flip_permutation()
"""j134 permutation that swaps every mirror pair: ``flipped[..., j, :] = x[..., FLIP_PERMUTATION[j], :]``."""


def add_pelvis(x: np.ndarray) -> np.ndarray:
    """Insert the pelvis (mean of the hips) at index 0: (..., 133, C) -> (..., 134, C)."""
    if x.shape[-2] != NUM_KEYPOINTS:
        raise ValueError(f"expected {NUM_KEYPOINTS} keypoints on axis -2, got shape {x.shape}")
    pelvis = x[..., list(HIPS_C133), :].mean(axis=-2, keepdims=True)
    return np.concatenate([pelvis, x], axis=-2)


def _chain(*joints: int) -> list[tuple[int, int]]:
    return list(zip(joints[:-1], joints[1:]))


def _hand_bones(root: int) -> list[tuple[int, int]]:
    return [edge for f in range(5) for edge in _chain(root, *range(root + 1 + 4 * f, root + 5 + 4 * f))]


def _face_bones(base: int) -> list[tuple[int, int]]:
    def loop(a: int, b: int) -> list[tuple[int, int]]:
        return _chain(*range(base + a, base + b + 1), base + a)

    return (_chain(*range(base, base + 17)) + _chain(*range(base + 17, base + 22))
            + _chain(*range(base + 22, base + 27)) + _chain(*range(base + 27, base + 31))
            + _chain(*range(base + 31, base + 36)) + loop(36, 41) + loop(42, 47) + loop(48, 59) + loop(60, 67))


_BODY_BONES_C133 = ([(0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12),
                     (11, 12), (11, 13), (13, 15), (12, 14), (14, 16)]
                    + [(15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22)])
BONES: dict[str, tuple[tuple[int, int], ...]] = {
    "body": tuple([(0, 12), (0, 13)] + [(a + 1, b + 1) for a, b in _BODY_BONES_C133]),
    "face": tuple(_face_bones(24)),
    "left_hand": tuple([(10, 92)] + _hand_bones(92)),
    "right_hand": tuple([(11, 113)] + _hand_bones(113)),
}
"""j134 bone edges per part, for drawing; each hand also links its body wrist to its hand root."""
