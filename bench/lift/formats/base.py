"""What every keypoint reader returns (frames of detections) and the checks they share (numbers, image sizes).

A reader turns a file (or a folder of per-image files) into a :class:`Recording`: its frames in order, each with the
people detected in it (:class:`Detection`, 133 COCO-WholeBody keypoints in pixels with a score each). Whether the
frames are a video or unrelated images, and who is who across frames, is decided later (``bench.lift.readers``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.skeleton import NUM_KEYPOINTS

DEFAULT_THRESHOLD = 0.3
"""Keypoints scored below this are missing."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Detection:
    """One person in one frame or image.

    Attributes:
        keypoints: (133, 2) float64 pixels; NaN where the file gives no position.
        scores: (133,) float64 confidence; 0 where the file gives no keypoint.
        where: the place in the file, for messages (e.g. ``annotations[3] (id 7)``).
        track_id: the file's id of the person (``track_id``, ``person_id``, OpenPifPaf's ``id_``), or None.
        source: the file it was read from.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    where: str
    track_id: str | None
    source: Path


@dataclass
class Frame:
    """One image or video frame and the people detected in it.

    Attributes:
        name: how messages call it, e.g. ``image 785 (000000000785.jpg)`` or ``frame 12``.
        stem: a file-name-safe label for output folders, e.g. ``000000000785``.
        frame_id: the frame or image id from the file, or None where the file gives none (its position is used).
        size: (width, height) in pixels, or None where neither the file nor an image beside it gives one.
        detections: the people detected.
    """

    name: str
    stem: str
    frame_id: int | None
    size: tuple[int, int] | None
    detections: list[Detection] = field(default_factory=list)


@dataclass
class Recording:
    """Everything a keypoint file holds, before people are told apart.

    Attributes:
        source: the file or folder read.
        format: the format's name, for messages.
        frames: the frames in file order (sorted by frame id where the file has ids).
        video: True when the layout itself is a video's (arrays, per-frame lists, JSON lines); else the content
            decides (``bench.lift.readers.choose_mode``).
    """

    source: Path
    format: str
    frames: list[Frame]
    video: bool = False


def usable_mask(keypoints: np.ndarray, scores: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                image_size: tuple[int, int] | None = None) -> np.ndarray:
    """(..., 133) bool: finite coordinates, a score >= ``threshold`` and, given the image size, inside the image
    give or take one image size (see :func:`outside_image`)."""
    usable = np.isfinite(keypoints).all(axis=-1) & (scores >= threshold)  # a NaN score is not usable
    if image_size is not None:
        usable &= ~outside_image(keypoints, image_size)
    return usable


def outside_image(keypoints: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(..., 133) bool, True for points (..., 133, 2) more than one image size outside the image: not data (a
    detector's sentinel, an overflow such as 1e30 px). NaN points are not outside."""
    width, height = image_size
    x, y = keypoints[..., 0], keypoints[..., 1]
    with np.errstate(invalid="ignore"):
        return (x < -width) | (x > 2 * width) | (y < -height) | (y > 2 * height)


def numbers(path: Path, where: str, value) -> np.ndarray:
    """Any nesting of JSON numbers as a float64 array; ``null`` is NaN.

    Raises:
        DataError: for strings, dicts or lists of uneven lengths, naming the first string or dict and its index.
    """
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value.astype(np.float64)
    if not isinstance(value, np.ndarray):
        try:
            array = np.asarray(value)
            if array.dtype.kind in "iuf":
                return array.astype(np.float64)
        except ValueError:
            pass  # uneven nesting: found below
    try:
        array = np.array(value, dtype=object)
    except ValueError as error:
        raise DataError(path, where, "numbers", f"lists of uneven lengths ({error})") from error
    if array.ndim == 0:
        raise DataError(path, where, "a list of numbers", describe(value))
    flat = array.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float64)
    for index, leaf in enumerate(flat):
        if leaf is None:
            out[index] = np.nan
        elif isinstance(leaf, (int, float, np.integer, np.floating)):  # JSON true / false read as 1 / 0
            out[index] = leaf
        elif isinstance(leaf, (list, tuple)):
            raise DataError(path, where, "numbers", "lists of uneven lengths")
        else:
            at = np.unravel_index(index, array.shape)
            raise DataError(path, where, "numbers", f"{describe(leaf)} at index {', '.join(map(str, at))}")
    return out.reshape(array.shape)


