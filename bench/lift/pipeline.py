"""Lift a person's own 2D whole-body keypoints to 3D with a trained run (``bench lift``).

Per person (a :class:`bench.lift.readers.Track`):

1. missing keypoints are filled and flagged (:mod:`bench.lift.filling`);
2. the 2D takes the path of the training data: pixels to normalized screen coordinates with the image size
   (``cameras.normalize_screen_coordinates``), then the pelvis inserted as the mean of the hips
   (``skeleton.add_pelvis``), giving (T, 134, 2);
3. the clip is cut into :class:`bench.data.windows.TestWindows`, so every frame is predicted exactly once (a clip
   shorter than a window, a single image included, is padded by repeating its last frame), and predicted by
   :func:`bench.runs.evaluation.predict_frames`, the code path of ``bench eval``: same windows, flip test-time
   augmentation and seeded sampling, so a clip lifted here equals the same clip evaluated there;
4. the hypotheses of a diffusion model are aggregated into one pose (:mod:`bench.lift.aggregation`: their
   ``mean``, or per joint the one whose reprojection is closest to the input 2D, ``best-2d``).

Outputs are root-relative camera-frame metres (x right, y down, z away from the camera): the origin is the pelvis,
the mean of the hips, which is not among the 133 keypoints and is dropped from the output.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from baselines.base import Lifter
from bench.data import cameras
from bench.data.windows import TestWindows, WindowSpec
from bench.errors import DataError
from bench.io import save_npz, save_text
from bench.lift.aggregation import aggregate
from bench.lift.filling import fill_track
from bench.lift.readers import Track, read_keypoints
from bench.runs.checkpoints import Model, load_model
from bench.runs.evaluation import predict_frames
from bench.skeleton import HIPS_C133, KEYPOINT_NAMES, NUM_KEYPOINTS, PELVIS, add_pelvis


@dataclass(frozen=True)
class Lifted:
    """One person's lifted clip, in the j134 layout (pelvis at 0) until written.

    Attributes:
        track: the input track.
        keypoints: (T, 133, 2) float64 pixels after filling.
        filled: (T, 133) bool, True where a keypoint was missing and filled.
        pose_2d: (T, 134, 2) float32 normalized screen coordinates, the lifter's input.
        hypotheses: (T, H, 134, 3) float32 root-relative metres.
        pose_3d: (T, 134, 3) float32 root-relative metres, the aggregate of the hypotheses.
    """

    track: Track
    keypoints: np.ndarray
    filled: np.ndarray
    pose_2d: np.ndarray
    hypotheses: np.ndarray
    pose_3d: np.ndarray


def model_input(keypoints: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Pixels (T, 133, 2) -> the lifter's (T, 134, 2) float32 input, exactly as the data loader prepares 2D."""
    width, height = image_size
    return add_pelvis(cameras.normalize_screen_coordinates(np.asarray(keypoints, np.float64), width, height)
                      ).astype(np.float32)


@dataclass(frozen=True)
class _Clip:
    """A clip as the windows read a sequence (``bench.data.windows.SequenceLike``); the 3D is unknown (zeros)."""

    pose_2d: np.ndarray
    subject: str = "input"
    action: str = "clip"
    camera: str = "unknown"

    @property
    def frame_ids(self) -> np.ndarray:
        return np.arange(len(self.pose_2d))

    @property
    def pose_3d(self) -> np.ndarray:
        return np.zeros(self.pose_2d.shape[:-1] + (3,), dtype=np.float32)


def predict_clip(lifter: Lifter, pose_2d: np.ndarray, *, hypotheses: int = 1, steps: int = 1, flip_test: bool = True,
                 batch_size: int = 64, device: str | torch.device = "cpu", seed: int = 0) -> np.ndarray:
    """Predict every frame of a clip once: (T, 134, 2) input -> (T, H, 134, 3) root-relative metres.

    Sampling uses a generator of its own seeded with ``seed``, as evaluation does. The root (pelvis) is subtracted
    from each prediction, so the output is root-relative whatever the lifter's output at the root.
    """
    if not lifter.generative and hypotheses != 1:
        raise ValueError(f"{type(lifter).__name__} is deterministic: it predicts 1 hypothesis, not {hypotheses}")
    device = torch.device(device)
    windows = TestWindows([_Clip(np.asarray(pose_2d, np.float32))],
                          WindowSpec.for_lifter(lifter))
    generator = torch.Generator(device).manual_seed(seed) if lifter.generative else None
    outputs, indices, masks = [], [], []
    for pred, _, mask, frame_index in predict_frames(lifter, windows, hypotheses=hypotheses, steps=steps,
                                                     flip_test=flip_test, batch_size=batch_size, device=device,
                                                     generator=generator):
        outputs.append(pred.transpose(1, 2).cpu())  # (B, N, H, J, 3): frames next to windows for the scatter
        indices.append(frame_index)
        masks.append(mask.cpu())
    per_frame = windows.scatter(torch.cat(outputs), torch.cat(indices), torch.cat(masks)).numpy()
    return per_frame - per_frame[:, :, PELVIS:PELVIS + 1]


