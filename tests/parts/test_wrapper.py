"""The part-based wrapper: every lifter wrapped, gradients, shared hands, scatter by index, flip TTA, ablations."""
import pytest
import torch
from torch import nn

import baselines
from baselines.base import flip_pose
from bench.runs.lifters import is_part_based
from bench.skeleton import FLIP_PERMUTATION, NUM_JOINTS, PARTS
from parts.frames import PartLayout
from parts.losses import pose_error
from parts.wrapper import Member, PartSplit, SplitLifter, part_based

PERMUTATION = torch.as_tensor(FLIP_PERMUTATION)
LEFT, RIGHT = list(PARTS["left_hand"]), list(PARTS["right_hand"])


WHOLE_BODY_LIFTERS = [name for name in baselines.list_lifters() if not is_part_based(name)]


pytestmark = pytest.mark.usefixtures("single_thread")


def windows(model, batch=2, seed=0):
    """Random (B, L, 134, 2) inputs and root-relative (B, L, 134, 3) targets sized for ``model``."""
    generator = torch.Generator().manual_seed(seed)
    length = model.receptive_field if model.seq2seq else model.receptive_field + 2
    x2d = torch.randn(batch, length, NUM_JOINTS, 2, generator=generator)
    y3d = 0.3 * torch.randn(batch, length, NUM_JOINTS, 3, generator=generator)
    return x2d, y3d - y3d[..., :1, :]


@pytest.mark.parametrize("name", WHOLE_BODY_LIFTERS)
@pytest.mark.parametrize("hands", ["joint", "shared"])
def test_every_lifter_works_wrapped(name, hands, tiny_args):
    torch.manual_seed(0)
    model = part_based(name, hands=hands, **tiny_args[name])
    x2d, y3d = windows(model)
    loss = model.loss(x2d, y3d)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), parameter_name
    model.eval()
    hypotheses = 3 if model.generative else 1
    pred = model.predict(x2d, hypotheses=hypotheses, steps=2, flip_permutation=PERMUTATION)
    assert pred.shape == (2, hypotheses, model.output_frames(x2d.shape[1]), NUM_JOINTS, 3)
    assert torch.isfinite(pred).all()
    assert set(model.part_networks()) == {"body", "face", "hands"}


@pytest.mark.parametrize("name", ["mixste", "d3dp"])
def test_gradients_reach_every_sub_network(name, tiny_args):
    torch.manual_seed(0)
    model = part_based(name, **tiny_args[name])
    model.loss(*windows(model)).backward()
    networks = model.part_networks()
    assert len({id(net) for net in networks.values()}) == 3
    for part, net in networks.items():
        for parameter_name, parameter in net.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{part}.{parameter_name}"


def test_shared_hands_are_one_network_that_both_hands_depend_on(tiny_args):
    torch.manual_seed(0)
    model = part_based("mixste", hands="shared", **tiny_args["mixste"]).eval()
    hands = model.part_networks()["hands"]
    assert hands.joints == len(LEFT) and [m.mirrored for m in model.inner.split.members["hands"]] == [True, False]
    x2d, _ = windows(model)
    before = model(x2d)
    with torch.no_grad():
        hands.head[1].bias.add_(torch.tensor([0.0, 0.0, 0.05]))
    change = (model(x2d) - before).abs().amax(dim=(0, 1, 3))
    assert change[LEFT].min() > 0.04 and change[RIGHT].min() > 0.04
    assert change[list(PARTS["body"]) + list(PARTS["face"])].max() == 0


@pytest.mark.parametrize("name", ["mixste", "d3dp"])
def test_mirrored_left_hand_goes_the_right_hand_path(name, tiny_args):
    """With the right hand the mirror of the left, the shared network's left output mirrors its right output."""
    torch.manual_seed(0)
    model = part_based(name, hands="shared", **tiny_args[name]).eval()
    tokens = model.layout.tokens(windows(model)[0])
    tokens[..., RIGHT, :] = flip_pose(tokens[..., LEFT, :])
    if model.generative:
        x_t = torch.randn(*tokens.shape[:-1], 3)
        x_t[..., RIGHT, :] = flip_pose(x_t[..., LEFT, :])
        out = model.inner.diffusion.denoiser(tokens, x_t, torch.tensor([10, 700]))
    else:
        out = model.inner(tokens)
    torch.testing.assert_close(out[..., LEFT, :], flip_pose(out[..., RIGHT, :]))


