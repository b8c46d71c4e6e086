"""Registered 2D-to-3D lifters. Importing this package registers every model family."""
from baselines import d3dp, mixste, poseformer, videopose  # noqa: F401  (registers the lifters)
from baselines.registry import (create_lifter, is_lifter, list_lifters, model_defaults, register_lifter,
                                train_defaults)

__all__ = ["create_lifter", "is_lifter", "list_lifters", "model_defaults", "register_lifter", "train_defaults"]
import parts.pafuse  # noqa: E402,F401  (registers pafuse; last, because parts imports the modules above)
