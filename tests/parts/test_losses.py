"""Part and whole-body losses: known values for MPJPE and squared error, weights, balanced weights."""
import pytest
import torch

from bench.skeleton import NUM_JOINTS, PARTS
from parts.frames import PartLayout
from parts.losses import balanced_weights, part_loss, pose_error, whole_body_loss


def test_mpjpe_and_squared_error_known_values():
    target = torch.zeros(2, 3, 4, 3)
    pred = target.clone()
    pred[..., 0, :] = torch.tensor([0.3, 0.4, 0.0])     # joint 0 is 0.5 m off, the others exact
    assert pose_error(pred, target).item() == pytest.approx(0.5 / 4)
    assert pose_error(pred, target, "mse").item() == pytest.approx(0.25 / 4)
    assert part_loss(pred, target, "mse").item() == pytest.approx(0.25 / 4)


def test_weights_are_normalized_to_mean_one():
    target = torch.zeros(1, 1, 4, 3)
    pred = target.clone()
    pred[..., 0, 0] = 1.0
    # Weights 3, 1, 1, 1 have mean 1.5: joint 0 weighs 2 after normalization.
    assert pose_error(pred, target, weights=torch.tensor([3.0, 1, 1, 1])).item() == pytest.approx(2 / 4)
    assert pose_error(pred, target, weights=torch.full((4,), 7.0)).item() == pytest.approx(1 / 4)


def test_bad_arguments_raise():
    x = torch.zeros(1, 1, 4, 3)
    with pytest.raises(ValueError, match="same shape"):
        pose_error(x, torch.zeros(1, 1, 5, 3))
    with pytest.raises(ValueError, match=r"error: expected one of \('mpjpe', 'mse'\), got 'l1'"):
        pose_error(x, x, "l1")
    with pytest.raises(ValueError, match=r"weights: expected \(4,\) per-joint weights, got shape \(3,\)"):
        pose_error(x, x, weights=torch.ones(3))
    with pytest.raises(ValueError, match="positive per-joint weights, got minimum 0.0"):
        pose_error(x, x, weights=torch.tensor([1.0, 0, 1, 1]))


def test_balanced_weights_give_each_group_the_same_total():
    layout = PartLayout("roots")
    groups = {"body": layout.parts["body"], "face": layout.parts["face"],
              "hands": layout.parts["left_hand"] + layout.parts["right_hand"]}
    weights = balanced_weights(groups, layout.joints)
    totals = [weights[list(indices)].sum().item() for indices in groups.values()]
    assert totals == pytest.approx([layout.joints / 3] * 3)
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[PARTS["face"][0]].item() == pytest.approx(layout.joints / (3 * len(PARTS["face"])))
    with pytest.raises(ValueError, match="exactly once"):
        balanced_weights({"body": PARTS["body"]}, NUM_JOINTS)


def test_whole_body_loss_scores_the_reassembled_pose():
    torch.manual_seed(0)
    layout = PartLayout("roots")
    poses = 0.3 * torch.randn(2, 3, NUM_JOINTS, 3)
    poses = poses - poses[..., :1, :]
    local = layout.local_targets(poses)
    assert whole_body_loss(local, poses, layout).item() == pytest.approx(0.0, abs=1e-7)
    # Moving the predicted face anchor moves all 68 face joints: the whole-body loss sees it, the part loss of
    # the face joints does not.
    shifted = local.clone()
    shifted[..., layout.anchor_tokens["face"], :] += torch.tensor([0.0, 0.0, 0.1])
    expected = 0.1 * (len(PARTS["face"])) / NUM_JOINTS
    assert whole_body_loss(shifted, poses, layout).item() == pytest.approx(expected, rel=1e-5)
    assert part_loss(shifted, local).item() == pytest.approx(0.1 / layout.joints, rel=1e-5)
