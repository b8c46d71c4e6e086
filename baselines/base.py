"""The one interface every lifter follows, so training and evaluation never need to know which model they have.

Shapes: ``B`` windows, ``N`` frames, ``J`` joints, ``H`` hypotheses. 2D inputs are normalized screen coordinates
(B, N, J, 2); 3D targets are root-relative camera-frame poses in metres (B, N, J, 3).

Window geometry: a *seq2seq* lifter (MixSTE, D3DP) maps N input frames to N output frames. Any other lifter
(VideoPose, PoseFormer) needs ``receptive_field`` input frames per output frame and maps an input of length
``L >= receptive_field`` to ``L - receptive_field + 1`` outputs, the first aligned with input frame
``(receptive_field - 1) // 2``. The data code pads and slides windows from these two attributes alone.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def flip_pose(x, permutation=None):
    """Mirror (..., J, C) poses left-right, the one mirroring of the project: negate x (the first coordinate) and,
    with ``permutation`` (a mirror-pair swap of the J joints), reorder the joints.

    Works on torch tensors and numpy arrays, 2D (normalized screen coordinates, centred on 0) or 3D (camera frame);
    returns a new array. Flipping twice with a pair-swapping permutation is the identity.
    """
    if permutation is not None:
        x = x[..., permutation, :]
    if isinstance(x, np.ndarray):
        return np.concatenate([-x[..., :1], x[..., 1:]], axis=-1)
    return torch.cat([-x[..., :1], x[..., 1:]], dim=-1)


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint L2 error over every window, frame and joint (the training loss of all four baselines)."""
    return (pred - target).norm(dim=-1).mean()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (buffers such as BatchNorm statistics are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

class Lifter(nn.Module):
    """Base class of every lifter.

    Attributes:
        joints: J, the number of joints of the input and output.
        frames: N, the window length the lifter is built for.
        receptive_field: input frames needed per output frame (equals ``frames`` for seq2seq lifters).
        seq2seq: whether every input frame gets an output frame.
        generative: whether ``predict`` samples several hypotheses (diffusion).
    """

    seq2seq: bool = True
    generative: bool = False

    def __init__(self, joints: int, frames: int, receptive_field: int | None = None):
        super().__init__()
        self.joints = joints
        self.frames = frames
        self.receptive_field = receptive_field or frames

    def output_frames(self, input_frames: int) -> int:
        """How many frames an input window of ``input_frames`` frames predicts."""
        return input_frames if self.seq2seq else input_frames - self.receptive_field + 1

    def target_frames(self, y3d: torch.Tensor) -> torch.Tensor:
        """The frames of a (B, L, J, 3) target window that the prediction covers."""
        if self.seq2seq:
            return y3d
        start = (self.receptive_field - 1) // 2
        return y3d[:, start:start + self.output_frames(y3d.shape[1])]

    def check_input(self, x2d: torch.Tensor) -> None:
        if x2d.ndim != 4 or x2d.shape[2] != self.joints or x2d.shape[3] != 2:
            raise ValueError(f"{type(self).__name__} expects 2D input (B, N, {self.joints}, 2), got {tuple(x2d.shape)}")
        if x2d.shape[1] < self.receptive_field or (self.seq2seq and x2d.shape[1] != self.frames):
            raise ValueError(f"{type(self).__name__} needs windows of {self.receptive_field} frames"
                             f"{'' if not self.seq2seq else ' exactly'}, got {x2d.shape[1]}")

    def training_pair(self, x2d: torch.Tensor, y3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the training loss compares: (prediction, target), both (B, N_out, J, 3).

        2D windows (B, L, J, 2) and root-relative 3D targets (B, L, J, 3) in; a generative lifter returns its
        training-time estimate (e.g. the denoiser's clean estimate at a random diffusion step). Wrappers such as
        the part-based one compute their own losses on this pair.
        """
        return self(x2d), self.target_frames(y3d)

    def loss(self, x2d: torch.Tensor, y3d: torch.Tensor) -> torch.Tensor:
        """Training loss on one batch: MPJPE of :meth:`training_pair`."""
        return mpjpe_loss(*self.training_pair(x2d, y3d))

    @torch.no_grad()
    def predict(self, x2d: torch.Tensor, hypotheses: int = 1, steps: int = 1,
                flip_permutation: torch.Tensor | None = None) -> torch.Tensor:
        """Predict (B, H, N_out, J, 3); deterministic lifters return H = 1 and ignore ``steps``.

        With ``flip_permutation`` the prediction on the mirrored input, mirrored back, is averaged in (flip TTA).
        """
        if hypotheses != 1:
            raise ValueError(f"{type(self).__name__} is deterministic: it predicts 1 hypothesis, not {hypotheses}")
        if flip_permutation is None:
            return self(x2d).unsqueeze(1)
        both = self(torch.cat([x2d, flip_pose(x2d, flip_permutation)]))
        plain, mirrored = both.chunk(2)
        return ((plain + flip_pose(mirrored, flip_permutation)) / 2).unsqueeze(1)
