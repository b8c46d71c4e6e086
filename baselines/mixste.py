"""MixSTE: a seq2seq transformer that alternates spatial and temporal attention.

Zhang et al., "MixSTE: Seq2seq Mixed Spatio-Temporal Encoder for 3D Human Pose Estimation in Video", CVPR 2022,
https://arxiv.org/abs/2203.00859.

Every (frame, joint) pair is a token. A spatial block attends over the J joints of one frame, a temporal block over
the N frames of one joint; ``depth`` such pairs run in turn and a shared linear head reads a 3D point off every token.

The same class is the denoiser of D3DP and PAFUSE: with ``in_features=5`` a token carries [2D || noisy 3D], and with
``time_embedding=True`` an embedding of the diffusion step is added to every token.
"""
from __future__ import annotations

import math

import torch
from timm.layers import trunc_normal_
from torch import nn

from baselines.base import Lifter
from baselines.layers import layer_norm, transformer_blocks
from baselines.registry import register_lifter


def sinusoidal_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Transformer-style sine/cosine features of integer diffusion steps.

    Args:
        t: (B,) diffusion steps.
        width: feature size, even; the first half holds sines, the second cosines.

    Returns:
        (B, width) float32 features; frequencies fall geometrically from 1 to 1/10000.
    """
    half = width // 2
    frequencies = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / (half - 1)))
    angles = t.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TimeEmbedding(nn.Module):
    """Diffusion-step embedding: sinusoidal(C) -> Linear(C, 2C) -> GELU -> Linear(2C, C)."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Map (B,) long steps to (B, C) features."""
        return self.mlp(sinusoidal_embedding(t, self.width))


class MixSTE(Lifter):
    """MixSTE lifter and diffusion denoiser: (B, N, J, C_in) tokens -> (B, N, J, 3) poses.

    Args:
        joints: J, e.g. 17 for Human3.6M or 134 for H3WB with the added pelvis.
        frames: N, the window length; the temporal position embedding has one row per frame.
        in_features: C_in, 2 for the plain lifter (2D keypoints), 5 for a denoiser ([2D || noisy 3D]).
        width: C, the token width (512 in the paper).
        depth: D, the number of spatial/temporal block pairs (8 in the paper).
        heads: attention heads per block; must divide ``width``.
        mlp_ratio: hidden width of the block MLPs as a multiple of ``width``.
        drop_path: the largest stochastic-depth rate; pair i uses linspace(0, drop_path, depth)[i] in both blocks.
        time_embedding: add a diffusion-step embedding to every token; ``forward`` then needs ``t``.
    """

    seq2seq = True
    # How part-based wrappers size it (parts/widths.py): even (sine/cosine halves) and a multiple of `heads`.
    width_argument = "width"
    width_multiple = 2
    heads_argument = "heads"

    def __init__(self, joints: int, frames: int, *, in_features: int = 2, width: int = 512, depth: int = 8,
                 heads: int = 8, mlp_ratio: float = 2.0, drop_path: float = 0.1, time_embedding: bool = False):
        super().__init__(joints, frames)
        if width % heads or width % 2:
            raise ValueError(f"MixSTE width must be even and divisible by heads={heads}, got width={width}")
        self.in_features = in_features
        self.embed = nn.Linear(in_features, width)
        self.spatial_pos = nn.Parameter(torch.zeros(1, joints, width))
        self.temporal_pos = nn.Parameter(torch.zeros(1, frames, width))
        self.time_embed = TimeEmbedding(width) if time_embedding else None
        # The reference gives the spatial and the temporal block of pair i the same stochastic-depth rate.
        self.spatial_blocks = nn.ModuleList(transformer_blocks(width, depth, heads, mlp_ratio, drop_path))
        self.temporal_blocks = nn.ModuleList(transformer_blocks(width, depth, heads, mlp_ratio, drop_path))
        # One LayerNorm per attention axis, re-applied after every block of that axis, as in the reference.
        self.spatial_norm = layer_norm(width)
        self.temporal_norm = layer_norm(width)
        # The head's LayerNorm keeps PyTorch's default eps (1e-5), as the reference's does.
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 3))
        self.apply(_init_weights)

    def check_tokens(self, x: torch.Tensor, t: torch.Tensor | None) -> None:
        """Raise ValueError unless ``x`` is (B, frames, joints, in_features) and ``t`` matches the time embedding."""
        expected = (self.frames, self.joints, self.in_features)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"MixSTE input: expected (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        if (self.time_embed is None) != (t is None):
            need = "needs" if self.time_embed is not None else "has no time embedding and takes no"
            raise ValueError(f"MixSTE {need} diffusion steps t")
        if t is not None and tuple(t.shape) != (x.shape[0],):
            raise ValueError(f"MixSTE diffusion steps t: expected shape ({x.shape[0]},), got {tuple(t.shape)}")

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Lift a window of tokens.

        Args:
            x: (B, N, J, C_in) tokens: normalized 2D, followed for a denoiser by the noisy 3D (metres).
            t: (B,) long diffusion steps; required exactly when the model has a time embedding.

        Returns:
            (B, N, J, 3) root-relative 3D joints (metres).
        """
        self.check_tokens(x, t)
        B, N, J, _ = x.shape
        x = self.embed(x) + self.spatial_pos                      # (B, N, J, C)
        if self.time_embed is not None:
            x = x + self.time_embed(t)[:, None, None, :]
        C = x.shape[-1]
        x = x.reshape(B * N, J, C)
        for pair, (spatial, temporal) in enumerate(zip(self.spatial_blocks, self.temporal_blocks)):
            x = self.spatial_norm(spatial(x))
            x = x.reshape(B, N, J, C).transpose(1, 2).reshape(B * J, N, C)
            # Frame order is only known to the temporal blocks, so its embedding enters just before the first one.
            if pair == 0:
                x = x + self.temporal_pos
            x = self.temporal_norm(temporal(x))
            x = x.reshape(B, J, N, C).transpose(1, 2).reshape(B * N, J, C)
        return self.head(x).reshape(B, N, J, 3)


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear weights and zero biases, the usual ViT initialisation."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@register_lifter
def mixste(joints: int, frames: int = 27, **model_args) -> MixSTE:
    """MixSTE lifter on 2D keypoints; defaults (width 512, depth 8) come from configs/models/mixste.yaml."""
    return MixSTE(joints=joints, frames=frames, **model_args)
