"""Index constants of bench.skeleton, checked against the synthetic body's mirror-symmetric rest pose."""
import numpy as np
import pytest
import torch

from baselines.base import flip_pose
from bench.data.body_model import rest_pose, sample_body_shape
from bench.skeleton import (
    BONES,
    FLIP_PERMUTATION,
    JOINT_NAMES,
    KEYPOINT_NAMES,
    MIDLINE_C133,
    MIRROR_PAIRS_C133,
    NUM_JOINTS,
    NUM_KEYPOINTS,
    OPENPOSE_BODY_25,
    OPENPOSE_FIELDS,
    OPENPOSE_TO_C133,
    PART_ATTACH,
    PART_ROOTS,
    PARTS,
    add_pelvis,
)

MIRROR = np.array([-1.0, 1.0, 1.0])


def flip(x):
    return flip_pose(x, FLIP_PERMUTATION)


@pytest.fixture(scope="module", params=["average", "sampled"])
def rest(request):
    """(133, 3) rest pose facing +y with its midline on x = 0, for the average body and a random subject."""
    shape = sample_body_shape(np.random.default_rng(7)) if request.param == "sampled" else None
    return rest_pose(shape)


def test_flip_permutation_is_an_involution():
    assert FLIP_PERMUTATION.shape == (NUM_JOINTS,)
    np.testing.assert_array_equal(FLIP_PERMUTATION[FLIP_PERMUTATION], np.arange(NUM_JOINTS))
    assert FLIP_PERMUTATION[0] == 0  # the pelvis stays


def test_flip_twice_is_identity_numpy_and_torch():
    x = np.random.default_rng(0).normal(size=(2, 5, NUM_JOINTS, 3))
    np.testing.assert_allclose(flip(flip(x)), x, atol=0)
    flipped = flip(x)
    np.testing.assert_allclose(flipped[..., 0, 0], -x[..., 0, 0])  # the pelvis only changes sign in x
    xt = torch.from_numpy(x).float()
    torch.testing.assert_close(flip(flip(xt)), xt, atol=0, rtol=0)
    torch.testing.assert_close(flip(xt), torch.from_numpy(flipped).float())


def test_mirror_pairs_mirror_across_the_midline(rest):
    for left, right in MIRROR_PAIRS_C133:
        np.testing.assert_allclose(rest[left], rest[right] * MIRROR, atol=1e-6,
                                   err_msg=f"{KEYPOINT_NAMES[left]} vs {KEYPOINT_NAMES[right]}")
        assert rest[right][0] > 0.0, f"{KEYPOINT_NAMES[right]} should be on the subject's right (+x)"
    np.testing.assert_allclose(rest[list(MIDLINE_C133), 0], 0.0, atol=1e-6)


def test_flip_of_symmetric_pose_is_itself(rest):
    pose = add_pelvis(rest)
    np.testing.assert_allclose(flip(pose), pose, atol=1e-6)
    shifted = pose + np.array([25.0, 0.0, 0.0])  # off the midline, the flip is no longer the same pose
    assert np.abs(flip(shifted) - shifted).max() == pytest.approx(50.0)


def test_pairs_and_midline_partition_all_keypoints():
    paired = [k for pair in MIRROR_PAIRS_C133 for k in pair]
    assert len(paired) == len(set(paired)), "a keypoint appears in two mirror pairs"
    assert not set(paired) & set(MIDLINE_C133)
    assert sorted(paired + list(MIDLINE_C133)) == list(range(NUM_KEYPOINTS))


def test_names():
    assert len(KEYPOINT_NAMES) == 133 and len(set(KEYPOINT_NAMES)) == 133
    assert KEYPOINT_NAMES[53] == "face-30"
    assert KEYPOINT_NAMES[91] == "left_hand_root"
    assert KEYPOINT_NAMES[112] == "right_hand_root"
    assert JOINT_NAMES[0] == "pelvis" and JOINT_NAMES[1:] == KEYPOINT_NAMES
    for left, right in MIRROR_PAIRS_C133:
        if not KEYPOINT_NAMES[left].startswith("face"):
            assert KEYPOINT_NAMES[left].replace("left", "right") == KEYPOINT_NAMES[right]


def test_parts_partition_the_joints():
    joints = sorted(j for part in PARTS.values() for j in part)
    assert joints == list(range(NUM_JOINTS))
    assert {name: len(part) for name, part in PARTS.items()} == {"body": 24, "face": 68, "left_hand": 21,
                                                               "right_hand": 21}
    for name, root in PART_ROOTS.items():
        assert root in PARTS[name]


