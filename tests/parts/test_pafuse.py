"""PAFUSE as a composition of part_based("d3dp"): exact parameter counts, defaults, overrides, registration."""
import subprocess
import sys

import pytest
import torch

import baselines
from baselines.d3dp import D3DP
from baselines.mixste import MixSTE
from bench.skeleton import NUM_JOINTS
from parts.wrapper import PartLifter, PartSplit, part_counts


def meta_pafuse(**overrides):
    with torch.device("meta"):
        return baselines.create_lifter("pafuse", joints=NUM_JOINTS, frames=27, **overrides)


def test_reference_settings_have_exactly_the_reference_parameter_count():
    """facts section 8: body w384 J24 + hands w256 J42 + face w224 J68 = 34,964,329."""
    model = meta_pafuse(attach="reference", hands="joint", widths={"body": 384, "face": 224, "hands": 256}, depth=8)
    assert part_counts(model) == {"body": 19_558_275, "face": 6_687_971, "hands": 8_718_083, "total": 34_964_329}


def test_default_pafuse():
    model = meta_pafuse()
    assert isinstance(model, PartLifter) and model.generative and model.seq2seq
    assert model.layout.attach == "roots" and model.layout.shift
    assert model.widths == {"body": 384, "face": 224, "hands": 256}
    assert model.loss_space == "part" and model.error == "mpjpe" and model.weights is None
    # Three anchor tokens of width 384 on top of the reference model.
    assert part_counts(model)["total"] == 34_964_329 + 3 * 384
    assert isinstance(model.inner, D3DP) and isinstance(model.inner.diffusion.denoiser, PartSplit)
    assert model.inner.diffusion.timesteps == 1000 and model.inner.diffusion.scale == 1.0
    networks = model.part_networks()
    assert {part: net.net.joints for part, net in networks.items()} == {"body": 27, "face": 68, "hands": 42}
    assert all(isinstance(net.net, MixSTE) and len(net.net.spatial_blocks) == 8 for net in networks.values())


@pytest.mark.parametrize("overrides, check", [
    (dict(loss="wb"), lambda m: m.loss_space == "wb"),
    (dict(error="mse"), lambda m: m.error == "mse"),
    (dict(widths="uniform"), lambda m: m.widths == {"body": 288, "face": 288, "hands": 288}),
    (dict(hands="shared"), lambda m: m.part_networks()["hands"].net.joints == 21),
    (dict(split=False), lambda m: m.part_networks() == {} and m.weights is not None),
    (dict(shift=False), lambda m: m.layout.joints == NUM_JOINTS),
    (dict(frames=81), lambda m: m.frames == 81),
])
def test_overrides_select_the_ablations(overrides, check):
    frames = overrides.pop("frames", 27)
    with torch.device("meta"):
        model = baselines.create_lifter("pafuse", joints=NUM_JOINTS, frames=frames, **overrides)
    assert check(model)


def test_training_recipe_is_d3dps():
    recipe = baselines.train_defaults("pafuse")
    assert {key: recipe[key] for key in ("optimizer", "lr", "lr_decay", "weight_decay", "epochs")} == {
        key: baselines.train_defaults("d3dp")[key] for key in ("optimizer", "lr", "lr_decay", "weight_decay", "epochs")}


def test_importing_parts_registers_pafuse_and_baselines_alone_does_not():
    """baselines depends on nothing of ours; any import of parts (in either order with baselines) registers pafuse
    (fresh interpreters)."""
    checks = ["import baselines; assert 'pafuse' not in baselines.list_lifters(); import parts; "
              "assert 'pafuse' in baselines.list_lifters()",
              "import parts.wrapper; import baselines; assert 'pafuse' in baselines.list_lifters()"]
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for code in checks]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
