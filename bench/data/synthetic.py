"""A deterministic synthetic stand-in for H3WB, written in the official npz layout.

Five subjects (S1, S5, S6, S7 for training, S8 for testing), each with their own body proportions and four
H36M-like calibrated cameras, perform H36M actions (``motion.simulate_action``). As in H3WB, only some frames are
annotated, with uneven gaps (mode 5 frames, a spread up to 50 and a long tail past 100; PAFUSE paper, Fig. 4),
and every annotated instant is seen by all four cameras.

Files (layout of ``shared/reference/pafuse_code_facts.md`` 1.2):

* ``h3wb_train.npz``: ``metadata`` (cameras of the training subjects plus the keypoint group lists) and
  ``train_data`` (subject -> action -> {global_3d, frame_id, camera id -> {camera_3d, pose_2d, sample_id}}).
* ``task1_test_3d.npz``: ``data`` (the same tree for S8) and ``metadata`` (S8's cameras and the group lists).

Random streams are seeded per (seed, purpose, subject, action, camera), so a subject's data never depends on
which other subjects or actions are generated, nor in which order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.data import cameras
from bench.data.body_model import BodyShape, sample_body_shape
from bench.data.h3wb import TEST_FILE, TRAIN_FILE
from bench.data.motion import simulate_action
from bench.data.poses import ACTION_STYLES
from bench.io import save_npz
from bench.skeleton import C133_GROUPS, MIRROR_PAIRS_C133, PART_ATTACH, PART_ROOTS

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7")
TEST_SUBJECTS = ("S8",)
ALL_ACTIONS = tuple(f"{name} {take}" for name in ACTION_STYLES for take in (1, 2))
"""The 30 H36M actions (15 types x 2 takes) of the full set, in a fixed order that also numbers their seeds."""
SMALL_ACTIONS = ("Directions 1", "Eating 2", "Greeting 1", "Phoning 1", "Sitting 1", "Walking 1")
SIZES: dict[str, tuple[tuple[str, ...], tuple[int, int]]] = {
    "tiny": (("Directions 1", "Walking 1"), (30, 41)),
    "small": (SMALL_ACTIONS, (50, 111)),
    "full": (ALL_ACTIONS, (150, 185)),
}
"""Size name -> (actions per subject, [low, high) range of annotated instants per action)."""

_STREAMS = {"body": 0, "camera": 1, "frames": 2, "motion": 3, "noise": 4}
_CAMERA_JITTER_MM = 30.0
_CAMERA_JITTER_DEG = 1.0


def _rng(seed: int, stream: str, subject: str, action: str | None = None, camera: int = 0) -> np.random.Generator:
    """The generator of one purpose for one (subject, action, camera), independent of every other one."""
    action_number = ALL_ACTIONS.index(action) + 1 if action else 0
    key = [int(seed), _STREAMS[stream], int(subject.lstrip("S")), action_number, camera]
    return np.random.default_rng(np.random.SeedSequence(key))


def gap_distribution() -> tuple[np.ndarray, np.ndarray]:
    """Gaps between consecutive annotated frames and their probabilities, shaped like H3WB's (paper Fig. 4).

    Returns:
        (gaps (G,) int64 in frames, probabilities (G,) float64 summing to 1): 45 % exactly 5 frames (the
        mode), 45 % decaying over 6-50, 6 % spread over 51-99 and 4 % in a long tail over 100-400.
    """
    gaps = np.arange(5, 401)
    weights = np.zeros(gaps.shape)
    weights[gaps == 5] = 0.45
    spread = (gaps >= 6) & (gaps <= 50)
    weights[spread] = 0.45 * np.exp(-(gaps[spread] - 6) / 12.0) / np.exp(-(gaps[spread] - 6) / 12.0).sum()
    middle = (gaps > 50) & (gaps < 100)
    weights[middle] = 0.06 / middle.sum()
    tail = gaps >= 100
    weights[tail] = 0.04 * (1.0 / gaps[tail]) / (1.0 / gaps[tail]).sum()
    return gaps.astype(np.int64), weights / weights.sum()


def sample_frame_ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` increasing annotated frame ids (int64) with gaps drawn from ``gap_distribution``."""
    gaps, probabilities = gap_distribution()
    start = rng.integers(0, 200)
    steps = rng.choice(gaps, size=count - 1, p=probabilities)
    return (start + np.concatenate([[0], np.cumsum(steps)])).astype(np.int64)


