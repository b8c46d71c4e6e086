"""A registry of lifters, in the spirit of timm's: ``register_lifter``, ``create_lifter``, ``list_lifters``.

Each lifter's reference architecture and training recipe live in ``configs/models/<name>.yaml`` (sections
``model_args`` and ``train``); ``create_lifter`` passes ``model_args`` to the builder, and the caller's win.

A lifter is registered by decorating a function that builds it; the function's name is the lifter's name::

    @register_lifter
    def mixste(joints, frames=27, **model_args):
        return MixSTE(joints=joints, frames=frames, **model_args)
"""
from __future__ import annotations

import fnmatch
from functools import cache
from pathlib import Path
from typing import Callable

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"

_LIFTERS: dict[str, Callable] = {}


def register_lifter(fn: Callable) -> Callable:
    """Register ``fn`` under its ``__name__``; a second lifter of the same name is an error."""
    name = fn.__name__
    if name in _LIFTERS:
        raise ValueError(f"a lifter named {name!r} is already registered (by {_LIFTERS[name].__module__})")
    _LIFTERS[name] = fn
    return fn


def list_lifters(pattern: str = "*") -> list[str]:
    """Registered lifter names matching the fnmatch ``pattern``, sorted."""
    return sorted(name for name in _LIFTERS if fnmatch.fnmatch(name, pattern))


def is_lifter(name: str) -> bool:
    return name in _LIFTERS


@cache
def _model_config(name: str) -> dict:
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.exists():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict) or not set(config) <= {"model_args", "train", "description"}:
        raise ValueError(f"{path}: expected a mapping with keys 'model_args', 'train' and optionally 'description'")
    return config


def model_defaults(name: str) -> dict:
    """The default ``model_args`` of ``name`` from its YAML file (empty when it has none)."""
    return dict(_model_config(name).get("model_args") or {})


def train_defaults(name: str) -> dict:
    """Reference training recipe of ``name`` (optimizer, lr, decay, batch size, epochs) from its YAML file."""
    return dict(_model_config(name).get("train") or {})


def create_lifter(name: str, *, joints: int, frames: int = 27, **model_args):
    """Build the lifter ``name`` for ``joints`` joints and ``frames`` frames.

    ``model_args`` override the defaults of ``configs/models/<name>.yaml``; those whose value is None are dropped, so
    an unset command-line flag never replaces a model's default.
    """
    if name not in _LIFTERS:
        raise KeyError(f"unknown lifter {name!r}; registered lifters: {', '.join(list_lifters()) or 'none'}")
    arguments = model_defaults(name)
    arguments.update({key: value for key, value in model_args.items() if value is not None})
    return _LIFTERS[name](joints=joints, frames=frames, **arguments)
