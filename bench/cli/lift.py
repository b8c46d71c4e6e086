"""``bench lift``: lift a person's own 2D whole-body keypoints (a detector's output, annotations) to 3D."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.lift.aggregation import AGGREGATES
from bench.lift.formats.base import DEFAULT_THRESHOLD
from bench.lift.tracking import MAX_MISSED

RENDER_FORMATS = ("png", "gif", "none")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_lift_command(commands) -> None:
    lift = commands.add_parser(
        "lift", help="lift 2D whole-body keypoints of your own images or video to 3D, with pictures",
        description="Lift 2D whole-body keypoints (133, COCO-WholeBody order) to root-relative 3D in metres with a "
                    "trained run. INPUT is a COCO-WholeBody annotation JSON, a per-frame prediction list JSON "
                    "(MMPose style), OpenPifPaf JSON (openpifpaf.predict or openpifpaf.video --json-output), "
                    "OpenPose *_keypoints.json, a folder of per-image files, or a .npy/.npz array (T, 133, 2|3); "
                    "the format is detected. Unrelated still images are lifted image by image (every person a "
                    "one-frame clip, one sheet picture per image), a video as a clip per person (people linked "
                    "frame to frame without track ids); the choice is printed. Missing or low-score keypoints are "
                    "interpolated in time and flagged. Writes poses_3d.npz, keypoints.json and pictures per person.")
    lift.add_argument("input", type=Path, metavar="INPUT",
                      help="keypoint file (.json, .jsonl, .npy or .npz) or a folder of per-image JSON files")
    lift.add_argument("--run", type=Path, help="run folder (config.yaml + best.pt) of the trained lifter")
    lift.add_argument("--checkpoint", type=Path,
                      help="checkpoint file (default RUN/best.pt); alone, its folder must hold config.yaml")
    kind = lift.add_mutually_exclusive_group()
    kind.add_argument("--images", dest="mode", action="store_const", const="images",
                      help="the frames are unrelated still images: lift every person of every image on its own")
    kind.add_argument("--video", dest="mode", action="store_const", const="video",
                      help="the frames are one video: lift a clip per person (default: detected from the file)")
    lift.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                      help="image width and height in pixels, for files that do not give them")
    lift.add_argument("--hypotheses", type=positive_int,
                      help="hypotheses H of a diffusion model (default: the run's last evaluated pair)")
    lift.add_argument("--steps", type=positive_int, help="DDIM steps K of a diffusion model (default: as --hypotheses)")
    lift.add_argument("--aggregate", choices=AGGREGATES, default="mean",
                      help="one pose from H hypotheses: mean (default), or best-2d: per joint the hypothesis whose "
                           "reprojection (weak-perspective camera fitted per frame) is closest to the input 2D")
    lift.add_argument("--save-hypotheses", action="store_true", help="also save every hypothesis (when H > 1)")
    lift.add_argument("--person", help="lift only this person (track id, track number, or order in each image)")
    lift.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                      help=f"keypoints scored below this are missing and filled (default {DEFAULT_THRESHOLD})")
    lift.add_argument("--track-gap", type=int, default=MAX_MISSED, metavar="FRAMES",
                      help=f"frames a person may go undetected in a video and still be the same clip (default "
                           f"{MAX_MISSED}); used when the file has no track ids")
    lift.add_argument("--no-flip", action="store_true", help="no flip test-time augmentation (default: the run's)")
    lift.add_argument("--render", nargs="+", choices=RENDER_FORMATS, default=["png", "gif"],
                      help="pictures: png (video: frames/000000.png ...; images: sheet.png per image), gif (video: "
                           "lift.gif), none (default: png gif)")
    lift.add_argument("--fps", type=float, default=10.0, help="frames per second of the GIF (default 10)")
    lift.add_argument("--out", type=Path, help="output folder (default results/lift/<INPUT name>)")
    lift.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    lift.add_argument("--seed", type=int, help="sampling seed of a diffusion model (default: the run's)")
    lift.add_argument("--trust-checkpoint", action="store_true",
                      help="load a checkpoint that needs more than tensors, numbers and plain containers; such a "
                           "file can run code when loaded: only if you trust where it came from")
    lift.set_defaults(func=_lift, mode=None)


def _lift(args) -> int:
    from bench.lift.pipeline import lift_file

    formats = tuple(f for f in args.render if f != "none")
    out = args.out or Path("results/lift") / args.input.stem
    summaries = lift_file(args.input, out, run=args.run, checkpoint=args.checkpoint, image_size=args.image_size,
                          person=args.person, hypotheses=args.hypotheses, steps=args.steps,
                          aggregate_by=args.aggregate, render_formats=formats, save_hypotheses=args.save_hypotheses,
                          flip_test=False if args.no_flip else None, threshold=args.threshold, fps=args.fps,
                          device=args.device, seed=args.seed, mode=args.mode, max_missed=args.track_gap, log=print,
                          trust_checkpoint=args.trust_checkpoint, progress=True)
    for summary in summaries:
        frames, seconds = summary["frames"], summary["seconds"]
        who = f"person {summary['person']}" if summary["image"] is None else \
            f"image {summary['image']} person {summary['person']}"
        outside = f" ({summary['outside']} far outside the image)" if summary["outside"] else ""
        print(f"{who}: {frames} frame{'s' * (frames != 1)} lifted in {seconds:.2f} s "
              f"({1000 * seconds / frames:.1f} ms/frame), {summary['filled']} keypoints filled{outside} "
              f"-> {summary['folder']}")
    sheets = list(dict.fromkeys(s["sheet"] for s in summaries if "sheet" in s))
    if sheets:
        print(f"{len(sheets)} image sheet{'s' * (len(sheets) != 1)}: {', '.join(map(str, sheets[:3]))}"
              + (", ..." if len(sheets) > 3 else ""))
    return 0
