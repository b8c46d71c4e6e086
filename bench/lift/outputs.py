"""What ``bench lift`` writes for each person clip, where, and the pictures.

Folders: a video's single clip goes straight into ``OUT``, several into ``OUT/person-<id>``. Still images: one
folder per image, ``OUT/<image>`` (``OUT`` itself for a file of one image), holding ``sheet.png`` (every person's 2D
beside their 3D) and ``person-<k>`` per person; a file of one image with one person writes straight into ``OUT``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.io import save_npz, save_text
from bench.lift.readers import Track
from bench.skeleton import HIPS_C133, KEYPOINT_NAMES, NUM_KEYPOINTS, PELVIS, add_pelvis


def drop_pelvis(x: np.ndarray) -> np.ndarray:
    """j134 (..., 134, C) -> c133 (..., 133, C)."""
    return np.delete(x, PELVIS, axis=-2)


def select_tracks(tracks: list[Track], person: str | None) -> list[Track]:
    """All tracks, or those of ``person`` (in every image); an unknown id is an error listing the ids in the file."""
    if person is None:
        return tracks
    chosen = [track for track in tracks if track.person == str(person)]
    if not chosen:
        people = list(dict.fromkeys(track.person for track in tracks))
        raise DataError(tracks[0].source, "people", f"person {person}", f"people {', '.join(people)}")
    return chosen


def image_folder(out: str | Path, image: str, tracks: list[Track]) -> Path:
    """Where a still image's sheet and people go (see module docstring)."""
    images = {track.image for track in tracks}
    return Path(out) if len(images) == 1 else Path(out) / image


def clip_folder(out: str | Path, track: Track, tracks: list[Track]) -> Path:
    """Where one clip's files go (see module docstring)."""
    if len(tracks) == 1:
        return Path(out)
    if track.image is None:
        return Path(out) / f"person-{track.person}"
    return image_folder(out, track.image, tracks) / f"person-{track.person}"


def write_outputs(folder: str | Path, lifted, info: dict, save_hypotheses: bool = False) -> list[Path]:
    """Write ``poses_3d.npz`` and ``keypoints.json`` of a :class:`bench.lift.pipeline.Lifted` clip into ``folder``.

    ``poses_3d.npz``: ``poses_3d`` (T, 133, 3) float32 root-relative metres; ``filled`` (T, 133) bool;
    ``frame_ids`` (T,) int64; ``keypoints_2d`` (T, 133, 2) float32 filled input pixels; ``scores`` (T, 133) float32;
    ``image_size`` (2,) pixels; and with ``save_hypotheses`` and H > 1, ``hypotheses`` (T, H, 133, 3).
    """
    folder = Path(folder)
    track = lifted.track
    arrays = {"poses_3d": drop_pelvis(lifted.pose_3d), "filled": lifted.filled, "frame_ids": track.frame_ids,
              "keypoints_2d": lifted.keypoints.astype(np.float32), "scores": track.scores.astype(np.float32),
              "image_size": np.array(track.image_size, dtype=np.int64)}
    if save_hypotheses and lifted.hypotheses.shape[1] > 1:
        arrays["hypotheses"] = drop_pelvis(lifted.hypotheses)
    description = {
        "keypoints": list(KEYPOINT_NAMES),
        "layout": f"COCO-WholeBody, {NUM_KEYPOINTS} keypoints (poses_3d[:, k] is keypoints[k])",
        "units": {"poses_3d": "metres", "hypotheses": "metres", "keypoints_2d": "pixels", "image_size": "pixels"},
        "coordinates": "camera frame of the input view: x right, y down, z away from the camera; root-relative: "
                       "the origin is the pelvis, the mean of left_hip and right_hip, not one of the 133 keypoints",
        "person": track.person, "image": track.image, "frames": track.frames,
        "filled_keypoints": int(lifted.filled.sum()), "outside_image_keypoints": lifted.outside,
        "hypotheses": int(lifted.hypotheses.shape[1]), **info,
    }
    return [save_npz(folder / "poses_3d.npz", **arrays),
            save_text(folder / "keypoints.json", json.dumps(description, indent=2))]


def render(folder: str | Path, lifted, formats: tuple[str, ...], fps: float = 10.0) -> list[Path]:
    """A video clip's pictures, the 2D input beside the 3D pose per frame: ``frames/000000.png ...`` (``png``),
    ``lift.gif`` (``gif``)."""
    from bench.viz import render_clip

    folder = Path(folder)
    titles = [f"person {lifted.track.person}, frame {i}" for i in lifted.track.frame_ids]
    return render_clip(_pixels(lifted), lifted.pose_3d, _filled(lifted), titles=titles, fps=fps,
                       frames_dir=folder / "frames" if "png" in formats else None,
                       gif=folder / "lift.gif" if "gif" in formats else None)


def render_image_sheet(folder: str | Path, lifted: list, heading: str) -> Path:
    """``sheet.png`` of a still image: every lifted person's 2D beside their 3D, one row each."""
    from bench.viz import render_sheet

    return render_sheet(np.stack([_pixels(one)[0] for one in lifted]), np.stack([one.pose_3d[0] for one in lifted]),
                        Path(folder) / "sheet.png", np.stack([_filled(one)[0] for one in lifted]),
                        titles=[f"person {one.track.person}" for one in lifted], heading=heading)


def _pixels(lifted) -> np.ndarray:
    """(T, 134, 2) filled input pixels with the pelvis."""
    return add_pelvis(lifted.keypoints)


def _filled(lifted) -> np.ndarray:
    """(T, 134) filled flags; the pelvis counts as filled when a hip is."""
    return np.insert(lifted.filled, PELVIS, lifted.filled[:, list(HIPS_C133)].any(axis=1), axis=1)
