"""Sweep files: a base configuration, a grid and explicit runs, expanded into resolved run configurations.

A sweep file (``configs/sweeps/*.yaml``) holds:

- ``base``: a configuration fragment (keys of ``bench.runs.config.DEFAULTS``) applied to every run;
- ``grid``: a mapping of configuration keys (dotted for nested keys, e.g. ``parts.shift``) to lists of values, or a
  list of such mappings; each mapping expands to the product of its lists;
- ``runs``: a list of explicit fragments, one run each, for rows that are not a product (ablations);
- ``seeds``: a list of seeds crossed with every grid point and explicit run (or ``seed`` as a grid key);
- ``executor``: where and how the runs execute (``EXECUTOR_DEFAULTS``), and ``preset_executor``: per-preset
  overrides of it (e.g. ``quick`` runs on CPUs). A run gets ``nodes`` x ``tasks_per_node`` processes, one per device
  (its ``devices``, :func:`run_devices`): ``gpus_per_node: 4`` is one run over 4 GPUs;
- ``name`` (default: the file name) and ``description``.

Every run is ``base`` < its grid point or explicit fragment < ``--set`` overrides, resolved with
``bench.runs.config.resolve`` as command-line flags over the preset, so its run id equals the one ``bench run`` gives
for the same settings. Submitting and following the runs is in :mod:`bench.sweeps.jobs`.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.errors import ConfigError
from bench.runs import config as cfg

EXECUTOR_DEFAULTS: dict = {
    "partition": None,        # SLURM partition; None: the cluster's default partition
    "gpus_per_node": 0,       # GPUs per node of a run; runs use device cuda when > 0 (unless the sweep sets device)
    "nodes": 1,               # nodes per run
    "tasks_per_node": None,   # processes per node of a run, one per device; None: gpus_per_node, or 1 without GPUs
    "cpus_per_task": 1,       # CPUs per process, also its torch thread count
    "mem_gb": 4,              # memory per run (reserved, not enforced without cgroups)
    "timeout_min": 60,        # time limit per attempt; a run that hits it is checkpointed and requeued
    "array_parallelism": 4,   # at most this many runs at once
    "signal_delay_s": 90,     # SLURM sends USR2 this long before the time limit, to checkpoint and requeue
    "max_num_timeout": 3,     # requeues after a time limit before the run counts as failed
}
FILE_KEYS = ("name", "description", "base", "grid", "runs", "seeds", "executor", "preset_executor")
TABLE_KEYS = ("model", "part_based", "frames", "eval.hypotheses_steps", "seed")
"""Settings shown in their own columns of the run table; the rest of an entry shows as its changes."""


class SweepError(ValueError):
    """A problem in a sweep file, reported before anything is submitted."""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Attributes:
        label: where the run comes from in the sweep file, e.g. ``runs[2]`` or ``grid[0] model=mixste frames=81``.
        changes: the entry's settings other than the table columns, e.g. ``parts.split=False``.
        config: the resolved configuration.
        run_id: ``bench.runs.config.run_id(config)``, the name of the run folder.
    """

    label: str
    changes: str
    config: dict
    run_id: str


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: its runs and executor settings."""

    name: str
    path: Path
    description: str
    preset: str | None
    executor: dict
    runs: tuple[SweepRun, ...]


def load_sweep(path: str | Path, preset: str | None = None, overrides: dict | None = None,
               seeds: list[int] | None = None) -> Sweep:
    """Read a sweep file and resolve every run.

    Args:
        path: the sweep YAML file.
        preset: a preset applied to every run (e.g. ``quick``), and the key of ``preset_executor`` to apply.
        overrides: a configuration fragment applied over every run (``--set`` on the command line).
        seeds: seeds to cross every run with in place of the file's ``seeds`` (``--seeds``).

    Raises:
        SweepError: naming the file and the entry, for unknown keys, empty grids, settings that do not resolve and
            entries that resolve to the same run.
    """
    path = Path(path)
    try:
        spec = cfg.load_yaml(path)
    except ConfigError as error:
        raise SweepError(str(error)) from error
    unknown = sorted(set(spec) - set(FILE_KEYS))
    if unknown:
        raise SweepError(f"{path}: unknown keys {unknown}; a sweep file has {', '.join(FILE_KEYS)}")
    if seeds is not None:
        spec["seeds"] = list(seeds)
    executor = executor_settings(spec, preset, path)
    base = _mapping(spec.get("base"), f"{path}: base")
    runs, devices = [], run_devices(executor)
    for label, entry in entries(spec, path):
        fragment = cfg.merge(cfg.merge(base, entry), overrides)
        if "device" not in fragment:
            fragment["device"] = "cuda" if executor["gpus_per_node"] > 0 else "cpu"
        if fragment.setdefault("devices", devices) != devices:
            raise SweepError(f"{path}: {label}: devices is {fragment['devices']}, but the executor gives each run "
                             f"{devices} processes (nodes {executor['nodes']} x tasks_per_node "
                             f"{tasks_per_node(executor)}): set the executor's instead")
        runs.append(_resolve(fragment, entry, label, preset, path))
    _check_unique(runs, path)
    return Sweep(name=str(spec.get("name") or path.stem), path=path, description=str(spec.get("description", "")),
                 preset=preset, executor=executor, runs=tuple(runs))


def entries(spec: dict, path: Path) -> list[tuple[str, dict]]:
    """The (label, fragment) of every run: each grid's product in order, then the explicit runs, times the seeds."""
    grids = spec.get("grid") or []
    grids = [grids] if isinstance(grids, dict) else grids
    explicit = spec.get("runs") or []
    if not isinstance(grids, list) or not isinstance(explicit, list):
        raise SweepError(f"{path}: grid must be a mapping or a list of mappings, and runs a list of mappings")
    if not grids and not explicit:
        raise SweepError(f"{path}: no runs: give a grid, a list of runs, or both")
    out = []
    for number, grid in enumerate(grids):
        where = f"grid[{number}]" if len(grids) > 1 else "grid"
        out += [(f"{where} {_describe(point)}", _nest(point, f"{path}: {where}"))
                for point in _product(grid, path, where)]
    for number, run in enumerate(explicit):
        out.append((f"runs[{number}]", _nest(_mapping(run, f"{path}: runs[{number}]"), f"{path}: runs[{number}]")))
    return _with_seeds(out, spec, path)