class AddPosition(nn.Module):
    """Adds ``offset`` plus the joint's position in its slice to x: shows where every output came from."""

    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def forward(self, x, t=None):
        self.seen_t = t
        return x + self.offset + torch.arange(x.shape[-2], dtype=x.dtype)[:, None]


def test_part_split_scatters_back_by_index():
    split = PartSplit({"a": AddPosition(100.0), "b": AddPosition(200.0)},
                      {"a": [Member([3, 0])], "b": [Member([1, 4]), Member([2, 5], mirrored=True)]})
    x = torch.randn(3, 2, 6, 1)
    out = split(x, torch.tensor([7, 8, 9]))
    expected = x.clone()
    for joint, add in {3: 100, 0: 101, 1: 200, 4: 201}.items():
        expected[..., joint, :] += add
    for joint, add in {2: 200, 5: 201}.items():   # mirrored: x negated in and out, so the offset is negated
        expected[..., joint, :] -= add
    torch.testing.assert_close(out, expected)
    assert split.nets["b"].seen_t.tolist() == [7, 8, 9, 7, 8, 9]   # repeated along the batch for two members
    assert split.nets["a"].seen_t.tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match="exactly once"):
        PartSplit({"a": AddPosition(0)}, {"a": [Member([0, 2])]})
    with pytest.raises(ValueError, match="equal joint counts"):
        PartSplit({"a": AddPosition(0)}, {"a": [Member([0, 1]), Member([2])]})


def test_one_batched_forward_per_part_and_step():
    model = part_based("d3dp", width=16, depth=1).eval()
    model.inner.diffusion.sampler = "together"   # the default on CUDA (baselines.diffusion.DEFAULT_SAMPLERS)
    calls = {part: [] for part in model.part_networks()}
    for part, net in model.part_networks().items():
        net.register_forward_hook(lambda module, args, out, part=part: calls[part].append(args[0].shape[0]))
    model.predict(windows(model, batch=2)[0], hypotheses=3, steps=4, flip_permutation=PERMUTATION)
    assert calls == {part: [2 * 3 * 2] * 4 for part in calls}   # B * H * (plain, flipped), once per step


@pytest.mark.parametrize("name", ["mixste", "videopose"])
@pytest.mark.parametrize("attach", ["roots", "reference"])
def test_flip_tta_is_mirror_equivariant(name, attach, tiny_args):
    torch.manual_seed(0)
    model = part_based(name, attach=attach, **tiny_args[name]).eval()
    x2d, _ = windows(model, batch=1)
    plain = model.predict(x2d, flip_permutation=PERMUTATION)
    mirrored = model.predict(flip_pose(x2d, FLIP_PERMUTATION), flip_permutation=PERMUTATION)
    torch.testing.assert_close(mirrored, flip_pose(plain, FLIP_PERMUTATION))


def test_generative_flip_tta_is_mirror_equivariant(tiny_args):
    torch.manual_seed(0)
    model = part_based("d3dp", hands="shared", **tiny_args["d3dp"]).eval()
    layout = model.layout
    permutation = layout.permutation(PERMUTATION)
    x2d = layout.tokens(windows(model, batch=1)[0])
    noise = torch.randn(3, 1, 2, 27, layout.joints, 3)
    sample = model.inner.diffusion.sample
    plain = sample(x2d, hypotheses=2, steps=3, noise=noise, flip_permutation=permutation)
    flipped = sample(flip_pose(x2d, permutation), hypotheses=2, steps=3, noise=flip_pose(noise, permutation),
                     flip_permutation=permutation)
    torch.testing.assert_close(layout.reassemble(flipped), flip_pose(layout.reassemble(plain), FLIP_PERMUTATION))


