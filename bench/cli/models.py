"""``bench models``: every registered lifter with its parameter count at a given joint and frame count."""
from __future__ import annotations


def add_models_command(commands) -> None:
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
    from bench.runs.lifters import is_lifter
    from bench.skeleton import NUM_JOINTS

    if args.part_based:
        print(f"part-based lifters at J={args.joints}, N={args.frames}, widths={args.widths}")
        print(part_based_table(args.joints, args.frames, args.widths, args.filter))
        if is_lifter("pafuse") and args.joints == NUM_JOINTS:
            print(f"\nPAFUSE and its ablations at J={args.joints}")
            print(pafuse_variants_table(args.joints, args.frames))
        return 0
    print(f"lifters at J={args.joints}, N={args.frames}")
    print(models_table(args.joints, args.frames, args.filter))
    return 0


def _number(value) -> str:
    return f"{value:,}" if value is not None else "n/a"


def models_table(joints: int, frames: int, pattern: str = "*") -> str:
    """The table ``bench models`` prints."""
    from tabulate import tabulate

    from bench.runs.lifters import lifter_rows

    table = [[r["lifter"], _number(r["parameters"]), r.get("receptive_field", ""), r.get("output", ""),
              r.get("kind", ""), r["note"]] for r in lifter_rows(joints, frames, pattern)]
    return tabulate(table, headers=["lifter", "parameters", "frames in", "output", "kind", "note"],
                    tablefmt="github", disable_numparse=True)


def part_based_table(joints: int, frames: int, widths: str = "balanced", pattern: str = "*") -> str:
    """The table ``bench models --part-based`` prints."""
    from tabulate import tabulate

    from bench.runs.lifters import part_based_rows

    table = []
    for r in part_based_rows(joints, frames, widths, pattern):
        if r["vanilla"] is None:
            table.append([r["lifter"], "n/a", "", "", "", "", "", "", r["note"]])
            continue
        shown = "/".join(str(r["widths"][part]) for part in ("body", "face", "hands"))
        table.append([r["lifter"], _number(r["vanilla"]), shown, *(_number(r["parts"][p]) for p in ("body", "face",
                      "hands")), _number(r["total"]), f"{r['ratio']:.4f}", r["note"]])
    return tabulate(table, headers=["lifter", "vanilla", "widths b/f/h", "body", "face", "hands", "part-based",
                                    "ratio", "note"], tablefmt="github", disable_numparse=True)


def pafuse_variants_table(joints: int, frames: int) -> str:
    """Parameter count of every PAFUSE ablation, beside vanilla D3DP at the same J and N (and N = 81)."""
    from tabulate import tabulate

    from bench.runs.lifters import pafuse_variant_rows

    table = [[r["variant"], r["frames"], f"{r['parameters']:,}", f"{r['ratio']:.4f}"]
             for r in pafuse_variant_rows(joints, frames)]
    return tabulate(table, headers=["variant", "frames", "parameters", "ratio to D3DP"], tablefmt="github",
                    disable_numparse=True)
