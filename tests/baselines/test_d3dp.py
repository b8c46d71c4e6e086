"""D3DP: exact and closed-form parameter counts, shapes, gradients, whole-body flip TTA, registry, overfit."""
import pytest
import torch

from baselines.base import flip_pose
from baselines.d3dp import D3DP
from baselines.diffusion import GaussianDiffusion
from baselines.mixste import MixSTE
from baselines.registry import create_lifter, list_lifters
from bench.skeleton import FLIP_PERMUTATION, NUM_JOINTS

TINY = dict(width=16, depth=2, heads=8)
PERMUTATION = torch.as_tensor(FLIP_PERMUTATION)


def count(model):
    return sum(p.numel() for p in model.parameters())


def closed_form(joints, frames, width, depth):
    """(16D + 4) C^2 + (22D + 18 + J + F) C + 3, read off the reference classes."""
    return (16 * depth + 4) * width ** 2 + (22 * depth + 18 + joints + frames) * width + 3



@pytest.mark.parametrize("joints, frames, expected", [(17, 243, 34_835_459), (NUM_JOINTS, 27, 34_784_771)])
def test_reference_parameter_counts(joints, frames, expected):
    with torch.device("meta"):      # counting needs no memory or initialisation
        model = D3DP(joints, frames, width=512, depth=8)
    assert count(model) == expected == closed_form(joints, frames, 512, 8)


@pytest.mark.parametrize("joints, frames, width, depth", [
    (5, 9, 16, 1), (17, 27, 32, 2), (24, 27, 384, 8), (42, 81, 64, 3), (NUM_JOINTS, 27, 24, 4),
])
def test_closed_form_parameter_count(joints, frames, width, depth):
    with torch.device("meta"):
        model = D3DP(joints, frames, width=width, depth=depth)
    assert count(model) == closed_form(joints, frames, width, depth)


def test_holds_a_mixste_denoiser_inside_the_diffusion():
    model = D3DP(17, 27, **TINY)
    assert isinstance(model.diffusion, GaussianDiffusion)
    net = model.diffusion.denoiser.net
    assert isinstance(net, MixSTE) and net.in_features == 5 and net.time_embed is not None
    assert model.generative and model.seq2seq
    assert model.diffusion.timesteps == 1000 and model.diffusion.scale == 1.0


@pytest.mark.parametrize("frames", [27, 81])
def test_shapes_and_gradients_whole_body(frames):
    torch.manual_seed(0)
    model = D3DP(NUM_JOINTS, frames, **TINY)
    x2d, y3d = torch.randn(2, frames, NUM_JOINTS, 2), 0.3 * torch.randn(2, frames, NUM_JOINTS, 3)
    loss = model.loss(x2d, y3d)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    model.eval()
    pred = model.predict(x2d, hypotheses=3, steps=2, flip_permutation=PERMUTATION)
    assert pred.shape == (2, 3, frames, NUM_JOINTS, 3) and pred.dtype == torch.float32
    assert torch.isfinite(pred).all() and pred.abs().max() <= 1.1
    assert model(x2d).shape == (2, frames, NUM_JOINTS, 3)


def test_whole_body_flip_tta_is_mirror_equivariant():
    torch.manual_seed(0)
    model = D3DP(NUM_JOINTS, 27, **TINY).eval()
    x2d, noise = torch.randn(1, 27, NUM_JOINTS, 2), torch.randn(3, 1, 2, 27, NUM_JOINTS, 3)
    sample = model.diffusion.sample
    flipped_in = sample(flip_pose(x2d, FLIP_PERMUTATION), hypotheses=2, steps=3,
                        noise=flip_pose(noise, FLIP_PERMUTATION), flip_permutation=FLIP_PERMUTATION)
    plain = sample(x2d, hypotheses=2, steps=3, noise=noise, flip_permutation=FLIP_PERMUTATION)
    torch.testing.assert_close(flipped_in, flip_pose(plain, FLIP_PERMUTATION))


def test_seeded_predict_is_reproducible():
    torch.manual_seed(0)
    model = D3DP(17, 27, **TINY).eval()
    x2d = torch.randn(2, 27, 17, 2)

    def draw(seed):
        return model.predict(x2d, hypotheses=2, steps=2, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(3), draw(3)) and (draw(3) - draw(4)).abs().max() > 1e-4


def test_bad_input_raises():
    model = D3DP(17, 27, **TINY)
    with pytest.raises(ValueError, match=r"expects 2D input \(B, N, 17, 2\), got \(1, 27, 17, 3\)"):
        model.predict(torch.zeros(1, 27, 17, 3))
    with pytest.raises(ValueError, match="27 frames exactly, got 9"):
        model.loss(torch.zeros(1, 9, 17, 2), torch.zeros(1, 9, 17, 3))


def test_bf16_autocast():
    torch.manual_seed(0)
    model = D3DP(NUM_JOINTS, 27, **TINY)
    x2d = torch.randn(1, 27, NUM_JOINTS, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(x2d, 0.3 * torch.randn(1, 27, NUM_JOINTS, 3))
        pred = model.eval().predict(x2d, hypotheses=2, steps=2, flip_permutation=PERMUTATION)
    loss.backward()
    assert torch.isfinite(loss) and pred.shape == (1, 2, 27, NUM_JOINTS, 3) and torch.isfinite(pred).all()
    assert pred.dtype == torch.float32      # the chain keeps the state's dtype under autocast


def test_registered_with_yaml_defaults():
    assert "d3dp" in list_lifters()
    model = create_lifter("d3dp", joints=NUM_JOINTS, frames=27, width=16, depth=2)
    assert isinstance(model, D3DP) and model.joints == NUM_JOINTS and model.frames == 27
    assert model.diffusion.timesteps == 1000 and model.diffusion.scale == 1.0
    assert model.diffusion.denoiser.net.spatial_blocks[0].mlp.fc1.out_features == 32   # mlp_ratio 2


def test_overfits_fixed_windows(single_thread):
    torch.manual_seed(0)
    x2d = torch.randn(2, 27, 8, 2)
    y3d = 0.3 * torch.tanh(x2d @ torch.randn(2, 3))
    model = D3DP(8, 27, width=32, depth=2, drop_path=0.0)
    t = torch.tensor([0, 250, 500, 999])

    def held_out_loss():
        """The loss at fixed steps and noise, so that start and end are scored on the same draws."""
        with torch.no_grad():
            return model.diffusion.loss(x2d.repeat(2, 1, 1, 1), y3d.repeat(2, 1, 1, 1), t=t,
                                        generator=torch.Generator().manual_seed(0)).item()

    first = held_out_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(250):
        loss = model.loss(x2d, y3d)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert held_out_loss() < first / 10
