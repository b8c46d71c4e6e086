"""``bench perf``: the flags, and how they map onto ``bench.perf.session``."""
from __future__ import annotations

import json
from pathlib import Path


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
                                       "the small CPU sizes); --set overrides them")
    perf.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                      help="model_args.KEY=V (every lifter, e.g. model_args.width=128), NAME.KEY=V (one lifter, "
                           "e.g. videopose.channels=256) or parts.KEY=V (part options, e.g. parts.widths=match); "
                           "values parsed as YAML")
    perf.add_argument("--compare", nargs="*", default=None, metavar="PATH",
                      help="time fast paths against their plain counterparts in this process and print the ratio: "
                           "sampler (each path vs the reference's one forward per flip), part-based (vs vanilla at "
                           "the same budget), bf16 (vs fp32), compile (vs eager; needs --compile), fused-attention "
                           "(the default kernels and fused everywhere, vs explicit softmax); all of them when none is "
                           "named")
    perf.add_argument("--sweep", nargs="+", default=[], metavar="AXIS=V1,V2",
                      help="how time and memory grow: frames=27,81,243, joints=17,134, hypotheses=1,5,20, "
                           "steps=..., batch=...; one table per sweep")
    perf.add_argument("--devices", type=int, default=None, metavar="N",
                      help="instead of the perf table, training throughput (windows/s of the global --batch) with "
                           "one process and with N, as `bench run --devices N` trains, and the speed-up; says so where "
                           "N processes gain nothing on this hardware")
    perf.add_argument("--out", type=Path, help="also save everything as JSON to this file (with the machine)")
    perf.set_defaults(func=_perf)


def settings_from_args(args, models: list[str]):
    """The ``PerfSettings`` the flags ask for: preset sizes, then --set overrides."""
    from bench.perf import session

    return session.settings(models, args.preset, args.set, joints=args.joints, frames=args.frames,
                            hypotheses=args.hypotheses, steps=args.steps, batch=args.batch,
                            sample_batch=args.sample_batch, device=session.device(args.device), dtype=args.dtype,
                            compile=args.compile, repeats=args.repeats, warmup=args.warmup,
                            part_based=args.part_based)


def _perf(args) -> int:
    import torch

    from bench.io import save_text
    from bench.perf import session

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads: expected an integer >= 1, got {args.threads}")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or threads)
    try:
        models = session.selected_models(args.models)
        report, sections = session.run(models, settings_from_args(args, models), args.compare, args.sweep,
                                       args.devices)
    finally:
        torch.set_num_threads(threads)   # main() may be called in-process (tests): leave the process as it was
    print("\n\n".join(sections))
    if args.out is not None:
        save_text(args.out, json.dumps(report, indent=2) + "\n")
        print(f"saved: {args.out}")
    return 0
