"""Batched rotation matrices for the synthetic body's forward kinematics.

Every function takes angles in radians as arrays of any shape ``S`` and returns matrices of shape ``S + (3, 3)``,
so a whole sequence of ``T`` frames is posed with one matrix product per joint.
"""
from __future__ import annotations

import numpy as np


def rot_x(angle: np.ndarray) -> np.ndarray:
    """Right-handed rotation about the x axis: (...,) radians -> (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([one, zero, zero, zero, c, -s, zero, s, c], axis=-1).reshape(*np.shape(c), 3, 3)


def rot_y(angle: np.ndarray) -> np.ndarray:
    """Right-handed rotation about the y axis: (...,) radians -> (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, zero, s, zero, one, zero, -s, zero, c], axis=-1).reshape(*np.shape(c), 3, 3)


def rot_z(angle: np.ndarray) -> np.ndarray:
    """Right-handed rotation about the z axis: (...,) radians -> (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, -s, zero, s, c, zero, zero, zero, one], axis=-1).reshape(*np.shape(c), 3, 3)


def rot_axis(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation by ``angle`` (...,) radians about one fixed unit ``axis`` (3,) (Rodrigues) -> (..., 3, 3)."""
    x, y, z = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    cross = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    angle = np.asarray(angle, dtype=np.float64)[..., None, None]
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * (cross @ cross)


def limb_rotation(flex: np.ndarray, abduct: np.ndarray, twist: np.ndarray, side: int) -> np.ndarray:
    """Local rotation of a limb segment hanging along -z: (T,) radians each -> (T, 3, 3).

    Conventions for a body facing +y with its right side toward +x: ``flex`` > 0 swings the segment forward
    (+y), ``abduct`` > 0 swings it away from the midline, ``twist`` > 0 is an internal rotation about the
    segment's axis. ``side`` is +1 for the right limb and -1 for the left: mirroring across the x = 0 plane
    negates rotations about y and z and keeps those about x, so equal angles give mirror-image limbs.
    """
    return rot_x(flex) @ rot_y(-side * abduct) @ rot_z(side * twist)


def transform(rotation: np.ndarray, origin: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Place points given in a moving frame into the parent frame: ``origin + rotation @ point``.

    Args:
        rotation: (T, 3, 3) orientation of the frame in each of T frames.
        origin: (T, 3) position of the frame's origin.
        points: (M, 3) fixed local points, or (T, M, 3) local points that change over time.

    Returns:
        (T, M, 3) points in the parent frame.
    """
    points = np.broadcast_to(points, (rotation.shape[0],) + points.shape[-2:])
    return origin[:, None, :] + np.einsum("tij,tmj->tmi", rotation, points)
