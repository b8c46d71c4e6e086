"""``bench lift``: a user's own 2D whole-body keypoints lifted to 3D, with pictures.

Entry points: ``lift_file`` (read, fill, lift, write and draw every person of a file or folder), ``read_people`` and
``read_keypoints`` (the detector and annotation formats of ``bench.lift.formats``, as person clips of 133 keypoints:
one-frame clips for still images, clips through a video with people linked frame to frame). They are imported on
first use, so that the command line can read the light modules of this package (e.g. ``tracking``) without torch.
"""
from __future__ import annotations

import importlib

_ENTRY_POINTS = {"lift_file": "bench.lift.pipeline", "read_keypoints": "bench.lift.readers",
                 "read_people": "bench.lift.readers"}
__all__ = list(_ENTRY_POINTS)


def __getattr__(name: str):
    if name not in _ENTRY_POINTS:
        raise AttributeError(f"module 'bench.lift' has no attribute {name!r}")
    return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
