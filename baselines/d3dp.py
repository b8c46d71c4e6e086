"""D3DP: diffusion-based multi-hypothesis 3D pose lifting with a MixSTE denoiser.

Shan et al., "Diffusion-Based 3D Human Pose Estimation with Multi-Hypothesis Aggregation", ICCV 2023,
https://arxiv.org/abs/2303.11579.

A MixSTE whose tokens are [2D || noisy 3D] and which knows the diffusion step predicts the clean window; the
network-independent ``GaussianDiffusion`` trains it and samples hypotheses from it with DDIM.
"""
from __future__ import annotations

import torch
from torch import nn

from baselines.base import Lifter
from baselines.diffusion import GaussianDiffusion
from baselines.mixste import MixSTE
from baselines.registry import register_lifter


class ConcatDenoiser(nn.Module):
    """Adapts a token network ``net(tokens (B, N, J, 5), t (B,)) -> (B, N, J, 3)`` to the denoiser contract.

    ``forward(x2d, x_t, t)`` feeds ``net`` each token's 2D keypoint followed by its noisy 3D joint, D3DP's input.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x2d: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, N, J, 2) condition, (B, N, J, 3) noisy window, (B,) steps -> (B, N, J, 3) clean estimate."""
        return self.net(torch.cat([x2d, x_t], dim=-1), t)


class D3DP(Lifter):
    """D3DP lifter: a time-conditioned MixSTE denoiser inside a Gaussian diffusion.

    Sample in ``eval()`` mode: in training mode the denoiser's stochastic depth stays active.

    Args:
        joints: J, e.g. 17 for Human3.6M or 134 for H3WB with the added pelvis.
        frames: N, the window length (27 in PAFUSE, 243 in D3DP on Human3.6M).
        width, depth, heads, mlp_ratio, drop_path: the MixSTE denoiser's sizes (see ``MixSTE``).
        timesteps: T, the length of the diffusion chain.
        scale: signal-space factor of the diffusion (1.0 in the reference).
        schedule: name of the beta schedule.
        denoiser: a prebuilt network with the denoiser contract of ``baselines.diffusion`` (e.g. the part-based
            one of PAFUSE); when given, the MixSTE sizes above are not used.
    """

    seq2seq = True
    generative = True
    # How part-based wrappers size its denoiser (parts/widths.py): as MixSTE's width.
    width_argument = "width"
    width_multiple = 2
    heads_argument = "heads"

    def __init__(self, joints: int, frames: int, *, width: int = 512, depth: int = 8, heads: int = 8,
                 mlp_ratio: float = 2.0, drop_path: float = 0.1, timesteps: int = 1000, scale: float = 1.0,
                 schedule: str = "cosine", denoiser: nn.Module | None = None):
        super().__init__(joints, frames)
        if denoiser is None:
            denoiser = ConcatDenoiser(MixSTE(joints, frames, in_features=5, width=width, depth=depth, heads=heads,
                                             mlp_ratio=mlp_ratio, drop_path=drop_path, time_embedding=True))
        self.diffusion = GaussianDiffusion(denoiser, timesteps=timesteps, scale=scale, schedule=schedule)

    def forward(self, x2d: torch.Tensor) -> torch.Tensor:
        """One hypothesis from one denoising step, without flip: (B, N, J, 2) -> (B, N, J, 3). No gradient."""
        return self.predict(x2d)[:, 0]

    def training_pair(self, x2d: torch.Tensor, y3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean estimate of each window noised at a random step, and its target (MPJPE is D3DP's loss)."""
        self.check_input(x2d)
        return self.diffusion.training_pair(x2d, y3d)

    def predict(self, x2d: torch.Tensor, hypotheses: int = 1, steps: int = 1,
                flip_permutation: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample (B, H, N, J, 3) hypotheses with ``steps`` DDIM steps and flip TTA at every step when asked."""
        self.check_input(x2d)
        return self.diffusion.sample(x2d, hypotheses=hypotheses, steps=steps, flip_permutation=flip_permutation,
                                     generator=generator)


@register_lifter
def d3dp(joints: int, frames: int = 27, **model_args) -> D3DP:
    """D3DP; defaults (width 512, depth 8, T = 1000, scale 1) come from configs/models/d3dp.yaml."""
    return D3DP(joints=joints, frames=frames, **model_args)
