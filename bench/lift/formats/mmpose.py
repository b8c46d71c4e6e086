"""Per-frame prediction lists, MMPose style.

A list with one entry per frame, each a list of instances ``{"keypoints": 133 x [x, y], "keypoint_scores": 133
values}`` or a dict with ``frame_id`` and ``instances`` (MMPose's ``instance_info`` entries; a dict with
``instance_info`` is read as that list); a list of instances alone is one image (``NAME.json``, sized by an image
``NAME`` or ``NAME.jpg`` ... beside it, where there is one). ``track_id`` (or ``person_id``)
names the person where the tracker wrote one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.lift.formats.base import (
    Detection,
    Frame,
    Recording,
    describe,
    image_size_beside,
    keypoint_array,
    numbers,
    track_id,
)
from bench.skeleton import NUM_KEYPOINTS

FORMAT = "per-frame predictions (MMPose style)"
TRACK_KEYS = ("track_id", "person_id")


def is_instance_list(data) -> bool:
    """A non-empty list of instances with nested (133 x [x, y]) keypoints: one image's MMPose predictions."""
    return (isinstance(data, list) and bool(data) and all(isinstance(item, dict) and "keypoints" in item
                                                          for item in data)
            and not any(_is_flat(item["keypoints"]) for item in data))


def read_predictions(path: Path, frames) -> Recording:
    """Per-frame instance lists -> a recording (a single instance list is one image)."""
    if not isinstance(frames, list) or not frames:
        raise DataError(path, "top level", "a non-empty list of frames (or of one frame's instances)",
                        describe(frames))
    if is_instance_list(frames):
        name = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem  # a.jpg.json -> a.jpg
        size = image_size_beside(path.parent, [name, Path(name).stem])
        return Recording(path, FORMAT, [Frame(f"image {name}", Path(name).stem, None, size,
                                              instances(path, "", frames))])
    read, ids = [], []
    for position, frame in enumerate(frames):
        where = f"frame {position}"
        items = frame.get("instances") if isinstance(frame, dict) else frame
        if not isinstance(items, list):
            raise DataError(path, where, "a list of instances or a dict with 'instances'", describe(frame))
        frame_id = frame.get("frame_id", position) if isinstance(frame, dict) else position
        if isinstance(frame_id, bool) or not isinstance(frame_id, int):
            raise DataError(path, f"{where}/frame_id", "an integer frame id", describe(frame_id))
        ids.append(frame_id)
        read.append(Frame(f"frame {frame_id}", f"frame-{frame_id}", frame_id, None,
                          instances(path, f"{where}/", items)))
    order = np.argsort(ids, kind="stable")
    return Recording(path, FORMAT, [read[i] for i in order], video=True)


def instances(path: Path, prefix: str, items: list) -> list[Detection]:
    """One frame's instances -> detections; ``prefix`` starts each place in messages (e.g. ``frame 3/``)."""
    detections = []
    for order, instance in enumerate(items):
        where = f"{prefix}instance {order}"
        if not isinstance(instance, dict) or "keypoints" not in instance:
            raise DataError(path, where, "a dict with 'keypoints' (and 'keypoint_scores')", describe(instance))
        keypoints = keypoint_array(path, f"{where}/keypoints", instance["keypoints"], leading=())
        if "keypoint_scores" in instance:
            scores = numbers(path, f"{where}/keypoint_scores", instance["keypoint_scores"]).reshape(-1)
            if scores.shape != (NUM_KEYPOINTS,):
                raise DataError(path, f"{where}/keypoint_scores", f"{NUM_KEYPOINTS} scores", f"shape {scores.shape}")
        else:
            scores = keypoints[:, 2].copy() if keypoints.shape[-1] == 3 else np.isfinite(keypoints).all(-1) * 1.0
        person = next((track_id(path, f"{where}/{k}", instance[k]) for k in TRACK_KEYS
                       if instance.get(k) is not None), None)
        detections.append(Detection(keypoints[:, :2], scores, where, person, path))
    return detections


def _is_flat(keypoints) -> bool:
    return isinstance(keypoints, list) and bool(keypoints) and not isinstance(keypoints[0], (list, tuple))
