"""``bench data synth`` and ``bench data stats``: generate the synthetic dataset, or print dataset statistics."""
from __future__ import annotations

import time
from pathlib import Path


def add_data_commands(commands) -> None:
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
    stats.add_argument("--data", type=Path, nargs="+", default=None,
                       help="H3WB's files: a folder holding them (npz or JSON release) or the files themselves "
                            "(default: the synthetic set, generated into the cache folder on first use)")
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
    from bench.io import check_writable

    check_writable(args.out, folder=True)
    start = time.perf_counter()
    paths = write_synthetic(args.out, size=args.size, seed=args.seed, noise_px=args.noise_px, progress=True)
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _data_stats(args) -> int:
    from bench.data import ensure_synthetic, stats
    from bench.data.h3wb import SPLITS, load_h3wb
    from bench.errors import ConfigError
    from bench.io import check_writable

    if args.max_gap is not None and args.max_gap < 1:
        raise ConfigError(f"--max-gap: expected an integer >= 1, found {args.max_gap}")
    if args.plot is not None:
        check_writable(args.plot)
    subjects = args.subjects or (SPLITS["train"] + SPLITS["test"] if args.split == "all" else SPLITS[args.split])
    source = args.data if args.data is not None else ensure_synthetic(progress=True)
    source = source[0] if isinstance(source, list) and len(source) == 1 else source
    sequences = load_h3wb(source, subjects=subjects, max_gap=args.max_gap)
    print(f"data: {source}")
    print(stats.report(sequences))
    if args.plot is not None:
        print(f"wrote {stats.plot_gaps(stats.frame_gaps(sequences), args.plot)}")
    return 0
