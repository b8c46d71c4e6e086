"""Smooth synthetic motion for one subject performing one H36M action, sampled at any frame ids.

Every channel is a smooth function of time (sums of low-frequency sinusoids with seeded phases), so the pose at
a frame does not depend on which other frames are asked for. The floor trajectory (walking loops, drifting,
stepping) is integrated on the full 50 fps frame grid from frame 0 and then read at the requested frames.
"""
from __future__ import annotations

import numpy as np

from bench.data.body_model import CHANNELS, BodyShape, pose_keypoints
from bench.data.poses import ACTION_STYLES, KEY_POSES, NEUTRAL, SEATED, ActionStyle

FPS = 50.0
"""Human3.6M's video frame rate; frame ids count frames at this rate."""

# Centre of the area that all four cameras see whole (checked with the S1 calibration), world mm.
_AREA_CENTRE_MM = np.array([100.0, 450.0])
_GESTURE_SHARPNESS = 2.5
# An adult stride (two steps) at a normal pace, and the speed from which legs swing fully.
_STRIDE_MM = 1360.0
_FULL_STRIDE_SPEED_MM_S = 1250.0
# Amplitude (radians, or weight for curls and expressions) of the free fluctuation of each kind of channel.
_JITTER = {"pelvis": 0.03, "spine": 0.06, "neck": 0.05, "head_pitch": 0.12, "head_yaw": 0.3, "head_roll": 0.05,
           "hip": 0.04, "knee": 0.04, "ankle": 0.04, "shoulder": 0.06, "elbow": 0.1, "forearm": 0.2,
           "wrist": 0.15, "spread": 0.05, "curl": 0.12, "smile": 0.15, "brow_raise": 0.2}


def action_type(action: str) -> str:
    """H36M action type of an action name: 'Walking 1' -> 'Walking' (the name before the first space)."""
    name = action.split(" ")[0]
    if name not in ACTION_STYLES:
        raise ValueError(f"action {action!r}: unknown action type {name!r}; expected one of {sorted(ACTION_STYLES)}")
    return name


def _sinusoids(rng: np.random.Generator, t: np.ndarray, count: int, low_hz: float, high_hz: float,
               terms: int = 3) -> np.ndarray:
    """``count`` smooth random signals with unit RMS: (T,) seconds -> (T, count)."""
    freqs = rng.uniform(low_hz, high_hz, size=(count, terms))
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(count, terms))
    return np.sin(2.0 * np.pi * t[:, None, None] * freqs + phases).sum(axis=-1) * np.sqrt(2.0 / terms)


_SINUSOID_PEAK = 3.0 * np.sqrt(2.0 / 3.0)
"""The largest value ``_sinusoids`` can take with its default three terms."""


def _jitter_amplitude(channel: str) -> float:
    for key, amplitude in _JITTER.items():
        if key in channel:
            return amplitude
    return 0.0


def _walk_loop(rng: np.random.Generator, t: np.ndarray, speed_mm_s: float, stop_and_go: bool):
    """Floor positions (T, 2), facing direction (T, 2) and speed (T,) along an elliptic loop."""
    centre = _AREA_CENTRE_MM + rng.uniform(-100.0, 100.0, size=2)
    radii = np.array([rng.uniform(600.0, 720.0), rng.uniform(900.0, 1050.0)])
    direction = rng.choice([-1.0, 1.0])
    u = np.empty_like(t)
    u[0] = rng.uniform(0.0, 2.0 * np.pi)
    pace = 1.0 + 0.08 * _sinusoids(rng, t, 1, 0.03, 0.08)[:, 0]
    if stop_and_go:  # a dog walker stops now and then
        pace *= 0.55 + 0.45 * np.tanh(2.0 * _sinusoids(rng, t, 1, 0.02, 0.05)[:, 0])
    speed = speed_mm_s * pace
    dt = np.diff(t)
    for k in range(len(t) - 1):  # arc length -> ellipse parameter, one 20 ms step at a time
        tangent = np.hypot(radii[0] * np.sin(u[k]), radii[1] * np.cos(u[k]))
        u[k + 1] = u[k] + direction * speed[k] * dt[k] / tangent
    xy = centre + radii * np.stack([np.cos(u), np.sin(u)], axis=1)
    facing = direction * np.stack([-radii[0] * np.sin(u), radii[1] * np.cos(u)], axis=1)
    return xy, facing, speed


