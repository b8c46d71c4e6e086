"""The four Human3.6M cameras that H3WB reuses: ids, image sizes, calibration, projection.

H3WB's npz files do not store image sizes, so the loader takes them from here by camera id. The synthetic
dataset places its cameras like these (numbers from ``shared/reference/h36m_cameras.md``).
"""
from __future__ import annotations

import numpy as np

CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000), "60457274": (1000, 1002),
}
"""Image (width, height) in pixels per camera id."""
FOCAL_PX: dict[str, tuple[float, float]] = {
    "54138969": (1145.05, 1143.78), "55011271": (1149.68, 1147.59),
    "58860488": (1149.14, 1148.80), "60457274": (1145.51, 1144.77),
}
CENTRE_PX: dict[str, tuple[float, float]] = {
    "54138969": (512.54, 515.45), "55011271": (508.85, 508.06),
    "58860488": (519.82, 501.40), "60457274": (514.97, 501.88),
}
ORIENTATION_S1: dict[str, tuple[float, float, float, float]] = {
    "54138969": (0.1407, -0.1501, -0.7552, 0.6223), "55011271": (0.6157, -0.7648, -0.1483, 0.1179),
    "58860488": (0.1465, -0.1465, 0.7653, -0.6094), "60457274": (0.5834, -0.7853, 0.1455, -0.1475),
}
"""Camera orientation (w, x, y, z) of subject S1: rotates camera axes into the world (z up)."""
CENTRE_S1_MM: dict[str, tuple[float, float, float]] = {
    "54138969": (1841.1, 4955.3, 1563.4), "55011271": (1761.3, -5078.0, 1606.3),
    "58860488": (-1846.8, 5215.0, 1492.0), "60457274": (-1794.8, -3722.7, 1574.9),
}
"""Camera centre of subject S1 in world millimetres."""
K_NORMALIZER_PX = 1000.0
"""H3WB stores intrinsics divided by this many pixels (fx ~ 1.1455, cx ~ 0.515)."""


def quaternion_to_matrix(q) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def normalize_screen_coordinates(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels -> normalized screen coordinates: u' = 2u/w - 1, v' = 2v/w - h/w (aspect kept)."""
    return uv / width * 2.0 - np.array([1.0, height / width], dtype=uv.dtype)


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) with pixel intrinsics K (3, 3) -> pixels (..., 2)."""
    xy = points_cam[..., :2] / points_cam[..., 2:3]
    return xy * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
