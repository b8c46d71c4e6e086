"""People through a video without track ids: detections linked frame to frame into tracks.

The cost of continuing a track with a detection is the mean distance between the keypoints both have usable (finite,
scored at least the threshold, inside the image), divided by the track's size: the square root of the area of the
box around its last usable keypoints, so costs are in body sizes whatever the resolution or distance to the camera.
Without a usable keypoint in common, the distance between the two centroids of usable keypoints is used instead.
Each frame, pairs are taken greedily by increasing cost (the cheapest pair first, each track and each detection at
most once) while the cost is at most ``max_cost``; a detection left over starts a new track. A track continues from
the last frame it was seen in; one not continued for more than ``max_missed`` frames of the file ends, so a person
who leaves and one who enters later are separate tracks, while a few missed detections in between are bridged
(the clip's missing frames are later filled like any missing keypoint). People who swap places in the detector's
list keep their identities, since only positions count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_COST = 1.0
"""Largest cost (in body sizes) at which a detection continues a track."""
MAX_MISSED = 5
"""Frames of the file a track may go undetected and still continue."""


@dataclass
class _Track:
    label: int
    points: np.ndarray  # (133, 2) pixels of its last detection
    usable: np.ndarray  # (133,) bool
    last: int  # frame position of its last detection


def link(frames: list[list[tuple[np.ndarray, np.ndarray]]], *, max_cost: float = MAX_COST,
         max_missed: int = MAX_MISSED) -> list[list[int]]:
    """Label every detection with its track (see module docstring).

    Args:
        frames: per frame in order, its detections as (points (133, 2) pixels, usable (133,) bool) pairs; every
            detection needs at least one usable keypoint.
        max_cost: largest cost at which a detection continues a track.
        max_missed: frames a track may be missing and still continue.

    Returns:
        ``labels[t][k]``: the track of detection k of frame t, numbered from 0 in order of first appearance.
    """
    open_tracks: list[_Track] = []
    labels, count = [], 0
    for position, detections in enumerate(frames):
        open_tracks = [track for track in open_tracks if position - track.last - 1 <= max_missed]
        pairs = assign(cost_matrix(open_tracks, detections), max_cost)
        frame_labels = []
        for index, (points, usable) in enumerate(detections):
            if index in pairs:
                track = open_tracks[pairs[index]]
                track.points, track.usable, track.last = points, usable, position
            else:
                track = _Track(count, points, usable, position)
                open_tracks.append(track)
                count += 1
            frame_labels.append(track.label)
        labels.append(frame_labels)
    return labels


def cost_matrix(tracks: list[_Track], detections: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(tracks, detections) costs in body sizes (see module docstring)."""
    costs = np.full((len(tracks), len(detections)), np.inf)
    for i, track in enumerate(tracks):
        scale = body_size(track.points, track.usable)
        for j, (points, usable) in enumerate(detections):
            costs[i, j] = pose_distance(track.points, track.usable, points, usable) / scale
    return costs


def pose_distance(a: np.ndarray, usable_a: np.ndarray, b: np.ndarray, usable_b: np.ndarray) -> float:
    """Mean pixel distance over keypoints usable in both (133, 2) poses, else between their centroids."""
    common = usable_a & usable_b
    if common.any():
        return float(np.linalg.norm(a[common] - b[common], axis=-1).mean())
    return float(np.linalg.norm(a[usable_a].mean(axis=0) - b[usable_b].mean(axis=0)))


def body_size(points: np.ndarray, usable: np.ndarray) -> float:
    """Square root of the area of the box around the usable points (at least 1 px)."""
    seen = points[usable]
    extent = seen.max(axis=0) - seen.min(axis=0)
    return float(max(np.sqrt(extent[0] * extent[1]), extent.max() / 4, 1.0))


def assign(costs: np.ndarray, max_cost: float) -> dict[int, int]:
    """Greedy assignment: repeatedly the cheapest (row, column) pair with both free, while cost <= ``max_cost``.

    Returns:
        column -> row for the assigned pairs.
    """
    costs = np.array(costs, dtype=np.float64)
    pairs = {}
    while costs.size and np.isfinite(costs).any():
        row, column = np.unravel_index(np.argmin(costs), costs.shape)
        if costs[row, column] > max_cost:
            break
        pairs[int(column)] = int(row)
        costs[row, :] = np.inf
        costs[:, column] = np.inf
    return pairs
