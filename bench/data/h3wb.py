"""Read H3WB's official npz release (and the synthetic set written in the same layout) into sequences.

Layout (see ``shared/reference/pafuse_code_facts.md`` 1.2): ``h3wb_train.npz`` holds ``train_data`` and ``metadata``
(0-d object arrays holding dicts); ``task1_test_3d.npz`` holds ``data`` (subject S8) and possibly ``metadata``.
Extra keys (e.g. mmpose's ``bbox``) are ignored. ``data[subject][action]`` has ``frame_id`` (T,), optionally
``global_3d``, and one dict per camera id with ``camera_3d`` (T, 133, 3) mm, ``pose_2d`` (T, 133, 2) pixels and
``sample_id`` (T,).

Each (subject, action, camera) becomes a :class:`Sequence` in the 134-joint layout (pelvis inserted at 0), frames
**sorted by frame_id** (the reference code keeps storage order), 3D in metres, 2D in normalized screen coordinates
of that camera's image. With ``max_gap`` a sequence is split where consecutive annotated frames are more than
``max_gap`` frames apart (off by default, as in the reference).
"""
from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import skeleton
from bench.data import cameras
from bench.errors import DataError

TRAIN_FILE = "h3wb_train.npz"
TEST_FILE = "task1_test_3d.npz"
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("S1", "S5", "S6", "S7"),
    "test": ("S8",),
    "val-train": ("S1", "S5", "S6"),
    "val": ("S7",),
}
"""Named subject lists: the official train/test split and the validation split that holds out S7."""
_DATA_KEYS = ("train_data", "data")
_RESERVED_ACTION_KEYS = ("frame_id", "global_3d")


@dataclass(frozen=True)
class Sequence:
    """One camera's view of one action take, in time order.

    Attributes:
        pose_2d: (T, 134, 2) float32 normalized screen coordinates.
        pose_3d: (T, 134, 3) float32 camera-frame positions in metres (absolute, not root-relative).
        frame_ids: (T,) int64 H36M frame numbers, increasing.
        sample_ids: (T,) int64 H3WB sample ids (-1 where the file has none).
        resolution: (width, height) of the camera image in pixels.
        segment: index of the piece when ``max_gap`` split the take, else 0.
    """

    subject: str
    action: str
    camera: str
    frame_ids: np.ndarray
    sample_ids: np.ndarray
    pose_2d: np.ndarray
    pose_3d: np.ndarray
    resolution: tuple[int, int]
    segment: int = 0
    calibration: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def frames(self) -> int:
        return len(self.frame_ids)


def dataset_files(root: str | Path) -> list[Path]:
    """The official files present in ``root``; a clear error if there are none."""
    root = Path(root)
    found = [root / name for name in (TRAIN_FILE, TEST_FILE) if (root / name).exists()]
    if not found:
        raise DataError(root, "folder", f"{TRAIN_FILE} and/or {TEST_FILE}",
                        "neither" if root.is_dir() else "no such folder")
    return found


