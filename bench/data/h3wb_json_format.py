"""The building blocks of H3WB's JSON release: file names, reading a file, keypoint dicts, image paths.

A JSON file is a dict: sample id (a string such as ``"2000"``) -> ``image_path``, ``bbox`` {x_min, y_min, x_max,
y_max}, ``keypoints_2d`` and/or ``keypoints_3d``, each a dict joint id ``"0".."132"`` (c133 order) -> {x, y[, z]}.
2D is in pixels of the H36M frame, 3D in millimetres (see :mod:`bench.data.h3wb_json` for the sources).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from bench import skeleton
from bench.errors import DataError

TRAIN_JSON = "2Dto3D_train.json"
TRAIN_PARTS = tuple(f"2Dto3D_train_part{k}.json" for k in range(1, 6))
"""The training file split in five, each part's sample ids restarting at 0 (maintainer, wholebody3d issue #9)."""
TRAIN_IMAGES = "RGBto3D_train.json"
"""Same samples (same ids) as 2Dto3D_train.json, with image_path and bbox but no 2D."""
TEST_2D = "2Dto3D_test_2d.json"
TEST_3D = "2Dto3D_test_3d.json"
JSON_FILES = (TRAIN_JSON, *TRAIN_PARTS, TRAIN_IMAGES, TEST_2D, TEST_3D)
AXES_2D = ("x", "y")
AXES_3D = ("x", "y", "z")
_JOINT_KEYS = tuple(str(j) for j in range(skeleton.NUM_KEYPOINTS))
_IMAGE_PATH = re.compile(r"(?:^|/)(?P<subject>S\d+)/(?:Images/)?(?P<action>[^/]+)\.(?P<camera>\d+)/"
                         r"frame_(?P<frame>\d+)\.\w+$")
IMAGE_PATH_EXAMPLE = "S5/Images/Directions 2.60457274/frame_0125.jpg"


def read_json(path: Path) -> dict[int, dict]:
    """One JSON release file as {sample id: sample dict}, ids as ints.

    Raises:
        DataError: if the file is missing, is not JSON, is not a dict of dicts, or has a non-integer sample id.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file", "an H3WB JSON file", "no such file")
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, "file", "a JSON document", f"invalid JSON ({error})") from error
    if not isinstance(content, dict) or not content:
        raise DataError(path, "top level", "a non-empty dict: sample id -> sample", describe(content))
    samples = {}
    for key, sample in content.items():
        try:
            sample_id = int(key)
        except ValueError:
            raise DataError(path, f"sample {key!r}", "integer sample ids as keys", repr(key)) from None
        if not isinstance(sample, dict):
            raise DataError(path, f"sample {key}", "a dict with 'keypoints_2d' / 'keypoints_3d' / 'image_path'",
                            describe(sample))
        samples[sample_id] = sample
    return samples


def describe(value) -> str:
    """A short description of a JSON value for error messages."""
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)[:8]}" if value else "an empty dict"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def keypoints(path: Path, samples: dict[int, dict], ids: list[int], field: str, axes: tuple[str, ...]) -> np.ndarray:
    """The ``field`` keypoints of samples ``ids`` as an (N, 133, len(axes)) float64 array, checked.

    Raises:
        DataError: naming the sample id, field and joint of the first missing, malformed or non-finite value.
    """
    try:
        rows = [[[float(point[axis]) for axis in axes] for point in map(samples[i][field].__getitem__, _JOINT_KEYS)]
                for i in ids]
    except (KeyError, TypeError, ValueError, AttributeError):
        _explain(path, samples, ids, field, axes)
        raise  # _explain always raises; this keeps the original error should it not
    array = np.array(rows, dtype=np.float64).reshape(len(ids), skeleton.NUM_KEYPOINTS, len(axes))
    if not np.isfinite(array).all():
        sample, joint, axis = np.argwhere(~np.isfinite(array))[0]
        raise DataError(path, f"sample {ids[sample]}/{field}/{joint}/{axes[axis]}", "a finite number",
                        f"{array[sample, joint, axis]}")
    return array


def _explain(path: Path, samples: dict[int, dict], ids: list[int], field: str, axes: tuple[str, ...]) -> None:
    """Raise the DataError that names the first malformed keypoint of ``field`` among samples ``ids``."""
    expected_point = "a dict with numbers " + ", ".join(repr(a) for a in axes)
    for sample_id in ids:
        sample = samples[sample_id]
        if field not in sample:
            raise DataError(path, f"sample {sample_id}", f"key {field!r}", f"keys {sorted(sample)}")
        points = sample[field]
        where = f"sample {sample_id}/{field}"
        if not isinstance(points, dict):
            raise DataError(path, where, "a dict joint id '0'..'132' -> point", describe(points))
        missing = [j for j in _JOINT_KEYS if j not in points]
        if missing:
            raise DataError(path, where, "joint ids '0'..'132'", f"no joint {missing[0]!r} ({len(points)} joints)")
        for joint in _JOINT_KEYS:
            point = points[joint]
            if not isinstance(point, dict) or any(not _is_number(point.get(a)) for a in axes):
                raise DataError(path, f"{where}/{joint}", expected_point, describe(point))


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def keypoint_dict(points: np.ndarray, axes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """(133, len(axes)) array -> the JSON form {joint id: {axis: value}}."""
    return {key: dict(zip(axes, map(float, point))) for key, point in zip(_JOINT_KEYS, points)}


def parse_image_path(path: Path, sample_id: int, image_path) -> tuple[str, str, str, int]:
    """(subject, action, camera id, frame number) of an image path such as ``IMAGE_PATH_EXAMPLE``.

    Any prefix is accepted (e.g. mmpose's ``original/S1/Images/...``), ``\\`` as separator too, and ``Images/``
    may be missing; the action is the video name before its last dot, the frame the number after ``frame_``.
    """
    match = _IMAGE_PATH.search(image_path.replace("\\", "/")) if isinstance(image_path, str) else None
    if match is None:
        raise DataError(path, f"sample {sample_id}/image_path",
                        f"a Human3.6M frame path like {IMAGE_PATH_EXAMPLE!r}", describe(image_path))
    return match["subject"], match["action"], match["camera"], int(match["frame"])


def image_path(subject: str, action: str, camera: str, frame: int) -> str:
    """The release's image path of one frame (frame numbers zero-padded to 4 digits, as its frame extractor)."""
    return f"{subject}/Images/{action}.{camera}/frame_{int(frame):04d}.jpg"


def bounding_box(pixels: np.ndarray) -> dict[str, float]:
    """The {x_min, y_min, x_max, y_max} box around (133, 2) pixel keypoints."""
    low, high = pixels.min(axis=0), pixels.max(axis=0)
    return {"x_min": float(low[0]), "y_min": float(low[1]), "x_max": float(high[0]), "y_max": float(high[1])}
