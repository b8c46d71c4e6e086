"""Read H3WB (the npz release, its renamed copies, the JSON release, the synthetic set) into sequences.

npz layout (see ``shared/reference/pafuse_code_facts.md`` 1.2): the training file holds ``train_data`` and
``metadata`` (0-d object arrays holding dicts); ``task1_test_3d.npz`` holds ``data`` (subject S8) and possibly
``metadata``. ``data[subject][action]`` has ``frame_id`` (T,), optionally ``global_3d``, and one dict per camera id
with ``camera_3d`` (T, 133, 3) mm, ``pose_2d`` (T, 133, 2) pixels and ``sample_id`` ((T,), a scalar, or absent).

What is used is validated; everything else is ignored, at every level: top-level keys such as mmpose's ``bbox``
(a dict keyed by tuples, never even unpickled), metadata entries other than a camera's ``K``, action-level keys
that are not camera views (a view is a known camera id, or a dict with ``camera_3d`` or ``pose_2d``), view keys
other than the three above. The training file goes by three names: ``h3wb_train.npz`` (the release),
``train_h3wb.npz`` (what the PAFUSE code loads) and ``h3wb_train_bbox.npz`` (mmpose's). A folder holding no npz
file is read as the JSON release (:mod:`bench.data.h3wb_json`), which gives the same sequences.

Each (subject, action, camera) becomes a :class:`Sequence` in the 134-joint layout (pelvis inserted at 0), frames
**sorted by frame_id** (the reference code keeps storage order), 3D in metres, 2D in normalized screen coordinates
of that camera's image. With ``max_gap`` a sequence is split where consecutive annotated frames are more than
``max_gap`` frames apart (off by default, as in the reference).
"""
from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import skeleton
from bench.data import cameras
from bench.data.sequences import Sequence, pose_2d_from_pixels, pose_3d_from_mm, split_at_gaps
from bench.errors import ConfigError, DataError

TRAIN_FILE = "h3wb_train.npz"
TRAIN_FILE_ALIASES = ("train_h3wb.npz", "h3wb_train_bbox.npz")
"""Other names of the training file: the one the PAFUSE code loads (``data/train_h3wb.npz``) and mmpose's."""
TEST_FILE = "task1_test_3d.npz"
NPZ_FILES = (TRAIN_FILE, *TRAIN_FILE_ALIASES, TEST_FILE)
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("S1", "S5", "S6", "S7"),
    "test": ("S8",),
    "val-train": ("S1", "S5", "S6"),
    "val": ("S7",),
}
"""Named subject lists: the official train/test split and the validation split that holds out S7."""
_DATA_KEYS = ("train_data", "data")
_VIEW_KEYS = ("camera_3d", "pose_2d")


