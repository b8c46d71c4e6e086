"""OpenPose's ``--write_json`` output: one ``*_keypoints.json`` file per image or video frame, mapped to COCO-WholeBody.

What OpenPose writes (its doc/02_output.md and ``src/openpose/filestream/fileStream.cpp``, CMU-Perceptual-Computing-Lab/
openpose on GitHub): ``{"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [x0, y0, c0, ...],
"face_keypoints_2d": [...], "hand_left_keypoints_2d": [...], "hand_right_keypoints_2d": [...], "*_3d": ...}]}``.
Files are named ``<image name>_keypoints.json`` for images and ``<video name>_<12-digit frame>_keypoints.json``
for a video. ``pose_keypoints_2d`` holds BODY_25 (``skeleton.OPENPOSE_BODY_25``: COCO's 17 in another order plus
Neck, MidHip and six foot keypoints), ``face_keypoints_2d`` 70 points (the 68 iBUG landmarks, then the two pupils),
each hand 21 points in the order COCO-WholeBody uses; a face or hand not computed (no ``--face`` / ``--hand``) is an
empty list. Coordinates are pixels of the input with the default ``--keypoint_scale 0``; a keypoint not found is
``0, 0, 0``. ``person_id`` is ``-1`` (or ``[-1]``) unless OpenPose tracked people.

Mapped to the 133 keypoints by ``skeleton.OPENPOSE_TO_C133``: body 17 and feet 6 from BODY_25 (Neck and MidHip
dropped), the 68 face landmarks (pupils dropped), both hands as they are. Confidence 0 is a missing keypoint. No
image size is written: it comes from an image ``<image name>.jpg`` (.png, ...) beside the file, else
``--image-size``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.lift.formats.base import Detection, Frame, Recording, describe, flat_keypoints, image_size_beside, track_id
from bench.skeleton import NUM_KEYPOINTS, OPENPOSE_FIELDS, OPENPOSE_TO_C133

FORMAT = "OpenPose keypoints (--write_json)"
SUFFIX = "_keypoints.json"
_HINTS = {"pose_keypoints_2d": ": run OpenPose with --model_pose BODY_25 (COCO gives 18 keypoints, MPI 15)",
          "face_keypoints_2d": "", "hand_left_keypoints_2d": "", "hand_right_keypoints_2d": ""}


def is_openpose(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("people"), list)


def frame_name(path: Path) -> str:
    """``clip_000000000012_keypoints.json`` -> ``clip_000000000012``."""
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem


def read_frame(path: Path, data) -> Frame:
    """One ``*_keypoints.json`` file -> its frame (named after the file, sized by an image beside it)."""
    if not is_openpose(data):
        raise DataError(path, "top level", "OpenPose's {\"people\": [...]}", describe(data))
    name = frame_name(path)
    detections = [person(path, f"people[{index}]", entry) for index, entry in enumerate(data["people"])]
    return Frame(f"image {name}", name, None, image_size_beside(path.parent, [name]), detections)


def read_file(path: Path, data) -> Recording:
    """A single OpenPose file: one image."""
    return Recording(path, FORMAT, [read_frame(path, data)])


def person(path: Path, where: str, entry) -> Detection:
    """One entry of ``people`` -> its 133 keypoints (``skeleton.OPENPOSE_TO_C133``) and scores."""
    if not isinstance(entry, dict):
        raise DataError(path, where, "a dict with 'pose_keypoints_2d'", describe(entry))
    keypoints = np.full((NUM_KEYPOINTS, 2), np.nan)
    scores = np.zeros(NUM_KEYPOINTS)
    for field, count in OPENPOSE_FIELDS.items():
        values = entry.get(field, [])
        if isinstance(values, list) and not values:
            continue  # not computed: every keypoint of the field is missing
        points, confidence = flat_keypoints(path, f"{where}/{field}", values, count, _HINTS[field])
        source, target = np.array(OPENPOSE_TO_C133[field]).T
        keypoints[target], scores[target] = points[source], confidence[source]
    return Detection(keypoints, scores, where, _person_id(path, f"{where}/person_id", entry.get("person_id")), path)


def _person_id(path: Path, where: str, value) -> str | None:
    """OpenPose's ``person_id``: -1 or [-1] when not tracked."""
    if isinstance(value, list):
        if len(value) != 1:
            raise DataError(path, where, "a person id (an integer, or a list of one)", describe(value))
        value = value[0]
    person = track_id(path, where, value)
    return None if person in (None, "-1") else person
