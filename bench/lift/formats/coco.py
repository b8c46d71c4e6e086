"""COCO-WholeBody annotations (``{"images": [...], "annotations": [...]}``) and the COCO results layout (a bare
list of annotations with ``image_id``).

Each annotation has an ``image_id`` and flat (x, y, v) lists split by group: ``keypoints`` (17 body), ``foot_kpts``
(6), ``face_kpts`` (68), ``lefthand_kpts`` (21), ``righthand_kpts`` (21). The visibility v becomes the score, clipped
to [0, 1]: v = 0 (not labelled) is missing, v = 1 or 2 a known position, float confidences (pseudo-labels) keep
their meaning. ``face_valid: false`` (and the other ``*_valid`` flags) voids the whole group; crowd annotations are
skipped. Images are frames in image-id order (file order where ids are not integers), sized by their ``width`` and
``height``; an image with no annotation is a frame where nobody is.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from bench.errors import DataError
from bench.lift.formats.base import Detection, Frame, Recording, describe, dimension, numbers, track_id
from bench.skeleton import C133_GROUPS, NUM_KEYPOINTS

FORMAT = "COCO-WholeBody annotations"
FIELDS: dict[str, tuple[str, ...]] = {
    "keypoints": ("body",), "foot_kpts": ("left_foot", "right_foot"), "face_kpts": ("face",),
    "lefthand_kpts": ("left_hand",), "righthand_kpts": ("right_hand",),
}
"""Annotation fields and the keypoint groups they hold, in order."""
VALID_FLAGS = {"foot_kpts": "foot_valid", "face_kpts": "face_valid", "lefthand_kpts": "lefthand_valid",
               "righthand_kpts": "righthand_valid"}
TRACK_KEYS = ("track_id", "person_id")


def read_coco(path: Path, images, annotations) -> Recording:
    """COCO-WholeBody annotations -> a recording; ``images`` None for the results layout (no sizes)."""
    if not isinstance(annotations, list) or not annotations:
        raise DataError(path, "annotations", "a non-empty list of person annotations", describe(annotations))
    frames = _frames(path, images, annotations)
    for index, annotation in enumerate(annotations):
        where = f"annotations[{index}]" + (f" (id {annotation['id']})" if isinstance(annotation, dict)
                                           and "id" in annotation else "")
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            raise DataError(path, where, "a dict with 'image_id'", describe(annotation))
        if annotation.get("iscrowd"):
            continue
        key = _image_id(path, f"{where}/image_id", annotation["image_id"])
        if key not in frames:
            raise DataError(path, f"{where}/image_id", "the id of an entry in 'images'",
                            repr(annotation["image_id"]))
        keypoints, scores = annotation_keypoints(path, where, annotation)
        person = next((track_id(path, f"{where}/{k}", annotation[k]) for k in TRACK_KEYS
                       if annotation.get(k) is not None), None)
        frames[key].detections.append(Detection(keypoints, scores, where, person, path))
    return Recording(path, FORMAT, list(frames.values()))


def annotation_keypoints(path: Path, where: str, annotation: dict) -> tuple[np.ndarray, np.ndarray]:
    """One annotation's (133, 2) pixels and (133,) scores, assembled from its per-group fields."""
    keypoints = np.full((NUM_KEYPOINTS, 2), np.nan)
    scores = np.zeros(NUM_KEYPOINTS)
    for name, groups in FIELDS.items():
        indices = [i for group in groups for i in C133_GROUPS[group]]
        if name not in annotation:
            raise DataError(path, where, f"COCO-WholeBody's {NUM_KEYPOINTS} keypoints in fields "
                            f"{', '.join(FIELDS)}", f"no {name!r} (keys {sorted(annotation)})")
        values = numbers(path, f"{where}/{name}", annotation[name]).reshape(-1)
        if values.size != 3 * len(indices):
            raise DataError(path, f"{where}/{name}", f"{len(indices)} keypoints as {3 * len(indices)} numbers "
                            "(x, y, v)", f"{values.size} numbers")
        values = values.reshape(len(indices), 3)
        keypoints[indices] = values[:, :2]
        valid = annotation.get(VALID_FLAGS.get(name), True)
        scores[indices] = np.clip(values[:, 2], 0.0, 1.0) if valid else 0.0
    return keypoints, scores


def _frames(path: Path, images, annotations) -> dict:
    """Image id (as a hashable key) -> its frame, sorted by id when every id is an integer."""
    if images is None:  # the results layout: images are known by the ids the annotations use
        ids = list(dict.fromkeys(_image_id(path, f"annotations[{i}]/image_id", a["image_id"])
                                 for i, a in enumerate(annotations) if isinstance(a, dict) and "image_id" in a))
        entries = [(image_id, {}, f"image_id {image_id!r}") for image_id in ids]
    else:
        if not isinstance(images, list) or not images:
            raise DataError(path, "images", "a non-empty list of images", describe(images))
        entries = []
        for index, image in enumerate(images):
            if not isinstance(image, dict) or "id" not in image:
                raise DataError(path, f"images[{index}]", "a dict with 'id'", describe(image))
            entries.append((_image_id(path, f"images[{index}]/id", image["id"]), image, f"images[{index}]"))
    if all(isinstance(i, int) and not isinstance(i, bool) for i, _, _ in entries):
        entries.sort(key=lambda entry: entry[0])
    frames = {}
    for image_id, image, where in entries:
        if image_id in frames:
            raise DataError(path, f"{where}/id", "each image id once", f"id {image_id!r} twice")
        frames[image_id] = _frame(path, where, image_id, image)
    return frames


def _frame(path: Path, where: str, image_id, image: dict) -> Frame:
    size = None
    if "width" in image or "height" in image:
        size = tuple(dimension(path, f"{where}/{key}", image.get(key)) for key in ("width", "height"))
    file_name = image.get("file_name")
    name = f"image {image_id}" + (f" ({file_name})" if isinstance(file_name, str) else "")
    stem = PurePosixPath(file_name).stem if isinstance(file_name, str) and file_name else f"image-{image_id}"
    numeric = isinstance(image_id, int) and not isinstance(image_id, bool)
    return Frame(name, stem, image_id if numeric else None, size)


def _image_id(path: Path, where: str, value) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(path, where, "an image id (an integer or a string)", describe(value))
    return value
