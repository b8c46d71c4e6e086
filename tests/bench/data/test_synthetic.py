"""The synthetic H3WB: determinism, the official npz layout, camera geometry, sampling and realism checks."""
import numpy as np
import pytest

from bench.data import cameras
from bench.data.body_model import rest_pose
from bench.data.synthetic import (
    SMALL_ACTIONS,
    TEST_FILE,
    TEST_SUBJECTS,
    TRAIN_FILE,
    TRAIN_SUBJECTS,
    gap_distribution,
    generate,
    part_root_offsets,
    subject_body,
    subject_cameras,
    write_synthetic,
)
from bench.skeleton import C133_GROUPS, KEYPOINT_NAMES, MIRROR_PAIRS_C133, NUM_KEYPOINTS

K = KEYPOINT_NAMES.index


@pytest.fixture(scope="module")
def data():
    return generate()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    return write_synthetic(out)


@pytest.fixture(scope="module")
def loaded(written):
    train = np.load(written[0], allow_pickle=True)
    test = np.load(written[1], allow_pickle=True)
    return {"train_keys": set(train.files), "test_keys": set(test.files),
            "metadata": train["metadata"].item(), "train_data": train["train_data"].item(),
            "test_metadata": test["metadata"].item(), "test_data": test["data"].item()}


def _entries(data):
    """(subject, action, entry) over both trees."""
    return [(s, a, e) for tree in (data.train, data.test) for s, actions in tree.items() for a, e in actions.items()]


def test_same_seed_gives_identical_bytes(written, tmp_path):
    again = write_synthetic(tmp_path)
    assert [p.name for p in written] == [TRAIN_FILE, TEST_FILE]
    for first, second in zip(written, again):
        assert first.read_bytes() == second.read_bytes()


def test_different_seed_gives_different_data(written, tmp_path):
    other = write_synthetic(tmp_path, seed=1)
    for first, second in zip(written, other):
        assert first.read_bytes() != second.read_bytes()


def test_file_layout(loaded):
    assert loaded["train_keys"] == {"metadata", "train_data"}
    assert loaded["test_keys"] == {"data", "metadata"}
    assert list(loaded["train_data"]) == list(TRAIN_SUBJECTS)
    assert list(loaded["test_data"]) == list(TEST_SUBJECTS)
    for tree in (loaded["train_data"], loaded["test_data"]):
        for actions in tree.values():
            assert list(actions) == list(SMALL_ACTIONS)
            for entry in actions.values():
                frames = len(entry["frame_id"])
                assert set(entry) == {"global_3d", "frame_id", *cameras.CAMERA_IDS}
                assert entry["global_3d"].shape == (frames, NUM_KEYPOINTS, 3)
                assert entry["global_3d"].dtype == np.float64
                assert entry["frame_id"].dtype == np.int64 and np.all(np.diff(entry["frame_id"]) > 0)
                for camera_id in cameras.CAMERA_IDS:
                    view = entry[camera_id]
                    assert set(view) == {"camera_3d", "pose_2d", "sample_id"}
                    assert view["camera_3d"].shape == (frames, NUM_KEYPOINTS, 3)
                    assert view["pose_2d"].shape == (frames, NUM_KEYPOINTS, 2)
                    assert view["camera_3d"].dtype == view["pose_2d"].dtype == np.float64
                    assert view["sample_id"].shape == (frames,) and view["sample_id"].dtype == np.int64


def test_metadata_layout(loaded):
    for metadata, subjects in ((loaded["metadata"], TRAIN_SUBJECTS), (loaded["test_metadata"], TEST_SUBJECTS)):
        for subject in subjects:
            assert list(metadata[subject]) == list(cameras.CAMERA_IDS)
            for camera_id, entry in metadata[subject].items():
                assert {k: (v.shape, v.dtype) for k, v in entry.items()} == {
                    "K": ((1, 3, 3), np.float32), "R": ((1, 3, 3), np.float32), "T": ((1, 1, 3), np.float32),
                    "Distortion": ((1, 5), np.float32)}
                fx, fy = cameras.FOCAL_PX[camera_id]
                np.testing.assert_allclose(entry["K"][0], [[fx / 1000, 0, cameras.CENTRE_PX[camera_id][0] / 1000],
                                                           [0, fy / 1000, cameras.CENTRE_PX[camera_id][1] / 1000],
                                                           [0, 0, 1]], rtol=1e-6)
                R = entry["R"][0].astype(np.float64)
                np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)
                assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-6)
                assert 3.0 < np.linalg.norm(entry["T"]) < 7.0  # metres: cameras 4-6 m away
                np.testing.assert_array_equal(entry["Distortion"], 0.0)
        assert metadata["left_side"] == [left for left, _ in MIRROR_PAIRS_C133]
        assert metadata["right_side"] == [right for _, right in MIRROR_PAIRS_C133]
        for group, indices in C133_GROUPS.items():
            assert metadata[group] == list(indices)


