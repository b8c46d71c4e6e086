"""PAFUSE: D3DP's diffusion over part-based MixSTE denoisers, as a composition of :func:`parts.wrapper.part_based`.

Samet, Rommel, Picard and Valle, "PAFUSE: Part-based Diffusion for 3D Whole-body Pose Estimation",
https://github.com/valeoai/PAFUSE.

Defaults (``configs/models/pafuse.yaml``): D3DP width 512, depth 8, balanced part widths 384 / 224 / 256 for body /
face / hands, one network for both hands, part loss with MPJPE, N = 27, and ``attach="roots"`` (see
:mod:`parts.frames` for why). ``create_lifter("pafuse", joints=134, attach="reference")`` is the reference
code's model. Every option of ``part_based`` is an override, e.g. ``loss="wb"`` or ``widths="uniform"`` for the
paper's ablations.
"""
from __future__ import annotations

from baselines.registry import register_lifter
from parts.wrapper import part_based


@register_lifter
def pafuse(joints: int, frames: int = 27, **model_args):
    """PAFUSE: ``part_based("d3dp", ...)`` with the defaults of configs/models/pafuse.yaml, then ``model_args``.

    Returns:
        A :class:`parts.wrapper.PartLifter`.
    """
    return part_based("d3dp", joints=joints, frames=frames, **model_args)
