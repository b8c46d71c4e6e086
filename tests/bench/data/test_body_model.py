"""The synthetic body and its motion: face and hand layout, animation, smoothness at 50 fps, locomotion."""
import numpy as np
import pytest

from bench.data.body_model import body_shape, pose_keypoints, rest_pose
from bench.data.hand_model import HAND_SHAPES, hand_keypoints
from bench.data.motion import simulate_action
from bench.data.poses import ACTION_STYLES
from bench.skeleton import C133_GROUPS, KEYPOINT_NAMES

K = KEYPOINT_NAMES.index
FACE = list(C133_GROUPS["face"])
SHAPE = body_shape()


@pytest.fixture(scope="module")
def dense():
    """Every action type at every frame of its first 10 s: type -> (500, 133, 3) world mm."""
    frames = np.arange(500)
    return {name: simulate_action(SHAPE, f"{name} 1", np.random.default_rng(5), frames) for name in ACTION_STYLES}


def test_face_layout_in_rest_pose():
    rest = rest_pose()
    face = rest[FACE]
    assert rest[K("face-0"), 0] > 50.0 and rest[K("face-16"), 0] < -50.0  # landmark 0 on the subject's right (+x)
    assert np.all(face[36:42, 0] > 0.0) and np.all(face[42:48, 0] < 0.0)  # 36-41 is the right eye
    assert face[:, 1].argmax() == 30  # the nose tip sticks out most (the subject faces +y)
    assert face[:, 2].argmin() == 8  # the chin is lowest
    offset = rest[K("nose")] - rest[K("face-30")]
    assert offset[2] > 0.0 and offset[1] < 0.0 and 10.0 < np.linalg.norm(offset) < 30.0  # higher and behind
    wrist_to_root = np.linalg.norm(rest[K("left_hand_root")] - rest[K("left_wrist")])
    assert 10.0 < wrist_to_root < 30.0
    assert rest[K("left_hand_root"), 2] < rest[K("left_wrist"), 2]  # distal: the arm hangs down


def test_feet_stand_on_the_floor():
    rest = rest_pose()
    feet = rest[list(C133_GROUPS["left_foot"] + C133_GROUPS["right_foot"]), 2]
    assert 0.0 < feet.min() < 30.0 and feet.max() < 40.0
    assert rest[K("left_big_toe"), 1] > rest[K("left_ankle"), 1] > rest[K("left_heel"), 1]


def test_hand_shapes():
    curls = np.array([HAND_SHAPES[name][0] for name in ("open", "fist", "point")])
    spread = np.array([HAND_SHAPES[name][1] for name in ("open", "fist", "point")])
    hands = hand_keypoints(curls, spread, 1.0, side=1)
    tip_reach = np.linalg.norm(hands[:, [8, 12, 16, 20]] - hands[:, :1], axis=-1)  # root -> finger tips
    assert np.all(tip_reach[0] > 140.0) and np.all(tip_reach[1] < 90.0)  # open vs fist
    assert tip_reach[2, 0] > 170.0 and np.all(tip_reach[2, 1:] < 90.0)  # only the forefinger points
    left = hand_keypoints(curls, spread, 1.0, side=-1)
    np.testing.assert_allclose(left, hands * np.array([-1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="curls"):
        hand_keypoints(np.zeros((3, 4)), spread, 1.0, side=1)


def test_motion_is_smooth_at_50_fps(dense):
    for name, poses in dense.items():
        velocity = np.linalg.norm(np.diff(poses, axis=0), axis=-1)
        acceleration = np.linalg.norm(np.diff(poses, 2, axis=0), axis=-1)
        assert velocity.max() < 100.0, name  # < 5 m/s for every keypoint, fingertips included
        assert acceleration.max() < 25.0, name
        assert velocity.max() > 5.0, name  # and it does move


def test_walking_crosses_the_area_and_sitting_stays(dense):
    def pelvis_span(poses):
        pelvis = poses[:, [K("left_hip"), K("right_hip")], :2].mean(axis=1)
        return np.ptp(pelvis, axis=0).max()

    assert pelvis_span(dense["Walking"]) > 1000.0
    assert pelvis_span(dense["Sitting"]) < 200.0
    hips_height = dense["Sitting"][:, K("left_hip"), 2].mean()
    assert hips_height < 0.7 * dense["Walking"][:, K("left_hip"), 2].mean()
    feet = dense["Walking"][:, list(C133_GROUPS["left_foot"] + C133_GROUPS["right_foot"]), 2]
    assert feet.min() > -5.0 and np.ptp(feet[:, 0]) > 50.0  # on the floor, and the feet lift


def test_face_and_fingers_are_animated(dense):
    poses = dense["Directions"]
    lips = np.linalg.norm(poses[:, K("face-62")] - poses[:, K("face-66")], axis=-1)
    assert np.ptp(lips) > 5.0  # talking
    eyelid = np.linalg.norm(poses[:, K("face-37")] - poses[:, K("face-41")], axis=-1)
    assert eyelid.min() < 0.3 * eyelid.max()  # at least one blink in 10 s
    fingertip = np.linalg.norm(poses[:, K("right_middle_finger4")] - poses[:, K("right_hand_root")], axis=-1)
    assert np.ptp(fingertip) > 20.0
    ears = np.linalg.norm(poses[:, K("face-30")] - poses[:, K("left_ear")], axis=-1)
    np.testing.assert_allclose(ears, ears[0])  # the face moves rigidly with the head


def test_motion_does_not_depend_on_requested_frames(dense):
    frames = np.array([3, 170, 171, 480])
    sparse = simulate_action(SHAPE, "Walking 1", np.random.default_rng(5), frames)
    np.testing.assert_allclose(sparse, dense["Walking"][frames], atol=1e-9)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="Juggling"):
        simulate_action(SHAPE, "Juggling 1", np.random.default_rng(0), np.arange(3))
    with pytest.raises(ValueError, match="frame ids"):
        simulate_action(SHAPE, "Walking 1", np.random.default_rng(0), np.array([], dtype=int))
    with pytest.raises(ValueError, match="elbw"):
        pose_keypoints(SHAPE, {"r_elbw": np.zeros(2)}, np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="unknown proportion"):
        body_shape(factors={"tail": 1.0})
