"""``bench models``: every registered lifter with its parameter count at a given joint and frame count.

Counting builds every lifter, which needs torch and timm (seconds of imports); the printed tables are therefore kept
in ``$PAFUSE_BENCH_CACHE/models/``, keyed by the flags, the lifters' sources and configs and the versions of torch and
timm, so a repeated call prints without importing either and any change to a lifter counts again.
"""
from __future__ import annotations

import contextlib
import hashlib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Everything the printed tables depend on: the lifters and their registry, the part-based wrapper, the default
# model_args, the joint layout and the tables' own code (and below, the libraries that build and print them).
SOURCES = ("baselines", "parts", "configs/models", "bench/runs/lifters.py", "bench/skeleton.py", "bench/cli/models.py")
LIBRARIES = ("torch", "timm", "tabulate")


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
    models.add_argument("--recount", action="store_true",
                        help="build the lifters and count again instead of printing the cached tables (they are "
                             "kept per flags, lifter sources and torch/timm versions, so this is rarely needed)")
    models.set_defaults(func=_models)


def _models(args) -> int:
    flags = (args.joints, args.frames, args.filter, args.part_based, args.part_based and args.widths)
    path = _cache_path(flags)
    if path.is_file() and not args.recount:
        print(path.read_text(), end="")
        return 0
    text = _tables(args)
    from bench.io import save_text

    with contextlib.suppress(OSError):  # an unwritable cache only costs the next call its speed
        save_text(path, text)
    print(text, end="")
    return 0


def _tables(args) -> str:
    """What ``bench models`` prints for ``args``, computed by building every lifter."""
    from bench.runs.lifters import is_lifter
    from bench.skeleton import NUM_JOINTS

    if not args.part_based:
        return f"lifters at J={args.joints}, N={args.frames}\n{models_table(args.joints, args.frames, args.filter)}\n"
    text = (f"part-based lifters at J={args.joints}, N={args.frames}, widths={args.widths}\n"
            f"{part_based_table(args.joints, args.frames, args.widths, args.filter)}\n")
    if is_lifter("pafuse") and args.joints == NUM_JOINTS:
        text += f"\nPAFUSE and its ablations at J={args.joints}\n{pafuse_variants_table(args.joints, args.frames)}\n"
    return text


def _cache_path(flags: tuple) -> Path:
    """The cached tables for ``flags``: named by a hash of the flags, every source file and the library versions."""
    from bench.data import cache_dir

    digest = hashlib.sha256(repr(flags).encode())
    for library in LIBRARIES:
        digest.update(f"{library}={metadata.version(library)}".encode())
    for top in SOURCES:
        path = ROOT / top
        for file in sorted(path.rglob("*.py")) + sorted(path.rglob("*.yaml")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return cache_dir() / "models" / f"{digest.hexdigest()[:20]}.txt"


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
