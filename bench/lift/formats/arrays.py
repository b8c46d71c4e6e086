"""Arrays: ``.npy`` of shape (T, 133, 2|3) or (133, 2|3); ``.npz`` with ``keypoints`` (or one array) of that shape
and optionally ``scores`` (T, 133), ``image_size`` (2,) and ``frame_ids`` (T,). A third channel is the score (else
every finite point scores 1); NaN coordinates are missing keypoints. An array is one person's clip (person ``0``).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.lift.formats.base import Detection, Frame, Recording, check_size, keypoint_array, numbers
from bench.skeleton import NUM_KEYPOINTS

FORMAT = "keypoint array"


def read_npy(path: Path) -> Recording:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(path, "file", "a numpy .npy array", f"unreadable content ({error})") from error
    return _recording(path, "array", array, None, None, None)


def read_npz(path: Path) -> Recording:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(path, "file", "a numpy .npz archive", f"unreadable content ({error})") from error
    with archive:
        try:
            arrays = {key: archive[key] for key in archive.files}
        except ValueError as error:  # an object array, which would need pickle
            raise DataError(path, "file", "arrays of numbers", f"unreadable content ({error})") from error
    if "keypoints" in arrays:
        key = "keypoints"
    elif len(arrays) == 1:
        key = next(iter(arrays))
    else:
        raise DataError(path, "keys", f"'keypoints' (T, {NUM_KEYPOINTS}, 2 or 3), or a single array",
                        f"keys {sorted(arrays)}")
    return _recording(path, key, arrays[key], arrays.get("scores"), arrays.get("frame_ids"), arrays.get("image_size"))


def _recording(path: Path, key: str, array, scores, frame_ids, size) -> Recording:
    """A single-person clip from (T, 133, 2|3) or (133, 2|3) arrays."""
    array = numbers(path, key, array)
    keypoints = keypoint_array(path, key, array[None] if array.ndim == 2 else array, leading=("T",))
    frames = len(keypoints)
    if scores is None:
        scores = keypoints[..., 2].copy() if keypoints.shape[-1] == 3 else np.isfinite(keypoints).all(-1) * 1.0
    scores = numbers(path, "scores", scores)
    if scores.size != frames * NUM_KEYPOINTS:
        raise DataError(path, "scores", f"shape ({frames}, {NUM_KEYPOINTS})", f"shape {scores.shape}")
    scores = scores.reshape(frames, NUM_KEYPOINTS)
    ids = np.arange(frames) if frame_ids is None else numbers(path, "frame_ids", frame_ids).reshape(-1)
    if ids.shape != (frames,) or np.any(np.diff(ids) <= 0) or not np.all(ids == np.round(ids)):
        found = f"shape {ids.shape}" if ids.shape != (frames,) else f"ids {ids[:8].tolist()}"
        raise DataError(path, "frame_ids", f"{frames} increasing integer frame ids", found)
    size = None if size is None else check_size(path, "image_size", size)
    return Recording(path, FORMAT, [
        Frame(f"frame {int(i)}", f"frame-{int(i)}", int(i), size,
              [Detection(keypoints[t, :, :2], scores[t], f"{key}[{t}]", "0", path)])
        for t, i in enumerate(ids)], video=True)
