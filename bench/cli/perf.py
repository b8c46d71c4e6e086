"""``bench perf``: the flags, how they map onto ``bench.perf.PerfSettings``, and the report (tables + JSON)."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

SET_SECTIONS = ("model_args", "parts")


def add_perf_command(commands) -> None:
    perf = commands.add_parser(
        "perf", help="measure speed, memory and scaling of lifters, and each fast path against its plain version",
        description="Per lifter: parameters, training-step throughput, inference latency and throughput, DDIM "
                    "sampling time, peak memory (CUDA: max allocated per operation; CPU: the process's peak RSS, "
                    "process-wide). Each figure is the median of --repeats timed calls after --warmup untimed ones. "
                    "--compare times each fast path against its plain counterpart instead; --sweep shows how time "
                    "and memory grow with one setting. Random weights and inputs: no data needed.")
    perf.add_argument("--models", nargs="+", default=None, metavar="NAME",
                      help="registered lifters, space- or comma-separated (default: all)")
    perf.add_argument("--part-based", action="store_true", help="wrap every whole-body lifter with the part-based "
                                                                "wrapper (part options with --set parts.KEY=VALUE)")
    perf.add_argument("--joints", type=int, default=134, help="joints J (default 134; part-based lifters need 134)")
    perf.add_argument("--frames", type=int, default=27, help="frames per window N (default 27)")
    perf.add_argument("--hypotheses", type=int, default=20, help="hypotheses H of the sampling time (default 20)")
    perf.add_argument("--steps", type=int, default=10, help="DDIM steps K of the sampling time (default 10)")
    perf.add_argument("--batch", type=int, default=16,
                      help="windows per training step and per inference throughput call (default 16)")
    perf.add_argument("--sample-batch", type=int, default=1,
                      help="windows per sampling call, each expanded to H hypotheses x 2 flips (default 1)")
    perf.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    perf.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                      help="fp32, or bf16 autocast around every operation (default fp32)")
    perf.add_argument("--compile", nargs="?", const="inductor", default=None, metavar="BACKEND",
                      help="torch.compile the networks (backend inductor unless named, e.g. aot_eager); with "
                           "--compare, also time compiled against eager (skipped without this flag: compiling "
                           "takes minutes on CPU)")
    perf.add_argument("--threads", type=int, default=None,
                      help="CPU threads for torch (default: torch's choice, usually one per core)")
    perf.add_argument("--repeats", type=int, default=5,
                      help="timed calls per figure; the median is reported (default 5)")
    perf.add_argument("--warmup", type=int, default=1, help="untimed calls before timing (default 1)")
    perf.add_argument("--preset", help="take each lifter's model sizes from a preset in configs/presets (e.g. quick: "
                                       "the CPU smoke-run sizes); --set overrides them")
    perf.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                      help="model_args.KEY=V (every lifter, e.g. model_args.width=128), NAME.KEY=V (one lifter, "
                           "e.g. videopose.channels=256) or parts.KEY=V (part options, e.g. parts.widths=match); "
                           "values parsed as YAML")
    perf.add_argument("--compare", nargs="*", default=None, metavar="PATH",
                      help="time fast paths against their plain counterparts in this process and print the ratio: "
                           "sampler (batched vs per hypothesis and flip), part-based (vs vanilla at the same "
                           "budget), bf16 (vs fp32), compile (vs eager; needs --compile), fused-attention (vs "
                           "explicit softmax); all of them when none is named")
    perf.add_argument("--sweep", nargs="+", default=[], metavar="AXIS=V1,V2",
                      help="how time and memory grow: frames=27,81,243, joints=17,134, hypotheses=1,5,20, "
                           "steps=..., batch=...; one table per sweep")
    perf.add_argument("--out", type=Path, help="also save everything as JSON to this file (with the machine)")
    perf.set_defaults(func=_perf)


def parse_set(items: list[str]) -> dict[str, dict]:
    """``--set`` items -> {"model_args": {..}, "parts": {..}, "lifter_args": {name: {..}}}."""
    import baselines
    from bench.runs.config import set_overrides

    out: dict[str, dict] = {"model_args": {}, "parts": {}, "lifter_args": {}}
    for section, values in set_overrides(items).items():
        if not isinstance(values, dict):
            raise ValueError(f"--set expects KEY=VALUE with KEY model_args.ARG, parts.ARG or LIFTER.ARG, got "
                             f"{section}={values!r}")
        if section in SET_SECTIONS:
            out[section].update(values)
        elif baselines.is_lifter(section):
            out["lifter_args"][section] = values
        else:
            raise ValueError(f"--set {section}.*: {section!r} is neither {' nor '.join(SET_SECTIONS)} nor a "
                             f"registered lifter ({', '.join(baselines.list_lifters())})")
    return out


def selected_models(names: list[str] | None) -> list[str]:
    """The --models list (space- and/or comma-separated), every name registered; default: every lifter."""
    import baselines

    if not names:
        return baselines.list_lifters()
    models = [name for item in names for name in item.split(",") if name]
    unknown = [name for name in models if not baselines.is_lifter(name)]
    if unknown:
        raise ValueError(f"--models: unknown lifter(s) {', '.join(unknown)}; registered lifters: "
                         f"{', '.join(baselines.list_lifters())}")
    return models


def _device(name: str | None) -> str:
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(name).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
                         f"CUDA build {torch.version.cuda or 'none'}); use --device cpu")
    return name


def preset_sizes(name: str, models: list[str]) -> dict[str, dict]:
    """{lifter: model_args} of the preset ``name`` for each of ``models`` (see ``bench.runs.config.preset``)."""
    from bench.runs import config as cfg

    return {model: cfg.preset(name, model)["model_args"] for model in models}


def settings_from_args(args, models: list[str]):
    """The ``PerfSettings`` the flags ask for: preset sizes, then --set overrides."""
    from bench.perf.measure import PerfSettings

    overrides = parse_set(args.set)
    if args.preset:
        # Preset sizes < --set model_args.KEY (every lifter) < --set LIFTER.KEY (one lifter).
        sizes = preset_sizes(args.preset, models)
        overrides["lifter_args"] = {model: {**sizes.get(model, {}), **overrides["model_args"],
                                            **overrides["lifter_args"].get(model, {})}
                                    for model in dict.fromkeys([*sizes, *overrides["lifter_args"]])}
    return PerfSettings(joints=args.joints, frames=args.frames, hypotheses=args.hypotheses, steps=args.steps,
                        batch=args.batch, sample_batch=args.sample_batch, device=_device(args.device),
                        dtype=args.dtype, compile=args.compile, repeats=args.repeats, warmup=args.warmup,
                        part_based=args.part_based, **overrides)


def run_perf(args) -> tuple[dict, list[str]]:
    """Measure what the flags ask for; returns the JSON report and the printed sections."""
    from bench.perf import compare as perf_compare, measure as perf

    models = selected_models(args.models)
    sweeps = [perf_compare.parse_sweep(text) for text in args.sweep]
    settings = settings_from_args(args, models)
    report = {"machine": perf.machine_info(settings), "settings": dataclasses.asdict(settings)}
    sections = [_header(report)]
    if args.compare is None and not sweeps:
        report["models"] = [_progress(name, "measuring", perf.measure_lifter, name, settings) for name in models]
        sections.append(perf.perf_table(report["models"], settings))
    if args.compare is not None:
        paths = args.compare or perf_compare.FAST_PATHS
        report["compare"] = [row for name in models for row in _progress(
            name, "comparing", perf_compare.compare_lifter, name, settings, paths)]
        sections.append(perf_compare.compare_table(report["compare"]))
    report["sweeps"] = {}
    for axis, values in sweeps:
        print(f"sweeping {axis} over {values}", file=sys.stderr, flush=True)
        rows = perf_compare.sweep_rows(models, settings, axis, values)
        report["sweeps"][axis] = rows
        sections.append(f"sweep over {axis}:\n" + perf_compare.sweep_table(rows, settings))
    return report, sections


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


def _perf(args) -> int:
    import torch

    from bench.io import save_text

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads: expected an integer >= 1, got {args.threads}")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or threads)
    try:
        report, sections = run_perf(args)
    finally:
        torch.set_num_threads(threads)   # main() may be called in-process (tests): leave the process as it was
    print("\n\n".join(sections))
    if args.out is not None:
        save_text(args.out, json.dumps(report, indent=2) + "\n")
        print(f"saved: {args.out}")
    return 0
