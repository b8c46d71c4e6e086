"""``bench models``: every registered lifter with its parameter count at a given joint and frame count."""
from __future__ import annotations

import torch
from tabulate import tabulate

import baselines


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters (buffers such as BatchNorm statistics are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


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
