"""Registered 2D-to-3D lifters. Importing this package registers every whole-body model family.

``baselines`` depends on nothing else of the project: joint counts are arguments, and the part-based PAFUSE
registers itself from ``parts``.
"""
from baselines import d3dp, mixste, poseformer, videopose  # noqa: F401  (registers the lifters)
from baselines.registry import create_lifter, is_lifter, list_lifters, model_defaults, register_lifter, train_defaults

__all__ = ["create_lifter", "is_lifter", "list_lifters", "model_defaults", "register_lifter", "train_defaults"]
