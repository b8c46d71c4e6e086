"""Run folders from the reference code's saved weights, and back: ``bench import-checkpoint`` / ``export-checkpoint``.

An imported run folder holds ``config.yaml`` (our model with the reference's design, sizes read off the file),
``best.pt`` (the weights in our names) and ``imported.json`` (where they came from), so ``bench eval`` and
``bench lift`` take it like a trained run.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from bench.errors import CheckpointError
from bench.io import atomic_path, save_text
from bench.runs import config as cfg
from bench.runs.checkpoints import load_model, save_checkpoint
from bench.runs.lifters import build_from_config
from bench.runs.reference_weights import (
    REFERENCE_SETTINGS,
    export_state_dict,
    import_state_dict,
    read_reference_checkpoint,
)
from bench.skeleton import NUM_JOINTS

PART_KEYS = tuple(cfg.DEFAULTS["parts"])
"""Configuration keys of the ``parts`` section; the other reference settings are the lifter's ``model_args``."""


def reference_sizes(reference: dict[str, torch.Tensor], model: str, where: str) -> dict:
    """Frames, depth and widths of a reference state dict, read off its shapes (8 heads, as the reference has).

    Returns:
        {"frames": N, "model_args": {...}, "parts": {...}}: a configuration fragment for ``model``.
    """
    networks = ("body", "face", "hands") if model == "pafuse" else ("",)
    widths, frames, depth = {}, set(), set()
    for network in networks:
        prefix = f"pose_estimator.{network + '.' if network else ''}"
        embed = reference.get(prefix + "Spatial_pos_embed")
        temporal = reference.get(prefix + "Temporal_pos_embed")
        if embed is None or temporal is None:
            raise CheckpointError(f"{where}: expected {prefix}Spatial_pos_embed and Temporal_pos_embed of a "
                                  f"reference {model} model, found neither")
        widths[network or "width"] = int(embed.shape[-1])
        frames.add(int(temporal.shape[1]))
        blocks = {int(m.group(1)) for key in reference if (m := re.match(re.escape(prefix) + r"STEblocks\.(\d+)\.",
                                                                                  key))}
        depth.add(len(blocks))
    if len(frames) != 1 or len(depth) != 1:
        raise CheckpointError(f"{where}: expected one frame count and one depth over the networks, found frames "
                              f"{sorted(frames)} and depths {sorted(depth)}")
    settings = {**REFERENCE_SETTINGS[model], "depth": depth.pop()}
    if model == "pafuse":
        settings["widths"] = widths
    else:
        settings["width"] = widths["width"]
    return {"frames": frames.pop(), "parts": {k: v for k, v in settings.items() if k in PART_KEYS},
            "model_args": {k: v for k, v in settings.items() if k not in PART_KEYS}}


def import_checkpoint(path: str | Path, model: str, out: str | Path | None = None, data=None,
                      runs: str | Path = "results/runs") -> Path:
    """Write a run folder holding the reference's weights from ``path`` in our ``model`` ("pafuse" or "d3dp").

    Args:
        path: the reference's saved file (e.g. ``pafuse_model.bin``), or a bare state dict.
        model: which reference model the file holds.
        out: the run folder (default ``<runs>/<run id>-imported``).
        data: the data the run evaluates on: a folder or file, or a list of files (default: the synthetic set).
    """
    path = Path(path)
    if model not in REFERENCE_SETTINGS:
        raise CheckpointError(f"--model: expected one of {sorted(REFERENCE_SETTINGS)}, found {model!r}")
    reference = read_reference_checkpoint(path)
    sizes = reference_sizes(reference, model, str(path))
    flags = {"model": model, "data": cfg.data_setting(data), **sizes}
    config = cfg.resolve(flags, flags_where=f"{path} (read as {model})")
    lifter = build_from_config(config)
    state = import_state_dict(reference, lifter, str(path))
    folder = Path(out) if out is not None else Path(runs) / f"{cfg.run_id(config)}-imported"
    save_text(folder / "config.yaml", cfg.dump(config))
    save_checkpoint(folder / "best.pt", {"model": state, "epoch": -1})
    source = {"imported_from": str(path.resolve()), "sha256": _sha256(path), "model": model,
              "format": "PAFUSE reference code (model_pos state dict)", "joints": NUM_JOINTS}
    save_text(folder / "imported.json", json.dumps(source, indent=2) + "\n")
    return folder


def export_checkpoint(run: str | Path, out: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Write a run's weights in the reference's saved layout, for the reference code's scripts.

    Only a D3DP or PAFUSE with the reference's design exports (PAFUSE with ``attach: reference`` and
    ``hands: joint``); anything else is a CheckpointError saying which setting differs.
    """
    model = load_model(run, checkpoint, device="cpu")
    payload = export_state_dict(model.lifter, epoch=max(model.epoch, 0))
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return Path(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
