"""Read 2D whole-body keypoints the way detectors and datasets write them: one :class:`Track` per person.

Every format holds the 133 keypoints in COCO-WholeBody order (``skeleton.KEYPOINT_NAMES``), in pixels. The format is
recognised from the suffix and the content:

* **COCO-WholeBody annotations** (``.json``, a dict with ``images`` and ``annotations``): each annotation has an
  ``image_id`` and flat (x, y, v) lists split by group: ``keypoints`` (17 body), ``foot_kpts`` (6), ``face_kpts``
  (68), ``lefthand_kpts`` (21), ``righthand_kpts`` (21). Frames are the images in image-id order. The visibility v
  becomes the score, clipped to [0, 1]: v = 0 (not labelled) is missing, v = 1 or 2 is a known position, and float
  confidences (pseudo-labels) keep their meaning. ``face_valid: false`` (and the other ``*_valid`` flags) marks the
  whole group missing; crowd annotations are skipped. A bare list of such annotations (the COCO *results* layout)
  reads the same, without image sizes.
* **Per-frame prediction lists** (``.json``, MMPose style): a list with one entry per frame, each a list of
  instances ``{"keypoints": 133 x [x, y], "keypoint_scores": 133 values}``, or a dict with ``frame_id`` and
  ``instances`` (MMPose's ``instance_info`` entries; a dict with ``instance_info`` is read as that list). A list of
  instances alone is a single frame.
* **Arrays**: ``.npy`` of shape (T, 133, 2|3) or (133, 2|3); ``.npz`` with ``keypoints`` (or one array) of that
  shape and optionally ``scores`` (T, 133), ``image_size`` (2,) and ``frame_ids`` (T,). A third channel is the
  score. NaN coordinates are missing keypoints.

People are told apart by ``track_id`` (or ``person_id``) when instances have one, else by their order among the
frame's instances, which is only right if the detector keeps a stable order. A person's track runs from the first to
the last frame they appear in; frames in between where they are absent have every keypoint missing.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.skeleton import C133_GROUPS, NUM_KEYPOINTS

SUFFIXES = (".json", ".npy", ".npz")
# COCO-WholeBody annotation fields, the keypoint groups they hold (in order) and the flag that can void them.
_COCO_FIELDS: dict[str, tuple[str, ...]] = {
    "keypoints": ("body",), "foot_kpts": ("left_foot", "right_foot"), "face_kpts": ("face",),
    "lefthand_kpts": ("left_hand",), "righthand_kpts": ("right_hand",),
}
_COCO_VALID_FLAGS = {"foot_kpts": "foot_valid", "face_kpts": "face_valid", "lefthand_kpts": "lefthand_valid",
                     "righthand_kpts": "righthand_valid"}
_TRACK_KEYS = ("track_id", "person_id")


@dataclass(frozen=True)
class Track:
    """One person's 2D keypoints over consecutive frames of a clip.

    Attributes:
        person: the person's id (track id, or instance order as a string).
        frame_ids: (T,) int64 frame ids from the file (image ids, frame ids or positions), increasing.
        keypoints: (T, 133, 2) float64 pixels; NaN where the file gives no position.
        scores: (T, 133) float64 confidence in [0, 1]; 0 where the file gives no keypoint.
        image_size: (width, height) in pixels.
        source: the file read.
    """

    person: str
    frame_ids: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    image_size: tuple[int, int]
    source: Path

    @property
    def frames(self) -> int:
        return len(self.frame_ids)


def read_keypoints(path: str | Path, image_size: tuple[int, int] | None = None) -> list[Track]:
    """Read every person's track from a keypoint file, sorted by person id.

    Args:
        path: a ``.json``, ``.npy`` or ``.npz`` file in one of the layouts of the module docstring.
        image_size: (width, height) in pixels for files that give none; a size in the file wins.

    Raises:
        DataError: naming the file, the place inside it, what was expected and what was found.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file", "a keypoint file (.json, .npy or .npz)", "no such file")
    if path.stat().st_size == 0:
        raise DataError(path, "file", "a keypoint file (.json, .npy or .npz)", "an empty file")
    if image_size is not None:
        image_size = _check_size(path, "image size argument", image_size)
    readers = {".json": _read_json, ".npy": _read_npy, ".npz": _read_npz}
    if path.suffix.lower() not in readers:
        raise DataError(path, "file name", f"one of the suffixes {', '.join(SUFFIXES)}", f"{path.suffix!r}")
    return readers[path.suffix.lower()](path, image_size)


