"""Tests of the PoseFormer lifter: closed-form size, shapes, sliding windows, flip TTA, fitting, errors."""
import pytest
import torch
from timm.models.vision_transformer import Block

from baselines.poseformer import PoseFormer  # importing the module registers "poseformer"
from baselines.registry import create_lifter
from bench.skeleton import NUM_JOINTS

pytestmark = pytest.mark.usefixtures("single_thread")


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def closed_form(joints: int, frames: int) -> int:
    """The reference parameter count at joint_width 32."""
    return 32_864 * joints ** 2 + (1_571 + 32 * frames) * joints + 34_337 + frames


def tiny(joints: int = NUM_JOINTS, frames: int = 27, **kwargs) -> PoseFormer:
    torch.manual_seed(0)
    return create_lifter("poseformer", joints=joints, frames=frames, **dict(dict(joint_width=8, depth=1), **kwargs))


def test_reference_parameter_count():
    model = create_lifter("poseformer", joints=17, frames=81, joint_width=32)
    assert count(model) == 9_602_885 == closed_form(17, 81)


@pytest.mark.parametrize("joints, frames", [(3, 1), (5, 9), (17, 27), (24, 3)])
def test_parameter_count_follows_closed_form(joints, frames):
    assert count(PoseFormer(joints, frames, joint_width=32)) == closed_form(joints, frames)


def test_whole_body_default_width_from_config():
    model = create_lifter("poseformer", joints=NUM_JOINTS, frames=27)
    assert model.joint_width == 8
    assert count(model) == 37_289_174


def test_reference_structure():
    model = PoseFormer(joints=5, frames=9, joint_width=16)
    blocks = list(model.spatial_blocks) + list(model.temporal_blocks)
    assert len(blocks) == 8 and all(isinstance(block, Block) for block in blocks)
    assert model.temporal_blocks[0].mlp.fc1.out_features == 2 * 16 * 5
    assert model.temporal_blocks[0].attn.num_heads == 8 and model.temporal_blocks[0].norm1.eps == 1e-6
    rates = [getattr(block.drop_path1, "drop_prob", 0.0) for block in model.spatial_blocks]  # rate 0: Identity
    assert rates == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1])
    assert model.spatial_pos.abs().sum() == 0 and model.temporal_pos.abs().sum() == 0
    assert model.temporal_pos.shape == (1, 9, 80) and model.receptive_field == 9 and not model.seq2seq


def test_width_must_split_across_heads():
    with pytest.raises(ValueError, match="multiple of heads=8.*joint_width=12"):
        tiny(joint_width=12)


def test_longer_input_slides_one_window_per_output():
    model = tiny(joints=6, frames=9).eval()
    x = torch.randn(2, 13, 6, 2)
    out = model(x)
    assert out.shape == (2, 13 - 9 + 1, 6, 3)
    windows = torch.cat([model(x[:, t:t + 9]) for t in range(5)], dim=1)
    torch.testing.assert_close(out, windows, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, message", [((2, 9, 7, 2), r"\(B, N, 6, 2\)"), ((2, 9, 6, 3), r"\(B, N, 6, 2\)"),
                                            ((2, 8, 6, 2), "9 frames, got 8"), ((9, 6, 2), r"\(B, N, 6, 2\)")])
def test_bad_input_shapes_raise(shape, message):
    with pytest.raises(ValueError, match=message):
        tiny(joints=6, frames=9)(torch.randn(*shape))
