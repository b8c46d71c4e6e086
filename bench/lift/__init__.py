"""``bench lift``: a user's own 2D whole-body keypoints lifted to 3D, with pictures.

Entry points: ``lift_file`` (read, fill, lift, write and draw every person of a file or folder), ``read_people`` and
``read_keypoints`` (the detector and annotation formats of ``bench.lift.formats``, as person clips of 133 keypoints:
one-frame clips for still images, clips through a video with people linked frame to frame).
"""
from bench.lift.pipeline import lift_file
from bench.lift.readers import read_keypoints, read_people

__all__ = ["lift_file", "read_keypoints", "read_people"]
