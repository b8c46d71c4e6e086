"""Part frames: token layouts, local frames, reassembly with true and predicted anchors, mirror symmetry."""
import numpy as np
import pytest
import torch

from baselines.base import flip_pose
from bench.data.synthetic import generate, part_root_offsets
from bench.skeleton import BODY_NOSE, FLIP_PERMUTATION, NUM_JOINTS, PART_ATTACH, PART_ROOTS, PARTS, add_pelvis
from parts.frames import ATTACHED_PARTS, PartLayout, true_anchors


@pytest.fixture(scope="module")
def poses():
    """(2, 5, 134, 3) float64 root-relative whole-body poses (metres) from the synthetic generator."""
    data = generate()
    actions = next(iter(data.train.values()))
    entry = next(iter(actions.values()))
    camera = next(key for key in entry if key not in ("global_3d", "frame_id"))
    pose = add_pelvis(entry[camera]["camera_3d"][:10] / 1000.0)
    pose = pose - pose[:, :1]
    return torch.from_numpy(pose).reshape(2, 5, NUM_JOINTS, 3)


def test_layouts():
    roots = PartLayout("roots")
    assert roots.joints == NUM_JOINTS + 3 and len(roots.parts["body"]) == len(PARTS["body"]) + 3
    assert roots.token_sources[NUM_JOINTS:] == tuple(PART_ROOTS[p] for p in ATTACHED_PARTS)
    assert roots.anchor_tokens == {"face": NUM_JOINTS, "left_hand": NUM_JOINTS + 1, "right_hand": NUM_JOINTS + 2}
    reference = PartLayout("reference")
    assert reference.joints == NUM_JOINTS and reference.parts == PARTS and reference.anchor_tokens == PART_ATTACH
    unshifted = PartLayout("roots", shift=False)
    assert unshifted.joints == NUM_JOINTS and unshifted.anchor_tokens == {}
    with pytest.raises(ValueError, match="attach: expected one of"):
        PartLayout("wrists")


@pytest.mark.parametrize("attach", ["roots", "reference"])
def test_part_roots_are_exactly_zero_in_local_frames(poses, attach):
    local = PartLayout(attach).local_targets(poses)
    for root in PART_ROOTS.values():
        assert torch.equal(local[..., root, :], torch.zeros_like(local[..., root, :]))
    face = list(PARTS["face"])
    torch.testing.assert_close(local[..., face, :], poses[..., face, :] - poses[..., PART_ROOTS["face"], None, :])


def test_anchor_tokens_hold_the_roots_in_the_pelvis_frame(poses):
    layout = PartLayout("roots")
    local = layout.local_targets(poses)
    roots = [PART_ROOTS[part] for part in ATTACHED_PARTS]
    assert torch.equal(local[..., NUM_JOINTS:, :], poses[..., roots, :])
    assert torch.equal(layout.anchors(local), true_anchors(poses))