def _with_seeds(listed: list[tuple[str, dict]], spec: dict, path: Path) -> list[tuple[str, dict]]:
    """Every entry once per seed of the file's ``seeds`` (unchanged without it)."""
    seeds = spec.get("seeds")
    if seeds is None:
        return listed
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SweepError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    clash = (["base"] if "seed" in (spec.get("base") or {}) else []) + [label for label, f in listed if "seed" in f]
    if clash:
        raise SweepError(f"{path}: {clash[0]} sets seed, and seeds crosses every run with {seeds}: keep one")
    return [(f"{label} seed={seed}", {**fragment, "seed": seed}) for label, fragment in listed for seed in seeds]


def executor_settings(spec: dict, preset: str | None, path: Path) -> dict:
    """``EXECUTOR_DEFAULTS`` < the file's ``executor`` < its ``preset_executor[preset]``, checked."""
    settings = dict(EXECUTOR_DEFAULTS)
    per_preset = _mapping(spec.get("preset_executor"), f"{path}: preset_executor")
    layers = [("executor", spec.get("executor")), (f"preset_executor.{preset}", per_preset.get(preset))]
    for where, layer in layers:
        layer = _mapping(layer, f"{path}: {where}")
        unknown = sorted(set(layer) - set(EXECUTOR_DEFAULTS))
        if unknown:
            raise SweepError(f"{path}: {where}: unknown keys {unknown}; valid keys: {', '.join(EXECUTOR_DEFAULTS)}")
        settings.update(layer)
    for key, value in settings.items():
        if key == "partition":
            if value is not None and not isinstance(value, str):
                raise SweepError(f"{path}: executor.partition must be a name or null, got {value!r}")
        elif key == "tasks_per_node" and value is None:
            continue
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < (0 if "gpus" in key else 1):
            least = 0 if "gpus" in key else 1
            raise SweepError(f"{path}: executor.{key} must be a number >= {least}, got {value!r}")
    if settings["gpus_per_node"] and tasks_per_node(settings) != settings["gpus_per_node"]:
        raise SweepError(f"{path}: executor: each process of a run takes one GPU, so tasks_per_node must be "
                         f"gpus_per_node ({settings['gpus_per_node']}) or null, got {settings['tasks_per_node']}")
    return settings


def tasks_per_node(settings: dict) -> int:
    """The processes per node of a run: ``tasks_per_node``, by default one per GPU (one without GPUs)."""
    return int(settings["tasks_per_node"] or settings["gpus_per_node"] or 1)


def run_devices(settings: dict) -> int:
    """The processes (one per device) that the executor ``settings`` give each run: nodes x tasks per node."""
    return int(settings["nodes"]) * tasks_per_node(settings)


def sweeps_folder(out: str | Path) -> Path:
    """Where every sweep's bookkeeping is kept: ``<out>/../sweeps``, beside the folder of run folders."""
    return Path(out).resolve().parent / "sweeps"


def bookkeeping_folder(out: str | Path, name: str) -> Path:
    """Where one sweep's submissions are kept: ``<out>/../sweeps/<name>``."""
    return sweeps_folder(out) / name


def _resolve(fragment: dict, entry: dict, label: str, preset: str | None, path: Path) -> SweepRun:
    where = f"{path}: {label}"
    try:
        config = cfg.resolve(fragment, preset_name=preset, flags_where=where, runs_here=False)  # jobs run elsewhere
    except ConfigError as error:
        message = str(error)
        raise SweepError(message if message.startswith(where) else f"{where}: {message}") from error
    flat = _flatten(entry)
    changes = " ".join(f"{key}={value}" for key, value in flat.items() if key not in TABLE_KEYS)
    return SweepRun(label=label, changes=changes, config=config, run_id=cfg.run_id(config))


def _check_unique(runs: list[SweepRun], path: Path) -> None:
    first: dict[str, str] = {}
    for run in runs:
        if run.run_id in first:
            raise SweepError(f"{path}: {run.label} and {first[run.run_id]} are the same run ({run.run_id}); "
                             f"remove one of them")
        first[run.run_id] = run.label


def _product(grid, path: Path, where: str) -> list[dict]:
    grid = _mapping(grid, f"{path}: {where}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}: {where}: {key} must be a non-empty list of values, got {values!r}")
    keys = list(grid)
    return [dict(zip(keys, combination)) for combination in itertools.product(*(grid[k] for k in keys))]


def _describe(point: dict) -> str:
    return " ".join(f"{key}={_short(value)}" for key, value in point.items())


def _short(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "model_args" and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _short(value)
    return out


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SweepError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
    return value


def _nest(fragment: dict, where: str) -> dict:
    try:
        return cfg.nest(fragment, where)
    except ConfigError as error:
        raise SweepError(str(error)) from error