ABLATIONS = {
    "only part-frame shift": dict(split=False),
    "only part denoisers": dict(shift=False),
    "whole-body loss": dict(loss="wb"),
    "mse": dict(error="mse"),
    "uniform widths": dict(widths="uniform"),
    "81 frames": dict(frames=81),
    "shared hands": dict(hands="shared"),
    "reference attach": dict(attach="reference"),
}


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_ablation_builds_trains_and_predicts(ablation):
    torch.manual_seed(0)
    model = baselines.create_lifter("pafuse", joints=NUM_JOINTS, width=16, depth=1, **ABLATIONS[ablation])
    x2d, y3d = windows(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model.loss(x2d, y3d)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.eval()
    pred = model.predict(x2d, hypotheses=2, steps=2, flip_permutation=PERMUTATION)
    assert pred.shape == (2, 2, model.frames, NUM_JOINTS, 3) and torch.isfinite(pred).all()


def test_ablation_structure():
    shift_only = part_based("d3dp", split=False, width=16, depth=1)
    assert shift_only.part_networks() == {} and shift_only.inner.joints == NUM_JOINTS + 3
    assert shift_only.weights is not None and shift_only.weights.mean().item() == pytest.approx(1.0)
    denoisers_only = part_based("d3dp", shift=False, width=16, depth=1)
    y3d = windows(denoisers_only)[1]
    assert denoisers_only.inner.joints == NUM_JOINTS and denoisers_only.weights is None
    assert torch.equal(denoisers_only.layout.local_targets(y3d), y3d)
    assert torch.equal(denoisers_only.layout.reassemble(y3d), y3d)


@pytest.mark.parametrize("loss, joints", [("part", NUM_JOINTS + 3), ("wb", NUM_JOINTS)])
@pytest.mark.parametrize("split", [True, False])
def test_training_pair_is_in_the_space_of_the_loss(loss, joints, split):
    model = part_based("mixste", loss=loss, split=split, width=16, depth=1).eval()   # eval: no stochastic depth
    x2d, y3d = windows(model)
    pred, target = model.training_pair(x2d, y3d)
    assert pred.shape == target.shape == (2, 27, joints, 3)
    if loss == "part":
        torch.testing.assert_close(target, model.layout.local_targets(y3d))
    else:
        assert torch.equal(target, y3d)
    weights = None if split else model.weights[:joints]   # without split the loss is balanced across parts
    torch.testing.assert_close(model.loss(x2d, y3d), pose_error(pred, target, weights=weights))


def test_explicit_weights_follow_the_joints_their_tokens_copy():
    weights = torch.ones(NUM_JOINTS)
    weights[list(PARTS["face"])] = 2.0
    model = part_based("mixste", weights=weights.tolist(), width=16, depth=1)
    layout = PartLayout("roots")
    assert model.weights[layout.anchor_tokens["face"]].item() == 2.0
    assert model.weights[layout.anchor_tokens["left_hand"]].item() == 1.0
    assert torch.equal(model.weights[:NUM_JOINTS], weights)


def test_inner_lifter_kinds():
    assert isinstance(part_based("mixste", width=16, depth=1).inner, SplitLifter)
    generative = part_based("d3dp", width=16, depth=1)
    assert isinstance(generative.inner.diffusion.denoiser, PartSplit)
    assert generative.inner.diffusion.denoiser.joint_inputs == 2


def test_bad_options_raise():
    with pytest.raises(ValueError, match="joints must be 134"):
        part_based("mixste", joints=17)
    with pytest.raises(ValueError, match=r"hands: expected one of \('joint', 'shared'\), got 'both'"):
        part_based("mixste", hands="both", width=16, depth=1)
    with pytest.raises(ValueError, match=r"loss: expected one of \('part', 'wb'\), got 'l2'"):
        part_based("mixste", loss="l2", width=16, depth=1)
    with pytest.raises(ValueError, match="error: expected one of"):
        part_based("mixste", error="l1", width=16, depth=1)
    with pytest.raises(ValueError, match="already part-based"):
        part_based("pafuse", width=16, depth=1)
    with pytest.raises(ValueError, match=r"weights: expected 134 per-joint weights, got shape \(3,\)"):
        part_based("mixste", weights=[1.0, 2.0, 3.0], width=16, depth=1)
    model = part_based("mixste", width=16, depth=1)
    with pytest.raises(ValueError, match=r"expects 2D input \(B, N, 134, 2\)"):
        model.loss(torch.zeros(1, 27, 17, 2), torch.zeros(1, 27, 17, 3))
