"""PAFUSE's part-based design for any lifter: part frames, part networks, width matching, losses, and PAFUSE.

Importing ``parts`` registers ``pafuse`` in the lifter registry of ``baselines``.
"""
from parts import pafuse  # noqa: F401  (registers the pafuse lifter; importing parts makes it available)
from parts.frames import ATTACH_MODES, DEFAULT_ATTACH, PartLayout, true_anchors
from parts.losses import balanced_weights, part_loss, pose_error, whole_body_loss
from parts.widths import PART_TYPES, WIDTH_MODES, part_sizes
from parts.wrapper import HANDS_MODES, LOSSES, Member, PartLifter, PartSplit, SplitLifter, part_based, part_counts

__all__ = ["ATTACH_MODES", "DEFAULT_ATTACH", "HANDS_MODES", "LOSSES", "Member", "PART_TYPES", "PartLayout",
           "PartLifter", "PartSplit", "SplitLifter", "WIDTH_MODES", "balanced_weights", "part_based", "part_counts",
           "part_loss", "part_sizes", "pose_error", "true_anchors", "whole_body_loss"]
