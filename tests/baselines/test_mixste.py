"""MixSTE: exact parameter counts, shapes, gradients, stochastic depth, errors, registry and a tiny overfit."""
import numpy as np
import pytest
import torch
from timm.models.vision_transformer import Block

from baselines.mixste import MixSTE, sinusoidal_embedding
from baselines.registry import create_lifter, list_lifters
from bench.skeleton import FLIP_PERMUTATION, NUM_JOINTS

TINY = dict(width=16, depth=2, heads=8)


def count(model):
    return sum(p.numel() for p in model.parameters())



@pytest.mark.parametrize("joints, frames, expected", [
    (17, 243, 33_783_811), (17, 81, 33_700_867), (17, 27, 33_673_219), (134, 27, 33_733_123), (133, 27, 33_732_611),
])
def test_reference_parameter_counts(joints, frames, expected):
    with torch.device("meta"):      # counting needs no memory or initialisation
        model = MixSTE(joints, frames, width=512, depth=8)
    assert count(model) == expected


def test_denoiser_variant_uses_time():
    torch.manual_seed(0)
    model = MixSTE(NUM_JOINTS, 27, in_features=5, time_embedding=True, **TINY)
    tokens = torch.randn(2, 27, NUM_JOINTS, 5)
    early, late = model(tokens, torch.tensor([0, 0])), model(tokens, torch.tensor([900, 900]))
    assert early.shape == (2, 27, NUM_JOINTS, 3)
    assert (early - late).abs().max() > 1e-4
    early.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_sinusoidal_embedding_values():
    emb = sinusoidal_embedding(torch.tensor([0, 5]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    frequencies = 10000.0 ** (-torch.arange(4) / 3)
    torch.testing.assert_close(emb[1], torch.cat([(5 * frequencies).sin(), (5 * frequencies).cos()]))


def test_blocks_are_timm_and_drop_rates_pair_up():
    model = MixSTE(17, 27, width=16, depth=3, drop_path=0.1)
    assert all(isinstance(b, Block) for b in [*model.spatial_blocks, *model.temporal_blocks])
    spatial = [getattr(b.drop_path1, "drop_prob", 0.0) for b in model.spatial_blocks]
    temporal = [getattr(b.drop_path1, "drop_prob", 0.0) for b in model.temporal_blocks]
    np.testing.assert_allclose(spatial, [0.0, 0.05, 0.1])
    assert spatial == temporal
    assert model.spatial_norm.eps == 1e-6 and model.spatial_blocks[0].norm1.eps == 1e-6


def test_eval_is_deterministic_and_train_is_not():
    torch.manual_seed(0)
    model = MixSTE(17, 27, width=16, depth=4, drop_path=0.5)
    x2d = torch.randn(2, 27, 17, 2)
    model.eval()
    assert torch.equal(model(x2d), model(x2d))
    model.train()
    assert (model(x2d) - model(x2d)).abs().max() > 0


def test_bad_input_raises():
    model = MixSTE(17, 27, **TINY)
    with pytest.raises(ValueError, match=r"expected \(B, 27, 17, 2\), got \(1, 27, 16, 2\)"):
        model(torch.zeros(1, 27, 16, 2))
    with pytest.raises(ValueError, match="no time embedding"):
        model(torch.zeros(1, 27, 17, 2), torch.zeros(1, dtype=torch.long))
    denoiser = MixSTE(17, 27, in_features=5, time_embedding=True, **TINY)
    with pytest.raises(ValueError, match="needs diffusion steps"):
        denoiser(torch.zeros(1, 27, 17, 5))
    with pytest.raises(ValueError, match="divisible by heads=8"):
        MixSTE(17, 27, width=20)


def test_bf16_autocast():
    torch.manual_seed(0)
    model = MixSTE(NUM_JOINTS, 27, **TINY)
    x2d = torch.randn(1, 27, NUM_JOINTS, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x2d)
        loss = model.loss(x2d, torch.zeros(1, 27, NUM_JOINTS, 3))
    loss.backward()
    assert out.shape == (1, 27, NUM_JOINTS, 3) and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), model(x2d), atol=0.05, rtol=0.05)


def test_registered_with_yaml_defaults():
    assert "mixste" in list_lifters()
    model = create_lifter("mixste", joints=NUM_JOINTS, frames=27, width=16, depth=2)
    assert isinstance(model, MixSTE) and model.seq2seq and not model.generative
    assert model.spatial_blocks[0].mlp.fc1.out_features == 32      # mlp_ratio 2 from the YAML
    assert len(model.spatial_blocks) == 2 and model.spatial_blocks[1].drop_path1.drop_prob == pytest.approx(0.1)
    pred = model.eval().predict(torch.randn(2, 27, NUM_JOINTS, 2), flip_permutation=torch.as_tensor(FLIP_PERMUTATION))
    assert pred.shape == (2, 1, 27, NUM_JOINTS, 3)