@dataclass(frozen=True)
class Calibration:
    """One camera as stored in the files: values are the float32 ones, widened to float64.

    Attributes:
        K_px: (3, 3) intrinsics in pixels. R: (3, 3) world -> camera rotation. T_m: (3,) translation in metres,
        with X_cam = R X_world + 1000 T_m (mm).
    """

    K_px: np.ndarray
    R: np.ndarray
    T_m: np.ndarray

    def metadata(self) -> dict[str, np.ndarray]:
        """The H3WB metadata entry: K / 1000 (1, 3, 3), R (1, 3, 3), T (1, 1, 3) metres, zero Distortion (1, 5)."""
        K = (self.K_px / cameras.K_NORMALIZER_PX).astype(np.float32)
        K[2, 2] = 1.0
        return {"K": K[None], "R": self.R.astype(np.float32)[None], "T": self.T_m.astype(np.float32)[None, None],
                "Distortion": np.zeros((1, 5), dtype=np.float32)}

    def to_camera(self, world_mm: np.ndarray) -> np.ndarray:
        """World points (..., 3) mm -> camera-frame points (..., 3) mm."""
        return world_mm @ self.R.T + 1000.0 * self.T_m


def _small_rotation(rng: np.random.Generator) -> np.ndarray:
    """A (3, 3) rotation about a random axis by a normally distributed angle of about one degree."""
    axis = rng.normal(size=3)
    angle = np.deg2rad(rng.normal(0.0, _CAMERA_JITTER_DEG))
    return cameras.quaternion_to_matrix(np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis
                                                        / np.linalg.norm(axis)]))


def subject_cameras(seed: int, subject: str) -> dict[str, Calibration]:
    """The four cameras of one subject: S1's published calibration, other subjects' moved by a few cm and ~1 deg.

    The quaternions rotate camera axes into the world (X_world = R_q X_cam + C), so world -> camera is
    R = R_q^T and T = -R C. Values are rounded to float32 first, so the data computed from them matches the
    stored metadata exactly.
    """
    out = {}
    for index, camera_id in enumerate(cameras.CAMERA_IDS):
        camera_to_world = cameras.quaternion_to_matrix(cameras.ORIENTATION_S1[camera_id])
        centre = np.array(cameras.CENTRE_S1_MM[camera_id])
        if subject != "S1":
            rng = _rng(seed, "camera", subject, camera=index)
            centre = centre + rng.normal(0.0, _CAMERA_JITTER_MM, size=3)
            camera_to_world = _small_rotation(rng) @ camera_to_world
        R = camera_to_world.T
        (fx, fy), (cx, cy) = cameras.FOCAL_PX[camera_id], cameras.CENTRE_PX[camera_id]
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        K_px = (K / cameras.K_NORMALIZER_PX).astype(np.float32).astype(np.float64) * cameras.K_NORMALIZER_PX
        K_px[2, 2] = 1.0
        out[camera_id] = Calibration(K_px=K_px,
                                     R=R.astype(np.float32).astype(np.float64),
                                     T_m=(-R @ centre / 1000.0).astype(np.float32).astype(np.float64))
    return out


def subject_body(seed: int, subject: str) -> tuple[BodyShape, float]:
    """A subject's body proportions and movement energy (about 1), fixed by (seed, subject)."""
    rng = _rng(seed, "body", subject)
    return sample_body_shape(rng), float(rng.uniform(0.8, 1.2))


def _action_tree(seed: int, subject: str, action: str, count_range: tuple[int, int], noise_px: float,
                 calibrations: dict[str, Calibration], body: tuple[BodyShape, float], first_id: int) -> dict:
    """One action's entry: {'global_3d', 'frame_id', camera id -> {'camera_3d', 'pose_2d', 'sample_id'}}."""
    frame_rng = _rng(seed, "frames", subject, action)
    frame_id = sample_frame_ids(frame_rng, int(frame_rng.integers(*count_range)))
    shape, energy = body
    world = simulate_action(shape, action, _rng(seed, "motion", subject, action), frame_id, energy)
    entry = {"global_3d": world, "frame_id": frame_id}
    for index, (camera_id, calibration) in enumerate(calibrations.items()):
        camera_3d = calibration.to_camera(world)
        if camera_3d[..., 2].min() <= 0.0:
            raise RuntimeError(f"{subject} {action}: camera {camera_id} sees a keypoint behind it "
                               f"(z_cam = {camera_3d[..., 2].min():.0f} mm); the capture area is misplaced")
        pose_2d = cameras.project(camera_3d, calibration.K_px)
        if noise_px > 0.0:
            pose_2d = pose_2d + _rng(seed, "noise", subject, action, index).normal(0.0, noise_px, pose_2d.shape)
        # The four views of one instant get consecutive sample ids, as H3WB's ids appear to be grouped.
        sample_id = first_id + len(calibrations) * np.arange(len(frame_id), dtype=np.int64) + index
        entry[camera_id] = {"camera_3d": camera_3d, "pose_2d": pose_2d, "sample_id": sample_id}
    return entry