def test_files_hold_the_generated_data(data, loaded):
    np.testing.assert_array_equal(loaded["train_data"]["S5"]["Walking 1"]["55011271"]["pose_2d"],
                                  data.train["S5"]["Walking 1"]["55011271"]["pose_2d"])
    np.testing.assert_array_equal(loaded["test_data"]["S8"]["Eating 2"]["global_3d"],
                                  data.test["S8"]["Eating 2"]["global_3d"])
    assert set(data.metadata) >= set(TRAIN_SUBJECTS + TEST_SUBJECTS)


def test_projection_and_extrinsics_match_metadata(data):
    for subject, action, entry in _entries(data):
        for camera_id in cameras.CAMERA_IDS:
            meta = data.metadata[subject][camera_id]
            R, T = meta["R"][0].astype(np.float64), meta["T"][0, 0].astype(np.float64)
            K_px = meta["K"][0].astype(np.float64) * 1000.0
            view = entry[camera_id]
            np.testing.assert_allclose(view["camera_3d"], entry["global_3d"] @ R.T + 1000.0 * T, atol=1e-6)
            centre = -R.T @ T * 1000.0
            np.testing.assert_allclose(view["camera_3d"], (entry["global_3d"] - centre) @ R.T, atol=1e-3)
            np.testing.assert_allclose(view["pose_2d"], cameras.project(view["camera_3d"], K_px), atol=1e-6)
            assert view["camera_3d"][..., 2].min() > 1500.0  # in front of the camera, at least 1.5 m away
            width, height = cameras.RESOLUTIONS[camera_id]
            uv = view["pose_2d"]
            assert uv.min() > 0.0 and uv[..., 0].max() < width and uv[..., 1].max() < height, (subject, action)


def test_cameras_are_placed_like_h36m():
    s1 = subject_cameras(0, "S1")
    for camera_id, calibration in s1.items():
        R_q = cameras.quaternion_to_matrix(cameras.ORIENTATION_S1[camera_id])
        np.testing.assert_allclose(calibration.R, R_q.T, atol=1e-6)
        centre = -calibration.R.T @ calibration.T_m * 1000.0
        np.testing.assert_allclose(centre, cameras.CENTRE_S1_MM[camera_id], atol=0.01)
    s6 = subject_cameras(0, "S6")
    for camera_id in cameras.CAMERA_IDS:
        moved = np.linalg.norm((-s6[camera_id].R.T @ s6[camera_id].T_m - -s1[camera_id].R.T @ s1[camera_id].T_m)
                               * 1000.0)
        angle = np.degrees(np.arccos(np.clip((np.trace(s6[camera_id].R @ s1[camera_id].R.T) - 1) / 2, -1, 1)))
        assert 1.0 < moved < 150.0 and 0.01 < angle < 4.0


def test_sample_ids_unique_and_grouped_by_instant(data):
    ids = []
    for _, _, entry in _entries(data):
        per_camera = np.stack([entry[c]["sample_id"] for c in cameras.CAMERA_IDS], axis=1)
        np.testing.assert_array_equal(np.diff(per_camera, axis=1), 1)  # one instant's 4 views are consecutive
        ids.append(per_camera.ravel())
    ids = np.concatenate(ids)
    assert len(np.unique(ids)) == len(ids)


def test_small_set_size(data):
    instants = [len(e["frame_id"]) for _, _, e in _entries(data)]
    assert len(instants) == 5 * len(SMALL_ACTIONS)
    assert 5000 <= 4 * sum(instants) <= 10000
    assert sum(n > 81 for n in instants) >= 8  # enough sequences for 81-frame windows
    assert min(instants) >= 27


def test_gap_distribution_matches_h3wb(data):
    gaps = np.concatenate([np.diff(e["frame_id"]) for _, _, e in _entries(data)])
    values, counts = np.unique(gaps, return_counts=True)
    assert values[counts.argmax()] == 5 and gaps.min() == 5
    assert 0.3 < np.mean((gaps > 5) & (gaps <= 50)) < 0.6
    assert 0.01 < np.mean(gaps >= 100) < 0.08
    support, probabilities = gap_distribution()
    assert probabilities.sum() == pytest.approx(1.0)
    assert support[probabilities.argmax()] == 5


