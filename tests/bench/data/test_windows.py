"""Tests of bench.data.windows: window geometry, exact test coverage, training cuts, flips and seeded order."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from baselines.base import flip_pose
from bench.data.windows import TestWindows, TrainWindows, WindowSpec
from bench.skeleton import FLIP_PERMUTATION, NUM_JOINTS

LENGTHS = (1, 5, 26, 27, 28, 54, 55, 100)


def Seq(subject: str, action: str, camera: str, frame_ids, pose_2d, pose_3d) -> SimpleNamespace:
    """A sequence as the windows read it (``bench.data.windows.SequenceLike``)."""
    return SimpleNamespace(subject=subject, action=action, camera=camera, frame_ids=frame_ids, pose_2d=pose_2d,
                           pose_3d=pose_3d)


def make_sequence(length: int, joints: int, seed: int, subject: str = "S8", action: str = "Walk") -> Seq:
    """A sequence of random poses with sparse, sorted frame ids."""
    rng = np.random.default_rng(seed)
    return Seq(subject, action, f"cam{seed}", np.cumsum(rng.integers(1, 50, length)),
               rng.normal(size=(length, joints, 2)).astype(np.float32),
               rng.normal(size=(length, joints, 3)).astype(np.float32) + 4.0)


def sequences_of(lengths, joints: int = 5) -> list[Seq]:
    return [make_sequence(t, joints, seed=i) for i, t in enumerate(lengths)]


def all_windows(windows: TrainWindows) -> tuple[torch.Tensor, torch.Tensor]:
    """Every training window in index order."""
    return next(windows.batches(len(windows), shuffle=False))


def root_relative(pose_3d: np.ndarray, root: int = 0) -> np.ndarray:
    return pose_3d - pose_3d[:, root:root + 1]


def edge_padded(pose: np.ndarray, before: int, after: int) -> np.ndarray:
    return np.pad(pose, ((before, after), (0, 0), (0, 0)), mode="edge")


# --- geometry ---------------------------------------------------------------------------------------------------

def _geometry(seq2seq: bool, frames: int, receptive_field: int) -> SimpleNamespace:
    return SimpleNamespace(seq2seq=seq2seq, frames=frames, receptive_field=receptive_field)


def test_spec_for_lifter_geometry():
    assert WindowSpec.for_lifter(_geometry(True, 27, 27)) == WindowSpec(27, 0, 0)
    assert WindowSpec.for_lifter(_geometry(False, 81, 81)) == WindowSpec(1, 40, 40)  # PoseFormer, centre frame
    assert WindowSpec.for_lifter(_geometry(False, 4, 4)) == WindowSpec(1, 1, 2)  # even F: first output at (F - 1) // 2
    assert WindowSpec.for_lifter(_geometry(False, 243, 27)) == WindowSpec(217, 13, 13)  # VideoPose default: L - RF + 1
    assert WindowSpec.for_lifter(_geometry(False, 27, 27), frames_out=10).frames_in == 36
    assert WindowSpec(5, 2, 3).frames_in == 10


def test_spec_rejects_bad_geometry():
    with pytest.raises(ValueError, match="seq2seq lifter predicts its 27"):
        WindowSpec.for_lifter(_geometry(True, 27, 27), frames_out=1)
    with pytest.raises(ValueError, match="frames_out >= 1"):
        WindowSpec(0)
    with pytest.raises(ValueError, match="left, right >= 0"):
        WindowSpec(3, -1)


# --- test windows -----------------------------------------------------------------------------------------------

SPECS = [WindowSpec(1), WindowSpec(27), WindowSpec(81), WindowSpec(1, 2, 2), WindowSpec(27, 1, 2),
         WindowSpec(81, 13, 13)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"N{s.frames_out}-L{s.left}-R{s.right}")
def test_test_windows_cover_every_frame_once(spec):
    windows = TestWindows(sequences_of(LENGTHS), spec)
    assert windows.total_frames == sum(LENGTHS)
    assert windows.mask.sum() == sum(LENGTHS)
    covered = np.sort(windows.frame_index[windows.mask])
    np.testing.assert_array_equal(covered, np.arange(sum(LENGTHS)))
    assert windows.frame_index.shape == windows.mask.shape == (len(windows), spec.frames_out)


def test_test_windows_blocks_for_27_frames():
    windows = TestWindows(sequences_of([28, 26, 54]), WindowSpec(27))
    np.testing.assert_array_equal(windows.starts, [0, 1, 0, 0, 27])
    np.testing.assert_array_equal(windows.mask.sum(axis=1), [27, 1, 26, 27, 27])
    assert windows.mask[1, -1] and not windows.mask[1, :-1].any()  # end-aligned block: only frame 27 is new
    np.testing.assert_array_equal(windows.frame_index[2], np.minimum(np.arange(27), 25) + 28)  # right-padded


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"N{s.frames_out}-L{s.left}-R{s.right}")
def test_test_windows_inputs_are_edge_padded_and_centred(spec):
    sequences = sequences_of(LENGTHS)
    windows = TestWindows(sequences, spec)
    batches = list(windows.batches(batch_size=7))
    x2d = torch.cat([b[0] for b in batches]).numpy()
    y3d = torch.cat([b[1] for b in batches]).numpy()
    assert x2d.shape == (len(windows), spec.frames_in, 5, 2) and x2d.dtype == np.float32
    for w, (s, start) in enumerate(zip(windows.sequence_index, windows.starts)):
        seq = sequences[s]
        expected = edge_padded(seq.pose_2d, spec.left, spec.right + spec.frames_out)[start:start + spec.frames_in]
        np.testing.assert_array_equal(x2d[w], expected)
        expected = edge_padded(root_relative(seq.pose_3d), spec.left, spec.right + spec.frames_out)
        np.testing.assert_array_equal(y3d[w], expected[start:start + spec.frames_in])
    # The outputs are the input frames after the left context: gathering them and scattering gives each frame back.
    outputs = y3d[:, spec.left:spec.left + spec.frames_out]
    np.testing.assert_array_equal(outputs, windows.pose_3d[windows.frame_index])
    np.testing.assert_array_equal(windows.scatter(outputs, windows.frame_index, windows.mask), windows.pose_3d)


def test_scatter_torch_and_batches_agree_with_attributes():
    windows = TestWindows(sequences_of([30, 3]), WindowSpec(4, 1, 1))
    masks, indices, values = [], [], []
    for _, y3d, mask, frame_index in windows.batches(batch_size=3):
        assert mask.dtype == torch.bool and frame_index.dtype == torch.int64
        masks.append(mask), indices.append(frame_index), values.append(y3d[:, 1:5])
    mask, frame_index = torch.cat(masks), torch.cat(indices)
    np.testing.assert_array_equal(mask.numpy(), windows.mask)
    np.testing.assert_array_equal(frame_index.numpy(), windows.frame_index)
    per_frame = windows.scatter(torch.cat(values), frame_index, mask)
    assert isinstance(per_frame, torch.Tensor) and per_frame.shape == (33, 5, 3)
    np.testing.assert_array_equal(per_frame.numpy(), windows.pose_3d)


def test_scatter_rejects_missing_or_mismatched_outputs():
    windows = TestWindows(sequences_of([30]), WindowSpec(4))
    values = windows.pose_3d[windows.frame_index]
    with pytest.raises(ValueError, match="exactly once.*4 missing"):
        windows.scatter(values[1:], windows.frame_index[1:], windows.mask[1:])
    with pytest.raises(ValueError, match="to agree"):
        windows.scatter(values[:, :2], windows.frame_index, windows.mask)


def test_per_frame_lookup_arrays():
    sequences = [make_sequence(3, 4, seed=0, subject="S8", action="Walk"),
                 make_sequence(2, 4, seed=1, subject="S9", action="Eat")]
    windows = TestWindows(sequences, WindowSpec(2))
    np.testing.assert_array_equal(windows.sequence_of_frame, [0, 0, 0, 1, 1])
    assert list(windows.frame_subject) == ["S8"] * 3 + ["S9"] * 2
    assert list(windows.frame_action) == ["Walk"] * 3 + ["Eat"] * 2
    assert list(windows.frame_camera) == ["cam0"] * 3 + ["cam1"] * 2
    np.testing.assert_array_equal(windows.frame_id, np.concatenate([s.frame_ids for s in sequences]))


# --- training windows -------------------------------------------------------------------------------------------

def test_train_default_cut_splits_padding_like_the_reference():
    seq = make_sequence(30, 5, seed=3)
    windows = TrainWindows([seq], WindowSpec(27))
    np.testing.assert_array_equal(windows.starts, [-12, 15])  # offset = (2 * 27 - 30) // 2 = 12
    x2d, y3d = all_windows(windows)
    assert x2d.shape == (2, 27, 5, 2) and y3d.shape == (2, 27, 5, 3)
    frames = [np.r_[[0] * 12, np.arange(15)], np.r_[np.arange(15, 30), [29] * 12]]
    for w in range(2):
        np.testing.assert_array_equal(x2d[w].numpy(), seq.pose_2d[frames[w]])
        np.testing.assert_array_equal(y3d[w].numpy(), root_relative(seq.pose_3d)[frames[w]])


@pytest.mark.parametrize("spec", [WindowSpec(27), WindowSpec(1, 40, 40), WindowSpec(4, 1, 2)],
                         ids=lambda s: f"N{s.frames_out}")
def test_train_stride_one_gives_a_window_per_frame(spec):
    windows = TrainWindows(sequences_of([30, 1]), spec, stride=1)
    assert len(windows) == 31
    np.testing.assert_array_equal(windows.starts[:30], np.arange(30) - (spec.frames_out - 1) // 2)
    x2d, _ = all_windows(windows)
    # Frame k is the centre of window k's outputs.
    centre = spec.left + (spec.frames_out - 1) // 2
    np.testing.assert_array_equal(x2d[:30, centre].numpy(), windows.table.pose_2d[:30])


def test_train_non_default_stride_covers_the_sequence():
    windows = TrainWindows(sequences_of([100]), WindowSpec(27), stride=9)
    assert len(windows) == 12  # ceil(100 / 9)
    assert np.all(np.diff(windows.starts) == 9)
    assert windows.starts[0] <= 0 and windows.starts[-1] + 27 >= 100


def test_train_flip_doubles_and_mirrors_whole_body():
    windows = TrainWindows(sequences_of([30, 10], joints=NUM_JOINTS), WindowSpec(27), flip=True)
    assert len(windows) == 2 * 3
    x2d, y3d = all_windows(windows)
    plain_2d, mirrored_2d, plain_3d, mirrored_3d = x2d[:3], x2d[3:], y3d[:3], y3d[3:]
    torch.testing.assert_close(mirrored_2d, flip_pose(plain_2d, FLIP_PERMUTATION), rtol=0, atol=0)
    torch.testing.assert_close(mirrored_3d, flip_pose(plain_3d, FLIP_PERMUTATION), rtol=0, atol=0)
    torch.testing.assert_close(flip_pose(mirrored_2d, FLIP_PERMUTATION), plain_2d, rtol=0, atol=0)
    torch.testing.assert_close(flip_pose(mirrored_3d, FLIP_PERMUTATION), plain_3d, rtol=0, atol=0)
    assert not torch.equal(mirrored_2d, plain_2d)
    assert torch.all(y3d[:, :, 0] == 0)


def test_train_flip_any_joint_layout_with_its_permutation():
    sequences = sequences_of([12], joints=17)
    with pytest.raises(ValueError, match="permutation of 17 joints"):
        TrainWindows(sequences, WindowSpec(4), flip=True)
    assert len(TrainWindows(sequences, WindowSpec(4))) == 3  # the default permutation is unused without flip
    windows = TrainWindows(sequences, WindowSpec(4), flip=True, permutation=np.arange(17))
    x2d, y3d = all_windows(windows)
    assert x2d.shape == (6, 4, 17, 2)
    np.testing.assert_array_equal(x2d[3:, ..., 0].numpy(), -x2d[:3, ..., 0].numpy())
    np.testing.assert_array_equal(y3d[3:, ..., 1:].numpy(), y3d[:3, ..., 1:].numpy())


def test_train_rejects_bad_permutations():
    sequences = sequences_of([12], joints=4)
    with pytest.raises(ValueError, match="own inverse"):
        TrainWindows(sequences, WindowSpec(4), flip=True, permutation=[1, 2, 3, 0])
    with pytest.raises(ValueError, match="moves the root joint 0"):
        TrainWindows(sequences, WindowSpec(4), flip=True, permutation=[1, 0, 2, 3])


@pytest.mark.parametrize("root", [0, 3])
def test_train_targets_are_root_relative(root):
    sequences = sequences_of([20, 7])
    _, y3d = all_windows(TrainWindows(sequences, WindowSpec(5, 2, 2), root=root))
    assert torch.all(y3d[:, :, root] == 0)
    assert torch.all(y3d[:, :, (root + 1) % 5] != 0)


def test_train_shuffle_is_seeded_by_seed_and_epoch():
    windows = TrainWindows(sequences_of([100, 40]), WindowSpec(3), flip=True, permutation=np.arange(5))

    def epoch_batches(epoch, seed_windows=windows):
        return [x for x, _ in seed_windows.batches(batch_size=10, epoch=epoch)]

    first, again, other = epoch_batches(0), epoch_batches(0), epoch_batches(1)
    assert [b.shape[0] for b in first] == [10] * 9 + [6]  # 2 * (34 + 14) windows, the last batch smaller
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(torch.cat(first), torch.cat(other))
    # Both orders hold every window exactly once.
    plain = all_windows(windows)[0].flatten(1)
    for order in (first, other):
        shuffled = torch.cat(order).flatten(1)
        assert torch.equal(torch.sort(shuffled, dim=0).values, torch.sort(plain, dim=0).values)
    reseeded = TrainWindows(sequences_of([100, 40]), WindowSpec(3), flip=True, permutation=np.arange(5), seed=1)
    assert not torch.equal(torch.cat(epoch_batches(0, reseeded)), torch.cat(first))


# --- input validation -------------------------------------------------------------------------------------------

def test_bad_sequences_raise_clear_errors():
    good = make_sequence(6, 5, seed=0)
    with pytest.raises(ValueError, match="at least one sequence"):
        TestWindows([], WindowSpec(3))
    with pytest.raises(ValueError, match=r"sequence 1 .*pose_2d should have shape \(6, 5, 2\)"):
        TestWindows([good, make_sequence(6, 4, seed=1)], WindowSpec(3))
    unsorted = Seq("S8", "Walk", "cam", good.frame_ids[::-1].copy(), good.pose_2d, good.pose_3d)
    with pytest.raises(ValueError, match=r"sequence 0 \(S8/Walk/cam\): frame_ids should be strictly increasing"):
        TrainWindows([unsorted], WindowSpec(3))
    with pytest.raises(ValueError, match="pose_3d should have shape"):
        TrainWindows([Seq("S8", "Walk", "cam", good.frame_ids, good.pose_2d, good.pose_3d[:, :, :2])], WindowSpec(3))
    with pytest.raises(ValueError, match=r"root joint should be in \[0, 5\)"):
        TrainWindows([good], WindowSpec(3), root=5)
