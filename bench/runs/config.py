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

from baselines.registry import train_defaults
from bench.errors import ConfigError
from bench.runs.config_rules import check_device, check_devices, check_values
from bench.runs.lifters import build, build_from_config, is_lifter, is_part_based, list_lifters

PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "presets"

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
              "stride": None,         # output frames between training windows; None: the lifter's output frames
              "schedule": "exponential", "warmup_steps": 0,   # bench/runs/schedule.py
              "val_every": 1},        # validate every val_every-th epoch (and the last); only those can be selected
    "eval": {"protocol": "h3wb", "hypotheses_steps": [[1, 1]], "flip_test": True, "batch_size": 64},
    "seed": 0,
    "device": "cpu",
    "devices": 1,             # processes training the run together, one per device (bench.runs.processes)
    "bf16": False,
    "compile": False,         # True: torch.compile the networks (inductor); or the name of a torch.compile backend
}
NOT_IN_RUN_ID = ("device", "devices", "compile")
"""Keys that change how a run executes but not what it computes (up to float tolerance; for ``devices``, see
``bench.runs.processes``: which lifters compute the same, and which the same only in distribution)."""
_RECIPE_TO_EVAL = {"flip_test": "flip_test", "eval_hypotheses_steps": "hypotheses_steps"}


def merge(base: dict, override: dict | None, where: str | None = None) -> dict:
    """Deep-merge ``override`` into a copy of ``base``: the one merge of configuration fragments.

    With ``where``, a key unknown to ``base`` is an error naming ``where``, and so is a plain value where ``base`` has
    a mapping; ``model_args`` stays open (its keys belong to the lifter). Without ``where``, nothing is checked.
    """
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if where is not None and key not in base:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(sorted(base))}")
        if isinstance(out.get(key), dict) and (isinstance(value, dict) or (key == "model_args" and value is None)):
            inner = None if where is None or key == "model_args" else f"{where}: {key}"
            out[key] = merge(out[key], value, inner)
        elif where is not None and isinstance(base[key], dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def nest(fragment: dict, where: str) -> dict:
    """Dotted keys (``parts.shift``) as nested mappings, the one parser of dotted keys; nested mappings merge."""
    out: dict = {}
    for key, value in fragment.items():
        *parents, leaf = str(key).split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: {key} sets a key inside {parent!r}, which is not a mapping")
        both_mappings = isinstance(node.get(leaf), dict) and isinstance(value, dict)
        node[leaf] = merge(node[leaf], value) if both_mappings else value
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
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file ({getattr(error, 'strerror', None) or error})") \
            from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(loaded).__name__}")
    return loaded


def preset(name: str, model: str) -> dict:
    """A preset's configuration fragment for ``model``.

    Besides configuration keys, a preset may hold ``lifters``: per lifter, a fragment of configuration keys (e.g.
    its ``model_args`` sizes, or a ``train.stride``) that applies to that lifter's runs only; and ``extends``:
    another preset whose fragment for ``model`` comes first (so ``medium`` is ``quick`` with more epochs).
    """
    fragment = _preset_fragment(name, model, seen=())
    model_args = fragment.get("model_args") or {}
    if not build(model, model_args=model_args, meta=True).generative:
        fragment.get("eval", {}).pop("hypotheses_steps", None)  # a preset's (H, K) pairs are for diffusion models
    return fragment


def _preset_fragment(name: str, model: str, seen: tuple[str, ...]) -> dict:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        where = f" (extended by {seen[-1]!r})" if seen else ""
        raise ConfigError(f"unknown preset {name!r}{where}; presets: {', '.join(known)}")
    if name in seen:
        raise ConfigError(f"{path}: presets extend each other in a cycle: {' -> '.join(seen + (name,))}")
    fragment = load_yaml(path)
    fragment.pop("description", None)
    parent = fragment.pop("extends", None)
    per_lifter = fragment.pop("lifters", None) or {}
    fragment = merge(fragment, per_lifter.get(model) or {})
    if parent is None:
        return fragment
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected a preset name, got {parent!r}")
    return merge(_preset_fragment(parent, model, seen + (name,)), fragment)


def resolve(flags: dict, config_file: str | Path | None = None, preset_name: str | None = None,
            flags_where: str = "command line", runs_here: bool = True) -> dict:
    """The full configuration of a run.

    Args:
        flags: overrides from the command line (nested like ``DEFAULTS``; None values are ignored).
        config_file: a YAML file of overrides.
        preset_name: a preset in ``configs/presets`` (e.g. ``quick`` or ``paper``).
        flags_where: where the flags came from, named in errors about them (e.g. a sweep file's entry).
        runs_here: the run will execute on this machine, so its device must exist here (False for a run submitted
            elsewhere, e.g. to a SLURM GPU node; the device's form is checked either way).
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
    if runs_here:
        check_device(config["device"])
    check_devices(config["devices"], config["device"], runs_here)
    config["part_based"] = config["part_based"] or is_part_based(model)   # pafuse is part-based by itself
    check_lifter(config)
    return config


def check_lifter(config: dict) -> None:
    """Build the lifter on the meta device (no memory, no weights) to reject bad options before any work."""
    try:
        lifter = build_from_config(config, meta=True)
    except ConfigError:
        raise
    except (KeyError, ValueError) as error:
        raise ConfigError(f"model {config['model']!r}: {error.args[0] if error.args else error}") from error
    pairs = config["eval"]["hypotheses_steps"]
    if not lifter.generative and any(list(p) != [1, 1] for p in pairs):
        raise ConfigError(f"model {config['model']!r} is deterministic: it has one hypothesis and no sampling "
                          f"steps, so eval.hypotheses_steps must be [[1, 1]], got {pairs}")


def check(config: dict) -> None:
    """Reject values that cannot run, before any work starts: the type and range of every key
    (:data:`bench.runs.config_rules.RULES`), each error naming its dotted key."""
    check_values(config)


def data_setting(paths) -> str | list[str] | None:
    """The ``data`` key for a path or a list of paths: one path as a string, several as a list, none as None."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or [])
    if not paths:
        return None
    return str(paths[0]) if len(paths) == 1 else [str(path) for path in paths]


def run_id(config: dict) -> str:
    """A readable, stable id: model, parts, frames and a hash of everything that determines the results."""
    identity = {k: v for k, v in config.items() if k not in NOT_IN_RUN_ID}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    parts = "-parts" if config["part_based"] else ""
    return f"{config['model']}{parts}-{config['frames']}f-seed{config['seed']}-{digest}"


def dump(config: dict) -> str:
    """YAML text of a configuration, keys in ``DEFAULTS`` order."""
    return yaml.safe_dump(config, sort_keys=False)


def set_overrides(items: list[str]) -> dict:
    """``--set KEY=VALUE ...`` as a nested configuration fragment: dotted keys nest, values are parsed as YAML."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        pairs[key] = yaml.safe_load(value)
    return nest(pairs, "--set")


def _drop_none(tree: dict) -> dict:
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in tree.items() if v is not None}
