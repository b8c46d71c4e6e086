"""The transformer blocks of the attention lifters: timm's ``Block`` with an attention that picks its kernel per call.

timm's ``Attention`` fixes ``fused_attn`` (``scaled_dot_product_attention`` or an explicit softmax) when it is built,
before anyone knows where the model will run or over how many tokens it attends. Which kernel is faster depends on
both: on CPU the explicit softmax wins over short sequences (MixSTE's 27-frame temporal attention, the part
networks' 24 to 68 joints) and the fused kernel over long ones (134 joints); ``FUSED_MIN_TOKENS`` holds the
threshold per device type (``bench perf --compare fused-attention`` measures it; README, "Performance"). Setting
``fused_attn`` to True or False on a module pins the kernel, as in timm.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers.attention import Attention as TimmAttention
from timm.models.vision_transformer import Block
from torch import nn

FUSED_MIN_TOKENS = {"cpu": 128}
"""Per device type, the shortest sequence attended with the fused kernel; shorter ones use the explicit softmax (the
reference code's). Device types not listed (CUDA) always use the fused kernel."""


def fused_by_default(device: torch.device | str, tokens: int) -> bool:
    """Whether attention over ``tokens`` tokens uses the fused kernel on ``device`` unless pinned."""
    return tokens >= FUSED_MIN_TOKENS.get(torch.device(device).type, 0)


class Attention(TimmAttention):
    """timm's multi-head self-attention (same parameters and state-dict keys) whose kernel follows the input's
    device and length while ``fused_attn`` is None (the default); True or False pins it. No masks: the lifters use
    none."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.gate is not None:
            raise ValueError("this attention has no gate")
        self.fused_attn = None

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        """(B, T, C) tokens -> (B, T, C)."""
        if attn_mask is not None or is_causal:
            raise ValueError("this attention takes no mask")
        B, T, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        fused = fused_by_default(x.device, T) if self.fused_attn is None else self.fused_attn
        if fused:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            x = self.attn_drop(((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)) @ v
        x = self.norm(x.transpose(1, 2).reshape(B, T, self.attn_dim))
        return self.proj_drop(self.proj(x))


def layer_norm(width: int, **factory) -> nn.LayerNorm:
    """The blocks' LayerNorm (eps 1e-6, as in the reference lifters); ``factory``: timm's device and dtype."""
    return nn.LayerNorm(width, eps=1e-6, **factory)


def transformer_blocks(width: int, depth: int, heads: int, mlp_ratio: float, drop_path: float) -> list[Block]:
    """``depth`` pre-norm ViT blocks (qkv bias, LayerNorm eps 1e-6) with DropPath rising as
    linspace(0, drop_path, depth), as in the reference lifters."""
    return [Block(width, heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=rate, norm_layer=layer_norm,
                  attn_layer=Attention) for rate in np.linspace(0.0, drop_path, depth).tolist()]
