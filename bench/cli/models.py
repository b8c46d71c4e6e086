"""``bench models``: every registered lifter with its parameter count at a given joint and frame count."""
from __future__ import annotations

import torch
from tabulate import tabulate

import baselines
from baselines.base import count_parameters



def lifter_rows(joints: int, frames: int, pattern: str = "*") -> list[dict]:
    """One row per registered lifter: its parameter count and window geometry, or why it cannot be built."""
    rows = []
    for name in baselines.list_lifters(pattern):
        try:
            with torch.device("meta"):  # count without allocating or initialising weights
                model = baselines.create_lifter(name, joints=joints, frames=frames)
        except ValueError as error:
            rows.append(dict(lifter=name, parameters=None, note=str(error)))
            continue
        rows.append(dict(lifter=name, parameters=count_parameters(model), receptive_field=model.receptive_field,
                         output="seq2seq" if model.seq2seq else "receptive field",
                         kind="generative" if model.generative else "deterministic", note=""))
    return rows


def models_table(joints: int, frames: int, pattern: str = "*") -> str:
    """The table ``bench models`` prints."""
    rows = lifter_rows(joints, frames, pattern)
    table = [[r["lifter"], f"{r['parameters']:,}" if r["parameters"] is not None else "n/a",
              r.get("receptive_field", ""), r.get("output", ""), r.get("kind", ""), r["note"]] for r in rows]
    return tabulate(table, headers=["lifter", "parameters", "frames in", "output", "kind", "note"],
                    tablefmt="github", disable_numparse=True)


def part_based_rows(joints: int, frames: int, widths: str = "balanced", pattern: str = "*") -> list[dict]:
    """Per whole-body lifter: vanilla count, part widths and counts of its part-based version, and their ratio.

    Part-based lifters themselves (e.g. pafuse) are skipped: they are already split.
    """
    from parts.wrapper import PartLifter, part_based, part_counts

    rows = []
    for name in baselines.list_lifters(pattern):
        try:
            with torch.device("meta"):  # count without allocating or initialising weights
                vanilla = baselines.create_lifter(name, joints=joints, frames=frames)
                if isinstance(vanilla, PartLifter):
                    continue
                model = part_based(name, joints=joints, frames=frames, widths=widths)
        except ValueError as error:
            rows.append(dict(lifter=name, vanilla=None, note=str(error)))
            continue
        vanilla_count = count_parameters(vanilla)
        counts = part_counts(model)
        rows.append(dict(lifter=name, vanilla=vanilla_count, widths=model.widths, parts=counts,
                         total=counts["total"], ratio=counts["total"] / vanilla_count, note=""))
    return rows


def part_based_table(joints: int, frames: int, widths: str = "balanced", pattern: str = "*") -> str:
    """The table ``bench models --part-based`` prints."""
    def number(value):
        return f"{value:,}" if value is not None else "n/a"

    table = []
    for r in part_based_rows(joints, frames, widths, pattern):
        if r["vanilla"] is None:
            table.append([r["lifter"], "n/a", "", "", "", "", "", "", r["note"]])
            continue
        shown = "/".join(str(r["widths"][part]) for part in ("body", "face", "hands"))
        table.append([r["lifter"], number(r["vanilla"]), shown, *(number(r["parts"][p]) for p in ("body", "face",
                      "hands")), number(r["total"]), f"{r['ratio']:.4f}", r["note"]])
    return tabulate(table, headers=["lifter", "vanilla", "widths b/f/h", "body", "face", "hands", "part-based",
                                    "ratio", "note"], tablefmt="github", disable_numparse=True)


PAFUSE_VARIANTS: dict[str, dict] = {
    "PAFUSE (default: attach roots)": {},
    "reference attach (body nose, wrists)": {"attach": "reference"},
    "only part-frame shift (one network)": {"split": False},
    "only part denoisers (no shift)": {"shift": False},
    "part loss -> WB loss": {"loss": "wb"},
    "MPJPE -> MSE": {"error": "mse"},
    "balanced -> uniform widths": {"widths": "uniform"},
    "hands shared (left mirrored)": {"hands": "shared"},
}
"""The paper's ablations (Tables 2 and 3) and our options, as overrides of the registered ``pafuse``."""


def pafuse_variants_table(joints: int, frames: int) -> str:
    """Parameter count of every PAFUSE ablation, beside vanilla D3DP at the same J and N (and N = 81)."""
    with torch.device("meta"):
        d3dp = count_parameters(baselines.create_lifter("d3dp", joints=joints, frames=frames))
        rows = [[name, frames, count_parameters(baselines.create_lifter("pafuse", joints=joints, frames=frames,
                                                                        **options))]
                for name, options in PAFUSE_VARIANTS.items()]
        rows.append(["N = 81", 81, count_parameters(baselines.create_lifter("pafuse", joints=joints, frames=81))])
    table = [[name, n, f"{count:,}", f"{count / d3dp:.4f}"] for name, n, count in rows]
    return tabulate([["D3DP (vanilla)", frames, f"{d3dp:,}", "1.0000"]] + table,
                    headers=["variant", "frames", "parameters", "ratio to D3DP"], tablefmt="github",
                    disable_numparse=True)