def _trajectory(rng: np.random.Generator, style: ActionStyle, last_frame: int):
    """Floor position (F, 2) mm, heading (F,) rad, step amplitude (F,) and step phase (F,) rad, for frames
    0..last_frame."""
    t = np.arange(last_frame + 1) / FPS
    start_heading = rng.uniform(-np.pi, np.pi)
    turning = 0.6 * _sinusoids(rng, t, 1, 0.01, 0.04)[:, 0]
    if style.locomotion == "walk":
        xy, facing, speed = _walk_loop(rng, t, style.speed_mm_s, style.stop_and_go)
        heading = np.arctan2(-facing[:, 0], facing[:, 1])
    else:
        # Someone standing or seated in place still sways a little and turns only slightly.
        radius, turn_gain = (style.speed_mm_s, 1.0) if style.locomotion == "wander" else (15.0, 0.08)
        xy = _AREA_CENTRE_MM + radius * _sinusoids(rng, t, 2, 0.015, 0.05) / _SINUSOID_PEAK
        speed = np.linalg.norm(np.gradient(xy, t, axis=0), axis=1) if len(t) > 1 else np.zeros(1)
        heading = start_heading + turn_gain * turning
    # Slow drifting becomes small shuffling steps; the step phase advances one cycle per stride travelled.
    amplitude = np.minimum(speed / _FULL_STRIDE_SPEED_MM_S, 1.0)
    phase = np.concatenate([[0.0], np.cumsum(2.0 * np.pi * speed[:-1] / _STRIDE_MM / FPS)])
    return xy, heading, amplitude, phase


def _gait(amplitude: np.ndarray, phase: np.ndarray) -> dict[str, np.ndarray]:
    """Channel offsets of walking: legs and arms swing in opposition, the pelvis and shoulders counter-rotate."""
    out = {"pelvis_yaw": 0.09 * amplitude * np.sin(phase), "spine_twist": -0.14 * amplitude * np.sin(phase),
           "pelvis_roll": 0.05 * amplitude * np.sin(2.0 * phase)}
    for c, g in (("r", phase), ("l", phase + np.pi)):
        out[f"{c}_hip_flex"] = amplitude * (0.05 + 0.4 * np.sin(g))
        # The knee folds most early in the swing, while the hip is still flexing forward.
        out[f"{c}_knee"] = amplitude * (0.08 + 0.65 * ((1.0 + np.sin(g + 0.9)) / 2.0) ** 2)
        out[f"{c}_ankle"] = 0.18 * amplitude * np.sin(g - 0.6)
        out[f"{c}_shoulder_flex"] = -0.28 * amplitude * np.sin(g)
        out[f"{c}_elbow"] = amplitude * (0.1 - 0.08 * np.sin(g))
    return out


def _gesture_weights(rng: np.random.Generator, style: ActionStyle, t: np.ndarray) -> np.ndarray:
    """(T, K) smooth convex weights over the style's K key poses: one pose dominates for a few seconds."""
    bias = np.array([b for _, b in style.gestures])
    score = _GESTURE_SHARPNESS * (_sinusoids(rng, t, len(bias), 0.03, 0.12, terms=2) + bias)
    score -= score.max(axis=1, keepdims=True)
    weights = np.exp(score)
    return weights / weights.sum(axis=1, keepdims=True)


def _seated_level(rng: np.random.Generator, style: ActionStyle, t: np.ndarray) -> np.ndarray:
    """(T,) 0 standing .. 1 seated; 'sit_down' alternates every 8-15 s with transitions of about 2 s."""
    if style.base == "sit_down":
        return 0.5 + 0.5 * np.tanh(3.0 * _sinusoids(rng, t, 1, 0.035, 0.06, terms=1)[:, 0])
    return np.full(t.shape, 1.0 if style.base == "seated" else 0.0)


