"""Lift a person's own 2D whole-body keypoints to 3D with a trained run (``bench lift``).

A file (or folder) is read into person clips by :mod:`bench.lift.readers`: still images give a one-frame clip per
person and image, a video a clip per person through the frames. Per clip (a :class:`bench.lift.readers.Track`):

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

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from baselines.base import Lifter
from bench.data import cameras
from bench.data.windows import TestWindows, WindowSpec
from bench.errors import ConfigError
from bench.lift.aggregation import aggregate
from bench.lift.filling import fill_track, outside_count
from bench.lift.outputs import (
    clip_folder,
    drop_pelvis,
    image_folder,
    render,
    render_image_sheet,
    select_tracks,
    write_outputs,
)
from bench.lift.readers import Track, read_people
from bench.lift.tracking import MAX_MISSED
from bench.runs.checkpoints import Model, load_model
from bench.runs.evaluation import predict_frames
from bench.skeleton import PELVIS, add_pelvis

__all__ = ["Lifted", "drop_pelvis", "lift_file", "lift_track", "model_input", "predict_clip"]


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
        outside: keypoints scored above the threshold but missing for lying far outside the image.
    """

    track: Track
    keypoints: np.ndarray
    filled: np.ndarray
    pose_2d: np.ndarray
    hypotheses: np.ndarray
    pose_3d: np.ndarray
    outside: int = 0


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
                 batch_size: int = 64, device: str | torch.device = "cpu", seed: int = 0,
                 progress: bool | str = False) -> np.ndarray:
    """Predict every frame of a clip once: (T, 134, 2) input -> (T, H, 134, 3) root-relative metres.

    Sampling is seeded by ``seed``, as evaluation's is (a generator per batch). The root (pelvis) is subtracted
    from each prediction, so the output is root-relative whatever the lifter's output at the root. ``progress``:
    a bar over the batches of windows, labelled by the string when one is given.
    """
    if not lifter.generative and hypotheses != 1:
        raise ValueError(f"{type(lifter).__name__} is deterministic: it predicts 1 hypothesis, not {hypotheses}")
    device = torch.device(device)
    windows = TestWindows([_Clip(np.asarray(pose_2d, np.float32))],
                          WindowSpec.for_lifter(lifter))
    outputs, indices, masks = [], [], []
    for pred, _, mask, frame_index in predict_frames(lifter, windows, hypotheses=hypotheses, steps=steps,
                                                     flip_test=flip_test, batch_size=batch_size, device=device,
                                                     seed=seed, progress=progress):
        outputs.append(pred.transpose(1, 2).cpu())  # (B, N, H, J, 3): frames next to windows for the scatter
        indices.append(frame_index)
        masks.append(mask.cpu())
    per_frame = windows.scatter(torch.cat(outputs), torch.cat(indices), torch.cat(masks)).numpy()
    return per_frame - per_frame[:, :, PELVIS:PELVIS + 1]


def lift_track(model: Model, track: Track, *, hypotheses: int = 1, steps: int = 1, aggregate_by: str = "mean",
               flip_test: bool | None = None, threshold: float = 0.3, batch_size: int | None = None,
               seed: int | None = None, device: str | torch.device = "cpu", progress: bool | str = False) -> Lifted:
    """Fill, normalize, predict and aggregate one person's clip; unset options take the run's evaluation settings."""
    keypoints, filled = fill_track(track, threshold)
    pose_2d = model_input(keypoints, track.image_size)
    eval_cfg = model.config["eval"]
    per_frame = predict_clip(model.lifter, pose_2d, hypotheses=hypotheses, steps=steps,
                             flip_test=eval_cfg["flip_test"] if flip_test is None else flip_test,
                             batch_size=batch_size or eval_cfg["batch_size"], device=device,
                             seed=model.config["seed"] if seed is None else seed, progress=progress)
    weights = np.insert((~filled).astype(np.float64), PELVIS, 0.0, axis=1)  # the pelvis is derived, not detected
    pose_3d = aggregate(per_frame, pose_2d, weights, aggregate_by).astype(np.float32)
    return Lifted(track, keypoints, filled, pose_2d, per_frame.astype(np.float32), pose_3d,
                  outside_count(track, threshold))