def _group_metadata() -> dict[str, list[int]]:
    """The keypoint lists H3WB's metadata carries: mirror sides (pairwise aligned) and the c133 groups."""
    return {"left_side": [left for left, _ in MIRROR_PAIRS_C133],
            "right_side": [right for _, right in MIRROR_PAIRS_C133],
            **{name: list(indices) for name, indices in C133_GROUPS.items()}}


@dataclass
class SyntheticData:
    """The generated dataset, exactly as written.

    Attributes:
        train: subject -> action -> entry, for the training subjects.
        test: the same for the test subject.
        metadata: subject -> camera id -> calibration entry for every subject, plus the group lists.
    """

    train: dict
    test: dict
    metadata: dict

    def _metadata_for(self, subjects) -> dict:
        groups = {key: value for key, value in self.metadata.items() if key not in TRAIN_SUBJECTS + TEST_SUBJECTS}
        return {**{s: self.metadata[s] for s in subjects}, **groups}

    def file_contents(self) -> dict[str, dict[str, np.ndarray]]:
        """File name -> {npz key -> 0-d object array holding a dict}, as written to disk."""
        return {TRAIN_FILE: {"metadata": _object(self._metadata_for(self.train)), "train_data": _object(self.train)},
                TEST_FILE: {"data": _object(self.test), "metadata": _object(self._metadata_for(self.test))}}


def _object(value: dict) -> np.ndarray:
    """A 0-d object array holding ``value`` (how H3WB stores its dicts; ``.item()`` gives it back)."""
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def generate(size: str = "small", seed: int = 0, noise_px: float = 0.0, progress: bool = False) -> SyntheticData:
    """Generate the synthetic H3WB in memory.

    Args:
        size: 'tiny' (2 actions x 30-40 instants per subject, for tests), 'small' (6 actions x 50-110 instants
            per subject, about 9k samples) or 'full' (30 actions x
            150-184 instants, about 100k samples, like H3WB).
        seed: non-negative base seed; the same (size, seed, noise_px) always gives the same data.
        noise_px: standard deviation of Gaussian noise added to the 2D keypoints, pixels (0 = exact projection).
        progress: show a progress bar over subjects.

    Returns:
        The train and test trees and the metadata.
    """
    if size not in SIZES:
        raise ValueError(f"generate: unknown size {size!r}; expected one of {sorted(SIZES)}")
    if seed < 0 or noise_px < 0:
        raise ValueError(f"generate: seed and noise_px must be >= 0, got seed={seed}, noise_px={noise_px}")
    actions, count_range = SIZES[size]
    subjects = TRAIN_SUBJECTS + TEST_SUBJECTS
    if progress:
        subjects = tqdm(subjects, desc=f"synthetic H3WB ({size})", unit="subject")
    trees, metadata, next_id = {}, _group_metadata(), 0
    for subject in subjects:
        calibrations = subject_cameras(seed, subject)
        metadata[subject] = {camera_id: c.metadata() for camera_id, c in calibrations.items()}
        body = subject_body(seed, subject)
        trees[subject] = {}
        for action in actions:
            entry = _action_tree(seed, subject, action, count_range, noise_px, calibrations, body, next_id)
            trees[subject][action] = entry
            next_id += len(calibrations) * len(entry["frame_id"])
    return SyntheticData(train={s: trees[s] for s in TRAIN_SUBJECTS}, test={s: trees[s] for s in TEST_SUBJECTS},
                         metadata=metadata)


def write_synthetic(out_dir: str | os.PathLike, size: str = "small", seed: int = 0, noise_px: float = 0.0,
                    progress: bool = False) -> list[Path]:
    """Generate the synthetic H3WB and write ``h3wb_train.npz`` and ``task1_test_3d.npz`` atomically.

    Returns:
        The paths of the two files, train first. The same arguments always give byte-identical files.
    """
    data = generate(size=size, seed=seed, noise_px=noise_px, progress=progress)
    return [save_npz(Path(out_dir) / name, **arrays) for name, arrays in data.file_contents().items()]


def part_root_offsets(data: SyntheticData | dict) -> dict[str, float]:
    """Mean distance in mm between each part root and the body keypoint it hangs from, over all frames.

    Args:
        data: a ``SyntheticData`` or a subject -> action -> entry tree (e.g. a loaded ``train_data``).

    Returns:
        {'face': mean |body nose - face nose tip|, 'left_hand': mean |left wrist - left hand root|,
        'right_hand': the same for the right hand}, in mm.
    """
    trees = [data.train, data.test] if isinstance(data, SyntheticData) else [data]
    poses = np.concatenate([entry["global_3d"] for tree in trees for actions in tree.values()
                            for entry in actions.values()])
    # PART_ROOTS and PART_ATTACH are j134 indices, one more than c133.
    return {part: float(np.linalg.norm(poses[:, PART_ROOTS[part] - 1] - poses[:, attach - 1], axis=-1).mean())
            for part, attach in PART_ATTACH.items()}
