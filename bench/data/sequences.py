"""A sequence as every dataset reader gives it (npz and JSON release alike), and the conversions they share."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bench import skeleton
from bench.data import cameras
from bench.errors import DataError


@dataclass(frozen=True)
class Sequence:
    """One camera's view of one action take, in time order.

    Attributes:
        pose_2d: (T, 134, 2) float32 normalized screen coordinates.
        pose_3d: (T, 134, 3) float32 camera-oriented positions in metres, not root-relative: camera frame for the
            npz files; for the JSON release, rotated into the camera but not translated (the camera translation T
            is missing, see :mod:`bench.data.h3wb_json`). Root-relative poses are the same either way.
        frame_ids: (T,) int64 H36M frame numbers, increasing.
        sample_ids: (T,) int64 H3WB sample ids, or None where the file has none for this view.
        resolution: (width, height) of the camera image in pixels.
        segment: index of the piece when ``max_gap`` split the take, else 0.
        calibration: the file's camera entry (``K``, ``R``, ``T``, ...) when it has one, else empty.
        mirror_pairs: c133 (left, right) keypoint pairs to swap when mirroring: ``skeleton.MIRROR_PAIRS_C133``
            unless ``load_h3wb(mirror_from_file=True)`` took them from the file's metadata
            (:func:`bench.skeleton.flip_permutation` turns them into the j134 permutation that flipping uses).
    """

    subject: str
    action: str
    camera: str
    frame_ids: np.ndarray
    sample_ids: np.ndarray | None
    pose_2d: np.ndarray
    pose_3d: np.ndarray
    resolution: tuple[int, int]
    segment: int = 0
    calibration: dict = field(default_factory=dict, compare=False, repr=False)
    mirror_pairs: tuple[tuple[int, int], ...] = field(default=skeleton.MIRROR_PAIRS_C133, compare=False, repr=False)

    @property
    def frames(self) -> int:
        return len(self.frame_ids)


IMAGE_MARGIN = 1.0
"""2D keypoints may lie this many image sizes outside the image (``-w <= x <= 2w``, ``-h <= y <= 2h``), no more."""
MAX_DISTANCE_M = 20.0
"""3D keypoints lie within this many metres of the camera on every axis (``|x|, |y|, |z| <= 20 m``): a person
in a Human3.6M-like room; anything beyond is a unit or storage error, or overflows float32."""


def pose_2d_from_pixels(pixels: np.ndarray, resolution: tuple[int, int], locate=None) -> np.ndarray:
    """(T, 133, 2) pixels -> (T, 134, 2) float32 normalized screen coordinates with the pelvis at 0.

    Every converted value must lie within ``IMAGE_MARGIN`` image sizes of the image (NaN and inf never do); else a
    DataError names the value with ``locate(frame, keypoint, axis) -> (file, where)`` (indices into ``pixels``).
    """
    width, height = resolution
    with np.errstate(over="ignore", invalid="ignore"):   # an overflow to inf is caught, by value, just below
        pose = skeleton.add_pelvis(cameras.normalize_screen_coordinates(pixels, width, height)).astype(np.float32)
    span = 1 + 2 * IMAGE_MARGIN   # the margin in normalized units: u' = 2u/w - 1, v' = 2v/w - h/w
    low, high = -IMAGE_MARGIN, 1 + IMAGE_MARGIN
    expected = (f"pixels within {IMAGE_MARGIN:g} image size of the {width}x{height} image "
                f"({low * width:g} <= x <= {high * width:g}, {low * height:g} <= y <= {high * height:g})")
    _check_range(pose[:, 1:], np.array([span, span * height / width]), pixels, "px", expected, locate)
    return pose


def pose_3d_from_mm(mm: np.ndarray, locate=None) -> np.ndarray:
    """(T, 133, 3) millimetres -> (T, 134, 3) float32 metres with the pelvis at 0.

    Every converted value must lie within ``MAX_DISTANCE_M`` of the camera (NaN and inf never do); else a DataError
    names the value with ``locate(frame, keypoint, axis) -> (file, where)`` (indices into ``mm``).
    """
    with np.errstate(over="ignore", invalid="ignore"):   # an overflow to inf is caught, by value, just below
        pose = skeleton.add_pelvis(mm / 1000.0).astype(np.float32)
    expected = f"coordinates within {MAX_DISTANCE_M:g} m of the camera (|x|, |y|, |z| <= {MAX_DISTANCE_M * 1000:g} mm)"
    _check_range(pose[:, 1:], np.full(3, MAX_DISTANCE_M), mm, "mm", expected, locate)
    return pose


def _check_range(converted: np.ndarray, bound: np.ndarray, raw: np.ndarray, unit: str, expected: str,
                 locate) -> None:
    """Raise a DataError at the first value of ``converted`` (T, 133, C), as used (float32), beyond ``bound`` (C,)
    in absolute value or not finite; it shows the value as the file has it (``raw``, in ``unit``)."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(converted) <= bound)
    if not bad.any():
        return
    frame, keypoint, axis = (int(i) for i in np.argwhere(bad)[0])
    file, where = locate(frame, keypoint, axis) if locate is not None else ("data", f"[{frame}, {keypoint}, {axis}]")
    value = converted[frame, keypoint, axis]
    found = f"{raw[frame, keypoint, axis]:g} {unit}" + ("" if np.isfinite(value) else f" ({value} as float32)")
    raise DataError(file, where, expected, found)


def split_at_gaps(sequence: Sequence, max_gap: int | None) -> list[Sequence]:
    """Cut ``sequence`` where consecutive frame ids differ by more than ``max_gap`` (None: keep it whole)."""
    if max_gap is None or sequence.frames < 2:
        return [sequence]
    cuts = np.flatnonzero(np.diff(sequence.frame_ids) > max_gap) + 1
    bounds = zip(np.r_[0, cuts], np.r_[cuts, sequence.frames])
    return [_slice(sequence, start, stop, index) for index, (start, stop) in enumerate(bounds)]


def _slice(sequence: Sequence, start: int, stop: int, segment: int) -> Sequence:
    part = slice(start, stop)
    return replace(sequence, frame_ids=sequence.frame_ids[part],
                   sample_ids=None if sequence.sample_ids is None else sequence.sample_ids[part],
                   pose_2d=sequence.pose_2d[part], pose_3d=sequence.pose_3d[part], segment=segment)
