"""Tests of the VideoPose lifter: reference sizes, shapes, strided/dilated equivalence, flip TTA, fitting, errors."""
import pytest
import torch

from baselines.registry import create_lifter
from baselines.videopose import VideoPose  # importing the module registers "videopose"
from bench.skeleton import NUM_JOINTS

pytestmark = pytest.mark.usefixtures("single_thread")


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(joints: int = NUM_JOINTS, frames: int = 27, **kwargs) -> VideoPose:
    torch.manual_seed(0)
    return create_lifter("videopose", joints=joints, frames=frames, **dict(dict(channels=32), **kwargs))


@pytest.mark.parametrize("frames, expected", [(27, 8_555_571), (81, 12_753_971), (243, 16_952_371)])
def test_reference_parameter_counts_at_17_joints(frames, expected):
    assert count(create_lifter("videopose", joints=17, frames=frames)) == expected


def test_each_joint_adds_9219_parameters():
    assert count(create_lifter("videopose", joints=NUM_JOINTS, frames=27)) == 8_555_571 + (NUM_JOINTS - 17) * 9_219


@pytest.mark.parametrize("frames, widths", [(27, (3, 3, 3)), (81, (3, 3, 3, 3)), (243, (3, 3, 3, 3, 3))])
def test_frames_select_reference_widths(frames, widths):
    model = tiny(frames=frames)
    assert model.filter_widths == widths
    assert model.receptive_field == frames and model.frames == frames
    assert not model.seq2seq


def test_unsupported_frames_list_supported_ones():
    with pytest.raises(ValueError, match=r"\[27, 81, 243\].*frames=50"):
        tiny(frames=50)


def test_explicit_widths_allow_other_receptive_fields():
    model = tiny(joints=5, frames=15, filter_widths=[5, 3])
    assert model.filter_widths == (5, 3) and model.receptive_field == 15
    assert model(torch.randn(2, 20, 5, 2)).shape == (2, 6, 5, 3)


@pytest.mark.parametrize("widths, frames, message", [((3, 3), 27, "receptive field of 9"),
                                                     ((2, 3), 6, "odd positive integers")])
def test_bad_widths_are_rejected(widths, frames, message):
    with pytest.raises(ValueError, match=message):
        tiny(frames=frames, filter_widths=widths)


def test_longer_input_gives_one_output_per_extra_frame():
    model = tiny(joints=7).eval()
    assert model(torch.randn(2, 40, 7, 2)).shape == (2, 40 - 27 + 1, 7, 3)
    assert model.output_frames(40) == 14


def test_strided_equals_dilated_on_one_receptive_field():
    model = tiny(joints=7, frames=81, dropout=0.0).eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, so eval-mode BN is not the identity
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 81, 7, 2)
    model.strided = False
    dilated = model(x)
    model.strided = True
    strided = model(x)
    assert strided.shape == dilated.shape == (4, 1, 7, 3)
    torch.testing.assert_close(strided, dilated, rtol=1e-5, atol=1e-5)


def test_dilated_output_frames_match_strided_windows():
    model = tiny(joints=5, dropout=0.0).eval()
    x = torch.randn(2, 33, 5, 2)
    dilated = model(x)
    model.strided = None  # automatic: strided exactly when a window is one receptive field

    windows = torch.cat([model(x[:, t:t + 27]) for t in range(33 - 27 + 1)], dim=1)
    torch.testing.assert_close(windows, dilated, rtol=1e-5, atol=1e-5)


def test_strided_mode_requires_exact_window():
    model = tiny(joints=5, strided=True)
    with pytest.raises(ValueError, match="exactly 27 frames, got 30"):
        model(torch.randn(1, 30, 5, 2))


def test_set_bn_momentum_reaches_every_batchnorm():
    model = tiny(joints=5)
    model.set_bn_momentum(0.001)
    momenta = [m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert momenta == [0.001] * 5  # expand + two per further width
    with pytest.raises(ValueError, match="momentum must be in"):
        model.set_bn_momentum(0.0)


@pytest.mark.parametrize("shape, message", [((2, 27, 6, 2), r"\(B, N, 5, 2\)"), ((2, 27, 5, 3), r"\(B, N, 5, 2\)"),
                                            ((2, 20, 5, 2), "27 frames, got 20"), ((27, 5, 2), r"\(B, N, 5, 2\)")])
def test_bad_input_shapes_raise(shape, message):
    with pytest.raises(ValueError, match=message):
        tiny(joints=5)(torch.randn(*shape))