def _is_path(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def dataset_files(source: str | Path | Iterable[str | Path]) -> list[Path]:
    """The H3WB files that ``source`` names; a clear error if there are none.

    Args:
        source: a file, a list of files, or a folder. A folder gives its npz files (any of ``NPZ_FILES``) or, when
            it holds none, its JSON release files (``bench.data.h3wb_json.JSON_FILES``).
    """
    from bench.data.h3wb_json import JSON_FILES, json_files

    if not _is_path(source):
        files = [Path(p) for p in source]
        if not files:
            raise DataError("data", "file list", "at least one H3WB file", "an empty list")
        return files
    root = Path(source)
    if root.is_file():
        return [root]
    found = [root / name for name in NPZ_FILES if (root / name).exists()] or json_files(root)
    if not found:
        others = (f" (nor the training file's other names {', '.join(TRAIN_FILE_ALIASES)}, nor JSON release files "
                  f"{', '.join(JSON_FILES)})")
        raise DataError(root, "folder", f"{TRAIN_FILE} and/or {TEST_FILE}",
                        "neither" + others if root.is_dir() else "no such folder")
    return found


def read_tree(path: Path) -> tuple[dict, dict]:
    """Read one npz file into (data, metadata) dicts (metadata may be empty); other top-level keys are not read."""
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
        data = _unwrap(_member(archive, path, data_key), path, data_key)
        metadata = _unwrap(_member(archive, path, "metadata"), path, "metadata") if "metadata" in keys else {}
    return data, metadata


def _member(archive, path: Path, key: str) -> np.ndarray:
    """One member of an open npz archive, read and unpickled; damage (a bad CRC, a truncated or foreign pickle, a
    garbage ``.npy`` header) is a DataError naming the file and the member."""
    try:
        return archive[key]
    except Exception as error:  # unpickling damaged bytes can raise nearly any exception type
        raise DataError(path, f"member {key}.npy", "a readable numpy array",
                        f"damaged content ({type(error).__name__}: {error})") from error


def _unwrap(value: np.ndarray, path: Path, key: str) -> dict:
    item = value.item() if value.dtype == object and value.shape == () else value
    if not isinstance(item, dict):
        raise DataError(path, key, "a 0-d object array holding a dict", f"{value.dtype} array of shape {value.shape}")
    return item


def load_h3wb(source: str | Path | Iterable[str | Path], subjects: Iterable[str] | None = SPLITS["train"],
              max_gap: int | None = None, mirror_from_file: bool = False) -> list[Sequence]:
    """Load the sequences of ``subjects`` from a folder holding H3WB's files, or from explicit files.

    Args:
        source: a folder (see :func:`dataset_files`), or a list of npz and/or JSON release files. Two files that
            both hold a subject are an error, whatever the subjects asked for.
        subjects: subject names, e.g. ``SPLITS["train"]`` or ``["S8"]``; None: every subject in the files, sorted.
        max_gap: split a take where consecutive annotated frame ids differ by more than this (None: never).
        mirror_from_file: mirror with the pairs of the npz metadata's ``left_side`` / ``right_side`` lists
            (read as 0-based c133 indices, as the PAFUSE code reads them before adding 1 for its pelvis) instead
            of ``skeleton.MIRROR_PAIRS_C133``; either way a warning names the file and the pairs where the two
            disagree. The pairs used end up in every sequence's ``mirror_pairs``.

    Returns:
        Sequences ordered by subject (as given), action, camera and segment.
    """
    if max_gap is not None and (not isinstance(max_gap, (int, np.integer)) or isinstance(max_gap, bool)
                                or max_gap < 1):
        raise ConfigError(f"max_gap: expected null or an integer >= 1, found {max_gap!r}")
    files = dataset_files(source)
    json_paths = [path for path in files if path.suffix.lower() == ".json"]
    trees = [(path, *read_tree(path)) for path in files if path not in json_paths]
    entries = [(path, subject, actions) for path, data, _ in trees for subject, actions in data.items()
               if isinstance(actions, dict)]  # anything else beside the subjects is ignored
    if json_paths:
        from bench.data.h3wb_json import read_json_sequences

        entries += [(owner, subject, found) for subject, (owner, found) in read_json_sequences(json_paths,
                                                                                                max_gap).items()]
    owners = _owners(entries)
    metadata = {k: v for _, _, meta in trees for k, v in meta.items() if isinstance(v, dict)}
    pairs = _mirror_pairs([(path, meta) for path, _, meta in trees], mirror_from_file)
    sequences: list[Sequence] = []
    for subject in sorted(owners, key=str) if subjects is None else subjects:
        if subject not in owners:
            raise DataError(", ".join(str(p) for p in files), f"subject {subject}",
                            "the subject in the data", f"subjects {sorted(owners, key=str)}")
        owner, content = owners[subject]
        found = (content if isinstance(content, list)  # the JSON reader's sequences, already built
                 else _subject_sequences(owner, subject, content, metadata.get(subject), max_gap))
        if not found:
            raise DataError(owner, f"{subject}", "at least one annotated frame", "no frames")
        sequences.extend(found)
    if pairs != skeleton.MIRROR_PAIRS_C133:
        sequences = [replace(sequence, mirror_pairs=pairs) for sequence in sequences]
    return sequences


def _owners(entries) -> dict:
    """subject -> (file, content) from (file, subject, content) entries; a subject in two files is an error."""
    owners = {}
    for owner, subject, content in entries:
        if subject in owners:
            raise DataError(f"{owners[subject][0]} and {owner}", f"subject {subject}",
                            "each subject in one file only (keep one copy of the data)", "it in both files")
        owners[subject] = (owner, content)
    return owners


def _mirror_pairs(metadata: list[tuple[Path, dict]], from_file: bool) -> tuple[tuple[int, int], ...]:
    """The mirror pairs to use: ``skeleton.MIRROR_PAIRS_C133``, or the files' when ``from_file`` and they have some."""
    from bench.data.h3wb_mirror import file_mirror_pairs

    chosen, chosen_path = None, None
    for path, meta in metadata:
        pairs = file_mirror_pairs(path, meta, strict=from_file)
        if pairs is None or not from_file:
            continue
        if chosen is not None and set(pairs) != set(chosen):
            raise DataError(f"{chosen_path} and {path}", "metadata/left_side, right_side",
                            "the same mirror pairs in every file", "different pairs")
        chosen, chosen_path = pairs, path
    return chosen if chosen is not None else skeleton.MIRROR_PAIRS_C133


def _subject_sequences(path, subject, actions: dict, calibration, max_gap) -> list[Sequence]:
    sequences = []
    for action in sorted((k for k, v in actions.items() if isinstance(v, dict)), key=str):
        entry = actions[action]
        views = sorted((k for k, v in entry.items() if _is_view(k, v)), key=str)
        if not views and "frame_id" not in entry:
            continue  # not an action: some other dict stored beside them
        where = f"{subject}/{action}"
        if not views:
            raise DataError(path, where, "camera views beside 'frame_id' (camera ids holding 'camera_3d' and "
                            "'pose_2d')", f"none: keys {sorted(entry, key=str)}")
        frame_ids = _array(path, f"{where}/frame_id", _get(entry, path, where, "frame_id"), 1, None, np.int64)
        order = np.argsort(frame_ids, kind="stable")
        for camera in views:
            view = _read_view(path, f"{where}/{camera}", entry[camera], len(frame_ids), order, camera, calibration)
            sequences.extend(split_at_gaps(Sequence(subject, action, camera, frame_ids[order], **view), max_gap))
    return sequences


def _is_view(key, value) -> bool:
    """A camera view: a known camera id, or a dict holding poses (an unknown camera id is then an error)."""
    return key in cameras.RESOLUTIONS or (isinstance(value, dict) and any(k in value for k in _VIEW_KEYS))


def _read_view(path, where, view, frames, order, camera, calibration) -> dict:
    if not isinstance(view, dict):
        raise DataError(path, where, "a dict with 'camera_3d' and 'pose_2d'", type(view).__name__)
    resolution, calib = _camera(path, where, camera, calibration)
    pose_3d = _array(path, f"{where}/camera_3d", _get(view, path, where, "camera_3d"), 3, frames, np.float64)
    pose_2d = _array(path, f"{where}/pose_2d", _get(view, path, where, "pose_2d"), 2, frames, np.float64)
    sample_ids = _sample_ids(path, f"{where}/sample_id", view.get("sample_id"), frames)
    return {
        "sample_ids": None if sample_ids is None else sample_ids[order],
        "pose_2d": pose_2d_from_pixels(pose_2d[order], resolution, _locate(path, f"{where}/pose_2d", order)),
        "pose_3d": pose_3d_from_mm(pose_3d[order], _locate(path, f"{where}/camera_3d", order)),
        "resolution": resolution,
        "calibration": calib,
    }


def _locate(path, where, order):
    """``locate`` for the conversions: a value of the sorted array named by its index in the file."""
    return lambda frame, keypoint, axis: (path, f"{where}[{int(order[frame])}, {keypoint}, {axis}]")


def _sample_ids(path, where, value, frames) -> np.ndarray | None:
    """(T,) sample ids, or None when absent or a single id for several frames (nothing needs them to load)."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim == 0:
        return _array(path, where, array.reshape(1), 1, 1, np.int64) if frames == 1 else None
    return _array(path, where, array, 1, frames, np.int64)


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
        raise DataError(path, f"{where}/{key}", f"key {key!r}", f"keys {sorted(mapping, key=str)}")
    return mapping[key]


def _array(path, where, value, kind, frames, dtype) -> np.ndarray:
    """Check an array's shape and values. ``kind`` 1: (T,) integer ids; 2 or 3: (T, 133, kind) coordinates.

    Nothing is coerced silently: complex values, and ids that the conversion to ``dtype`` would change (fractions,
    values out of its range), are errors.
    """
    array = np.asarray(value)
    expected = (frames if frames is not None else "T",) if kind == 1 else (frames, skeleton.NUM_KEYPOINTS, kind)
    shape_ok = array.ndim == len(expected) and all(e in ("T", a) for e, a in zip(expected, array.shape))
    if not shape_ok:
        raise DataError(path, where, f"shape {expected}".replace("'", ""), f"shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DataError(path, where, "real numbers", f"dtype {array.dtype}")
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise DataError(path, where, "finite values", f"{array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    with np.errstate(invalid="ignore"):
        converted = array.astype(dtype)
    if kind == 1 and not np.array_equal(converted, array):
        bad = np.argwhere(converted != array)[0]
        raise DataError(path, where, f"integers (as {np.dtype(dtype).name})",
                        f"{array[tuple(bad)].item()!r} at index {tuple(int(i) for i in bad)}")
    return converted