def lift_track(model: Model, track: Track, *, hypotheses: int = 1, steps: int = 1, aggregate_by: str = "mean",
               flip_test: bool | None = None, threshold: float = 0.3, batch_size: int | None = None,
               seed: int | None = None, device: str | torch.device = "cpu") -> Lifted:
    """Fill, normalize, predict and aggregate one person's clip; unset options take the run's evaluation settings."""
    keypoints, filled = fill_track(track, threshold)
    pose_2d = model_input(keypoints, track.image_size)
    eval_cfg = model.config["eval"]
    per_frame = predict_clip(model.lifter, pose_2d, hypotheses=hypotheses, steps=steps,
                             flip_test=eval_cfg["flip_test"] if flip_test is None else flip_test,
                             batch_size=batch_size or eval_cfg["batch_size"], device=device,
                             seed=model.config["seed"] if seed is None else seed)
    weights = np.insert((~filled).astype(np.float64), PELVIS, 0.0, axis=1)  # the pelvis is derived, not detected
    pose_3d = aggregate(per_frame, pose_2d, weights, aggregate_by).astype(np.float32)
    return Lifted(track, keypoints, filled, pose_2d, per_frame.astype(np.float32), pose_3d)


def drop_pelvis(x: np.ndarray) -> np.ndarray:
    """j134 (..., 134, C) -> c133 (..., 133, C)."""
    return np.delete(x, PELVIS, axis=-2)


def write_outputs(folder: str | Path, lifted: Lifted, info: dict, save_hypotheses: bool = False) -> list[Path]:
    """Write ``poses_3d.npz`` and ``keypoints.json`` into ``folder`` (keys and units in README and below).

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
        "person": track.person, "frames": track.frames, "filled_keypoints": int(lifted.filled.sum()),
        "hypotheses": int(lifted.hypotheses.shape[1]), **info,
    }
    return [save_npz(folder / "poses_3d.npz", **arrays),
            save_text(folder / "keypoints.json", json.dumps(description, indent=2))]


def render(folder: str | Path, lifted: Lifted, formats: tuple[str, ...], fps: float = 10.0) -> list[Path]:
    """Draw the 2D input beside the 3D pose per frame: ``frames/000000.png ...`` (``png``), ``lift.gif`` (``gif``)."""
    from bench.viz import render_clip

    folder = Path(folder)
    pixels = add_pelvis(lifted.keypoints)
    filled = np.insert(lifted.filled, PELVIS, lifted.filled[:, list(HIPS_C133)].any(axis=1), axis=1)
    titles = [f"person {lifted.track.person}, frame {i}" for i in lifted.track.frame_ids]
    return render_clip(pixels, lifted.pose_3d, filled, frames_dir=folder / "frames" if "png" in formats else None,
                       gif=folder / "lift.gif" if "gif" in formats else None, fps=fps, titles=titles)


def select_tracks(tracks: list[Track], person: str | None) -> list[Track]:
    """All tracks, or the one of ``person``; an unknown id is an error listing the ids in the file."""
    if person is None:
        return tracks
    chosen = [track for track in tracks if track.person == str(person)]
    if not chosen:
        raise DataError(tracks[0].source, "people", f"person {person}",
                        f"people {', '.join(track.person for track in tracks)}")
    return chosen


def lift_file(source: str | Path, out: str | Path, *, run: str | Path | None = None,
              checkpoint: str | Path | None = None, image_size: tuple[int, int] | None = None,
              person: str | None = None, hypotheses: int | None = None, steps: int | None = None,
              aggregate_by: str = "mean", render_formats: tuple[str, ...] = ("png", "gif"),
              save_hypotheses: bool = False, flip_test: bool | None = None, threshold: float = 0.3,
              fps: float = 10.0, device: str = "cpu", seed: int | None = None,
              trust_checkpoint: bool = False) -> list[dict]:
    """Read a keypoint file, lift every person (or ``person``) and write outputs and pictures.

    One person's files go straight into ``out``; with several, each gets ``out/person-<id>``. ``hypotheses`` and
    ``steps`` default to the last (H, K) pair the run was evaluated with. Returns one summary per person: person,
    folder, frames, files and the seconds spent predicting.
    """
    tracks = select_tracks(read_keypoints(source, image_size), person)
    model = load_model(run, checkpoint, device, trust_checkpoint=trust_checkpoint)
    default_h, default_k = model.config["eval"]["hypotheses_steps"][-1]
    hypotheses, steps = hypotheses or default_h, steps or default_k
    info = {"input": str(source), "model": model.config["model"], "part_based": model.config["part_based"],
            "checkpoint": str(model.checkpoint), "epoch": model.epoch, "steps": steps, "aggregate": aggregate_by,
            "flip_test": model.config["eval"]["flip_test"] if flip_test is None else flip_test,
            "score_threshold": threshold, "seed": model.config["seed"] if seed is None else seed}
    summaries = []
    for track in tracks:
        folder = Path(out) if len(tracks) == 1 else Path(out) / f"person-{track.person}"
        start = time.perf_counter()
        lifted = lift_track(model, track, hypotheses=hypotheses, steps=steps, aggregate_by=aggregate_by,
                            flip_test=info["flip_test"], threshold=threshold, seed=info["seed"], device=device)
        seconds = time.perf_counter() - start
        files = write_outputs(folder, lifted, dict(info, image_size=list(track.image_size)), save_hypotheses)
        files += render(folder, lifted, render_formats, fps)
        summaries.append({"person": track.person, "folder": folder, "frames": track.frames, "files": files,
                          "seconds": seconds, "filled": int(lifted.filled.sum())})
    return summaries
