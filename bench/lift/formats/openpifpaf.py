"""OpenPifPaf's JSON output, for its whole-body checkpoints (133 keypoints in COCO-WholeBody order).

What OpenPifPaf writes (read in its source, openpifpaf/openpifpaf on GitHub: ``src/openpifpaf/predict.py``,
``src/openpifpaf/video.py``, ``Annotation.json_data`` in ``src/openpifpaf/annotation.py``, and the keypoint names of
``src/openpifpaf/plugins/wholebody/constants.py``; the guide's "Prediction" and "WholeBody" pages):

* ``python -m openpifpaf.predict IMAGE --json-output`` writes ``IMAGE.predictions.json`` (or one file per image
  into a folder): a JSON list with one entry per person, ``{"keypoints": [x0, y0, c0, x1, ...], "bbox": [x, y, w,
  h], "score": s, "category_id": 1}``. Coordinates are rounded to 2 decimals; a keypoint not found has c = 0 (and
  x = y = 0), a found one c >= 0.01. The checkpoints ``shufflenetv2k16-wholebody`` and ``shufflenetv2k30-wholebody``
  give 133 keypoints (body 17, feet 6, face 68, left hand 21, right hand 21: COCO-WholeBody's order); the default
  checkpoints give COCO's 17, which is an error here.
* ``python -m openpifpaf.video --source VIDEO --json-output`` appends one line per frame to ``VIDEO.openpifpaf.json``
  (JSON lines despite the suffix): ``{"frame": i, "predictions": [...]}`` with the entries above.
* A tracking decoder adds ``"id_"`` to an entry: the person's track id.

No image size is written: it comes from the image beside the file (``X.jpg`` for ``X.jpg.predictions.json``) where
there is one, else from ``--image-size``.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.errors import DataError
from bench.lift.formats.base import Detection, Frame, Recording, describe, flat_keypoints, image_size_beside, track_id
from bench.skeleton import NUM_KEYPOINTS

FORMAT_IMAGE = "OpenPifPaf predictions (openpifpaf.predict --json-output)"
FORMAT_VIDEO = "OpenPifPaf video predictions (openpifpaf.video --json-output)"
_HINT = ": OpenPifPaf's COCO body checkpoints give 17, a whole-body checkpoint such as shufflenetv2k30-wholebody 133"


def is_prediction_list(data) -> bool:
    """A list of entries with flat ``keypoints`` and ``bbox`` or ``score``: one image's OpenPifPaf predictions."""
    return (isinstance(data, list) and bool(data)
            and all(isinstance(item, dict) and isinstance(item.get("keypoints"), list) for item in data)
            and all(("bbox" in item or "score" in item) and not (item["keypoints"] and isinstance(
                item["keypoints"][0], list)) for item in data))


def is_video_frame(data) -> bool:
    return isinstance(data, dict) and "frame" in data and "predictions" in data


def predictions(path: Path, prefix: str, items) -> list[Detection]:
    """One image's entries -> detections; ``prefix`` starts each place in messages."""
    if not isinstance(items, list):
        raise DataError(path, prefix.rstrip("/") or "top level", "a list of OpenPifPaf predictions",
                        describe(items))
    detections = []
    for order, item in enumerate(items):
        where = f"{prefix}prediction {order}"
        if not isinstance(item, dict) or "keypoints" not in item:
            raise DataError(path, where, "a dict with 'keypoints', 'bbox', 'score'", describe(item))
        points, scores = flat_keypoints(path, f"{where}/keypoints", item["keypoints"], NUM_KEYPOINTS, _HINT)
        detections.append(Detection(points, scores, where, track_id(path, f"{where}/id_", item.get("id_")), path))
    return detections


def read_image(path: Path, data) -> Recording:
    """``X.predictions.json`` of one image -> a one-frame recording, sized by the image ``X`` beside it."""
    name = image_name(path)
    size = image_size_beside(path.parent, [name])
    return Recording(path, FORMAT_IMAGE, [Frame(f"image {name}", Path(name).stem, None, size,
                                                predictions(path, "", data))])


def read_video_lines(path: Path, text: str) -> Recording:
    """The JSON lines of ``openpifpaf.video --json-output`` -> a video recording in frame order."""
    frames = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, where, "a JSON object {\"frame\": ..., \"predictions\": [...]}",
                            f"invalid JSON ({error})") from error
        if not is_video_frame(entry):
            raise DataError(path, where, "a JSON object with 'frame' and 'predictions'", describe(entry))
        frame = entry["frame"]
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise DataError(path, f"{where}/frame", "an integer frame number", describe(frame))
        frames.append(Frame(f"frame {frame}", f"frame-{frame}", frame, None,
                            predictions(path, f"{where} (frame {frame})/", entry["predictions"])))
    if not frames:
        raise DataError(path, "file", "one JSON line per frame", "no line")
    frames.sort(key=lambda f: f.frame_id)
    return Recording(path, FORMAT_VIDEO, frames, video=True)


def image_name(path: Path) -> str:
    """``a.jpg.predictions.json`` -> ``a.jpg`` (the image the file was predicted from)."""
    name = path.name
    for suffix in (".predictions.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
