"""What one ``bench perf`` call measures: the lifters, their sizes (preset < ``--set``), and the report it returns."""
from __future__ import annotations

import dataclasses
import sys

import torch

from bench.perf import compare, measure, scaling
from bench.perf.measure import PerfSettings
from bench.runs import config as cfg
from bench.runs.lifters import is_lifter, list_lifters

SET_SECTIONS = ("model_args", "parts")


def parse_set(items: list[str]) -> dict[str, dict]:
    """``--set`` items -> {"model_args": {..}, "parts": {..}, "per_lifter": {name: model_args}}."""
    out: dict[str, dict] = {"model_args": {}, "parts": {}, "per_lifter": {}}
    for section, values in cfg.set_overrides(items).items():
        if not isinstance(values, dict):
            raise ValueError(f"--set expects KEY=VALUE with KEY model_args.ARG, parts.ARG or LIFTER.ARG, got "
                             f"{section}={values!r}")
        if section in SET_SECTIONS:
            out[section].update(values)
        elif is_lifter(section):
            out["per_lifter"][section] = values
        else:
            raise ValueError(f"--set {section}.*: {section!r} is neither {' nor '.join(SET_SECTIONS)} nor a "
                             f"registered lifter ({', '.join(list_lifters())})")
    return out


def selected_models(names: list[str] | None) -> list[str]:
    """The --models list (space- and/or comma-separated), every name registered; default: every lifter."""
    if not names:
        return list_lifters()
    models = [name for item in names for name in item.split(",") if name]
    unknown = [name for name in models if not is_lifter(name)]
    if unknown:
        raise ValueError(f"--models: unknown lifter(s) {', '.join(unknown)}; registered lifters: "
                         f"{', '.join(list_lifters())}")
    return models


def device(name: str | None) -> str:
    """``name``, checked; by default cuda when available, else cpu."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(name).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
                         f"CUDA build {torch.version.cuda or 'none'}); use --device cpu")
    return name


def settings(models: list[str], preset: str | None, set_items: list[str], **fields) -> PerfSettings:
    """The settings of a perf call: preset sizes < ``--set model_args.KEY`` (every lifter) < ``--set LIFTER.KEY``.

    Args:
        models: the lifters measured (the preset's sizes are read for them).
        preset: a preset in configs/presets, or None.
        set_items: ``--set`` items (see :func:`parse_set`).
        **fields: the other fields of :class:`PerfSettings`.
    """
    overrides = parse_set(set_items)
    if preset:
        sizes = {model: cfg.preset(preset, model).get("model_args") or {} for model in models}
        overrides["per_lifter"] = {model: {**sizes.get(model, {}), **overrides["model_args"],
                                           **overrides["per_lifter"].get(model, {})}
                                   for model in dict.fromkeys([*sizes, *overrides["per_lifter"]])}
    return PerfSettings(**fields, **overrides)


def run(models: list[str], settings: PerfSettings, paths: list[str] | None = None,
        sweeps: list[str] = (), devices: int | None = None) -> tuple[dict, list[str]]:
    """Measure ``models``: the perf table, or with ``paths`` (a list, empty for all) the fast-path comparison, one
    table per ``AXIS=V1,V2`` sweep, and with ``devices`` the scaling from one process to that many. Returns the JSON
    report and the printed sections."""
    parsed = [compare.parse_sweep(text) for text in sweeps]
    report = {"machine": measure.machine_info(settings), "settings": dataclasses.asdict(settings)}
    warning = busy_warning(report["machine"])
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    sections = [_header(report)]
    if devices is not None:
        report["scaling"] = [_progress(name, f"timing 1 and {devices} processes of", scaling.measure_scaling, name,
                                       settings, devices) for name in models]
        sections.append(scaling.scaling_table(report["scaling"]))
    if paths is None and not parsed and devices is None:
        report["models"] = [_progress(name, "measuring", measure.measure_lifter, name, settings) for name in models]
        sections.append(measure.perf_table(report["models"], settings))
    if paths is not None:
        report["compare"] = [row for name in models for row in _progress(
            name, "comparing", compare.compare_lifter, name, settings, paths or compare.FAST_PATHS)]
        sections.append(compare.compare_table(report["compare"]))
    report["sweeps"] = {}
    for axis, values in parsed:
        print(f"sweeping {axis} over {values}", file=sys.stderr, flush=True)
        rows = compare.sweep_rows(models, settings, axis, values)
        report["sweeps"][axis] = rows
        sections.append(f"sweep over {axis}:\n" + compare.sweep_table(rows, settings))
    return report, sections


def busy_warning(machine: dict) -> str | None:
    """One line when the machine is busier than its cores (1-minute load average above ``os.cpu_count()``), else
    None: other processes then take CPU time from the measurements."""
    load, cores = machine["load_average"], machine["cores"]
    if load is None or cores is None or load[0] <= cores:
        return None
    return (f"warning: load average {load[0]:.2f} over the last minute exceeds this machine's {cores} cores: other "
            f"processes compete for the CPU, so this run's figures will be unreliable (slower and noisier than on an "
            f"idle machine)")


def _progress(name: str, verb: str, fn, *fn_args):
    print(f"{verb} {name} ...", file=sys.stderr, flush=True)
    return fn(*fn_args)


def _header(report: dict) -> str:
    machine, settings = report["machine"], report["settings"]
    return (f"{machine['device_name']} ({machine['device']}, {machine['cores']} cores, {machine['torch_threads']} "
            f"torch threads), torch {machine['torch']}, {settings['dtype']}"
            f"{', compiled (' + settings['compile'] + ')' if settings['compile'] else ''}; J={settings['joints']} "
            f"N={settings['frames']}; median of {settings['repeats']} after {settings['warmup']} warm-up; "
            f"memory: {machine['memory']}")
