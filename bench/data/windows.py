"""Temporal windows over pose sequences: which frames a lifter reads and predicts, in training and in testing.

Geometry: a window predicts ``frames_out`` consecutive output frames and also reads ``left`` frames before and
``right`` frames after them, so its input holds ``frames_in = left + frames_out + right`` frames. Seq2seq lifters
(MixSTE, D3DP, PAFUSE) read exactly what they predict; receptive-field lifters (VideoPose, PoseFormer) need
``receptive_field - 1`` extra frames split around the outputs, matching ``baselines.base.Lifter.target_frames``.
Input frames outside a sequence repeat its first or last frame (edge replication), for 2D and 3D alike.

Sequences are any objects with ``subject``, ``action``, ``camera`` (str), ``frame_ids`` (T,), ``pose_2d``
(T, J, 2) normalized screen coordinates and ``pose_3d`` (T, J, 3) absolute camera-frame metres, sorted by frame id.
All frames are concatenated once into global arrays; a window is a row of global frame indices, so a batch is one
numpy gather. The 3D poses are made root-relative here (the root joint is exactly 0 in every frame).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np
import torch

from baselines.base import flip_pose
from bench.skeleton import FLIP_PERMUTATION


class SequenceLike(Protocol):
    """What the windows read from a sequence (e.g. ``bench.data.h3wb.Sequence``)."""

    subject: str
    action: str
    camera: str
    frame_ids: np.ndarray
    pose_2d: np.ndarray
    pose_3d: np.ndarray


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry: ``frames_out`` predicted frames plus ``left`` / ``right`` context frames of input."""

    frames_out: int
    left: int = 0
    right: int = 0

    def __post_init__(self):
        if self.frames_out < 1 or self.left < 0 or self.right < 0:
            raise ValueError(f"WindowSpec needs frames_out >= 1 and left, right >= 0, got frames_out="
                             f"{self.frames_out}, left={self.left}, right={self.right}")

    @property
    def frames_in(self) -> int:
        """Input frames per window: ``left + frames_out + right``."""
        return self.left + self.frames_out + self.right

    @classmethod
    def for_lifter(cls, lifter, frames_out: int | None = None) -> WindowSpec:
        """The geometry a lifter needs, from its ``seq2seq``, ``frames`` and ``receptive_field`` attributes.

        Args:
            lifter: a lifter (``baselines.base.Lifter``), or anything with those three attributes: ``seq2seq``, the
                lifter predicts every input frame (then ``frames_out`` is ``frames``, no context); ``frames``, N, the
                window length it is built for (e.g. 27 or 81); ``receptive_field``, input frames needed per output
                frame (e.g. 243 for VideoPose, F for PoseFormer).
            frames_out: outputs per window of a receptive-field lifter; by default what a ``frames``-long input
                gives, ``frames - receptive_field + 1`` (1 for PoseFormer).
        """
        seq2seq, frames, receptive_field = lifter.seq2seq, lifter.frames, lifter.receptive_field
        if seq2seq:
            if frames_out not in (None, frames):
                raise ValueError(f"a seq2seq lifter predicts its {frames} input frames, frames_out={frames_out}")
            return cls(frames)
        if frames_out is None:
            frames_out = frames - receptive_field + 1
        left = (receptive_field - 1) // 2  # the first output sits on input frame (receptive_field - 1) // 2
        return cls(frames_out, left, receptive_field - 1 - left)


def _check_sequence(sequence: SequenceLike, index: int, joints: int | None) -> int:
    """Validate one sequence's fields and return its joint count J."""
    name = (f"sequence {index} ({getattr(sequence, 'subject', '?')}/{getattr(sequence, 'action', '?')}/"
            f"{getattr(sequence, 'camera', '?')})")
    for field in ("subject", "action", "camera", "frame_ids", "pose_2d", "pose_3d"):
        if not hasattr(sequence, field):
            raise ValueError(f"{name}: missing field {field!r}")
    frame_ids, pose_2d, pose_3d = (np.asarray(a) for a in (sequence.frame_ids, sequence.pose_2d, sequence.pose_3d))
    length = len(frame_ids)
    if frame_ids.ndim != 1 or length < 1:
        raise ValueError(f"{name}: frame_ids should have shape (T,) with T >= 1, got {frame_ids.shape}")
    if np.any(np.diff(frame_ids) <= 0):
        raise ValueError(f"{name}: frame_ids should be strictly increasing (sorted by the loader)")
    if joints is None:
        if pose_2d.ndim != 3:
            raise ValueError(f"{name}: pose_2d should have shape (T, J, 2), got {pose_2d.shape}")
        joints = pose_2d.shape[1]
    for field, pose, dims in (("pose_2d", pose_2d, 2), ("pose_3d", pose_3d, 3)):
        if pose.shape != (length, joints, dims):
            raise ValueError(f"{name}: {field} should have shape {(length, joints, dims)} (T, J, {dims}), "
                             f"got {pose.shape}")
    return joints