def _read_json(path: Path, image_size) -> list[Track]:
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, "file", "a JSON document", f"invalid JSON ({error})") from error
    if isinstance(data, dict) and "annotations" in data:
        return _read_coco(path, data.get("images"), data["annotations"], image_size)
    if isinstance(data, dict) and "instance_info" in data:
        return _read_predictions(path, data["instance_info"], image_size)
    if isinstance(data, list) and data and all(isinstance(item, dict) and "image_id" in item for item in data):
        return _read_coco(path, None, data, image_size)
    if isinstance(data, list):
        return _read_predictions(path, data, image_size)
    found = f"a dict with keys {sorted(data)}" if isinstance(data, dict) else type(data).__name__
    raise DataError(path, "top level", "COCO-WholeBody annotations (keys 'images', 'annotations') or a list of "
                    "per-frame predictions", found)


def _read_coco(path: Path, images, annotations, image_size) -> list[Track]:
    """COCO-WholeBody annotations -> tracks; ``images`` None for the results layout (no sizes)."""
    if not isinstance(annotations, list) or not annotations:
        raise DataError(path, "annotations", "a non-empty list of person annotations", _describe(annotations))
    sizes = _coco_image_sizes(path, images, annotations)
    frame_ids = sorted(sizes)
    position = {image_id: index for index, image_id in enumerate(frame_ids)}
    observations: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    instance_counts: dict[int, int] = {}
    for index, annotation in enumerate(annotations):
        where = f"annotations[{index}]" + (f" (id {annotation['id']})" if isinstance(annotation, dict)
                                           and "id" in annotation else "")
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            raise DataError(path, where, "a dict with 'image_id'", _describe(annotation))
        if annotation.get("iscrowd"):
            continue
        image_id = annotation["image_id"]
        if image_id not in position:
            raise DataError(path, f"{where}/image_id", "the id of an entry in 'images'", repr(image_id))
        order = instance_counts.get(image_id, 0)
        instance_counts[image_id] = order + 1
        _observe(path, where, observations, _person(annotation, order), position[image_id],
                 _coco_keypoints(path, where, annotation))
    return _assemble(path, np.array(frame_ids, dtype=np.int64), observations,
                     [sizes[i] for i in frame_ids], image_size)


def _coco_image_sizes(path: Path, images, annotations) -> dict[int, tuple[int, int] | None]:
    """Image id -> (width, height), or None where the file gives no size."""
    if images is None:
        return {a["image_id"]: None for a in annotations}
    if not isinstance(images, list) or not images:
        raise DataError(path, "images", "a non-empty list of images", _describe(images))
    sizes = {}
    for index, image in enumerate(images):
        if not isinstance(image, dict) or "id" not in image:
            raise DataError(path, f"images[{index}]", "a dict with 'id'", _describe(image))
        has_size = "width" in image and "height" in image
        sizes[image["id"]] = (_check_size(path, f"images[{index}]", (image["width"], image["height"]))
                              if has_size else None)
    return sizes


def _coco_keypoints(path: Path, where: str, annotation: dict) -> tuple[np.ndarray, np.ndarray]:
    """One annotation's (133, 2) pixels and (133,) scores, assembled from its per-group fields."""
    keypoints = np.full((NUM_KEYPOINTS, 2), np.nan)
    scores = np.zeros(NUM_KEYPOINTS)
    for field, groups in _COCO_FIELDS.items():
        indices = [i for group in groups for i in C133_GROUPS[group]]
        if field not in annotation:
            raise DataError(path, where, f"COCO-WholeBody's {NUM_KEYPOINTS} keypoints in fields "
                            f"{', '.join(_COCO_FIELDS)}", f"no {field!r} (keys {sorted(annotation)})")
        values = np.asarray(annotation[field], dtype=np.float64).reshape(-1)
        if values.size != 3 * len(indices):
            raise DataError(path, f"{where}/{field}", f"{len(indices)} keypoints as {3 * len(indices)} numbers "
                            "(x, y, v)", f"{values.size} numbers")
        values = values.reshape(len(indices), 3)
        keypoints[indices] = values[:, :2]
        valid = annotation.get(_COCO_VALID_FLAGS.get(field), True)
        scores[indices] = np.clip(values[:, 2], 0.0, 1.0) if valid else 0.0
    return keypoints, scores