@pytest.mark.parametrize("attach, shift", [("roots", True), ("reference", True), ("roots", False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reassembly_with_true_anchors_returns_the_input(poses, attach, shift, dtype):
    poses = poses.to(dtype)
    layout = PartLayout(attach, shift)
    back = layout.reassemble(layout.local_targets(poses), true_anchors(poses))
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(back, poses, rtol=0, atol=4 * eps)


def test_roots_mode_reassembles_from_its_own_anchor_tokens(poses):
    layout = PartLayout("roots")
    torch.testing.assert_close(layout.reassemble(layout.local_targets(poses)), poses, rtol=0, atol=1e-15)


def test_reference_mode_pins_face_and_hands_to_the_body_nose_and_wrists(poses):
    """Reassembled from its own body prediction, the reference moves each part by its root-to-attach offset."""
    layout = PartLayout("reference")
    error = layout.reassemble(layout.local_targets(poses)) - poses
    assert torch.equal(error[..., list(PARTS["body"]), :], torch.zeros_like(error[..., list(PARTS["body"]), :]))
    for part, attach in PART_ATTACH.items():
        offset = poses[..., attach, :] - poses[..., PART_ROOTS[part], :]
        torch.testing.assert_close(error[..., list(PARTS[part]), :], offset[..., None, :].expand_as(
            error[..., list(PARTS[part]), :]))


def test_reference_floor_equals_the_measured_part_root_offsets():
    """The per-joint error of reference attachment, with perfect parts, is the offset of part_root_offsets."""
    data = generate()
    world = np.concatenate([entry["global_3d"] for actions in data.train.values() for entry in actions.values()])
    poses = torch.from_numpy(add_pelvis(world / 1000.0))
    poses = poses - poses[:, :1]
    layout = PartLayout("reference")
    error_mm = (layout.reassemble(layout.local_targets(poses)) - poses).norm(dim=-1) * 1000
    offsets = part_root_offsets(data.train)
    for part in ATTACHED_PARTS:
        assert error_mm[:, list(PARTS[part])].mean().item() == pytest.approx(offsets[part], rel=1e-9)
    assert 14 < offsets["face"] < 17 and 15 < offsets["left_hand"] < 18


@pytest.mark.parametrize("attach, shift", [("roots", True), ("reference", True), ("roots", False)])
def test_mirroring_commutes_with_the_layout(poses, attach, shift):
    layout = PartLayout(attach, shift)
    permutation = layout.permutation(FLIP_PERMUTATION)
    local = layout.local_targets(poses)
    torch.testing.assert_close(layout.local_targets(flip_pose(poses, FLIP_PERMUTATION)), flip_pose(local, permutation),
                               rtol=0, atol=1e-15)
    noisy = local + 0.01 * torch.randn(local.shape, generator=torch.Generator().manual_seed(0), dtype=local.dtype)
    torch.testing.assert_close(layout.reassemble(flip_pose(noisy, permutation)),
                               flip_pose(layout.reassemble(noisy), FLIP_PERMUTATION))


def test_extended_permutation():
    permutation = PartLayout("roots").permutation(torch.as_tensor(FLIP_PERMUTATION))
    assert permutation[:NUM_JOINTS].tolist() == FLIP_PERMUTATION.tolist()
    assert permutation[NUM_JOINTS:].tolist() == [NUM_JOINTS, NUM_JOINTS + 2, NUM_JOINTS + 1]
    assert torch.equal(permutation[permutation], torch.arange(NUM_JOINTS + 3))
    assert torch.equal(PartLayout("reference").permutation(FLIP_PERMUTATION), torch.as_tensor(FLIP_PERMUTATION))


def test_bad_permutations_and_shapes_raise():
    layout = PartLayout("roots")
    with pytest.raises(ValueError, match=r"expected a permutation of the 134 joints \(each index once\), got 17"):
        layout.permutation(torch.arange(17))
    with pytest.raises(ValueError, match="got 134 values, 133 distinct"):
        layout.permutation(torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(1, NUM_JOINTS - 1),
                                      torch.ones(1, dtype=torch.long)]))
    swapped = torch.arange(NUM_JOINTS)
    swapped[[PART_ROOTS["face"], BODY_NOSE]] = swapped[[BODY_NOSE, PART_ROOTS["face"]]]
    with pytest.raises(ValueError, match=f"maps part root {PART_ROOTS['face']} to {BODY_NOSE}, which is not a part"):
        layout.permutation(swapped)
    with pytest.raises(ValueError, match=r"y3d: expected whole-body poses \(\.\.\., 134, 3\), got \(2, 27, 17, 3\)"):
        layout.local_targets(torch.zeros(2, 27, 17, 3))
    with pytest.raises(ValueError, match=r"part-frame tokens: expected \(\.\.\., 137, 3\)"):
        layout.reassemble(torch.zeros(2, 27, NUM_JOINTS, 3))
