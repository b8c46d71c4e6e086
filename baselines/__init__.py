"""Registered 2D-to-3D lifters. Importing this package registers every model family."""
from baselines.registry import create_lifter, is_lifter, list_lifters, register_lifter

__all__ = ["create_lifter", "is_lifter", "list_lifters", "register_lifter"]
