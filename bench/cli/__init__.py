"""The command line: ``python -m bench <command> ...``. Each command parses its flags and calls one function."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.cli.lift import add_lift_command
from bench.cli.perf import add_perf_command
from bench.cli.report import add_report_command
from bench.cli.run import add_eval_command, add_run_command
from bench.cli.sweep import add_sweep_commands


def _add_data_commands(commands) -> None:
    data = commands.add_parser("data", help="generate or inspect datasets",
                               description="Generate the synthetic H3WB-layout dataset or print dataset statistics.")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="{synth,stats}")

    synth = sub.add_parser("synth", help="write the synthetic dataset in H3WB's npz layout",
                           description="Write h3wb_train.npz (S1 S5 S6 S7) and task1_test_3d.npz (S8) in the "
                                       "official H3WB layout from a deterministic articulated whole-body generator.")
    synth.add_argument("--out", required=True, type=Path, help="folder to write the two npz files into")
    synth.add_argument("--size", choices=("tiny", "small", "full"), default="small",
                       help="small: a CPU-friendly set generated in seconds (default); full: H3WB's size (~100k "
                            "samples); tiny: a few hundred samples for tests")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    synth.add_argument("--noise-px", type=float, default=0.0,
                       help="standard deviation of Gaussian noise added to the 2D keypoints, in pixels (default 0: "
                            "exact projections, like H3WB's ground-truth 2D)")
    synth.set_defaults(func=_data_synth)

    stats = sub.add_parser("stats", help="counts per subject/action/camera and the frame-gap histogram",
                           description="Print sample counts and the histogram of gaps between annotated frames.")
    stats.add_argument("--data", type=Path, default=None,
                       help="folder with h3wb_train.npz and/or task1_test_3d.npz (default: the synthetic set, "
                            "generated into the cache folder on first use)")
    stats.add_argument("--subjects", nargs="+", default=None,
                       help="subjects to include (default: every subject of --split)")
    stats.add_argument("--split", choices=("all", "train", "test", "val-train", "val"), default="all",
                       help="named subject list: train = S1 S5 S6 S7, test = S8, val-train = S1 S5 S6, val = S7, "
                            "all = train + test (default)")
    stats.add_argument("--max-gap", type=int, default=None,
                       help="split takes where consecutive annotated frames are more than this many frames apart")
    stats.add_argument("--plot", type=Path, default=None, help="also save the gap histogram as a PNG to this file")
    stats.set_defaults(func=_data_stats)


def _data_synth(args) -> int:
    from bench.data.synthetic import write_synthetic

    start = time.perf_counter()
    paths = write_synthetic(args.out, size=args.size, seed=args.seed, noise_px=args.noise_px, progress=True)
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _data_stats(args) -> int:
    from bench.data import ensure_synthetic
    from bench.data import stats
    from bench.data.h3wb import SPLITS, load_h3wb

    subjects = args.subjects or (SPLITS["train"] + SPLITS["test"] if args.split == "all" else SPLITS[args.split])
    source = args.data if args.data is not None else ensure_synthetic(progress=True)
    sequences = load_h3wb(source, subjects=subjects, max_gap=args.max_gap)
    print(f"data: {source}")
    print(stats.report(sequences))
    if args.plot is not None:
        print(f"wrote {stats.plot_gaps(stats.frame_gaps(sequences), args.plot)}")
    return 0


def _add_models_command(commands) -> None:
    models = commands.add_parser("models", help="list registered lifters with their parameter counts",
                                 description="Print every registered lifter with its parameter count at the given "
                                             "joint and frame count.")
    models.add_argument("--joints", type=int, default=134,
                        help="joints per pose (default 134: the 133 COCO-WholeBody keypoints plus the pelvis)")
    models.add_argument("--frames", type=int, default=27, help="frames per window (default 27)")
    models.add_argument("--filter", default="*", help="only lifters whose name matches this pattern (e.g. 'mix*')")
    models.add_argument("--part-based", action="store_true",
                        help="compare each lifter with its part-based version (PAFUSE's design): part widths, "
                             "per-part counts, total and ratio to the vanilla count")
    models.add_argument("--widths", default="balanced", choices=("balanced", "uniform", "match"),
                        help="part widths with --part-based: balanced (PAFUSE's ratios, default), uniform, or "
                             "match (within 1%% of the vanilla count)")
    models.set_defaults(func=_models)


def _models(args) -> int:
    import baselines
    from bench.cli.models import models_table, pafuse_variants_table, part_based_table
    from bench.skeleton import NUM_JOINTS

    if args.part_based:
        print(f"part-based lifters at J={args.joints}, N={args.frames}, widths={args.widths}")
        print(part_based_table(args.joints, args.frames, args.widths, args.filter))
        if baselines.is_lifter("pafuse") and args.joints == NUM_JOINTS:
            print(f"\nPAFUSE and its ablations at J={args.joints}")
            print(pafuse_variants_table(args.joints, args.frames))
        return 0
    print(f"lifters at J={args.joints}, N={args.frames}")
    print(models_table(args.joints, args.frames, args.filter))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description="pafuse-bench: train, compare and report 2D-to-3D whole-body "
                                                 "pose lifters on H3WB.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_data_commands(commands)
    _add_models_command(commands)
    add_run_command(commands)
    add_eval_command(commands)
    add_report_command(commands)
    add_lift_command(commands)
    add_sweep_commands(commands)
    add_perf_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from bench.data.h3wb import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