def read_tree(path: Path) -> tuple[dict, dict]:
    """Read one official file into (data, metadata) dicts (metadata may be empty)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file", "an H3WB npz file", "no such file")
    try:
        archive = np.load(path, allow_pickle=True)
    except (OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as error:
        raise DataError(path, "file", "an npz archive", f"unreadable content ({error})") from error
    with archive:
        keys = set(archive.files)
        data_key = next((k for k in _DATA_KEYS if k in keys), None)
        if data_key is None:
            raise DataError(path, "top level", "key 'train_data' (train file) or 'data' (test file)",
                            f"keys {sorted(keys)}")
        data = _unwrap(archive[data_key], path, data_key)
        metadata = _unwrap(archive["metadata"], path, "metadata") if "metadata" in keys else {}
    return data, metadata


def _unwrap(value: np.ndarray, path: Path, key: str) -> dict:
    item = value.item() if value.dtype == object and value.shape == () else value
    if not isinstance(item, dict):
        raise DataError(path, key, "a 0-d object array holding a dict", f"{value.dtype} array of shape {value.shape}")
    return item


def load_h3wb(source: str | Path | Iterable[str | Path], subjects: Iterable[str] = SPLITS["train"],
              max_gap: int | None = None) -> list[Sequence]:
    """Load the sequences of ``subjects`` from a folder holding the official files, or from explicit files.

    Args:
        source: a folder with ``h3wb_train.npz`` and/or ``task1_test_3d.npz``, or a list of npz paths.
        subjects: subject names, e.g. ``SPLITS["train"]`` or ``["S8"]``.
        max_gap: split a take where consecutive annotated frame ids differ by more than this (None: never).

    Returns:
        Sequences ordered by subject (as given), action, camera and segment.
    """
    files = dataset_files(source) if isinstance(source, (str, Path)) else [Path(p) for p in source]
    trees = [(path, *read_tree(path)) for path in files]
    metadata: dict = {}
    for _, _, meta in trees:
        metadata.update({k: v for k, v in meta.items() if isinstance(v, dict)})
    sequences: list[Sequence] = []
    for subject in subjects:
        owners = [(path, data[subject]) for path, data, _ in trees if subject in data]
        if not owners:
            raise DataError(", ".join(str(p) for p in files), f"subject {subject}",
                            "the subject in the data", f"subjects {sorted(s for _, d, _ in trees for s in d)}")
        found = [seq for path, actions in owners
                 for seq in _subject_sequences(path, subject, actions, metadata.get(subject), max_gap)]
        if not found:
            raise DataError(owners[0][0], f"{subject}", "at least one annotated frame", "no frames")
        sequences.extend(found)
    return sequences


def _subject_sequences(path, subject, actions, calibration, max_gap) -> list[Sequence]:
    if not isinstance(actions, dict):
        raise DataError(path, subject, "a dict of actions", type(actions).__name__)
    sequences = []
    for action in sorted(actions):
        entry = actions[action]
        where = f"{subject}/{action}"
        frame_ids = _array(path, f"{where}/frame_id", _get(entry, path, where, "frame_id"), 1, None, np.int64)
        order = np.argsort(frame_ids, kind="stable")
        for camera in sorted(k for k in entry if k not in _RESERVED_ACTION_KEYS):
            view = _read_view(path, f"{where}/{camera}", entry[camera], len(frame_ids), order, camera, calibration)
            sequences.extend(_split(Sequence(subject, action, camera, frame_ids[order], **view), max_gap))
    return sequences


def _read_view(path, where, view, frames, order, camera, calibration) -> dict:
    if not isinstance(view, dict):
        raise DataError(path, where, "a dict with 'camera_3d' and 'pose_2d'", type(view).__name__)
    resolution, calib = _camera(path, where, camera, calibration)
    pose_3d = _array(path, f"{where}/camera_3d", _get(view, path, where, "camera_3d"), 3, frames, np.float64)
    pose_2d = _array(path, f"{where}/pose_2d", _get(view, path, where, "pose_2d"), 2, frames, np.float64)
    sample_ids = view.get("sample_id")
    sample_ids = (np.full(frames, -1, np.int64) if sample_ids is None
                  else _array(path, f"{where}/sample_id", sample_ids, 1, frames, np.int64))
    width, height = resolution
    return dict(
        sample_ids=sample_ids[order],
        pose_2d=skeleton.add_pelvis(cameras.normalize_screen_coordinates(pose_2d[order], width, height))
        .astype(np.float32),
        pose_3d=skeleton.add_pelvis(pose_3d[order] / 1000.0).astype(np.float32),
        resolution=resolution,
        calibration=calib,
    )


def _camera(path, where, camera, calibration) -> tuple[tuple[int, int], dict]:
    """Image size and calibration of ``camera``: the size comes from the H36M table, K/R/T from the metadata."""
    if camera not in cameras.RESOLUTIONS:
        raise DataError(path, where, f"a calibrated camera id (one of {', '.join(cameras.CAMERA_IDS)})",
                        f"camera {camera!r}")
    if calibration is None:
        return cameras.RESOLUTIONS[camera], {}
    calib = calibration.get(camera)
    if not isinstance(calib, dict) or "K" not in calib:
        raise DataError(path, f"metadata/{where.split('/')[0]}/{camera}", "a calibration dict with 'K', 'R', 'T'",
                        "nothing" if calib is None else f"keys {sorted(calib) if isinstance(calib, dict) else calib}")
    return cameras.RESOLUTIONS[camera], {k: np.asarray(v) for k, v in calib.items()}


def _get(mapping, path, where, key):
    if key not in mapping:
        raise DataError(path, f"{where}/{key}", f"key {key!r}", f"keys {sorted(mapping)}")
    return mapping[key]


def _array(path, where, value, kind, frames, dtype) -> np.ndarray:
    """Check an array's shape and values. ``kind`` 1: (T,) ids; 2 or 3: (T, 133, kind) coordinates."""
    array = np.asarray(value)
    expected = (frames if frames is not None else "T",) if kind == 1 else (frames, skeleton.NUM_KEYPOINTS, kind)
    shape_ok = array.ndim == len(expected) and all(e in ("T", a) for e, a in zip(expected, array.shape))
    if not shape_ok:
        raise DataError(path, where, f"shape {expected}".replace("'", ""), f"shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(path, where, "numbers", f"dtype {array.dtype}")
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise DataError(path, where, "finite values", f"{array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return array.astype(dtype)


def _split(sequence: Sequence, max_gap: int | None) -> list[Sequence]:
    if max_gap is None or sequence.frames < 2:
        return [sequence]
    cuts = np.flatnonzero(np.diff(sequence.frame_ids) > max_gap) + 1
    bounds = zip(np.r_[0, cuts], np.r_[cuts, sequence.frames])
    return [_slice(sequence, start, stop, index) for index, (start, stop) in enumerate(bounds)]


def _slice(sequence: Sequence, start: int, stop: int, segment: int) -> Sequence:
    part = slice(start, stop)
    return Sequence(sequence.subject, sequence.action, sequence.camera, sequence.frame_ids[part],
                    sequence.sample_ids[part], sequence.pose_2d[part], sequence.pose_3d[part],
                    sequence.resolution, segment, sequence.calibration)
