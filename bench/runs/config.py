"""Run configurations: defaults < the lifter's reference recipe < preset < YAML file < command-line flags.

A configuration is a nested dict with a fixed set of keys (``DEFAULTS``); an unknown key is an error that lists the
valid ones. The resolved configuration is saved with every run, and the run id is derived from it, so the same
configuration always maps to the same run folder.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml

from baselines.registry import is_lifter, list_lifters, train_defaults

PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "presets"

DEFAULTS: dict = {
    "model": None,            # a registered lifter name
    "part_based": False,      # wrap the lifter with parts.part_based
    "parts": {"widths": None, "hands": None, "attach": None, "shift": None, "split": None, "loss": None,
              "error": None},  # part-based options; None: the part-based model's own default
    "model_args": {},         # architecture overrides passed to the lifter (e.g. width, depth)
    "frames": 27,
    "data": None,             # folder with H3WB's official files; None: the synthetic set below
    "synthetic": {"size": "small", "seed": 0},
    "max_gap": None,
    "selection": "val",       # val: train S1 S5 S6, keep the epoch best on S7; last: train S1 S5 S6 S7, keep the last
    "train": {"optimizer": "adamw", "lr": 1e-4, "lr_decay": 1.0, "weight_decay": 0.0, "amsgrad": False,
              "batch_size": 32, "epochs": 10, "flip_augment": True, "bn_momentum_start": None,
              "bn_momentum_end": None,
              "stride": None},        # output frames between training windows; None: the lifter's output frames
    "eval": {"protocol": "h3wb", "hypotheses_steps": [[1, 1]], "flip_test": True, "batch_size": 64},
    "seed": 0,
    "device": "cpu",
    "bf16": False,
    "compile": False,         # True: torch.compile the networks (inductor); or the name of a torch.compile backend
}
NOT_IN_RUN_ID = ("device", "compile")
"""Keys that change how a run executes but not what it computes (up to float tolerance)."""
_RECIPE_TO_EVAL = {"flip_test": "flip_test", "eval_hypotheses_steps": "hypotheses_steps"}


class ConfigError(ValueError):
    """A configuration problem, reported before any work starts."""


def merge(base: dict, override: dict, where: str) -> dict:
    """Deep-merge ``override`` into a copy of ``base``; keys unknown to ``base`` are an error naming ``where``.

    ``model_args`` is open (its keys belong to the lifter) and is merged without checking.
    """
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if key not in base:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(sorted(base))}")
        if isinstance(base[key], dict) and key != "model_args":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
            out[key] = merge(base[key], value, f"{where}: {key}")
        elif key == "model_args":
            out[key] = {**out[key], **(value or {})}
        else:
            out[key] = value
    return out


def recipe(model: str) -> dict:
    """The lifter's reference training recipe as a configuration fragment (train + eval sections)."""
    fragment: dict = {"train": {}, "eval": {}}
    for key, value in train_defaults(model).items():
        if key in _RECIPE_TO_EVAL:
            fragment["eval"][_RECIPE_TO_EVAL[key]] = value
        elif key in DEFAULTS["train"]:
            fragment["train"][key] = value
    return fragment


