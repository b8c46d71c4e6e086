"""The synthetic articulated whole body: subject proportions, forward kinematics and the rest pose.

The body is a kinematic tree (pelvis, two spine segments, neck, head, legs, arms, hands) driven by named joint
angle *channels* (see ``CHANNELS``) and produces the 133 COCO-WholeBody keypoints in ``bench.skeleton`` order.

World frame: millimetres, z up, the floor at z = 0. With heading 0 the subject faces +y and its right side
points to +x, so the body's midline (sagittal) plane is x = 0 and mirroring is x -> -x. Every left-side segment
is the mirror image of its right-side twin (see ``rotations.limb_rotation``), so symmetric channels give a
mirror-symmetric pose.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bench.data.face_model import EXPRESSIONS, HEAD_MARKERS_MM, face_landmarks
from bench.data.hand_model import FINGERS, hand_keypoints
from bench.data.rotations import limb_rotation, rot_x, rot_y, rot_z, transform
from bench.skeleton import C133_GROUPS, KEYPOINT_NAMES, NUM_KEYPOINTS

SIDES = (("right", "r", 1), ("left", "l", -1))
"""(keypoint name prefix, channel prefix, mirror sign) of each body side."""

_AXIAL_CHANNELS = ("pelvis_pitch", "pelvis_roll", "pelvis_yaw", "spine_bend", "spine_side", "spine_twist",
                   "neck_pitch", "head_pitch", "head_yaw", "head_roll")
_LIMB_CHANNELS = ("hip_flex", "hip_abduct", "hip_twist", "knee", "ankle", "shoulder_flex", "shoulder_abduct",
                  "shoulder_twist", "elbow", "forearm_twist", "wrist_flex", "wrist_deviate", "spread")
_CURL_CHANNELS = tuple(f"curl_{finger}" for finger in FINGERS)
CHANNELS: tuple[str, ...] = (_AXIAL_CHANNELS
                             + tuple(f"{c}_{name}" for _, c, _ in SIDES for name in _LIMB_CHANNELS + _CURL_CHANNELS)
                             + EXPRESSIONS)
"""Every pose channel. Angles in radians (flexion, forward bend and looking down are positive; see
``limb_rotation`` for the limb conventions); finger curls and expressions are weights in [0, 1]."""

_INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
_GROUND_SOFTNESS_MM = 6.0
_GROUND_LEVEL_MM = 8.0


@dataclass(frozen=True)
class BodyShape:
    """One subject's proportions. Lengths in mm; scales are relative to the average face, hand and foot."""

    height_mm: float
    hip_half_width: float
    lumbar: float
    shoulder_rise: float
    shoulder_half_width: float
    neck: float
    head_rise: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    head_scale: float
    hand_scale: float
    foot_scale: float


# Segment lengths as fractions of body height, from standard adult anthropometric proportions.
_PROPORTIONS = {"hip_half_width": 0.052, "lumbar": 0.115, "shoulder_rise": 0.173, "shoulder_half_width": 0.106,
                "neck": 0.185, "head_rise": 0.065, "upper_arm": 0.172, "forearm": 0.150, "thigh": 0.245,
                "shin": 0.246}
_REFERENCE_HEIGHT_MM = 1700.0
# Foot keypoints of the right foot relative to its ankle, mm at the reference height: the big toe is medial.
_FOOT_MARKERS = {"big_toe": (-20.0, 175.0, -50.0), "small_toe": (30.0, 140.0, -52.0), "heel": (2.0, -55.0, -48.0)}


def body_shape(height_mm: float = _REFERENCE_HEIGHT_MM, factors: Mapping[str, float] | None = None) -> BodyShape:
    """A body of the given height with every proportion multiplied by ``factors`` (default 1).

    Face, hand and foot sizes follow the height (the face more weakly) times their own factor in
    ``factors['head_scale' | 'hand_scale' | 'foot_scale']``.
    """
    factors = dict(factors or {})
    ratio = height_mm / _REFERENCE_HEIGHT_MM
    lengths = {name: height_mm * fraction * factors.pop(name, 1.0) for name, fraction in _PROPORTIONS.items()}
    scales = {"head_scale": np.sqrt(ratio) * factors.pop("head_scale", 1.0),
              "hand_scale": ratio * factors.pop("hand_scale", 1.0),
              "foot_scale": ratio * factors.pop("foot_scale", 1.0)}
    if factors:
        raise ValueError(f"body_shape: unknown proportion factors {sorted(factors)}; "
                         f"expected some of {sorted(_PROPORTIONS) + sorted(scales)}")
    return BodyShape(height_mm=float(height_mm), **lengths, **{k: float(v) for k, v in scales.items()})