def _read_predictions(path: Path, frames, image_size) -> list[Track]:
    """Per-frame instance lists (MMPose style) -> tracks."""
    if not isinstance(frames, list) or not frames:
        raise DataError(path, "top level", "a non-empty list of frames (or of one frame's instances)",
                        _describe(frames))
    if all(isinstance(item, dict) and "keypoints" in item for item in frames):
        frames = [frames]  # a single image: the list holds its instances
    frame_ids, observations = [], {}
    for position, frame in enumerate(frames):
        where = f"frame {position}"
        instances = frame.get("instances") if isinstance(frame, dict) else frame
        if not isinstance(instances, list):
            raise DataError(path, where, "a list of instances or a dict with 'instances'", _describe(frame))
        frame_ids.append(frame.get("frame_id", position) if isinstance(frame, dict) else position)
        for order, instance in enumerate(instances):
            here = f"{where}/instance {order}"
            if not isinstance(instance, dict) or "keypoints" not in instance:
                raise DataError(path, here, "a dict with 'keypoints' (and 'keypoint_scores')", _describe(instance))
            _observe(path, here, observations, _person(instance, order), position,
                     _instance_keypoints(path, here, instance))
    order = np.argsort(frame_ids, kind="stable")
    frame_ids = np.asarray(frame_ids, dtype=np.int64)[order]
    repeated = frame_ids[1:][np.diff(frame_ids) == 0]
    if len(repeated):
        raise DataError(path, "frame ids", "each frame once", f"frame id {repeated[0]} twice")
    rank = np.argsort(order)  # file position -> sorted position
    observations = {person: {int(rank[p]): value for p, value in seen.items()}
                    for person, seen in observations.items()}
    return _assemble(path, frame_ids, observations, [None] * len(frame_ids), image_size)


def _instance_keypoints(path: Path, where: str, instance: dict) -> tuple[np.ndarray, np.ndarray]:
    """One predicted instance's (133, 2) pixels and (133,) scores."""
    keypoints = _keypoint_array(path, f"{where}/keypoints", instance["keypoints"], leading=())
    if "keypoint_scores" in instance:
        scores = np.asarray(instance["keypoint_scores"], dtype=np.float64).reshape(-1)
        if scores.shape != (NUM_KEYPOINTS,):
            raise DataError(path, f"{where}/keypoint_scores", f"{NUM_KEYPOINTS} scores", f"shape {scores.shape}")
        return keypoints[:, :2], scores
    return keypoints[:, :2], _channel_scores(keypoints)


def _read_npy(path: Path, image_size) -> list[Track]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(path, "file", "a numpy .npy array", f"unreadable content ({error})") from error
    return [_array_track(path, "array", array, None, None, None, image_size)]


def _read_npz(path: Path, image_size) -> list[Track]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(path, "file", "a numpy .npz archive", f"unreadable content ({error})") from error
    with archive:
        arrays = {key: archive[key] for key in archive.files}
    if "keypoints" in arrays:
        key = "keypoints"
    elif len(arrays) == 1:
        key = next(iter(arrays))
    else:
        raise DataError(path, "keys", f"'keypoints' (T, {NUM_KEYPOINTS}, 2 or 3), or a single array",
                        f"keys {sorted(arrays)}")
    return [_array_track(path, key, arrays[key], arrays.get("scores"), arrays.get("frame_ids"),
                         arrays.get("image_size"), image_size)]