def load_yaml(path: str | Path) -> dict:
    """A YAML mapping from ``path``, with errors that name the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(loaded).__name__}")
    return loaded


PRESET_PER_LIFTER = {"lifter_args": "model_args", "lifter_train": "train"}
"""A preset's per-lifter keys, and the configuration section each lifter's fragment merges into."""


def preset(name: str, model: str) -> dict:
    """A preset's configuration fragment for ``model``.

    Besides configuration keys, a preset may hold per-lifter fragments: ``lifter_args`` (name -> ``model_args``)
    and ``lifter_train`` (name -> ``train`` keys, e.g. a stride for single-frame lifters).
    """
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(known)}")
    fragment = load_yaml(path)
    fragment.pop("description", None)
    for per_lifter_key, section in PRESET_PER_LIFTER.items():
        per_lifter = fragment.pop(per_lifter_key, None) or {}
        fragment[section] = {**(fragment.get(section) or {}), **(per_lifter.get(model) or {})}
    if not _generative(model, fragment["model_args"]):
        fragment.get("eval", {}).pop("hypotheses_steps", None)  # a preset's (H, K) pairs are for diffusion models
    return fragment


def _generative(model: str, model_args: dict) -> bool:
    import torch

    from baselines.registry import create_lifter

    with torch.device("meta"):
        return create_lifter(model, **model_args).generative


def resolve(flags: dict, config_file: str | Path | None = None, preset_name: str | None = None,
            flags_where: str = "command line") -> dict:
    """The full configuration of a run.

    Args:
        flags: overrides from the command line (nested like ``DEFAULTS``; None values are ignored).
        config_file: a YAML file of overrides.
        preset_name: a preset in ``configs/presets`` (e.g. ``quick`` or ``paper``).
        flags_where: where the flags came from, named in errors about them (e.g. a sweep file's entry).
    """
    from_file = load_yaml(config_file) if config_file else {}
    flags = _drop_none(flags)
    model = flags.get("model") or from_file.get("model")
    if not model:
        raise ConfigError("no model given: pass --model NAME (registered: " + ", ".join(list_lifters()) + ")")
    if not is_lifter(model):
        raise ConfigError(f"unknown model {model!r}; registered lifters: {', '.join(list_lifters())}")
    config = merge(DEFAULTS, {"model": model}, "defaults")
    config = merge(config, recipe(model), f"configs/models/{model}.yaml")
    if preset_name:
        config = merge(config, preset(preset_name, model), f"preset {preset_name}")
    config = merge(config, from_file, str(config_file))
    config = merge(config, flags, flags_where)
    check(config)
    check_lifter(config)
    return config


def check_lifter(config: dict) -> None:
    """Build the lifter on the meta device (no memory, no weights) to reject bad options before any work."""
    import torch

    from bench.runs.lifters import build_lifter

    try:
        with torch.device("meta"):
            lifter = build_lifter(config)
    except ConfigError:
        raise
    except (KeyError, ValueError) as error:
        raise ConfigError(f"model {config['model']!r}: {error.args[0] if error.args else error}") from error
    pairs = config["eval"]["hypotheses_steps"]
    if not lifter.generative and any(list(p) != [1, 1] for p in pairs):
        raise ConfigError(f"model {config['model']!r} is deterministic: it has one hypothesis and no sampling "
                          f"steps, so eval.hypotheses_steps must be [[1, 1]], got {pairs}")


def check(config: dict) -> None:
    """Reject combinations that cannot run, before any work starts."""
    pairs = config["eval"]["hypotheses_steps"]
    if not pairs or not all(isinstance(p, (list, tuple)) and len(p) == 2 and min(p) >= 1 for p in pairs):
        raise ConfigError(f"eval.hypotheses_steps must be a list of [hypotheses, steps] pairs >= 1, got {pairs}")
    if config["selection"] not in ("val", "last"):
        raise ConfigError(f"selection must be 'val' or 'last', got {config['selection']!r}")
    if config["train"]["epochs"] < 1 or config["train"]["batch_size"] < 1:
        raise ConfigError("train.epochs and train.batch_size must be >= 1")
    stride = config["train"]["stride"]
    if stride is not None and (not isinstance(stride, int) or isinstance(stride, bool) or stride < 1):
        raise ConfigError(f"train.stride must be an integer >= 1 or null, got {stride!r}")


def run_id(config: dict) -> str:
    """A readable, stable id: model, parts, frames and a hash of everything that determines the results."""
    identity = {k: v for k, v in config.items() if k not in NOT_IN_RUN_ID}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    parts = "-parts" if config["part_based"] else ""
    return f"{config['model']}{parts}-{config['frames']}f-seed{config['seed']}-{digest}"


def dump(config: dict) -> str:
    """YAML text of a configuration, keys in ``DEFAULTS`` order."""
    return yaml.safe_dump(config, sort_keys=False)


def set_overrides(items: list[str], into: dict | None = None) -> dict:
    """``--set KEY=VALUE ...`` as a nested configuration fragment: dotted keys nest, values are parsed as YAML."""
    fragment = into if into is not None else {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        *parents, leaf = key.split(".")
        node = fragment
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return fragment


def _drop_none(tree: dict) -> dict:
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in tree.items() if v is not None}
