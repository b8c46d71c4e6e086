"""Write H3WB's JSON layout (a whole dataset, or leaderboard predictions) and score predictions like the leaderboard.

Public through :mod:`bench.data.h3wb_json`. Layout and conventions are described there and in
:mod:`bench.data.h3wb_json_format`.
"""
from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from bench import skeleton
from bench.data.h3wb import SPLITS, Sequence, load_h3wb
from bench.data.h3wb_json_format import (
    AXES_2D,
    AXES_3D,
    TEST_2D,
    TEST_3D,
    TRAIN_IMAGES,
    TRAIN_JSON,
    bounding_box,
    image_path,
    keypoint_dict,
    keypoints,
    read_json,
)
from bench.errors import DataError
from bench.io import save_text

_FIELDS = {
    TRAIN_JSON: ("keypoints_2d", "keypoints_3d"),
    TRAIN_IMAGES: ("image_path", "bbox", "keypoints_3d"),
    TEST_2D: ("image_path", "bbox", "keypoints_2d"),
    TEST_3D: ("image_path", "bbox", "keypoints_2d", "keypoints_3d"),
}
"""What each written file holds per sample: the release's training files, and test files that carry image paths."""


def write_h3wb_json(source, out_folder: str | os.PathLike, release_frame: bool = False) -> list[Path]:
    """Write a set of sequences in the layout of H3WB's JSON release, image paths included.

    Training subjects go to ``2Dto3D_train.json`` (2D and 3D, no image path, like the release) and
    ``RGBto3D_train.json`` (image path, bbox and 3D, same sample ids); the test subject S8 goes to
    ``2Dto3D_test_2d.json`` (image path, bbox, 2D) and ``2Dto3D_test_3d.json`` (the same plus 3D). The test files
    carry image paths, which the release's may not, so that the written set loads back as sequences. Sample ids
    are the sequences' when every sequence of the group has them and they are unique, else 0, 1, ... in order.

    Args:
        source: sequences (e.g. from ``load_h3wb``), or what ``load_h3wb`` reads (an npz folder such as the
            synthetic set's, a list of files), of which every subject is written.
        out_folder: where to write (created if needed); each file is written atomically.
        release_frame: write 3D as the release does, without the camera translation (``X_cam - T``, T from each
            sequence's calibration, which must have one). By default the sequences' 3D is written as it is (the
            camera frame, for npz data), so loading the written files gives the same sequences back.

    Returns:
        The paths written, training files first.
    """
    if isinstance(source, (str, os.PathLike)):
        sequences = load_h3wb(source, subjects=None)
    else:
        items = list(source)
        sequences = items if items and all(isinstance(s, Sequence) for s in items) else load_h3wb(items, None)
    groups = {"train": [s for s in sequences if s.subject not in SPLITS["test"]],
              "test": [s for s in sequences if s.subject in SPLITS["test"]]}
    written = []
    for group, names in (("train", (TRAIN_JSON, TRAIN_IMAGES)), ("test", (TEST_2D, TEST_3D))):
        if not groups[group]:
            continue
        samples = _samples(groups[group], release_frame)
        for name in names:
            content = {str(i): {key: sample[key] for key in _FIELDS[name]} for i, sample in samples.items()}
            written.append(save_text(Path(out_folder) / name, json.dumps(content, separators=(",", ":"))))
    return written


def _samples(sequences: list[Sequence], release_frame: bool) -> dict[int, dict]:
    """Sample id -> every field any file may hold, for all frames of ``sequences``."""
    given = [] if any(s.sample_ids is None for s in sequences) else [int(i) for s in sequences for i in s.sample_ids]
    ids = iter(given) if given and len(set(given)) == len(given) else itertools.count()
    samples = {}
    for sequence in sequences:
        pixels = to_pixels(sequence.pose_2d[:, 1:], sequence.resolution)
        millimetres = sequence.pose_3d[:, 1:].astype(np.float64) * 1000.0
        if release_frame:
            millimetres = millimetres - _translation_mm(sequence)
        for frame, points_2d, points_3d in zip(sequence.frame_ids, pixels, millimetres):
            samples[next(ids)] = {
                "image_path": image_path(sequence.subject, sequence.action, sequence.camera, frame),
                "bbox": bounding_box(points_2d),
                "keypoints_2d": keypoint_dict(points_2d, AXES_2D),
                "keypoints_3d": keypoint_dict(points_3d, AXES_3D),
            }
    return samples


