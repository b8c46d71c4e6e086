"""H3WB's JSON release as the same :class:`~bench.data.h3wb.Sequence` objects as the npz files.

Files (layout in :mod:`bench.data.h3wb_json_format`; ``shared/reference/pafuse_code_facts.md`` 1.1):

* training (S1, S5, S6, S7): ``2Dto3D_train.json`` (2D and 3D; or its five parts ``2Dto3D_train_part1..5.json``)
  with ``RGBto3D_train.json`` (the same sample ids, with ``image_path``);
* test (S8, task 1): ``2Dto3D_test_3d.json`` (2D and 3D: the ground truth) and ``2Dto3D_test_2d.json`` (2D only),
  read for their ``image_path`` when they have one.

What the sources say (wholebody3d/wholebody3d, README.md, ``datasets/data_preparation.py``, issues #5, #9, #11,
#12, #16; mmpose ``h3wb_dataset.py``):

* **Image paths** look like ``S5/Images/Directions 2.60457274/frame_0125.jpg`` (a user quoting the annotations in
  issue #12): subject, ``Images``, the H36M video name ``<action>.<camera id>``, then ``frame_<n>.jpg`` where ``n``
  is the 0-based frame index in that video, zero-padded to 4 digits (the release's frame extractor writes
  ``frame_`` + ``str(count).zfill(4)``). *Inferred*: ``n`` is the npz files' ``frame_id`` (mmpose builds
  ``<subject>/Images/<action>.<camera>/frame_<frame_id>.jpg`` from the npz), and the action is the npz action
  name (both are H36M video names such as ``Directions 1``).
* ``2Dto3D_train.json`` has **no image path** (issue #9: it is meant for single-frame lifting); it is aligned with
  ``RGBto3D_train.json`` sample by sample (issues #5, #9), so image paths are joined on the sample id. Part ``k``'s
  ``Y``-th sample is sample ``16000 (k - 1) + Y`` (issue #9): a part whose ids restart at 0 is shifted by the
  sizes of the parts before it. Whether the test files carry image paths is not documented; they are used if
  present. Without image paths no sequence can be rebuilt, and loading stops with a DataError saying so.
* Samples are shuffled (sorted by an annotation-error measure, issue #9), so sequences are rebuilt here: grouped
  by (subject, action, camera) from the image path and sorted by frame number.
* **Units**: 3D in millimetres (maintainer, issue #16), 2D in pixels of the H36M image (issue #16: 2D is
  ``K (R X + T)`` divided by depth). Both are converted exactly as on the npz path (mm -> m, pixels -> normalized
  screen coordinates with the camera's image size from its id), and the pelvis is inserted at joint 0.
* **3D frame**: the JSON 3D is ``R_cam X_global``, rotated into the camera frame but **not translated** (issues
  #5, #11, #16): ``X_cam = X_data + T_cam``. The npz ``camera_3d`` is ``X_cam``. Every target here is
  root-relative, where the translation cancels, so the two forms train and score the same; only absolute 3D
  positions differ (by the camera translation, one vector per camera and subject).

Each file is parsed whole with ``json``, as the official loaders do: ``2Dto3D_train.json`` takes several GB of
memory while it is read (one part at a time with the five parts). Also here, from
:mod:`bench.data.h3wb_json_write`: :func:`write_h3wb_json` (any sequences in this layout),
:func:`export_h3wb_predictions` (task-1 predictions in the ground truth's layout) and :func:`h3wb_leaderboard_score`.
"""
from __future__ import annotations

import itertools
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data import cameras
from bench.data.h3wb_json_format import (
    AXES_2D,
    AXES_3D,
    JSON_FILES,
    TEST_2D,
    TEST_3D,
    TRAIN_IMAGES,
    TRAIN_JSON,
    TRAIN_PARTS,
    keypoints,
    parse_image_path,
    read_json,
)
from bench.data.sequences import Sequence, pose_2d_from_pixels, pose_3d_from_mm, split_at_gaps
from bench.errors import DataError

__all__ = ["JSON_FILES", "json_files", "read_json_sequences"]

_GROUPS = {"train": (TRAIN_JSON, TRAIN_PARTS, TRAIN_IMAGES), "test": (TEST_3D, (), TEST_2D)}
"""Group -> (file with 2D and 3D, its parts, file that may only add image paths)."""


