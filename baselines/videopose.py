"""VideoPose: dilated temporal convolutions that lift a window of 2D poses to the 3D pose of its centre frame.

Pavllo, Feichtenhofer, Grangier and Auli, "3D human pose estimation in video with temporal convolutions and
semi-supervised training", CVPR 2019 (https://arxiv.org/abs/1811.11742).

Architecture. The (B, L, J, 2) input is read as 2J channels over L frames. An *expand* convolution (kernel w0, no
bias) maps them to C channels; each further filter width w_i adds a block of a dilated convolution (kernel w_i,
dilation w0*...*w_{i-1}) and a 1x1 convolution, each followed by BatchNorm, ReLU and Dropout, around a residual
cropped to the block's output length; a 1x1 *shrink* convolution with bias gives 3J channels. The receptive field
is the product of the widths, and an input of L frames gives L - RF + 1 output frames.

Two ways to run the same weights. *Dilated* mode slides over any L >= RF frames in one pass, which is how whole
sequences are evaluated. *Strided* mode replaces every dilation by a stride equal to the kernel width; on a window
of exactly RF frames it gives the same output as dilated mode while skipping the intermediate frames that a single
output never uses, which makes training on single-output windows much cheaper. Both modes read the very same
``nn.Conv1d`` weights, so switching never copies anything. By default (``model.strided = None``) a window of exactly
RF frames runs strided and longer inputs run dilated; True or False forces one mode.

Model card (C = 1024, dropout 0.25, widths of 3):

====================  =============  ==============
receptive field       J = 17         J = 134
====================  =============  ==============
27  (3, 3, 3)         8,555,571      9,634,194
81  (3, 3, 3, 3)      12,753,971     13,832,594
243 (3, 3, 3, 3, 3)   16,952,371     18,030,994
====================  =============  ==============

Each joint adds 2 * w0 * C input weights and 3C + 3 shrink weights (9,219 at C = 1024, w0 = 3).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.base import Lifter
from baselines.registry import register_lifter

FILTER_WIDTHS: dict[int, tuple[int, ...]] = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}
"""The reference filter widths for each supported receptive field (frames)."""


def filter_widths_for(frames: int) -> tuple[int, ...]:
    """The reference filter widths whose product is ``frames``.

    Raises:
        ValueError: ``frames`` is not one of the receptive fields in ``FILTER_WIDTHS``.
    """
    if frames not in FILTER_WIDTHS:
        raise ValueError(f"VideoPose supports frames in {sorted(FILTER_WIDTHS)} (receptive fields of its reference "
                         f"filter widths), got frames={frames}; pass filter_widths explicitly for another one")
    return FILTER_WIDTHS[frames]


def _conv(layer: nn.Conv1d, x: torch.Tensor, strided: bool) -> torch.Tensor:
    """Apply ``layer`` as built (dilated) or with stride = kernel width and no dilation (strided)."""
    if not strided:
        return layer(x)
    return F.conv1d(x, layer.weight, layer.bias, stride=layer.kernel_size[0])


class TemporalBlock(nn.Module):
    """A dilated convolution and a 1x1 convolution (each + BatchNorm/ReLU/Dropout) around a cropped residual.

    Args:
        channels: C, the width of the block's input and output.
        width: kernel size of the dilated convolution (odd, so that the output stays centred).
        dilation: its dilation, the product of all earlier widths.
        dropout: dropout probability after each ReLU.
    """

    def __init__(self, channels: int, width: int, dilation: int, dropout: float):
        super().__init__()
        self.width = width
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, channels, width, dilation=dilation, bias=False)
        self.conv_bn = nn.BatchNorm1d(channels)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)
        self.pointwise_bn = nn.BatchNorm1d(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, strided: bool = False) -> torch.Tensor:
        """(B, C, T) -> (B, C, T - (width - 1) * dilation), or (B, C, T / width) when strided."""
        if strided:
            # The centre frame of each group of `width` frames the strided kernel merges.
            residual = x[:, :, self.width // 2::self.width]
        else:
            crop = (self.width - 1) * self.dilation // 2
            residual = x[:, :, crop:x.shape[2] - crop]
        y = self.drop(F.relu(self.conv_bn(_conv(self.conv, x, strided))))
        y = self.drop(F.relu(self.pointwise_bn(self.pointwise(y))))
        return residual + y


def _check_widths(widths: tuple[int, ...], frames: int) -> None:
    """Raise a ValueError unless ``widths`` are odd positive integers whose product is ``frames``."""
    if not widths or any(not isinstance(w, int) or w < 1 or w % 2 == 0 for w in widths):
        raise ValueError(f"VideoPose filter_widths must be odd positive integers (odd keeps the output centred), "
                         f"got {widths}")
    if math.prod(widths) != frames:
        raise ValueError(f"VideoPose filter_widths {widths} give a receptive field of {math.prod(widths)} frames, "
                         f"but frames={frames}; pass frames equal to their product")


class VideoPose(Lifter):
    """The VideoPose temporal convolutional lifter (not seq2seq: L input frames give L - RF + 1 outputs).

    Args:
        joints: J, joints of the input and output (e.g. 17 for Human3.6M, 134 for the whole-body layout).
        frames: the receptive field RF; selects the reference widths (27, 81 or 243) unless ``filter_widths``
            is given, in which case it must equal their product.
        filter_widths: odd kernel widths, e.g. (3, 3, 3); the receptive field is their product.
        channels: C, the width of every hidden layer (1024 in the reference).
        dropout: dropout probability after every ReLU (0.25 in the reference).
        bn_momentum: initial BatchNorm momentum; training decays it with ``set_bn_momentum``.
        strided: None (automatic), True or False to force a mode (see the module docstring); the ``strided``
            attribute can be changed at any time.
    """

    seq2seq = False
    # How part-based wrappers size it (parts/widths.py): any channel count.
    width_argument = "channels"
    width_multiple = 1
    heads_argument = None

    def __init__(self, joints: int, frames: int, filter_widths: tuple[int, ...] | None = None,
                 channels: int = 1024, dropout: float = 0.25, bn_momentum: float = 0.1, strided: bool | None = None):
        widths = tuple(filter_widths) if filter_widths is not None else filter_widths_for(frames)
        _check_widths(widths, frames)
        super().__init__(joints, frames, receptive_field=math.prod(widths))
        self.filter_widths = widths
        self.strided = strided
        self.expand = nn.Conv1d(2 * joints, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels)
        self.drop = nn.Dropout(dropout)
        dilations = [math.prod(widths[:i]) for i in range(1, len(widths))]
        self.blocks = nn.ModuleList(TemporalBlock(channels, width, dilation, dropout)
                                    for width, dilation in zip(widths[1:], dilations))
        self.shrink = nn.Conv1d(channels, 3 * joints, 1)
        self.set_bn_momentum(bn_momentum)

    def set_bn_momentum(self, momentum: float) -> None:
        """Set the momentum of every BatchNorm layer (the reference decays it from 0.1 to 0.001 over training)."""
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"BatchNorm momentum must be in (0, 1], got {momentum}")
        for module in self.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.momentum = momentum

    def forward(self, x2d: torch.Tensor) -> torch.Tensor:
        """Lift 2D windows to 3D.

        Args:
            x2d: (B, L, J, 2) normalized screen coordinates, L >= receptive_field (L == receptive_field when
                strided).

        Returns:
            (B, L - receptive_field + 1, J, 3) root-relative poses in metres, the first aligned with input
            frame (receptive_field - 1) // 2.
        """
        self.check_input(x2d)
        batch, length, joints, _ = x2d.shape
        strided = length == self.receptive_field if self.strided is None else self.strided
        if strided and length != self.receptive_field:
            raise ValueError(f"VideoPose in strided mode needs windows of exactly {self.receptive_field} frames, "
                             f"got {length}; switch to dilated mode (strided = False) for longer inputs")
        x = x2d.reshape(batch, length, 2 * joints).transpose(1, 2)  # (B, 2J, L)
        x = self.drop(F.relu(self.expand_bn(_conv(self.expand, x, strided))))
        for block in self.blocks:
            x = block(x, strided)
        x = self.shrink(x)  # (B, 3J, L - RF + 1)
        return x.transpose(1, 2).reshape(batch, -1, joints, 3)


@register_lifter
def videopose(joints: int, frames: int = 27, **model_args) -> VideoPose:
    """VideoPose with the reference widths for ``frames`` (27, 81 or 243), C = 1024 and dropout 0.25."""
    return VideoPose(joints=joints, frames=frames, **dict(dict(channels=1024, dropout=0.25), **model_args))
