"""PAFUSE: D3DP's diffusion over part-based MixSTE denoisers, as a composition of :func:`parts.wrapper.part_based`.

Samet, Rommel, Picard and Valle, "PAFUSE: Part-based Diffusion for 3D Whole-body Pose Estimation",
https://github.com/valeoai/PAFUSE.

Defaults (``configs/models/pafuse.yaml``): D3DP width 512, depth 8, balanced part widths 384 / 224 / 256 for body /
face / hands, one network for both hands, part loss with MPJPE, N = 27, and ``attach="roots"`` (see
:mod:`parts.frames` for why). ``create_lifter("pafuse", attach="reference")`` is the reference code's model:
34,964,329 parameters at J = 134, N = 27. Every option of ``part_based`` is an override, e.g.
``create_lifter("pafuse", loss="wb")`` or ``widths="uniform"`` for the paper's ablations.
"""
from __future__ import annotations

from baselines.registry import register_lifter
from bench.skeleton import NUM_JOINTS


@register_lifter
def pafuse(joints: int = NUM_JOINTS, frames: int = 27, **kwargs):
    """PAFUSE: ``part_based("d3dp", ...)`` with the defaults of configs/models/pafuse.yaml and the caller's overrides.

    Returns:
        A :class:`parts.wrapper.PartLifter`.
    """
    # Imported here, not at the top: ``baselines`` registers this builder while ``parts`` may still be loading
    # (parts -> baselines -> parts.pafuse), and the wrapper is only needed once a model is built.
    from parts.wrapper import part_based

    return part_based("d3dp", joints=joints, frames=frames, **kwargs)
