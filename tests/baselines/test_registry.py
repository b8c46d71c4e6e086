"""The lifter registry, and the one interface every registered lifter follows (parametrized over list_lifters)."""
import pytest
import torch

import baselines
from baselines import registry
from baselines.base import flip_pose
from bench.skeleton import FLIP_PERMUTATION, NUM_JOINTS


def test_every_registered_lifter_has_a_tiny_test_config(tiny_args):
    assert set(baselines.list_lifters()) <= set(tiny_args), "add the new lifter to tests/conftest.py"


def test_list_filters_and_sorts():
    assert baselines.list_lifters("*p*") == sorted(n for n in baselines.list_lifters() if "p" in n)
    assert baselines.list_lifters("nothing*") == []


def test_unknown_name_lists_the_registered_lifters():
    with pytest.raises(KeyError, match=r"unknown lifter 'foo'; registered lifters: d3dp, mixste"):
        baselines.create_lifter("foo", joints=17)


def test_duplicate_registration_is_refused():
    def mixste(joints, frames):
        return None

    with pytest.raises(ValueError, match="already registered"):
        registry.register_lifter(mixste)


def test_none_overrides_keep_the_yaml_defaults():
    with torch.device("meta"):
        model = baselines.create_lifter("mixste", joints=17, width=None, depth=2)
    assert model.spatial_blocks[0].norm1.normalized_shape == (baselines.model_defaults("mixste")["width"],)
    assert len(model.spatial_blocks) == 2


def test_train_defaults_hold_the_recipe():
    for name in baselines.list_lifters():
        recipe = baselines.train_defaults(name)
        assert {"optimizer", "lr", "lr_decay", "batch_size", "epochs"} <= set(recipe), name


@pytest.mark.parametrize("name", baselines.list_lifters())
def test_common_interface_at_whole_body_size(name, tiny_args):
    torch.manual_seed(0)
    model = baselines.create_lifter(name, joints=NUM_JOINTS, frames=27, **tiny_args[name])
    length = model.receptive_field if model.seq2seq else model.receptive_field + 2
    x2d, y3d = torch.randn(2, length, NUM_JOINTS, 2), torch.randn(2, length, NUM_JOINTS, 3) * 0.1
    loss = model.loss(x2d, y3d)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters()), "every parameter must receive a gradient"
    model.eval()
    hypotheses = 3 if model.generative else 1
    pred = model.predict(x2d, hypotheses=hypotheses, steps=2, flip_permutation=torch.as_tensor(FLIP_PERMUTATION))
    assert pred.shape == (2, hypotheses, model.output_frames(length), NUM_JOINTS, 3)
    assert torch.isfinite(pred).all()


@pytest.mark.parametrize("frames", [27, 81])
@pytest.mark.parametrize("name", ["videopose", "poseformer", "mixste"])
def test_forward_backward_at_whole_body_size(name, frames, tiny_args):
    torch.manual_seed(0)
    model = baselines.create_lifter(name, joints=NUM_JOINTS, frames=frames, **tiny_args[name]).train()
    x2d = torch.randn(2, frames, NUM_JOINTS, 2)
    out = model(x2d)
    assert out.shape == (2, frames if model.seq2seq else 1, NUM_JOINTS, 3) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    model.loss(x2d, torch.randn(2, frames, NUM_JOINTS, 3)).backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), f"{name}.{parameter_name}"
        assert parameter.grad.abs().sum() > 0, f"{name}.{parameter_name}"


@pytest.mark.parametrize("name, joints, frames, args", [
    ("videopose", 17, 27, {"channels": 32, "dropout": 0.0}),
    ("poseformer", 6, 9, {"joint_width": 8, "depth": 1, "drop_path": 0.0}),
    ("mixste", 8, 27, {"width": 32, "depth": 2, "drop_path": 0.0}),
])
def test_tiny_model_overfits_fixed_windows(name, joints, frames, args, single_thread):
    torch.manual_seed(0)
    model = baselines.create_lifter(name, joints=joints, frames=frames, **args)
    x2d = torch.randn(4, frames, joints, 2)
    y3d = 0.3 * torch.tanh(x2d @ torch.randn(2, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.loss(x2d, y3d).item()
    for _ in range(200):
        loss = model.loss(x2d, y3d)
        if loss.item() < first / 10:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.loss(x2d, y3d).item() < first / 10


@pytest.mark.parametrize("name", ["videopose", "poseformer", "mixste"])
def test_deterministic_lifters_refuse_several_hypotheses(name, tiny_args):
    model = baselines.create_lifter(name, joints=134, **tiny_args[name]).eval()
    x2d = torch.randn(1, model.receptive_field, NUM_JOINTS, 2)
    with pytest.raises(ValueError, match="deterministic"):
        model.predict(x2d, hypotheses=4)


@pytest.mark.parametrize("name", ["videopose", "poseformer"])
def test_receptive_field_lifters_flip_tta_shape_and_equivariance(name, tiny_args):
    torch.manual_seed(0)
    model = baselines.create_lifter(name, joints=NUM_JOINTS, **tiny_args[name]).eval()
    permutation = torch.as_tensor(FLIP_PERMUTATION, dtype=torch.long)
    x = torch.randn(2, model.receptive_field + 2, NUM_JOINTS, 2)
    pred = model.predict(x, flip_permutation=permutation)
    assert pred.shape == (2, 1, 3, NUM_JOINTS, 3)
    mirrored = model.predict(flip_pose(x, permutation), flip_permutation=permutation)
    torch.testing.assert_close(mirrored, flip_pose(pred, permutation), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["videopose", "poseformer"])
def test_receptive_field_lifters_run_under_bf16_autocast_on_cpu(name, tiny_args):
    model = baselines.create_lifter(name, joints=5, **tiny_args[name]).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, model.receptive_field, 5, 2))
    assert out.shape == (2, 1, 5, 3) and torch.isfinite(out.float()).all()
