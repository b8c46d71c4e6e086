"""``bench lift``: a user's own 2D whole-body keypoints lifted to 3D, with pictures."""