def _array_track(path: Path, key: str, array, scores, frame_ids, file_size, image_size) -> Track:
    """A single-person track from (T, 133, 2|3) or (133, 2|3) arrays."""
    array = np.asarray(array)
    keypoints = _keypoint_array(path, key, array[None] if array.ndim == 2 else array, leading=("T",))
    frames = len(keypoints)
    scores = _channel_scores(keypoints) if scores is None else np.asarray(scores, dtype=np.float64)
    if scores.size != frames * NUM_KEYPOINTS:
        raise DataError(path, "scores", f"shape ({frames}, {NUM_KEYPOINTS})", f"shape {scores.shape}")
    scores = scores.reshape(frames, NUM_KEYPOINTS)
    frame_ids = np.arange(frames) if frame_ids is None else np.asarray(frame_ids).reshape(-1)
    if frame_ids.shape != (frames,) or np.any(np.diff(frame_ids) <= 0):
        raise DataError(path, "frame_ids", f"{frames} increasing frame ids", f"shape {frame_ids.shape}")
    size = _check_size(path, "image_size", file_size) if file_size is not None else image_size
    if size is None:
        raise DataError(path, "image_size", "the image size: an 'image_size' array in the npz, or pass "
                        "--image-size W H", "no size")
    return Track("0", frame_ids.astype(np.int64), keypoints[..., :2], scores, size, path)


def _keypoint_array(path: Path, where: str, value, leading: tuple) -> np.ndarray:
    """Check (*leading, 133, 2|3) numbers; returns float64 (a missing position may be NaN)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(path, where, "numbers", f"{_describe(value)} ({error})") from error
    expected = f"shape ({', '.join(leading + (str(NUM_KEYPOINTS), '2 or 3'))}) in COCO-WholeBody order"
    if array.ndim != len(leading) + 2 or array.shape[-1] not in (2, 3) or 0 in array.shape[:-2]:
        raise DataError(path, where, expected, f"shape {array.shape}")
    if array.shape[-2] != NUM_KEYPOINTS:
        raise DataError(path, where, expected, f"{array.shape[-2]} keypoints (shape {array.shape})")
    return array


def _channel_scores(keypoints: np.ndarray) -> np.ndarray:
    """Scores from a third channel, or 1 for every keypoint with finite coordinates."""
    if keypoints.shape[-1] == 3:
        return keypoints[..., 2].copy()
    return np.isfinite(keypoints).all(axis=-1).astype(np.float64)


def _person(instance: dict, order: int) -> str:
    for key in _TRACK_KEYS:
        if instance.get(key) is not None:
            return str(instance[key])
    return str(order)


def _observe(path, where, observations, person, position, value) -> None:
    seen = observations.setdefault(person, {})
    if position in seen:
        raise DataError(path, where, "one instance per person and frame", f"person {person} twice in that frame")
    seen[position] = value


def _assemble(path: Path, frame_ids: np.ndarray, observations: dict, sizes: list, image_size) -> list[Track]:
    """Tracks from ``observations[person][frame position] = (keypoints (133, 2), scores (133,))``."""
    if not observations:
        raise DataError(path, "instances", "at least one person", f"none in {len(frame_ids)} frames")
    tracks = []
    for person in sorted(observations, key=lambda p: (not p.isdigit(), int(p) if p.isdigit() else 0, p)):
        seen = observations[person]
        first, last = min(seen), max(seen)
        keypoints = np.full((last - first + 1, NUM_KEYPOINTS, 2), np.nan)
        scores = np.zeros((last - first + 1, NUM_KEYPOINTS))
        for position, (points, confidence) in seen.items():
            keypoints[position - first], scores[position - first] = points, confidence
        size = _track_size(path, person, {sizes[p] for p in seen} - {None}, image_size)
        tracks.append(Track(person, frame_ids[first:last + 1], keypoints, scores, size, path))
    return tracks


def _track_size(path: Path, person: str, sizes: set, image_size) -> tuple[int, int]:
    if len(sizes) > 1:
        raise DataError(path, f"images of person {person}", "one image size over the clip",
                        f"sizes {sorted(sizes)}")
    if sizes:
        return sizes.pop()
    if image_size is None:
        raise DataError(path, f"images of person {person}", "the image size: 'width' and 'height' in the file, "
                        "or pass --image-size W H", "no size")
    return image_size


def _check_size(path: Path, where: str, size) -> tuple[int, int]:
    values = np.asarray(size).reshape(-1)
    if values.shape != (2,) or not np.all(np.isfinite(values.astype(float))) or np.any(values <= 0):
        raise DataError(path, where, "an image size (width, height) of two positive numbers", repr(size))
    return int(values[0]), int(values[1])


def _describe(value) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)} items" if value else "an empty list"
    return f"{type(value).__name__} {value!r}"[:80]