def test_body_proportions():
    for subject in TRAIN_SUBJECTS + TEST_SUBJECTS:
        shape, energy = subject_body(0, subject)
        rest = rest_pose(shape)
        assert 1600.0 < shape.height_mm < 1900.0 and 0.7 < energy < 1.3
        span = rest[:, 2].max() - rest[:, 2].min()  # floor to brow: most of the height
        assert 0.85 * shape.height_mm < span < 0.97 * shape.height_mm
        for side in ("left", "right"):
            hand = np.linalg.norm(rest[K(f"{side}_hand_root")] - rest[K(f"{side}_middle_finger4")])
            assert 170.0 < hand < 210.0
        face = rest[list(C133_GROUPS["face"])]
        brow = face[17:27, 2].max()
        assert 170.0 < brow - rest[K("face-8"), 2] < 230.0
    heights = [subject_body(0, s)[0].height_mm for s in TRAIN_SUBJECTS]
    assert np.ptp(heights) > 20.0  # subjects differ


RIGID = [("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_knee", "right_ankle"),
         ("left_shoulder", "left_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "right_shoulder"),
         ("left_hip", "right_hip"), ("left_ankle", "left_heel"), ("right_ankle", "right_big_toe"),
         ("left_ear", "right_ear"), ("nose", "face-30"), ("right_wrist", "right_hand_root"),
         ("left_hand_root", "left_middle_finger1"), ("right_forefinger2", "right_forefinger3"),
         ("left_thumb3", "left_thumb4"), ("right_pinky_finger3", "right_pinky_finger4")]


def test_bone_lengths_constant_within_a_subject(data):
    thighs = {}
    for subject, _, _ in _entries(data):
        tree = data.train if subject in data.train else data.test
        poses = np.concatenate([e["global_3d"] for e in tree[subject].values()])
        for a, b in RIGID:
            length = np.linalg.norm(poses[:, K(a)] - poses[:, K(b)], axis=-1)
            assert length.std() < 1e-6 and length.mean() > 10.0, (subject, a, b)
        thighs[subject] = np.linalg.norm(poses[0, K("left_hip")] - poses[0, K("left_knee")])
    assert np.ptp(list(thighs.values())) > 5.0


def test_part_root_offsets(data):
    offsets = part_root_offsets(data)
    assert set(offsets) == {"face", "left_hand", "right_hand"}
    for part, value in offsets.items():
        assert 10.0 < value < 30.0, part
    assert part_root_offsets(data.train)["face"] == pytest.approx(offsets["face"], rel=0.05)


def test_noise_changes_only_2d(data):
    noisy = generate(noise_px=2.0)
    exact, jittered = data.train["S1"]["Sitting 1"], noisy.train["S1"]["Sitting 1"]
    np.testing.assert_array_equal(exact["global_3d"], jittered["global_3d"])
    residual = jittered["58860488"]["pose_2d"] - exact["58860488"]["pose_2d"]
    assert residual.std() == pytest.approx(2.0, rel=0.05) and abs(residual.mean()) < 0.1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="size"):
        generate(size="huge")
    with pytest.raises(ValueError, match="seed"):
        generate(seed=-1)


def test_loader_returns_the_generator_arrays(data, written):
    """The loader path (sort, pelvis, mm -> m, pixels -> normalized) gives back exactly what was generated."""
    from bench.data.h3wb import load_h3wb
    from bench.skeleton import add_pelvis

    sequences = load_h3wb(written[0].parent, subjects=TRAIN_SUBJECTS + TEST_SUBJECTS)
    assert len(sequences) == len(cameras.CAMERA_IDS) * len(_entries(data))
    tree = {**data.train, **data.test}
    for sequence in sequences:
        entry = tree[sequence.subject][sequence.action]
        view = entry[sequence.camera]
        width, height = cameras.RESOLUTIONS[sequence.camera]
        np.testing.assert_array_equal(sequence.frame_ids, entry["frame_id"])
        np.testing.assert_array_equal(sequence.sample_ids, view["sample_id"])
        np.testing.assert_allclose(sequence.pose_3d, add_pelvis(view["camera_3d"] / 1000), rtol=1e-6, atol=1e-7)
        expected_2d = cameras.normalize_screen_coordinates(view["pose_2d"], width, height)
        np.testing.assert_allclose(sequence.pose_2d, add_pelvis(expected_2d), rtol=1e-6, atol=1e-6)