def json_files(folder: str | Path) -> list[Path]:
    """The JSON release files present in ``folder``, in ``JSON_FILES`` order."""
    folder = Path(folder)
    return [folder / name for name in JSON_FILES if (folder / name).is_file()]


def read_json_sequences(paths: list[Path], max_gap: int | None = None) -> dict[str, tuple[Path, list[Sequence]]]:
    """Every subject's sequences in the given JSON release files.

    Args:
        paths: JSON release files (names from ``JSON_FILES``); the training and test groups are read separately.
        max_gap: split a take where consecutive annotated frame ids differ by more than this (None: never).

    Returns:
        subject -> (the file holding its 2D and 3D, its sequences ordered by action, camera and segment).
    """
    by_name = _by_name(paths)
    out: dict[str, tuple[Path, list[Sequence]]] = {}
    for group, (main, parts, images) in _GROUPS.items():
        mains = [by_name[name] for name in (main, *parts) if name in by_name]
        extra = [by_name[name] for name in (images,) if name in by_name]
        if not mains:
            if extra:  # e.g. the public test inputs without their ground truth: the other group may still be used
                warnings.warn(f"{extra[0]}: ignored: its samples have no 3D; add {' or '.join([main, *parts[:1]])} "
                              f"beside it to load the {group} subjects", stacklevel=3)
            continue
        samples = _group_samples(mains)
        owner = mains[0]
        for subject, sequences in _sequences(samples, _places(samples, extra), max_gap).items():
            if subject in out:
                raise DataError(f"{out[subject][0]} and {owner}", f"subject {subject}",
                                "each subject in one file only", "it in both files")
            out[subject] = (owner, sequences)
    return out


def _by_name(paths: list[Path]) -> dict[str, Path]:
    by_name: dict[str, Path] = {}
    for path in map(Path, paths):
        if path.name not in JSON_FILES:
            raise DataError(path, "file name", f"one of the H3WB JSON files {', '.join(JSON_FILES)}",
                            repr(path.name))
        if path.name in by_name:
            raise DataError(f"{by_name[path.name]} and {path}", "file name", "each H3WB file once", "it twice")
        by_name[path.name] = path
    if TRAIN_JSON in by_name and any(name in by_name for name in TRAIN_PARTS):
        part = next(by_name[name] for name in TRAIN_PARTS if name in by_name)
        raise DataError(f"{by_name[TRAIN_JSON]} and {part}", "file name",
                        f"either {TRAIN_JSON} or its parts (the same samples)", "both")
    return by_name


@dataclass
class _Samples:
    """The samples of one group, in file order.

    Attributes:
        ids: (N,) global sample ids. where: (N,) (file, id in that file) of each sample, for error messages.
        pose_2d: (N, 133, 2) pixels. pose_3d: (N, 133, 3) mm. image_paths: (N,) the sample's own path or None.
    """

    ids: list[int]
    where: list[tuple[Path, int]]
    pose_2d: np.ndarray
    pose_3d: np.ndarray
    image_paths: list


def _read_main(path: Path, offset: int = 0) -> _Samples:
    samples = read_json(path)
    local = list(samples)
    return _Samples([offset + i for i in local], [(path, i) for i in local],
                    keypoints(path, samples, local, "keypoints_2d", AXES_2D),
                    keypoints(path, samples, local, "keypoints_3d", AXES_3D),
                    [samples[i].get("image_path") for i in local])


def _group_samples(mains: list[Path]) -> _Samples:
    """The samples of the whole file or of its parts, ids made global (a part's ids restart at 0)."""
    if len(mains) == 1 and mains[0].name not in TRAIN_PARTS:
        return _read_main(mains[0])
    present = {path.name: path for path in mains}
    pieces: list[_Samples] = []
    for index, name in enumerate(TRAIN_PARTS):
        if name not in present:
            continue
        offset = sum(len(piece.ids) for piece in pieces)
        piece = _read_main(present[name])
        if index > 0 and min(piece.ids) == 0:
            missing = [n for n in TRAIN_PARTS[:index] if n not in present]
            if missing:
                raise DataError(present[name], "sample ids", f"{', '.join(missing)} beside it (its ids restart at "
                                "0, so the parts before it place them)", "that part missing")
            piece.ids = [offset + i for i in piece.ids]
        pieces.append(piece)
    ids = [i for piece in pieces for i in piece.ids]
    if len(set(ids)) != len(ids):
        first = next(i for i, count in Counter(ids).items() if count > 1)
        raise DataError(", ".join(str(p) for p in mains), f"sample {first}", "each sample id in one part",
                        "it in two")
    return _Samples(ids, [w for piece in pieces for w in piece.where],
                    np.concatenate([piece.pose_2d for piece in pieces]),
                    np.concatenate([piece.pose_3d for piece in pieces]),
                    [p for piece in pieces for p in piece.image_paths])


