"""The mean-pose baseline: what a run scores by predicting the average training pose for every test frame.

The mean is taken over every annotated frame of the training subjects a run trains on (as the dataset holds them,
without flip augmentation), root-relative at the pelvis, in metres: the frame the lifters predict in and the metrics
compare in. Each test frame is then scored with :func:`bench.metrics.whole_body_errors` under the run's protocol and
averaged over frames with :func:`bench.metrics.summarize`, as a run's metrics are. The mean pose's pelvis is exactly
0, as the ground truth's is, so its P-Best, P-Agg and J-Best are one and the same: the baseline is one number per
metric. A model whose metric is not below the baseline's has learned nothing for that part that the average training
pose does not already give.

A record holds it under ``baseline``: ``{"name", "protocol", "subjects": {"train", "test"}, "frames": {"train",
"test"}, "metrics": {metric: mm}}``. Records written before baselines existed have none, and still load and report.
"""
from __future__ import annotations

import numpy as np
import torch

from bench.metrics import summarize, whole_body_errors
from bench.skeleton import PELVIS

BASELINE_NAME = "mean training pose"


def root_relative(pose_3d: np.ndarray) -> np.ndarray:
    """(T, J, 3) poses in metres -> the same poses minus their pelvis, float64."""
    poses = np.asarray(pose_3d, dtype=np.float64)
    return poses - poses[:, PELVIS:PELVIS + 1]


def mean_pose(sequences) -> np.ndarray:
    """The mean root-relative pose (J, 3), metres, over every frame of ``sequences`` (each frame counted once)."""
    sequences = list(sequences)
    if not sequences:
        raise ValueError("the mean training pose needs at least one training sequence, got none")
    total = sum(root_relative(s.pose_3d).sum(axis=0) for s in sequences)
    return total / sum(len(s.pose_3d) for s in sequences)


def mean_pose_errors(mean: np.ndarray, sequences, protocol: str) -> dict[str, float]:
    """Every metric (``bench.metrics.METRIC_KEYS``) in mm of predicting ``mean`` (J, 3) for each frame of
    ``sequences``, averaged over all their frames (each frame counted once)."""
    per_frame: dict[str, list[torch.Tensor]] = {}
    prediction = torch.from_numpy(np.asarray(mean, dtype=np.float64))
    for sequence in sequences:
        truth = torch.from_numpy(root_relative(sequence.pose_3d))
        errors = whole_body_errors(prediction.expand_as(truth), truth, protocol=protocol)
        for key, values in errors.items():
            per_frame.setdefault(key, []).append(values)
    if not per_frame:
        raise ValueError("the mean-pose baseline needs at least one test sequence, got none")
    return summarize({key: torch.cat(values) for key, values in per_frame.items()})


def mean_pose_baseline(train, test, protocol: str) -> dict:
    """The ``baseline`` entry of a record: the mean pose of the ``train`` sequences scored on the ``test`` ones."""
    train, test = list(train), list(test)
    return {"name": BASELINE_NAME, "protocol": protocol,
            "subjects": {"train": sorted({s.subject for s in train}), "test": sorted({s.subject for s in test})},
            "frames": {"train": sum(len(s.pose_3d) for s in train), "test": sum(len(s.pose_3d) for s in test)},
            "metrics": mean_pose_errors(mean_pose(train), test, protocol)}