def sample_body_shape(rng: np.random.Generator) -> BodyShape:
    """A random adult: height uniform in 1.64-1.82 m, each proportion within a few percent of the average."""
    height = rng.uniform(1640.0, 1820.0)
    names = sorted(_PROPORTIONS) + ["foot_scale", "hand_scale", "head_scale"]
    spread = {"head_scale": 0.015, "hand_scale": 0.02}
    factors = {name: float(np.clip(rng.normal(1.0, spread.get(name, 0.025)), 0.94, 1.06)) for name in names}
    factors["head_scale"] = float(np.clip(factors["head_scale"], 0.97, 1.03))
    factors["hand_scale"] = float(np.clip(factors["hand_scale"], 0.96, 1.04))
    return body_shape(height, factors)


def _point(rotation: np.ndarray, origin: np.ndarray, offset) -> np.ndarray:
    """origin + rotation @ offset for one local offset (3,): -> (T, 3)."""
    return transform(rotation, origin, np.asarray(offset, dtype=np.float64)[None])[:, 0]


class _Channels:
    """Reads pose channels as (T,) arrays; a missing channel is 0."""

    def __init__(self, pose: Mapping[str, np.ndarray], frames: int):
        unknown = sorted(set(pose) - set(CHANNELS))
        if unknown:
            raise ValueError(f"pose: unknown channels {unknown}; expected names from body_model.CHANNELS")
        self.pose, self.frames = pose, frames

    def __call__(self, name: str) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.pose.get(name, 0.0), dtype=np.float64), (self.frames,))


def _leg(shape: BodyShape, ch: _Channels, pelvis_rot, pelvis, prefix: str, c: str, side: int, out) -> None:
    """Hip, knee, ankle and the three foot keypoints of one leg, written into ``out`` (T, 133, 3)."""
    hip = _point(pelvis_rot, pelvis, (side * shape.hip_half_width, 0.0, 0.0))
    thigh_rot = pelvis_rot @ limb_rotation(ch(f"{c}_hip_flex"), ch(f"{c}_hip_abduct"), ch(f"{c}_hip_twist"), side)
    knee = _point(thigh_rot, hip, (0.0, 0.0, -shape.thigh))
    shin_rot = thigh_rot @ rot_x(-ch(f"{c}_knee"))  # the knee bends backward
    ankle = _point(shin_rot, knee, (0.0, 0.0, -shape.shin))
    foot_rot = shin_rot @ rot_x(ch(f"{c}_ankle"))  # positive lifts the toes
    for name, joint in (("hip", hip), ("knee", knee), ("ankle", ankle)):
        out[:, _INDEX[f"{prefix}_{name}"]] = joint
    for name, (x, y, z) in _FOOT_MARKERS.items():
        offset = np.array([side * x, y, z]) * shape.foot_scale
        out[:, _INDEX[f"{prefix}_{name}"]] = _point(foot_rot, ankle, offset)


def _arm(shape: BodyShape, ch: _Channels, chest_rot, waist, prefix: str, c: str, side: int, out) -> None:
    """Shoulder, elbow, wrist and the 21 hand keypoints of one arm, written into ``out`` (T, 133, 3)."""
    shoulder = _point(chest_rot, waist, (side * shape.shoulder_half_width, -0.01 * shape.height_mm,
                                         shape.shoulder_rise))
    upper_rot = chest_rot @ limb_rotation(ch(f"{c}_shoulder_flex"), ch(f"{c}_shoulder_abduct"),
                                          ch(f"{c}_shoulder_twist"), side)
    elbow = _point(upper_rot, shoulder, (0.0, 0.0, -shape.upper_arm))
    # Pronation turns the forearm about its own axis; a mirrored twist keeps the two arms symmetric.
    forearm_rot = upper_rot @ rot_x(ch(f"{c}_elbow")) @ rot_z(side * ch(f"{c}_forearm_twist"))
    wrist = _point(forearm_rot, elbow, (0.0, 0.0, -shape.forearm))
    # Wrist flexion turns the hand toward its palm (about y, mirrored); deviation toward the thumb (about x).
    hand_rot = forearm_rot @ rot_x(ch(f"{c}_wrist_deviate")) @ rot_y(side * ch(f"{c}_wrist_flex"))
    curls = np.stack([ch(f"{c}_{name}") for name in _CURL_CHANNELS], axis=1)
    hand = hand_keypoints(curls, ch(f"{c}_spread"), shape.hand_scale, side)
    for name, joint in (("shoulder", shoulder), ("elbow", elbow), ("wrist", wrist)):
        out[:, _INDEX[f"{prefix}_{name}"]] = joint
    out[:, list(C133_GROUPS[f"{prefix}_hand"])] = transform(hand_rot, wrist, hand)