def test_add_pelvis_inserts_the_hip_mean_first(rest):
    pose = add_pelvis(rest)
    assert pose.shape == (NUM_JOINTS, 3)
    hips = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
    np.testing.assert_allclose(pose[0], rest[hips].mean(axis=0))
    np.testing.assert_allclose(pose[0, 0], 0.0, atol=1e-9)  # on the midline of the symmetric pose
    np.testing.assert_array_equal(pose[1:], rest)
    batch = np.random.default_rng(1).normal(size=(4, 3, NUM_KEYPOINTS, 2))
    np.testing.assert_allclose(add_pelvis(batch)[..., 0, :], batch[..., hips, :].mean(axis=-2))
    with pytest.raises(ValueError, match="133"):
        add_pelvis(np.zeros((5, 17, 3)))


def test_bones_stay_within_parts_except_wrist_links():
    hand_links = {(PART_ATTACH[p], PART_ROOTS[p]) for p in ("left_hand", "right_hand")}
    for part, edges in BONES.items():
        for a, b in edges:
            if (a, b) in hand_links:
                assert part in ("left_hand", "right_hand") and (a, b) == (PART_ATTACH[part], PART_ROOTS[part])
                continue
            assert a in PARTS[part] and b in PARTS[part], f"bone {JOINT_NAMES[a]}-{JOINT_NAMES[b]} leaves {part}"


# OpenPose's BODY_25 order (doc/02_output.md), written out here independently of bench.skeleton.
BODY_25_EXPECTED = {
    0: "nose", 1: None, 2: "right_shoulder", 3: "right_elbow", 4: "right_wrist", 5: "left_shoulder",
    6: "left_elbow", 7: "left_wrist", 8: None, 9: "right_hip", 10: "right_knee", 11: "right_ankle", 12: "left_hip",
    13: "left_knee", 14: "left_ankle", 15: "right_eye", 16: "left_eye", 17: "right_ear", 18: "left_ear",
    19: "left_big_toe", 20: "left_small_toe", 21: "left_heel", 22: "right_big_toe", 23: "right_small_toe",
    24: "right_heel",
}  # 1 Neck and 8 MidHip have no COCO-WholeBody keypoint
HAND_EXPECTED = ["hand_root"] + [f"{finger}{k}" for finger in ("thumb", "forefinger", "middle_finger",
                                                                 "ring_finger", "pinky_finger") for k in (1, 2, 3, 4)]


def test_openpose_body_25_maps_name_by_name_onto_coco_wholebody():
    assert OPENPOSE_BODY_25[1] == "Neck" and OPENPOSE_BODY_25[8] == "MidHip" and len(OPENPOSE_BODY_25) == 25
    mapped = {openpose: KEYPOINT_NAMES[c133] for openpose, c133 in OPENPOSE_TO_C133["pose_keypoints_2d"]}
    assert mapped == {i: name for i, name in BODY_25_EXPECTED.items() if name is not None}
    # the COCO-WholeBody feet: left big toe, left small toe, left heel, right big toe, right small toe, right heel
    assert KEYPOINT_NAMES[17:23] == ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
                                     "right_small_toe", "right_heel")
    assert [OPENPOSE_BODY_25[i] for i, c in OPENPOSE_TO_C133["pose_keypoints_2d"] if 17 <= c < 23] == [
        "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel"]


def test_openpose_face_and_hands_map_keypoint_by_keypoint():
    face = dict(OPENPOSE_TO_C133["face_keypoints_2d"])
    assert sorted(face) == list(range(68))  # the pupils 68 and 69 are dropped
    assert all(KEYPOINT_NAMES[face[i]] == f"face-{i}" for i in range(68))
    for field, side in (("hand_left_keypoints_2d", "left"), ("hand_right_keypoints_2d", "right")):
        hand = dict(OPENPOSE_TO_C133[field])
        assert [KEYPOINT_NAMES[hand[i]] for i in range(21)] == [f"{side}_{name}" for name in HAND_EXPECTED]
    assert OPENPOSE_FIELDS == {"pose_keypoints_2d": 25, "face_keypoints_2d": 70, "hand_left_keypoints_2d": 21,
                               "hand_right_keypoints_2d": 21}


def test_openpose_mapping_covers_every_keypoint_once():
    targets = [c133 for pairs in OPENPOSE_TO_C133.values() for _, c133 in pairs]
    assert sorted(targets) == list(range(NUM_KEYPOINTS))