class _FrameTable:
    """Every sequence's frames concatenated once, with per-sequence offsets and per-frame metadata.

    Attributes:
        lengths, offsets: (S,) int64 frame count and first global frame of each sequence.
        pose_2d: (total_frames, J, 2) float32 normalized screen coordinates; (2 total_frames, J, 2) once
            ``add_mirror`` stored the mirrored frames after the plain ones.
        pose_3d: (total_frames, J, 3) float32 root-relative camera-frame metres (doubled likewise).
    """

    def __init__(self, sequences: list[SequenceLike], root: int):
        if not sequences:
            raise ValueError("windows need at least one sequence, got an empty list")
        joints = _check_sequence(sequences[0], 0, None)
        for index, sequence in enumerate(sequences[1:], start=1):
            _check_sequence(sequence, index, joints)
        if not 0 <= root < joints:
            raise ValueError(f"root joint should be in [0, {joints}), got {root}")
        self.joints = joints
        self.sequences = sequences
        self.lengths = np.array([len(s.frame_ids) for s in sequences], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.pose_2d = np.concatenate([np.asarray(s.pose_2d, dtype=np.float32) for s in sequences])
        pose_3d = np.concatenate([np.asarray(s.pose_3d, dtype=np.float32) for s in sequences])
        self.pose_3d = pose_3d - pose_3d[:, root:root + 1]

    @property
    def total_frames(self) -> int:
        return int(self.lengths.sum())

    def frame_index(self, sequence: np.ndarray, starts: np.ndarray, frames: int) -> np.ndarray:
        """Global indices (W, frames) of ``frames`` positions from ``starts`` in each sequence, edge-replicated.

        Args:
            sequence: (W,) sequence index of each window.
            starts: (W,) first position inside its sequence (may be negative or run past the end).
        """
        positions = starts[:, None] + np.arange(frames)
        positions = np.clip(positions, 0, self.lengths[sequence][:, None] - 1)
        return self.offsets[sequence][:, None] + positions

    def add_mirror(self, permutation: np.ndarray) -> None:
        """Store every frame mirrored after the plain ones: the mirror of frame ``i`` is ``i + total_frames``.

        Mirroring once here turns a mirrored window into a plain gather, instead of permuting joints per batch.
        """
        self.pose_2d = np.concatenate([self.pose_2d, flip_pose(self.pose_2d, permutation)])
        self.pose_3d = np.concatenate([self.pose_3d, flip_pose(self.pose_3d, permutation)])

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """2D (W, L, J, 2) and root-relative 3D (W, L, J, 3) poses of global frame indices (W, L)."""
        return np.take(self.pose_2d, index, axis=0), np.take(self.pose_3d, index, axis=0)


def _train_starts(length: int, frames_out: int, stride: int) -> np.ndarray:
    """Output start positions of one sequence's training windows.

    The sequence is cut into ``n = ceil(T / stride)`` anchor blocks of ``stride`` frames whose overhang
    ``stride * n - T`` is split over both ends (left gets ``(stride * n - T) // 2``), and each window's outputs are
    centred on its anchor block. With ``stride == frames_out`` this is the reference cut (non-overlapping windows
    starting at ``N k - offset``); with ``stride = 1`` every frame anchors one window (T windows).
    """
    count = -(-length // stride)
    offset = (stride * count - length) // 2
    return stride * np.arange(count, dtype=np.int64) - offset - (frames_out - stride) // 2


class TrainWindows:
    """Training windows over sequences, optionally each also mirrored, batched in a seeded order.

    Window ``i < W`` is plain window ``i``; with ``flip`` window ``W + i`` is its mirror image (x negated, mirror
    pairs swapped by ``permutation``, in 2D and 3D).

    Args:
        sequences: the sequences (see module docstring).
        spec: window geometry.
        stride: output frames between consecutive windows' anchors; default ``spec.frames_out``.
        flip: also list every window mirrored (training augmentation).
        permutation: (J,) mirror permutation, an involution fixing ``root``; pass one for layouts other than j134.
        root: joint subtracted from the 3D poses (0 = pelvis in j134).
        seed: seed of the shuffle, combined with the epoch.

    Attributes:
        sequence_index, starts: (W,) int64 sequence and first output position of each plain window.
    """

    def __init__(self, sequences, spec: WindowSpec, stride: int | None = None, flip: bool = False,
                 permutation=FLIP_PERMUTATION, root: int = 0, seed: int = 0):
        self.table = _FrameTable(list(sequences), root)
        self.spec = spec
        self.stride = spec.frames_out if stride is None else stride
        if self.stride < 1:
            raise ValueError(f"stride should be >= 1, got {self.stride}")
        self.flip = flip
        if flip:
            self.table.add_mirror(_check_permutation(permutation, self.table.joints, root))
        self.seed = seed
        starts = [_train_starts(int(t), spec.frames_out, self.stride) for t in self.table.lengths]
        self.sequence_index = np.repeat(np.arange(len(starts), dtype=np.int64), [len(s) for s in starts])
        self.starts = np.concatenate(starts)

    def __len__(self) -> int:
        return len(self.starts) * (2 if self.flip else 1)

    def batch_count(self, batch_size: int) -> int:
        """Batches per epoch: the optimizer steps of one epoch at ``batch_size``."""
        return -(-len(self) // batch_size)

    def batches(self, batch_size: int, shuffle: bool = True, epoch: int = 0, rank: int = 0,
                ranks: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x2d (B, L, J, 2), y3d (B, L, J, 3))`` float32 tensors, L = ``spec.frames_in``.

        The order is a permutation seeded by ``(seed, epoch)``, so a resumed run replays an epoch exactly; the last
        batch may be smaller. With ``ranks`` > 1 (one process of a run over several), only the slice
        :func:`shard` gives process ``rank`` of every batch: the processes' slices of a step together are exactly
        that step's batch, in order.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size should be >= 1, got {batch_size}")
        order = np.arange(len(self))
        if shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self))
        for first in range(0, len(order), batch_size):
            windows = order[first:first + batch_size]
            yield self._batch(windows[shard(len(windows), rank, ranks)])

    def _batch(self, windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        plain = windows % len(self.starts)
        index = self.table.frame_index(self.sequence_index[plain], self.starts[plain] - self.spec.left,
                                       self.spec.frames_in)
        mirrored = windows >= len(self.starts)
        x2d, y3d = self.table.gather(index + self.table.total_frames * mirrored[:, None])
        return torch.from_numpy(x2d), torch.from_numpy(y3d)


def shard(rows: int, rank: int, ranks: int) -> slice:
    """The contiguous slice of a batch of ``rows`` rows that process ``rank`` of ``ranks`` takes: the first
    ``rows % ranks`` processes take one row more than the others (``numpy.array_split``'s rule), and a process takes
    none when ``rows < ranks``."""
    if not 0 <= rank < ranks:
        raise ValueError(f"rank should be in [0, {ranks}), got {rank}")
    size, extra = divmod(rows, ranks)
    start = rank * size + min(rank, extra)
    return slice(start, start + size + (rank < extra))


def _check_permutation(permutation, joints: int, root: int) -> np.ndarray:
    """Validate a mirror permutation: J entries, a permutation, its own inverse, fixing the root."""
    permutation = np.asarray(permutation, dtype=np.int64)
    if permutation.shape != (joints,) or not np.array_equal(np.sort(permutation), np.arange(joints)):
        raise ValueError(f"flip permutation should be a permutation of {joints} joints (the poses' J), got shape "
                         f"{permutation.shape}; pass one matching this joint layout")
    if not np.array_equal(permutation[permutation], np.arange(joints)):
        raise ValueError("flip permutation should swap pairs (be its own inverse), so that flipping twice is identity")
    if permutation[root] != root:
        raise ValueError(f"flip permutation moves the root joint {root} to {permutation[root]}: root-relative "
                         "targets would not stay root-relative once mirrored")
    return permutation


def _test_blocks(length: int, frames_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Output starts of one sequence's test windows and the first position each one newly covers.

    Blocks start at 0, N, 2N, ...; a remainder gets one more block aligned to the end (it starts at ``T - N`` but
    only its outputs from the previous block's end count); a sequence shorter than N gets one right-padded block.
    """
    full = length // frames_out
    starts = frames_out * np.arange(full, dtype=np.int64)
    if length % frames_out == 0:
        return starts, starts
    tail_start, tail_first_new = max(length - frames_out, 0), full * frames_out
    return np.append(starts, tail_start), np.append(starts, tail_first_new)


class TestWindows:
    """Test windows that predict every annotated frame exactly once (counting only outputs under ``mask``).

    Args:
        sequences: the sequences (see module docstring).
        spec: window geometry.
        root: joint subtracted from the 3D poses (0 = pelvis in j134).

    Attributes:
        frame_index: (W, N) int64 global frame of each output (a replicated frame for padded outputs).
        mask: (W, N) bool, True for the outputs that count: not padding, not already covered by an earlier block.
        pose_3d: (total_frames, J, 3) float32 root-relative 3D poses, the per-frame targets.
        sequence_of_frame: (total_frames,) int64 sequence index of each global frame.
        frame_subject, frame_action, frame_camera: (total_frames,) str, per-frame sequence keys.
        frame_id: (total_frames,) int64 frame id of each global frame.
    """

    __test__ = False  # a library class, not a pytest test class

    def __init__(self, sequences, spec: WindowSpec, root: int = 0):
        self.table = _FrameTable(list(sequences), root)
        self.spec = spec
        blocks = [_test_blocks(int(t), spec.frames_out) for t in self.table.lengths]
        self.sequence_index = np.repeat(np.arange(len(blocks), dtype=np.int64), [len(b[0]) for b in blocks])
        self.starts = np.concatenate([b[0] for b in blocks])
        first_new = np.concatenate([b[1] for b in blocks])
        self.frame_index = self.table.frame_index(self.sequence_index, self.starts, spec.frames_out)
        positions = self.starts[:, None] + np.arange(spec.frames_out)
        self.mask = (positions >= first_new[:, None]) & (positions < self.table.lengths[self.sequence_index][:, None])
        self._frame_keys()

    def _frame_keys(self) -> None:
        sequences, lengths = self.table.sequences, self.table.lengths
        self.pose_3d = self.table.pose_3d
        self.sequence_of_frame = np.repeat(np.arange(len(sequences), dtype=np.int64), lengths)
        for field in ("subject", "action", "camera"):
            keys = np.array([str(getattr(s, field)) for s in sequences])
            setattr(self, f"frame_{field}", keys[self.sequence_of_frame])
        self.frame_id = np.concatenate([np.asarray(s.frame_ids, dtype=np.int64) for s in sequences])

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def total_frames(self) -> int:
        """Annotated frames over all sequences (= ``mask.sum()``)."""
        return self.table.total_frames

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield ``(x2d (B, L, J, 2), y3d (B, L, J, 3), mask (B, N), frame_index (B, N))`` in window order.

        L = ``spec.frames_in`` and N = ``spec.frames_out``; ``y3d`` is root-relative over the input frames, so
        ``Lifter.target_frames`` applies as in training.
        """
        for windows in self.batch_windows(batch_size):
            yield self.batch(windows)

    def batch_windows(self, batch_size: int, by_sequence: bool = False) -> list[np.ndarray]:
        """The window indices of every batch of ``batches``, in order; with ``by_sequence``, a batch never mixes
        sequences (the reference evaluates one sequence per batch)."""
        if batch_size < 1:
            raise ValueError(f"batch_size should be >= 1, got {batch_size}")
        groups = ([np.flatnonzero(self.sequence_index == sequence) for sequence in np.unique(self.sequence_index)]
                  if by_sequence else [np.arange(len(self))])
        return [windows[first:first + batch_size] for windows in groups
                for first in range(0, len(windows), batch_size)]

    def batch(self, windows: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The ``batches`` tuple for the given window indices (e.g. all windows of one sequence)."""
        index = self.table.frame_index(self.sequence_index[windows], self.starts[windows] - self.spec.left,
                                       self.spec.frames_in)
        x2d, y3d = self.table.gather(index)
        return (torch.from_numpy(x2d), torch.from_numpy(y3d), torch.from_numpy(self.mask[windows]),
                torch.from_numpy(self.frame_index[windows]))

    def scatter(self, values, frame_index, mask):
        """Place window outputs back per frame: values (W, N, ...) -> (total_frames, ...).

        Works on numpy arrays and torch tensors (the result has the type and device of ``values``). The masked
        outputs must cover every frame exactly once, so a dropped or repeated batch is an error, not a bias.
        """
        if tuple(values.shape[:2]) != tuple(frame_index.shape) or tuple(mask.shape) != tuple(frame_index.shape):
            raise ValueError(f"scatter expects values (W, N, ...), frame_index (W, N) and mask (W, N) to agree, got "
                             f"{tuple(values.shape)}, {tuple(frame_index.shape)} and {tuple(mask.shape)}")
        mask = _to_numpy(mask).astype(bool, copy=False)
        chosen = _to_numpy(frame_index)[mask]
        counts = np.bincount(chosen, minlength=self.total_frames)
        if len(counts) != self.total_frames or np.any(counts != 1):
            raise ValueError(f"scatter expects each of the {self.total_frames} frames exactly once among masked "
                             f"outputs: {int(np.sum(counts[:self.total_frames] == 0))} missing, "
                             f"{int(np.sum(counts > 1))} repeated, {len(counts) - self.total_frames} out of range")
        if isinstance(values, torch.Tensor):
            out = values.new_empty((self.total_frames,) + tuple(values.shape[2:]))
            out[torch.from_numpy(chosen).to(values.device)] = values[torch.from_numpy(mask).to(values.device)]
            return out
        out = np.empty((self.total_frames,) + values.shape[2:], dtype=values.dtype)
        out[chosen] = values[mask]
        return out


def _to_numpy(x) -> np.ndarray:
    """A numpy copy of a tensor (any device) or array-like."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
