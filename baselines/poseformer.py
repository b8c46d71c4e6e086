"""PoseFormer: a spatial transformer over the joints of each frame, then a temporal one over frames.

Zheng, Zhu, Mendieta, Yang, Chen and Ding, "3D Human Pose Estimation with Spatial and Temporal Transformers",
ICCV 2021 (https://arxiv.org/abs/2103.10455).

Architecture. Each joint's 2D coordinates are embedded to ``joint_width`` (c) channels plus a learned spatial
position embedding (1, J, c); ``depth`` spatial blocks attend over the J joints of a frame. Each frame then becomes
one token of width c*J, plus a learned temporal position embedding (1, F, c*J), and ``depth`` temporal blocks
attend over the F frames. A learned weighted mean over frames (Conv1d(F -> 1, kernel 1)) and a head
(LayerNorm + Linear(c*J -> 3J)) give the 3D pose of the centre frame. Blocks are timm's pre-norm ViT ``Block``
(8 heads, MLP ratio 2, qkv bias, LayerNorm eps 1e-6), DropPath rising linearly from 0 to 0.1 over the blocks.

Not seq2seq: a window of F frames predicts its centre frame. A longer input of L frames is cut here into its
L - F + 1 overlapping windows, one per output frame, so the output contract matches VideoPose's; this costs F
forwards per output frame (the reference evaluates the same way).

Model card. At c = 32 (the reference) the parameter count is exactly
P = 32,864*J^2 + (1,571 + 32F)*J + 34,337 + F: 9,602,885 at J=17, F=81, but 590,466,638 at J=134, F=27,
since the temporal token width c*J enters squared. For the 134-joint layout ``configs/models/poseformer.yaml``
uses c = 8, the smallest width that 8 heads allow (c must be a multiple of the head count): 37,289,174
parameters at J=134, F=27 (37,347,116 at F=81), close to MixSTE's ~34M.
"""
from __future__ import annotations

import torch
from torch import nn

from baselines.base import Lifter
from baselines.layers import layer_norm, transformer_blocks
from baselines.registry import register_lifter


class PoseFormer(Lifter):
    """The PoseFormer lifter: a window of F frames predicts the 3D pose of its centre frame.

    Args:
        joints: J, joints of the input and output (e.g. 17 for Human3.6M, 134 for the whole-body layout).
        frames: F, the window length (the receptive field).
        joint_width: c, the embedding width of one joint (``embed_dim_ratio`` in the reference, 32 there);
            frame tokens are c*J wide. Must be a multiple of ``heads``.
        depth: number of spatial blocks, and of temporal blocks (4 in the reference).
        heads: attention heads of every block (8 in the reference).
        mlp_ratio: MLP hidden width over block width (2 in the reference).
        drop_path: the DropPath rate of the last block of each stack (0.1 in the reference).
    """

    seq2seq = False
    # How part-based wrappers size it (parts/widths.py): the per-joint width, a multiple of `heads`.
    width_argument = "joint_width"
    width_multiple = 1
    heads_argument = "heads"

    def __init__(self, joints: int, frames: int, joint_width: int = 32, depth: int = 4, heads: int = 8,
                 mlp_ratio: float = 2.0, drop_path: float = 0.1):
        if joint_width < 1 or joint_width % heads:
            raise ValueError(f"PoseFormer joint_width must be a positive multiple of heads={heads} (the spatial "
                             f"blocks split it across heads), got joint_width={joint_width}")
        if frames < 1:
            raise ValueError(f"PoseFormer needs frames >= 1, got {frames}")
        super().__init__(joints, frames, receptive_field=frames)
        self.joint_width = joint_width
        frame_width = joint_width * joints
        self.joint_embed = nn.Linear(2, joint_width)
        self.spatial_pos = nn.Parameter(torch.zeros(1, joints, joint_width))
        self.spatial_blocks = nn.Sequential(*transformer_blocks(joint_width, depth, heads, mlp_ratio, drop_path))
        self.spatial_norm = layer_norm(joint_width)
        self.temporal_pos = nn.Parameter(torch.zeros(1, frames, frame_width))
        self.temporal_blocks = nn.Sequential(*transformer_blocks(frame_width, depth, heads, mlp_ratio, drop_path))
        self.temporal_norm = layer_norm(frame_width)
        self.frame_weights = nn.Conv1d(frames, 1, kernel_size=1)
        self.head = nn.Sequential(nn.LayerNorm(frame_width), nn.Linear(frame_width, 3 * joints))

    def forward(self, x2d: torch.Tensor) -> torch.Tensor:
        """Lift 2D windows to 3D.

        Args:
            x2d: (B, L, J, 2) normalized screen coordinates, L >= frames.

        Returns:
            (B, L - frames + 1, J, 3) root-relative poses in metres: the centre frame of each F-frame window.
        """
        self.check_input(x2d)
        windows = self._windows(x2d)
        batch, outputs = x2d.shape[0], windows.shape[0] // x2d.shape[0]
        return self.forward_window(windows).reshape(batch, outputs, self.joints, 3)

    def _windows(self, x2d: torch.Tensor) -> torch.Tensor:
        """(B, L, J, 2) -> (B * (L - F + 1), F, J, 2): every F-frame window, one per output frame."""
        if x2d.shape[1] == self.frames:
            return x2d
        windows = x2d.unfold(1, self.frames, 1)  # (B, L - F + 1, J, 2, F)
        return windows.permute(0, 1, 4, 2, 3).reshape(-1, self.frames, self.joints, 2)

    def forward_window(self, x2d: torch.Tensor) -> torch.Tensor:
        """(B, F, J, 2) windows -> (B, 3J) centre-frame poses, flattened."""
        batch, frames, joints, _ = x2d.shape
        x = self.joint_embed(x2d.reshape(batch * frames, joints, 2)) + self.spatial_pos  # (B*F, J, c)
        x = self.spatial_norm(self.spatial_blocks(x))
        x = x.reshape(batch, frames, joints * self.joint_width) + self.temporal_pos  # (B, F, c*J)
        x = self.temporal_norm(self.temporal_blocks(x))
        x = self.frame_weights(x).squeeze(1)  # (B, c*J): learned weighted mean over frames
        return self.head(x)


@register_lifter
def poseformer(joints: int, frames: int = 27, **model_args) -> PoseFormer:
    """PoseFormer in the reference configuration (joint_width 32, depth 4, 8 heads, MLP ratio 2) unless overridden."""
    return PoseFormer(joints=joints, frames=frames,
                      **dict(dict(joint_width=32, depth=4, heads=8, mlp_ratio=2.0, drop_path=0.1), **model_args))
