"""Read 2D whole-body keypoints the way detectors and datasets write them, as one :class:`Track` per person clip.

The formats (COCO-WholeBody, MMPose-style predictions, OpenPifPaf, OpenPose, npy/npz) are read by
:mod:`bench.lift.formats` into frames of detections; this module decides what the frames are and who is who:

* **images** (unrelated still pictures): every person of every image is a one-frame clip with that image's size;
* **video** (one camera, frames in order): every person is a clip through the frames. People are told apart by
  the file's track ids (``track_id``, ``person_id``, OpenPifPaf's ``id_``, a tracked OpenPose ``person_id``), else
  by linking detections frame to frame (:mod:`bench.lift.tracking`). A person's clip runs from the first to the last
  frame they appear in; frames in between where they are absent have every keypoint missing.

:func:`choose_mode` decides between the two unless told (``--images`` / ``--video``), in this order: a video's
layout (arrays, per-frame lists, OpenPifPaf's video JSON lines) is a video; a single frame is an image; images of
different sizes are images; track ids make a video; frame ids from the file (image ids, numbered file names) whose
median step is at most ``VIDEO_MAX_STEP`` make a video; anything else is images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.lift import tracking
from bench.lift.formats import read_recording
from bench.lift.formats.base import DEFAULT_THRESHOLD, Detection, Frame, Recording, check_size, usable_mask
from bench.skeleton import NUM_KEYPOINTS

MODES = ("images", "video")
SIZE_SOURCES = ("in the file (COCO 'width' and 'height', an npz 'image_size'), from an image file beside it, or "
                "pass --image-size W H")
VIDEO_MAX_STEP = 10
"""Largest median step between frame ids for frames to count as a video (a sparsely annotated video has steps of a
few frames; the ids of unrelated images, e.g. COCO's, are hundreds apart)."""


@dataclass(frozen=True)
class Track:
    """One person's 2D keypoints over consecutive frames of a clip (one frame for an image).

    Attributes:
        person: the person's id (track id, track number, or order in the image).
        frame_ids: (T,) int64 frame ids from the file (image ids, frame ids or positions), increasing.
        keypoints: (T, 133, 2) float64 pixels; NaN where the file gives no position.
        scores: (T, 133) float64 confidence; 0 where the file gives no keypoint.
        image_size: (width, height) in pixels.
        source: the file read.
        image: for a still image, its label (``stem`` of :class:`~bench.lift.formats.base.Frame`); None in a video.
    """

    person: str
    frame_ids: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    image_size: tuple[int, int]
    source: Path
    image: str | None = None

    @property
    def frames(self) -> int:
        return len(self.frame_ids)


@dataclass(frozen=True)
class People:
    """What a keypoint file holds, told apart: the clips, and how they were made.

    Attributes:
        tracks: the person clips (video: sorted by person; images: by image, then order in the image).
        mode: ``images`` or ``video``.
        summary: one line saying the format, the frames, the mode and why, for the user.
        skipped: detections without a usable keypoint, left out.
    """

    tracks: list[Track]
    mode: str
    summary: str
    skipped: int = 0


def read_keypoints(path: str | Path, image_size: tuple[int, int] | None = None, mode: str | None = None,
                   threshold: float = DEFAULT_THRESHOLD) -> list[Track]:
    """Every person clip of a keypoint file or folder (see :func:`read_people`)."""
    return read_people(path, image_size, mode, threshold).tracks


def read_people(path: str | Path, image_size: tuple[int, int] | None = None, mode: str | None = None,
                threshold: float = DEFAULT_THRESHOLD, max_missed: int = tracking.MAX_MISSED) -> People:
    """Read a keypoint file or folder and make its person clips.

    Args:
        path: a file or folder in one of the formats of :mod:`bench.lift.formats`.
        image_size: (width, height) in pixels for frames whose size the file does not give.
        mode: ``images``, ``video``, or None to decide from the content (:func:`choose_mode`).
        threshold: keypoints scored below this are not used to link people (nor lifted: see ``filling``).
        max_missed: frames a linked person may go undetected and still continue.

    Raises:
        DataError: naming the file, the place inside it (frame or image, person, field), what was expected and
            what was found.
    """
    path = Path(path)
    if image_size is not None:
        image_size = check_size(path, "image size argument", tuple(image_size))
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    recording = read_recording(path)
    if not any(frame.detections for frame in recording.frames):
        raise DataError(path, "instances", "at least one person", f"none in {len(recording.frames)} frames")
    chosen, reason = choose_mode(recording) if mode is None else (mode, f"--{mode}")
    if chosen == "images":
        tracks, skipped = _images(recording, image_size, threshold)
        what = f"{len(recording.frames)} image{'s' if len(recording.frames) != 1 else ''}"
        how = "lifted image by image, each person a one-frame clip"
    else:
        tracks, skipped = _video(recording, image_size, threshold, max_missed)
        what = f"{len(recording.frames)} frames"
        how = "lifted as a video, a clip per person"
    summary = (f"{path.name}: {recording.format}, {what}, {len(tracks)} person clip{'s' * (len(tracks) != 1)}: "
               f"{how} ({reason})")
    if skipped:
        summary += f"; {skipped} detection{'s' * (skipped != 1)} without a usable keypoint left out"
    return People(tracks, chosen, summary, skipped)


def choose_mode(recording: Recording) -> tuple[str, str]:
    """``images`` or ``video`` for a recording, and the reason in words (see module docstring)."""
    frames = recording.frames
    if recording.video:
        return "video", "a video's layout; --images to lift each frame on its own"
    if len(frames) == 1:
        return "images", "one image"
    sizes = {frame.size for frame in frames} - {None}
    if len(sizes) > 1:
        return "images", f"images of {len(sizes)} different sizes; --video to force clips"
    if any(d.track_id is not None for frame in frames for d in frame.detections):
        return "video", "track ids in the file; --images to lift each frame on its own"
    ids = [frame.frame_id for frame in frames]
    if all(i is not None for i in ids):
        step = float(np.median(np.diff(sorted(ids))))
        if step <= VIDEO_MAX_STEP:
            return "video", f"frame ids {step:g} apart (median); --images to lift each frame on its own"
        return "images", f"frame ids {step:g} apart (median), not a video's; --video to force clips"
    return "images", "no frame ids; --video to force clips"


def _images(recording: Recording, image_size, threshold: float) -> tuple[list[Track], int]:
    """Every usable person of every image as a one-frame clip with that image's size."""
    tracks, skipped = [], 0
    stems = _unique_stems(recording.frames)
    for position, frame in enumerate(recording.frames):
        if not frame.detections:
            continue
        size = frame.size or image_size
        if size is None:
            raise DataError(recording.source, frame.name, f"the image size: {SIZE_SOURCES}", "no size")
        frame_id = position if frame.frame_id is None else frame.frame_id
        people = set()
        for order, detection in enumerate(frame.detections):
            person = detection.track_id if detection.track_id is not None else str(order)
            if person in people:
                raise DataError(detection.source, detection.where, "one instance per person and frame",
                                f"person {person} twice in that frame")
            people.add(person)
            if not usable_mask(detection.keypoints, detection.scores, threshold, size).any():
                skipped += 1
                continue
            tracks.append(Track(person, np.array([frame_id], dtype=np.int64), detection.keypoints[None],
                                detection.scores[None], size, detection.source, stems[position]))
    if not tracks:
        raise DataError(recording.source, "instances", f"at least one person with a keypoint scored >= {threshold}",
                        f"none in {len(recording.frames)} images")
    return tracks, skipped


def _video(recording: Recording, image_size, threshold: float, max_missed: int) -> tuple[list[Track], int]:
    """Person clips through the frames: by the file's track ids, else linked (:mod:`bench.lift.tracking`)."""
    frames = recording.frames
    frame_ids = np.array([p if f.frame_id is None else f.frame_id for p, f in enumerate(frames)], dtype=np.int64)
    repeated = frame_ids[1:][np.diff(frame_ids) == 0]
    if len(repeated):
        raise DataError(recording.source, "frame ids", "each frame once", f"frame id {repeated[0]} twice")
    if np.any(np.diff(frame_ids) < 0):
        raise DataError(recording.source, "frame ids", "frames in increasing order", f"ids {frame_ids[:8].tolist()}")
    size = _video_size(recording, image_size)
    labelled, skipped = _labels(recording, threshold, size, max_missed)
    observations: dict[str, dict[int, Detection]] = {}
    for position, person, detection in labelled:
        seen = observations.setdefault(person, {})
        if position in seen:
            raise DataError(detection.source, detection.where, "one instance per person and frame",
                            f"person {person} twice in that frame")
        seen[position] = detection
    tracks = []
    for person in sorted(observations, key=lambda p: (not p.isdigit(), int(p) if p.isdigit() else 0, p)):
        seen = observations[person]
        first, last = min(seen), max(seen)
        keypoints = np.full((last - first + 1, NUM_KEYPOINTS, 2), np.nan)
        scores = np.zeros((last - first + 1, NUM_KEYPOINTS))
        for position, detection in seen.items():
            keypoints[position - first], scores[position - first] = detection.keypoints, detection.scores
        tracks.append(Track(person, frame_ids[first:last + 1], keypoints, scores, size, recording.source))
    return tracks, skipped


def _labels(recording: Recording, threshold: float, size, max_missed: int) -> tuple[list[tuple], int]:
    """(frame position, person, detection) for every detection kept, and the count left out."""
    detections = [(p, d) for p, frame in enumerate(recording.frames) for d in frame.detections]
    with_ids = [d for _, d in detections if d.track_id is not None]
    if with_ids and len(with_ids) < len(detections):
        missing = next(d for _, d in detections if d.track_id is None)
        raise DataError(missing.source, missing.where, "a track id on every instance or on none (the others have "
                        "one)", "none")
    if with_ids:
        return [(p, d.track_id, d) for p, d in detections], 0
    usable = [[(d, usable_mask(d.keypoints, d.scores, threshold, size)) for d in frame.detections]
              for frame in recording.frames]
    kept = [[(d, mask) for d, mask in frame if mask.any()] for frame in usable]
    skipped = len(detections) - sum(map(len, kept))
    if not any(kept):
        raise DataError(recording.source, "instances", f"at least one person with a keypoint scored >= {threshold}",
                        f"none in {len(recording.frames)} frames")
    labels = tracking.link([[(d.keypoints, mask) for d, mask in frame] for frame in kept], max_missed=max_missed)
    return [(p, str(label), d) for p, (frame, frame_labels) in enumerate(zip(kept, labels))
            for (d, _), label in zip(frame, frame_labels)], skipped


def _video_size(recording: Recording, image_size) -> tuple[int, int]:
    sizes = sorted({frame.size for frame in recording.frames} - {None})
    if len(sizes) > 1:
        raise DataError(recording.source, "image sizes", "one image size over a video (--images lifts images of "
                        "different sizes one by one)", f"sizes {sizes}")
    if sizes:
        return sizes[0]
    if image_size is None:
        raise DataError(recording.source, "image_size", f"the image size: {SIZE_SOURCES}", "no size")
    return image_size


def _unique_stems(frames: list[Frame]) -> list[str]:
    """Each frame's stem made file-name safe, with its position added where frames share a stem."""
    safe = ["".join(c if c.isalnum() or c in "._-" else "_" for c in frame.stem) or "image" for frame in frames]
    counts = {stem: safe.count(stem) for stem in set(safe)}
    return [stem if counts[stem] == 1 else f"{stem}-{position}" for position, stem in enumerate(safe)]