def _head(shape: BodyShape, ch: _Channels, chest_rot, waist, out) -> None:
    """Body head keypoints and the 68 face landmarks, written into ``out`` (T, 133, 3)."""
    neck = _point(chest_rot, waist, (0.0, -0.015 * shape.height_mm, shape.neck))
    neck_rot = chest_rot @ rot_x(-ch("neck_pitch")) @ rot_z(0.3 * ch("head_yaw"))
    head = _point(neck_rot, neck, (0.0, 0.0, shape.head_rise))
    head_rot = neck_rot @ rot_x(-ch("head_pitch")) @ rot_y(ch("head_roll")) @ rot_z(0.7 * ch("head_yaw"))
    expression = {name: ch(name) for name in EXPRESSIONS}
    face = face_landmarks(expression, shape.head_scale, ch.frames)
    out[:, list(C133_GROUPS["face"])] = transform(head_rot, head, face)
    names = list(HEAD_MARKERS_MM)
    markers = np.stack([HEAD_MARKERS_MM[name] for name in names]) * shape.head_scale
    out[:, [_INDEX[name] for name in names]] = transform(head_rot, head, markers)


def _stand_on_ground(keypoints: np.ndarray) -> np.ndarray:
    """Lift the body so its lowest foot keypoint touches the floor: (T, 133, 3) -> (T, 133, 3).

    A soft minimum over the six foot keypoints keeps the height smooth when the supporting foot changes.
    """
    feet = keypoints[:, list(C133_GROUPS["left_foot"] + C133_GROUPS["right_foot"]), 2]
    low = feet.min(axis=1, keepdims=True)
    soft_min = low[:, 0] - _GROUND_SOFTNESS_MM * np.log(np.exp(-(feet - low) / _GROUND_SOFTNESS_MM).sum(axis=1))
    keypoints[:, :, 2] += (_GROUND_LEVEL_MM - soft_min)[:, None]
    return keypoints


def pose_keypoints(shape: BodyShape, pose: Mapping[str, np.ndarray], root_xy: np.ndarray,
                   heading: np.ndarray) -> np.ndarray:
    """Forward kinematics: channels over T frames -> the 133 keypoints in world mm, standing on the floor.

    Args:
        shape: the subject's proportions.
        pose: channel name (see ``CHANNELS``) -> (T,) values; missing channels are 0 (straight, neutral).
        root_xy: (T, 2) floor position of the pelvis in mm.
        heading: (T,) rotation about the vertical in radians; 0 faces +y, the facing direction is
            (-sin(heading), cos(heading)).

    Returns:
        (T, 133, 3) keypoints in c133 order, world frame, mm.
    """
    frames = heading.shape[0]
    if root_xy.shape != (frames, 2):
        raise ValueError(f"pose_keypoints: expected root_xy of shape ({frames}, 2), got {root_xy.shape}")
    ch = _Channels(pose, frames)
    out = np.zeros((frames, NUM_KEYPOINTS, 3))
    pelvis_rot = rot_z(heading + ch("pelvis_yaw")) @ rot_x(-ch("pelvis_pitch")) @ rot_y(ch("pelvis_roll"))
    pelvis = np.concatenate([root_xy, np.zeros((frames, 1))], axis=1)
    # The forward bend, side bend and twist of the spine are shared between the lumbar and thoracic segments.
    half_bend = rot_x(-0.5 * ch("spine_bend")) @ rot_y(0.5 * ch("spine_side")) @ rot_z(0.5 * ch("spine_twist"))
    lumbar_rot = pelvis_rot @ half_bend
    waist = _point(lumbar_rot, pelvis, (0.0, 0.0, shape.lumbar))
    chest_rot = lumbar_rot @ half_bend
    _head(shape, ch, chest_rot, waist, out)
    for prefix, c, side in SIDES:
        _leg(shape, ch, pelvis_rot, pelvis, prefix, c, side, out)
        _arm(shape, ch, chest_rot, waist, prefix, c, side, out)
    return _stand_on_ground(out)


def rest_pose(shape: BodyShape | None = None) -> np.ndarray:
    """The rest pose (133, 3) in world mm: standing upright at the origin facing +y, arms hanging straight with
    the palms against the thighs, fingers straight, neutral face.

    It is mirror-symmetric about the midline plane x = 0 (the subject's right side is +x): every left keypoint
    is its right partner with x negated, and midline keypoints have x = 0.
    """
    shape = shape or body_shape()
    return pose_keypoints(shape, {}, np.zeros((1, 2)), np.zeros(1))[0]