def _positive(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"--{name} must be a positive integer, got {value!r}")


def lift_file(source: str | Path, out: str | Path, *, run: str | Path | None = None,
              checkpoint: str | Path | None = None, image_size: tuple[int, int] | None = None,
              person: str | None = None, hypotheses: int | None = None, steps: int | None = None,
              aggregate_by: str = "mean", render_formats: tuple[str, ...] = ("png", "gif"),
              save_hypotheses: bool = False, flip_test: bool | None = None, threshold: float = 0.3,
              fps: float = 10.0, device: str = "cpu", seed: int | None = None, mode: str | None = None,
              max_missed: int = MAX_MISSED, log: Callable[[str], None] | None = None,
              trust_checkpoint: bool = False, progress: bool = False) -> list[dict]:
    """Read a keypoint file or folder, lift every person clip (or those of ``person``), write outputs and pictures.

    ``mode`` (``images`` / ``video``, default: decided from the file, :func:`bench.lift.readers.choose_mode`) says
    whether the frames are unrelated images or a video; ``log`` receives the line saying what was read and chosen.
    Folders: :mod:`bench.lift.outputs`. ``hypotheses`` and ``steps`` default to the last (H, K) pair the run was
    evaluated with. Returns one summary per clip: person, image, folder, frames, files, the seconds spent
    predicting, filled keypoints and those far outside the image; an image's summaries carry its ``sheet``.
    With ``progress``, each clip's sampling shows a bar over its windows labelled with the clip count
    (``lift person 3 (2/5)``).
    """
    _positive(hypotheses, "hypotheses")
    _positive(steps, "steps")
    people = read_people(source, image_size, mode, threshold, max_missed)
    if log is not None:
        log(people.summary)
    tracks = select_tracks(people.tracks, person)
    model = load_model(run, checkpoint, device, trust_checkpoint=trust_checkpoint)
    default_h, default_k = model.config["eval"]["hypotheses_steps"][-1]
    hypotheses, steps = hypotheses or default_h, steps or default_k
    info = {"input": str(source), "mode": people.mode, "model": model.config["model"],
            "part_based": model.config["part_based"], "checkpoint": str(model.checkpoint), "epoch": model.epoch,
            "steps": steps, "aggregate": aggregate_by,
            "flip_test": model.config["eval"]["flip_test"] if flip_test is None else flip_test,
            "score_threshold": threshold, "seed": model.config["seed"] if seed is None else seed}
    options = dict(hypotheses=hypotheses, steps=steps, aggregate_by=aggregate_by, flip_test=info["flip_test"],
                   threshold=threshold, seed=info["seed"], device=device)
    summaries, lifted_by_image = [], {}
    for number, track in enumerate(tracks, start=1):
        folder = clip_folder(out, track, tracks)
        start = time.perf_counter()
        label = progress and f"lift person {track.person} ({number}/{len(tracks)})"
        lifted = lift_track(model, track, **options, progress=label)
        seconds = time.perf_counter() - start
        files = write_outputs(folder, lifted, dict(info, image_size=list(track.image_size)), save_hypotheses)
        if track.image is None:
            files += render(folder, lifted, render_formats, fps)
        else:
            lifted_by_image.setdefault(track.image, []).append(lifted)
        summaries.append({"person": track.person, "image": track.image, "folder": folder, "frames": track.frames,
                          "files": files, "seconds": seconds, "filled": int(lifted.filled.sum()),
                          "outside": lifted.outside})
    if "png" in render_formats:
        for image, lifted in lifted_by_image.items():
            sheet = render_image_sheet(image_folder(out, image, tracks), lifted, f"{Path(source).name}: {image}")
            for summary in summaries:
                if summary["image"] == image:
                    summary["sheet"] = sheet
    return summaries
