"""Key poses and the action styles built from them, for the synthetic motion.

A key pose lists only the channels it changes from the standing neutral pose (``body_model.CHANNELS`` names);
the motion generator blends several key poses over time. Each H36M action type has a style: which key poses it
moves between, whether the subject sits, walks or stays near one spot, how much they talk, chew or smile, and
periodic movements such as waving.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.data.hand_model import FINGERS, HAND_SHAPES


def _side(c: str, **angles: float) -> dict[str, float]:
    return {f"{c}_{name}": value for name, value in angles.items()}


def _both(**angles: float) -> dict[str, float]:
    return {**_side("r", **angles), **_side("l", **angles)}


def _hand(c: str, shape: str) -> dict[str, float]:
    curls, spread = HAND_SHAPES[shape]
    return {**{f"{c}_curl_{finger}": curl for finger, curl in zip(FINGERS, curls)}, f"{c}_spread": spread}


def _hands(shape: str) -> dict[str, float]:
    return {**_hand("r", shape), **_hand("l", shape)}


def _mirror(pose: dict[str, float]) -> dict[str, float]:
    """The same pose done with the other arm (and looking the other way)."""
    swap = {"r": "l", "l": "r"}
    out = {}
    for name, value in pose.items():
        prefix, _, rest = name.partition("_")
        if prefix in swap:
            out[f"{swap[prefix]}_{rest}"] = value
        else:
            out[name] = -value if name in ("head_yaw", "head_roll", "spine_side", "spine_twist") else value
    return out


NEUTRAL: dict[str, float] = {**_both(shoulder_abduct=0.1, elbow=0.2, knee=0.04, hip_abduct=0.03),
                             **_hands("relaxed"), "smile": 0.1, "brow_raise": 0.1}
"""Relaxed standing: arms slightly away from the body, elbows and knees soft, hands half open."""

SEATED: dict[str, float] = {**_both(hip_flex=1.45, knee=1.4, hip_abduct=0.12), "spine_bend": 0.05}
"""What sitting on a chair adds to any pose (leg and trunk channels only)."""

_LAP = _both(shoulder_flex=0.45, shoulder_twist=0.3, elbow=0.9, forearm_twist=0.5)
_POINT_RIGHT = {**_side("r", shoulder_flex=1.3, shoulder_abduct=0.45, elbow=0.15, forearm_twist=0.8),
                **_hand("r", "point"), "head_yaw": -0.4}
_HAND_TO_MOUTH_RIGHT = {**_side("r", shoulder_flex=0.5, shoulder_abduct=0.15, shoulder_twist=0.6, elbow=2.4,
                                forearm_twist=-0.2, wrist_flex=0.3), **_hand("r", "hold")}

KEY_POSES: dict[str, dict[str, float]] = {
    "idle": {},
    "explain": {**_both(shoulder_flex=0.45, shoulder_abduct=0.2, shoulder_twist=0.3, elbow=1.3, forearm_twist=-0.5),
                **_hands("open")},
    "point_right": _POINT_RIGHT,
    "point_left": _mirror(_POINT_RIGHT),
    "hands_on_hips": {**_both(shoulder_abduct=0.55, shoulder_twist=-0.3, elbow=1.6, forearm_twist=0.9,
                              wrist_flex=-0.4), **_hands("hold")},
    "arms_crossed": {**_both(shoulder_flex=0.35, shoulder_twist=1.0, elbow=1.95, forearm_twist=0.5),
                     **_hands("relaxed")},
    "hand_to_mouth_right": _HAND_TO_MOUTH_RIGHT,
    "hand_to_mouth_left": _mirror(_HAND_TO_MOUTH_RIGHT),
    "phone_right": {**_side("r", shoulder_flex=0.25, shoulder_abduct=0.6, shoulder_twist=0.2, elbow=2.45,
                            forearm_twist=-0.6), **_hand("r", "hold"), "head_roll": 0.1},
    "wave_right": {**_side("r", shoulder_flex=0.3, shoulder_abduct=1.35, shoulder_twist=-1.2, elbow=1.5),
                   **_hand("r", "open"), "smile": 0.6},
    "handshake": {**_side("r", shoulder_flex=0.65, shoulder_abduct=0.1, elbow=0.9, forearm_twist=-0.3),
                  **_hand("r", "hold"), "smile": 0.5},
    "bow": {"spine_bend": 0.45, "head_pitch": 0.25, **_both(shoulder_flex=0.2)},
    "camera": {**_both(shoulder_flex=0.9, shoulder_abduct=0.3, shoulder_twist=0.6, elbow=2.0, forearm_twist=0.3),
               **_hands("hold"), "head_pitch": -0.05},
    "carry": {**_both(shoulder_flex=0.3, elbow=1.45, forearm_twist=-0.3), **_hands("hold")},
    "reach_down": {"spine_bend": 0.75, "head_pitch": 0.2, **_both(hip_flex=0.25, knee=0.35, shoulder_flex=0.9,
                                                                  elbow=0.2), **_hands("open")},
    "arms_up": {**_both(shoulder_flex=2.4, shoulder_abduct=0.3, elbow=0.2), **_hands("open"), "smile": 0.7},
    "one_arm_up": {**_side("r", shoulder_flex=2.2, shoulder_abduct=0.6, elbow=0.3), **_hand("r", "open"),
                   **_side("l", shoulder_abduct=0.55, shoulder_twist=-0.3, elbow=1.6, forearm_twist=0.9)},
    "hands_behind": {**_both(shoulder_flex=-0.4, shoulder_abduct=0.1, shoulder_twist=0.5, elbow=0.9)},
    "weight_shift": {"pelvis_roll": 0.07, "spine_side": -0.06, **_side("r", hip_abduct=0.08), **_side("l", knee=0.2)},
    "lean_forward": {"spine_bend": 0.3, "head_pitch": 0.15},
    "table": {**_both(shoulder_flex=0.6, shoulder_abduct=0.1, elbow=1.35, forearm_twist=0.9), **_hands("hold")},
    "lap": _LAP,
    "lap_lean_back": {**_LAP, "spine_bend": -0.2, "head_pitch": -0.1},
    "lap_lean_forward": {**_LAP, "spine_bend": 0.3, "head_pitch": 0.15},
    "leash": {**_side("r", shoulder_flex=0.55, shoulder_abduct=0.2, elbow=0.5, forearm_twist=0.6),
              **_hand("r", "fist")},
}
"""Key pose name -> channel overrides of ``NEUTRAL``."""


@dataclass(frozen=True)
class ActionStyle:
    """How one H36M action type moves.

    Attributes:
        gestures: key poses (names in ``KEY_POSES``) with a preference bias each; higher is held longer.
        base: 'stand', 'seated' (on a chair throughout) or 'sit_down' (alternately sits down and stands up).
        locomotion: 'walk' (loops across the capture area), 'wander' (drifts around one spot) or 'still'.
        speed_mm_s: walking speed for 'walk'; drift radius in mm for 'wander'.
        talking, chewing, smile: mouth movement and expression levels in [0, 1].
        head_yaw: constant head turn in radians (e.g. toward a walking partner).
        stop_and_go: for 'walk', whether the walker stops now and then (a dog walker does).
        oscillations: (key pose, channel, amplitude, frequency in Hz), active while that key pose is held.
    """

    gestures: tuple[tuple[str, float], ...]
    base: str = "stand"
    locomotion: str = "wander"
    speed_mm_s: float = 400.0
    talking: float = 0.0
    chewing: float = 0.0
    smile: float = 0.0
    head_yaw: float = 0.0
    stop_and_go: bool = False
    oscillations: tuple[tuple[str, str, float, float], ...] = ()


ACTION_STYLES: dict[str, ActionStyle] = {
    "Directions": ActionStyle((("idle", 0), ("point_right", 0), ("point_left", 0), ("explain", 0.5),
                               ("weight_shift", 0)), speed_mm_s=600.0, talking=0.4),
    "Discussion": ActionStyle((("idle", 0), ("explain", 1.0), ("arms_crossed", 0), ("hands_on_hips", 0),
                               ("weight_shift", 0)), talking=0.7,
                              oscillations=(("explain", "r_elbow", 0.25, 1.2), ("explain", "l_elbow", 0.2, 0.9))),
    "Eating": ActionStyle((("table", 1.0), ("hand_to_mouth_right", 0.5), ("hand_to_mouth_left", 0), ("lap", 0)),
                          base="seated", locomotion="still", chewing=0.5),
    "Greeting": ActionStyle((("idle", 0), ("wave_right", 0.5), ("handshake", 0), ("bow", -0.5), ("explain", 0)),
                            speed_mm_s=700.0, talking=0.4, smile=0.4,
                            oscillations=(("wave_right", "r_shoulder_twist", 0.35, 2.0),
                                          ("handshake", "r_elbow", 0.1, 2.5))),
    "Phoning": ActionStyle((("phone_right", 1.5), ("idle", 0), ("weight_shift", 0)), speed_mm_s=500.0, talking=0.6),
    "Photo": ActionStyle((("camera", 1.0), ("idle", 0), ("reach_down", -0.5), ("lean_forward", 0))),
    "Posing": ActionStyle((("arms_up", 0), ("one_arm_up", 0), ("hands_on_hips", 0), ("arms_crossed", 0),
                           ("idle", 0)), speed_mm_s=300.0, smile=0.5),
    "Purchases": ActionStyle((("carry", 0.5), ("reach_down", 0), ("idle", 0), ("explain", 0)), speed_mm_s=500.0,
                             talking=0.2),
    "Sitting": ActionStyle((("lap", 0.5), ("lap_lean_back", 0), ("lap_lean_forward", 0), ("table", 0),
                            ("hand_to_mouth_right", -0.5)), base="seated", locomotion="still"),
    "SittingDown": ActionStyle((("idle", 0), ("lap", 0), ("lap_lean_forward", 0)), base="sit_down",
                               speed_mm_s=150.0),
    "Smoking": ActionStyle((("hand_to_mouth_right", 0.5), ("idle", 0), ("arms_crossed", 0), ("weight_shift", 0)),
                           speed_mm_s=300.0),
    "Waiting": ActionStyle((("idle", 0.5), ("weight_shift", 0), ("hands_behind", 0), ("arms_crossed", 0),
                            ("hands_on_hips", 0)), speed_mm_s=300.0),
    "WalkDog": ActionStyle((("leash", 1.0), ("idle", 0)), locomotion="walk", speed_mm_s=900.0, stop_and_go=True),
    "Walking": ActionStyle((("idle", 1.0), ("hands_behind", -1.0)), locomotion="walk", speed_mm_s=1250.0),
    "WalkTogether": ActionStyle((("idle", 0.5), ("explain", -0.5)), locomotion="walk", speed_mm_s=1000.0,
                                talking=0.5, head_yaw=-0.35),
}
"""H36M action type -> its motion style (the 15 action types of Human3.6M)."""