def _places(samples: _Samples, extra: list[Path]) -> list[tuple[str, str, str, int]]:
    """(subject, action, camera, frame) of every sample, from its own image path or the extra file's."""
    owner = samples.where[0][0]
    joined = read_json(extra[0]) if extra else {}
    if all(p is None for p in samples.image_paths) and not any("image_path" in s for s in joined.values()):
        add = (f"add {TRAIN_IMAGES} (same sample ids) beside it" if owner.name in (TRAIN_JSON, *TRAIN_PARTS)
               else "the JSON test files have none: use the npz test file task1_test_3d.npz instead")
        raise DataError(owner, "image_path", "image paths to rebuild the sequences (subject, action, camera, "
                        f"frame); without them only single-frame evaluation is possible: {add}",
                        "no image_path in any sample" + (f" of it or of {extra[0].name}" if extra else ""))
    places = []
    for sample_id, (path, local), own in zip(samples.ids, samples.where, samples.image_paths):
        if own is not None:
            places.append(parse_image_path(path, local, own))
        elif "image_path" in joined.get(sample_id, {}):
            places.append(parse_image_path(extra[0], sample_id, joined[sample_id]["image_path"]))
        else:
            raise DataError(path, f"sample {local}/image_path",
                            "an image path here" + (f" or in {extra[0].name}" if extra else ""), "none")
    return places


def _sequences(samples: _Samples, places: list[tuple], max_gap: int | None) -> dict[str, list[Sequence]]:
    """Group samples by (subject, action, camera), sort them by frame and build the sequences of each subject."""
    takes: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for index, (subject, action, camera, frame) in enumerate(places):
        takes[subject, action, camera].append((frame, index))
    out: dict[str, list[Sequence]] = defaultdict(list)
    for (subject, action, camera), frames in sorted(takes.items()):
        if camera not in cameras.RESOLUTIONS:
            path, local = samples.where[frames[0][1]]
            raise DataError(path, f"sample {local}/image_path",
                            f"a calibrated camera id (one of {', '.join(cameras.CAMERA_IDS)})", f"camera {camera!r}")
        frames.sort()
        for (frame, first), (next_frame, second) in itertools.pairwise(frames):
            if frame == next_frame:
                raise DataError(samples.where[first][0], f"samples {samples.ids[first]} and {samples.ids[second]}",
                                "one sample per frame and camera", f"both at {subject}/{action}.{camera} frame {frame}")
        index = np.array([i for _, i in frames], dtype=np.int64)
        resolution = cameras.RESOLUTIONS[camera]
        sequence = Sequence(subject, action, camera, np.array([f for f, _ in frames], dtype=np.int64),
                            np.asarray(samples.ids, dtype=np.int64)[index],
                            pose_2d_from_pixels(samples.pose_2d[index], resolution,
                                                _locate(samples, index, "keypoints_2d", AXES_2D)),
                            pose_3d_from_mm(samples.pose_3d[index], _locate(samples, index, "keypoints_3d", AXES_3D)),
                            resolution)
        out[subject].extend(split_at_gaps(sequence, max_gap))
    return dict(out)


def _locate(samples: _Samples, index: np.ndarray, field: str, axes: tuple[str, ...]):
    """``locate`` for the conversions: a value of a sequence named by its file, sample, field, joint and axis."""
    def locate(frame: int, keypoint: int, axis: int) -> tuple[Path, str]:
        path, local = samples.where[index[frame]]
        return path, f"sample {local}/{field}/{keypoint}/{axes[axis]}"
    return locate