def flat_keypoints(path: Path, where: str, value, count: int, hint: str = "") -> tuple[np.ndarray, np.ndarray]:
    """A flat ``[x0, y0, c0, x1, ...]`` list of ``count`` keypoints -> (count, 2) pixels and (count,) scores;
    a keypoint with confidence 0 (or below) is missing (NaN position, score 0)."""
    values = numbers(path, where, value).reshape(-1)
    if values.size != 3 * count:
        found = f"{values.size} numbers" + (f" ({values.size // 3} keypoints{hint})" if values.size % 3 == 0 else "")
        raise DataError(path, where, f"{count} keypoints as {3 * count} numbers (x, y, c)", found)
    values = values.reshape(count, 3)
    seen = values[:, 2] > 0
    points = np.where(seen[:, None], values[:, :2], np.nan)
    return points, np.where(seen, values[:, 2], 0.0)


def keypoint_array(path: Path, where: str, value, leading: tuple) -> np.ndarray:
    """Check (*leading, 133, 2|3) numbers; returns float64 (a missing position may be NaN)."""
    array = numbers(path, where, value)
    expected = f"shape ({', '.join(leading + (str(NUM_KEYPOINTS), '2 or 3'))}) in COCO-WholeBody order"
    if array.ndim != len(leading) + 2 or array.shape[-1] not in (2, 3) or 0 in array.shape[:-2]:
        raise DataError(path, where, expected, f"shape {array.shape}")
    if array.shape[-2] != NUM_KEYPOINTS:
        raise DataError(path, where, expected, f"{array.shape[-2]} keypoints (shape {array.shape})")
    return array


def check_size(path: Path, where: str, size) -> tuple[int, int]:
    """An image size (width, height): two positive finite numbers (not strings) -> two ints."""
    expected = "an image size (width, height) of two positive numbers"
    if isinstance(size, np.ndarray):
        size = size.tolist()
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise DataError(path, where, expected, describe(size))
    return dimension(path, where, size[0], expected), dimension(path, where, size[1], expected)


def dimension(path: Path, where: str, value, expected: str = "a positive number of pixels") -> int:
    """One image dimension: a positive finite number (an int or a float, not a string or a boolean)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(path, where, expected, describe(value))
    if not np.isfinite(value) or value <= 0:
        raise DataError(path, where, expected, describe(value))
    return int(round(float(value)))


def track_id(path: Path, where: str, value) -> str | None:
    """A person's id from the file: an int or a string; None stays None."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, str, np.integer)):
        raise DataError(path, where, "a track id (an integer or a string)", describe(value))
    return str(value)


def image_size_beside(folder: Path, names: list[str]) -> tuple[int, int] | None:
    """The size of the first image file found in ``folder`` under one of ``names`` (each as is, then with an image
    suffix), read from the image header; None if there is none."""
    from PIL import Image, UnidentifiedImageError

    for name in names:
        for candidate in [folder / name] + [folder / f"{name}{suffix}" for suffix in IMAGE_SUFFIXES]:
            if candidate.suffix.lower() in IMAGE_SUFFIXES and candidate.is_file():
                try:
                    with Image.open(candidate) as image:
                        return image.size
                except (OSError, UnidentifiedImageError):
                    continue
    return None


def describe(value) -> str:
    """A short description of a JSON value, for messages."""
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"[:120]
    if isinstance(value, list):
        return f"a list of {len(value)} items" if value else "an empty list"
    if isinstance(value, str):
        return f"a string {value!r}"[:80]
    if isinstance(value, (bool, np.bool_)):
        return f"a boolean {value}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"[:80]
