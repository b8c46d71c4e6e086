"""``bench lift``: a user's own 2D whole-body keypoints lifted to 3D, with pictures.

Entry points: ``lift_file`` (read, fill, lift, write and draw every person of a file) and ``read_keypoints`` (the
detector and annotation formats, as tracks of 133 keypoints).
"""
from bench.lift.pipeline import lift_file
from bench.lift.readers import read_keypoints

__all__ = ["lift_file", "read_keypoints"]