def to_pixels(pose_2d: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    """(..., 2) normalized screen coordinates -> float64 pixels (inverse of ``normalize_screen_coordinates``)."""
    width, height = resolution
    return (pose_2d.astype(np.float64) + np.array([1.0, height / width])) * (width / 2.0)


def _translation_mm(sequence: Sequence) -> np.ndarray:
    """(3,) camera translation T of the sequence's calibration in mm (H3WB stores T in metres, shape (1, 1, 3))."""
    translation = sequence.calibration.get("T")
    if translation is None or np.size(translation) != 3:
        raise DataError("sequences", f"{sequence.subject}/{sequence.action}/{sequence.camera}",
                        "a calibration with the camera translation 'T' (release_frame=True)",
                        "none" if translation is None else f"T of shape {np.shape(translation)}")
    return np.asarray(translation, dtype=np.float64).reshape(3) * 1000.0


def export_h3wb_predictions(predictions: Mapping[int, np.ndarray] | Iterable[tuple[Sequence, np.ndarray]],
                            out_path: str | os.PathLike) -> Path:
    """Write task-1 test predictions in the layout of the released ground truth ``2Dto3D_test_3d.json``.

    The file maps each sample id to ``{"keypoints_3d": {joint id "0".."132": {"x", "y", "z"}}}`` in millimetres,
    the 133 COCO-WholeBody keypoints (the pelvis dropped), oriented like the ground truth (the camera's axes).
    Its translation is the predictions' own (root-relative ones stay so): the ground truth lacks the camera
    translation anyway, and the leaderboard aligns every pose at its pelvis, so translation never counts.

    Args:
        predictions: {sample id: (134, 3) or (133, 3) pose in metres}, or (sequence, (T, 134, 3) poses in metres)
            pairs whose sequences carry sample ids (files with ids: the JSON release, npz with ``sample_id``).
        out_path: the JSON file to write (atomically). One entry per sample; an id given twice is an error.

    Returns:
        ``out_path``.
    """
    content = {}
    for sample_id, pose in _prediction_items(predictions):
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape not in ((skeleton.NUM_JOINTS, 3), (skeleton.NUM_KEYPOINTS, 3)):
            raise ValueError(f"prediction for sample {sample_id}: expected shape (134, 3) or (133, 3) in metres, "
                             f"found {pose.shape}")
        if not np.isfinite(pose).all():
            raise ValueError(f"prediction for sample {sample_id}: expected finite values, found {pose.tolist()}")
        if str(sample_id) in content:
            raise ValueError(f"prediction for sample {sample_id}: expected one per sample, found it twice")
        keypoints_mm = pose[-skeleton.NUM_KEYPOINTS:] * 1000.0
        content[str(sample_id)] = {"keypoints_3d": keypoint_dict(keypoints_mm, AXES_3D)}
    if not content:
        raise ValueError("export_h3wb_predictions: expected at least one prediction, found none")
    return save_text(Path(out_path), json.dumps(content, separators=(",", ":")))


def _prediction_items(predictions) -> Iterable[tuple[int, np.ndarray]]:
    """(sample id, pose) pairs from a mapping or from (sequence, poses) pairs."""
    if isinstance(predictions, Mapping):
        yield from ((int(i), pose) for i, pose in predictions.items())
        return
    for sequence, poses in predictions:
        name = f"{sequence.subject}/{sequence.action}/{sequence.camera}"
        if sequence.sample_ids is None:
            raise ValueError(f"sequence {name}: expected sample ids to export its predictions, found none "
                             "(its file has no sample_id)")
        if len(poses) != sequence.frames:
            raise ValueError(f"sequence {name}: expected {sequence.frames} predicted poses, found {len(poses)}")
        yield from zip(sequence.sample_ids.tolist(), poses)


def h3wb_leaderboard_score(pred_json: str | os.PathLike, gt_json: str | os.PathLike) -> dict[str, float]:
    """Score a predictions file against a ground-truth file the way H3WB's leaderboard does.

    Every sample of ``gt_json`` needs a prediction (extra predictions are ignored); see :func:`leaderboard_errors`.

    Returns:
        {"WB", "Body", "Face", "LeftHand", "RightHand", "Hands", "PB", "FacePelvis", "HandsPelvis"} in mm, and
        "samples", the number of samples scored.
    """
    gt_path, pred_path = Path(gt_json), Path(pred_json)
    gt, pred = read_json(gt_path), read_json(pred_path)
    ids = list(gt)
    missing = [i for i in ids if i not in pred]
    if missing:
        raise DataError(pred_path, f"sample {missing[0]}", f"a prediction for each of the {len(ids)} samples of "
                        f"{gt_path.name}", f"none ({len(missing)} missing)")
    scores = leaderboard_errors(keypoints(pred_path, pred, ids, "keypoints_3d", AXES_3D),
                                keypoints(gt_path, gt, ids, "keypoints_3d", AXES_3D))
    return {**scores, "samples": len(ids)}


def leaderboard_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """H3WB's leaderboard formula (wholebody3d ``test_leaderboard.py:test_score``) on (N, 133, 3) poses.

    ``diff = pred - gt`` is aligned at the pelvis (the mean of the diffs at the two hips is subtracted); then
    WB = mean error over the 133 keypoints; Body over the 23 body and feet keypoints; FacePelvis / HandsPelvis
    over the face / hand keypoints as they are; Face over the face aligned at the **body nose**; LeftHand and
    RightHand over each hand aligned at its hand root, Hands = (LeftHand + RightHand) / 2; and PB =
    (Body + Face + Hands) / 3, the paper's part average. Means run over samples and keypoints together (every
    sample has as many keypoints, so this is also the mean of per-sample means), in float64, in pred's unit.
    The same formula as ``bench.metrics`` protocol "h3wb".
    """
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(gt, dtype=np.float64)
    diff = diff - diff[:, list(skeleton.HIPS_C133)].mean(axis=1, keepdims=True)

    def error(joints, anchor=None) -> float:
        part = diff[:, list(joints)] - (0.0 if anchor is None else diff[:, anchor:anchor + 1])
        return float(np.linalg.norm(part, axis=-1).mean())

    scores = {
        "WB": error(range(skeleton.NUM_KEYPOINTS)),
        "Body": error(skeleton.H3WB_BODY_C133),
        "Face": error(skeleton.H3WB_FACE_C133, skeleton.H3WB_FACE_ALIGN_C133),
        "LeftHand": error(skeleton.C133_GROUPS["left_hand"], skeleton.H3WB_LEFT_HAND_ALIGN_C133),
        "RightHand": error(skeleton.C133_GROUPS["right_hand"], skeleton.H3WB_RIGHT_HAND_ALIGN_C133),
        "FacePelvis": error(skeleton.H3WB_FACE_C133),
        "HandsPelvis": error(skeleton.H3WB_HANDS_C133),
    }
    scores["Hands"] = (scores["LeftHand"] + scores["RightHand"]) / 2
    scores["PB"] = (scores["Body"] + scores["Face"] + scores["Hands"]) / 3
    return scores
