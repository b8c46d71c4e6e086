"""pafuse-bench: the harness to train, compare and report 2D-to-3D whole-body pose lifters."""