def _face(rng: np.random.Generator, style: ActionStyle, t: np.ndarray) -> dict[str, np.ndarray]:
    """Expression channels: talking or chewing mouth, smile and brows drifting, blinks every few seconds."""
    slow = _sinusoids(rng, t, 3, 0.05, 0.2)
    speech_gate = 0.5 + 0.5 * np.tanh(2.0 * slow[:, 0])
    syllables = 0.5 + 0.5 * _sinusoids(rng, t, 1, 2.5, 4.5, terms=2)[:, 0] / 2.0
    chew = 0.5 + 0.5 * np.sin(2.0 * np.pi * 1.4 * t + rng.uniform(0.0, 2.0 * np.pi))
    period = rng.uniform(2.8, 4.5)
    offset = rng.uniform(0.0, 2.0 * np.pi)
    # Blinks sit near a regular grid, moved by a fixed pseudo-random jitter per blink, so that the blink
    # times never depend on how many frames are generated.
    nearest = np.floor(t / period)[:, None] + np.arange(-1, 3)
    centres = (nearest + 0.5 + 0.35 * np.sin(12.9898 * nearest + offset)) * period
    blink = np.exp(-(((t[:, None] - centres) / 0.07) ** 2)).sum(axis=1)
    return {"mouth_open": np.clip(0.03 + style.talking * speech_gate * syllables + style.chewing * chew, 0.0, 1.0),
            "smile": style.smile + 0.15 * slow[:, 1], "brow_raise": 0.2 * slow[:, 2],
            "blink": np.clip(blink, 0.0, 1.0)}


def _channels(rng: np.random.Generator, style: ActionStyle, t: np.ndarray, amplitude: np.ndarray,
              phase: np.ndarray, energy: float) -> dict[str, np.ndarray]:
    """All pose channels (T,) from key-pose blending, sitting, gait, free fluctuation and expressions."""
    weights = _gesture_weights(rng, style, t)
    seated = _seated_level(rng, style, t)
    jitter = _sinusoids(rng, t, len(CHANNELS), 0.1, 0.7)
    oscillation_phases = rng.uniform(0.0, 2.0 * np.pi, size=len(style.oscillations))
    pose = {}
    for c, name in enumerate(CHANNELS):
        held = [KEY_POSES[g].get(name, NEUTRAL.get(name, 0.0)) for g, _ in style.gestures]
        pose[name] = weights @ np.array(held) + seated * SEATED.get(name, 0.0)
        pose[name] = pose[name] + energy * _jitter_amplitude(name) * jitter[:, c]
    for (gesture, channel, amp, hz), ph in zip(style.oscillations, oscillation_phases):
        k = [g for g, _ in style.gestures].index(gesture)
        pose[channel] = pose[channel] + weights[:, k] * amp * np.sin(2.0 * np.pi * hz * t + ph)
    # Standing up and sitting down lean the trunk forward over the feet.
    pose["spine_bend"] = pose["spine_bend"] + 2.0 * seated * (1.0 - seated) * (style.base == "sit_down")
    walking = 1.0 - seated
    for name, offset in _gait(amplitude * walking, phase).items():
        pose[name] = pose[name] + offset
    pose["head_yaw"] = pose["head_yaw"] + style.head_yaw
    for name, value in _face(rng, style, t).items():
        pose[name] = pose[name] + value
    for name in pose:
        if "curl" in name or name in ("smile", "brow_raise", "mouth_open", "blink"):
            pose[name] = np.clip(pose[name], 0.0, 1.0)
    return pose


def simulate_action(shape: BodyShape, action: str, rng: np.random.Generator, frame_ids: np.ndarray,
                    energy: float = 1.0) -> np.ndarray:
    """World keypoints of one subject performing one action, at the given frames.

    Args:
        shape: the subject's body.
        action: H36M action name such as 'Walking 1' (the type before the space picks the style).
        rng: generator owned by this (subject, action); all random draws have fixed sizes, so the motion at a
            frame is the same whatever ``frame_ids`` are requested.
        frame_ids: (T,) non-negative frame numbers at 50 fps.
        energy: the subject's movement liveliness (scales the free fluctuation, about 1).

    Returns:
        (T, 133, 3) keypoints in world mm (z up).
    """
    frame_ids = np.asarray(frame_ids)
    if frame_ids.ndim != 1 or len(frame_ids) == 0 or frame_ids.min() < 0:
        raise ValueError(f"simulate_action: expected a non-empty 1-D array of frame ids >= 0, got {frame_ids!r}")
    style = ACTION_STYLES[action_type(action)]
    xy, heading, amplitude, phase = _trajectory(rng, style, int(frame_ids.max()))
    t = frame_ids / FPS
    pose = _channels(rng, style, t, amplitude[frame_ids], phase[frame_ids], energy)
    return pose_keypoints(shape, pose, xy[frame_ids], heading[frame_ids])
