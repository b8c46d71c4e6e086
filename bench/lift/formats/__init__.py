"""The keypoint formats ``bench lift`` reads, each recognised from the file's suffix and content.

``read_recording(path)`` returns a :class:`~bench.lift.formats.base.Recording`: the frames of a file (or of a folder
of per-image files) with the people detected in each. The formats:

* ``coco``: COCO-WholeBody annotations, and the COCO results layout;
* ``mmpose``: per-frame prediction lists (MMPose style), or one image's instance list;
* ``openpifpaf``: ``openpifpaf.predict --json-output`` (one image) and ``openpifpaf.video --json-output`` (JSON lines);
* ``openpose``: ``*_keypoints.json`` files of OpenPose's ``--write_json``, BODY_25 + face + hands;
* ``arrays``: ``.npy`` / ``.npz`` arrays of one person's clip;
* a folder: one file per image or frame of any one-image JSON format above, in natural name order; a name ending in a
  number (``clip_000000000012``) gives the frame id.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from bench.errors import DataError
from bench.lift.formats import arrays, coco, mmpose, openpifpaf, openpose
from bench.lift.formats.base import Frame, Recording, describe

SUFFIXES = (".json", ".jsonl", ".npy", ".npz")
FORMATS = "COCO-WholeBody annotations, per-frame predictions (MMPose style), OpenPifPaf or OpenPose JSON"


def read_recording(path: str | Path) -> Recording:
    """Read a keypoint file or a folder of per-image files (see the module docstring).

    Raises:
        DataError: naming the file, the place inside it, what was expected and what was found.
    """
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    if not path.is_file():
        raise DataError(path, "file", "a keypoint file (.json, .npy or .npz) or a folder of them", "no such file")
    if path.stat().st_size == 0:
        raise DataError(path, "file", "a keypoint file (.json, .npy or .npz)", "an empty file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(path, "file name", f"one of the suffixes {', '.join(SUFFIXES)}", f"{path.suffix!r}")
    if suffix == ".npy":
        return arrays.read_npy(path)
    if suffix == ".npz":
        return arrays.read_npz(path)
    return read_json(path)


def read_json(path: Path) -> Recording:
    text = _text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        if _first_line_is_video_frame(text):
            return openpifpaf.read_video_lines(path, text)
        raise DataError(path, "file", "a JSON document", f"invalid JSON ({error})") from error
    return _read_document(path, text, data)


def _read_document(path: Path, text: str, data) -> Recording:
    if isinstance(data, dict) and "annotations" in data:
        return coco.read_coco(path, data.get("images"), data["annotations"])
    if isinstance(data, dict) and "instance_info" in data:
        return mmpose.read_predictions(path, data["instance_info"])
    if openpifpaf.is_video_frame(data):
        return openpifpaf.read_video_lines(path, text)
    if openpose.is_openpose(data):
        return openpose.read_file(path, data)
    if isinstance(data, list) and data and all(isinstance(item, dict) and "image_id" in item for item in data):
        return coco.read_coco(path, None, data)
    if openpifpaf.is_prediction_list(data):
        return openpifpaf.read_image(path, data)
    if isinstance(data, list):
        return mmpose.read_predictions(path, data)
    raise DataError(path, "top level", f"one of: {FORMATS}", describe(data))


def read_folder(folder: Path) -> Recording:
    """A folder of per-image (or per-frame) JSON files -> one frame per file, in natural name order."""
    files = sorted(folder.glob(f"*{openpose.SUFFIX}")) or sorted(folder.glob("*.json"))
    if not files:
        raise DataError(folder, "folder", "per-image keypoint files (*_keypoints.json, *.predictions.json, *.json)",
                        "no JSON file")
    files.sort(key=_natural)
    frames, formats = [], set()
    for file in files:
        frame, name = _folder_frame(file)
        frames.append(frame)
        formats.add(name)
    ids = _ids_from_names([frame.stem for frame in frames])
    if ids is not None:
        for frame, frame_id in zip(frames, ids):
            frame.frame_id = frame_id
    return Recording(folder, f"a folder of {len(files)} files: {', '.join(sorted(formats))}", frames)


def _folder_frame(file: Path) -> tuple[Frame, str]:
    """One per-image file -> its frame and format name."""
    if not file.stat().st_size:
        raise DataError(file, "file", "a JSON document", "an empty file")
    try:
        data = json.loads(_text(file))
    except json.JSONDecodeError as error:
        raise DataError(file, "file", "a JSON document", f"invalid JSON ({error})") from error
    if openpose.is_openpose(data):
        return openpose.read_frame(file, data), openpose.FORMAT
    if data == [] or openpifpaf.is_prediction_list(data):
        recording = openpifpaf.read_image(file, data)
    elif mmpose.is_instance_list(data):
        recording = mmpose.read_predictions(file, data)
    else:
        raise DataError(file, "top level", "one image's detections (OpenPose people, OpenPifPaf predictions or "
                        "an MMPose instance list)", describe(data))
    return recording.frames[0], recording.format


def _ids_from_names(stems: list[str]) -> list[int] | None:
    """Frame ids from names that share a prefix and end in distinct numbers (``clip_000012``), else None."""
    matches = [re.fullmatch(r"(.*?)(\d+)", stem) for stem in stems]
    if not all(matches) or len({m.group(1) for m in matches}) != 1:
        return None
    ids = [int(m.group(2)) for m in matches]
    return ids if len(set(ids)) == len(ids) else None


def _first_line_is_video_frame(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    try:
        return openpifpaf.is_video_frame(json.loads(first))
    except json.JSONDecodeError:
        return False


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as error:
        raise DataError(path, "file", "a JSON document", f"invalid JSON ({error})") from error
