"""``bench lift``: lift a person's own 2D whole-body keypoints (a detector's output, annotations) to 3D."""
from __future__ import annotations

from pathlib import Path

from bench.lift.aggregation import AGGREGATES
from bench.lift.filling import DEFAULT_THRESHOLD

RENDER_FORMATS = ("png", "gif", "none")


def add_lift_command(commands) -> None:
    lift = commands.add_parser(
        "lift", help="lift 2D whole-body keypoints of your own video to 3D, with pictures",
        description="Lift 2D whole-body keypoints (133, COCO-WholeBody order) to root-relative 3D in metres with a "
                    "trained run. INPUT is a COCO-WholeBody annotation JSON, a per-frame prediction list JSON "
                    "(MMPose style) or a .npy/.npz array (T, 133, 2|3); the format is detected. Missing or "
                    "low-score keypoints are interpolated in time and flagged. Writes poses_3d.npz, "
                    "keypoints.json and pictures (the 2D input beside the 3D pose) per person.")
    lift.add_argument("input", type=Path, metavar="INPUT", help="keypoint file (.json, .npy or .npz)")
    lift.add_argument("--run", type=Path, help="run folder (config.yaml + best.pt) of the trained lifter")
    lift.add_argument("--checkpoint", type=Path,
                      help="checkpoint file (default RUN/best.pt); alone, its folder must hold config.yaml")
    lift.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                      help="image width and height in pixels, for files that do not give them")
    lift.add_argument("--hypotheses", type=int, help="hypotheses H of a diffusion model (default: the run's last "
                                                      "evaluated pair)")
    lift.add_argument("--steps", type=int, help="DDIM steps K of a diffusion model (default: as --hypotheses)")
    lift.add_argument("--aggregate", choices=AGGREGATES, default="mean",
                      help="one pose from H hypotheses: mean (default), or best-2d: per joint the hypothesis whose "
                           "reprojection (weak-perspective camera fitted per frame) is closest to the input 2D")
    lift.add_argument("--save-hypotheses", action="store_true", help="also save every hypothesis (when H > 1)")
    lift.add_argument("--person", help="lift only this person (track id, or instance order)")
    lift.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                      help=f"keypoints scored below this are missing and filled (default {DEFAULT_THRESHOLD})")
    lift.add_argument("--no-flip", action="store_true", help="no flip test-time augmentation (default: the run's)")
    lift.add_argument("--render", nargs="+", choices=RENDER_FORMATS, default=["png", "gif"],
                      help="pictures: png (frames/000000.png ...), gif (lift.gif), none (default: png gif)")
    lift.add_argument("--fps", type=float, default=10.0, help="frames per second of the GIF (default 10)")
    lift.add_argument("--out", type=Path, help="output folder (default results/lift/<INPUT name>)")
    lift.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    lift.add_argument("--seed", type=int, help="sampling seed of a diffusion model (default: the run's)")
    lift.add_argument("--trust-checkpoint", action="store_true",
                      help="load a checkpoint that needs more than tensors, numbers and plain containers; such a "
                           "file can run code when loaded: only if you trust where it came from")
    lift.set_defaults(func=_lift)


def _lift(args) -> int:
    from bench.lift.pipeline import lift_file

    formats = tuple(f for f in args.render if f != "none")
    out = args.out or Path("results/lift") / args.input.stem
    summaries = lift_file(args.input, out, run=args.run, checkpoint=args.checkpoint, image_size=args.image_size,
                          person=args.person, hypotheses=args.hypotheses, steps=args.steps,
                          aggregate_by=args.aggregate, render_formats=formats, save_hypotheses=args.save_hypotheses,
                          flip_test=False if args.no_flip else None, threshold=args.threshold, fps=args.fps,
                          device=args.device, seed=args.seed, trust_checkpoint=args.trust_checkpoint)
    for summary in summaries:
        frames, seconds = summary["frames"], summary["seconds"]
        print(f"person {summary['person']}: {frames} frames lifted in {seconds:.2f} s "
              f"({1000 * seconds / frames:.1f} ms/frame), {summary['filled']} keypoints filled -> {summary['folder']}")
    return 0
