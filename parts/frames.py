"""Part frames: split a whole-body pose into body, face and hands, each in its own local frame, and put it back.

PAFUSE (Samet, Rommel, Picard and Valle, https://github.com/valeoai/PAFUSE, paper Sec. 3) predicts every part
relative to a local root: the body at the pelvis, the face at its nose tip, each hand at its hand root
(``skeleton.PART_ROOTS``). In local frames those roots are exactly 0. To get a whole body back, each non-body part
is translated by an *anchor*, a pelvis-frame point that the body sub-network predicts. Two ways to choose the
anchors (``attach``):

* ``"reference"``, the reference code (``utils.py:wb_pose_from_parts``): the face hangs from the body nose and each
  hand from its body wrist (``skeleton.PART_ATTACH``). The face nose tip then lands on the body nose and each hand
  root on its wrist: nothing learns the offsets between them (~15.5 mm face, ~16.3 mm hands on the synthetic data,
  ``bench.data.synthetic.part_root_offsets``), so every face and hand joint carries that error against the real GT.
* ``"roots"`` (ours): the body sub-network also predicts the three part roots in the pelvis frame. The model sees an
  *extended layout* of 134 + 3 tokens: tokens 134, 135, 136 are copies of the face, left-hand and right-hand roots
  (their 2D is the root's 2D, their target the root's pelvis-frame 3D), and they belong to the body part. Each part
  is attached at its own predicted root, so the offsets are learned. It costs three body tokens (1,152 parameters
  for PAFUSE's 384-wide body).

``roots`` is the default (``DEFAULT_ATTACH``): the reference's offsets are a floor that no training removes, about
the size of the whole face error PAFUSE reports (5.8 mm), while the extra tokens cost 0.003 % of the parameters.

With ``shift=False`` (the "only part denoisers" ablation) every part stays rooted at the pelvis: no local frames,
no anchor tokens, and reassembly is the identity.

Mirroring commutes with all of this: the face root is self-symmetric and the hand roots swap with each other, so
flipping a pose and then moving it into part frames equals moving it and then flipping it with
:meth:`PartLayout.permutation`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.skeleton import NUM_JOINTS, PART_ATTACH, PART_ROOTS, PARTS, PELVIS

ATTACH_MODES = ("reference", "roots")
DEFAULT_ATTACH = "roots"
ATTACHED_PARTS: tuple[str, ...] = tuple(PART_ATTACH)
"""The parts that hang from the body (face, left hand, right hand), in the order of the anchor tokens."""


def _token_sources(attach: str, shift: bool) -> list[int]:
    """For every token of the layout, the j134 joint whose 2D and 3D it carries."""
    extra = [PART_ROOTS[part] for part in ATTACHED_PARTS] if shift and attach == "roots" else []
    return list(range(NUM_JOINTS)) + extra


def _check_pose(x: torch.Tensor, field: str, channels: int | None = None) -> None:
    """Raise ValueError unless ``x`` is (..., 134, C), with C = ``channels`` when given."""
    if x.ndim < 2 or x.shape[-2] != NUM_JOINTS or (channels is not None and x.shape[-1] != channels):
        expected = f"(..., {NUM_JOINTS}, {channels if channels is not None else 'C'})"
        raise ValueError(f"{field}: expected whole-body poses {expected}, got {tuple(x.shape)}")


class PartLayout(nn.Module):
    """The token layout a part-based model sees, and the moves between whole-body poses and part frames.

    Shapes: whole-body poses are (..., 134, C) in the j134 layout, root-relative at the pelvis (metres for 3D);
    token tensors are (..., T, C) with T = ``joints`` (134, or 137 with ``attach="roots"``).

    Args:
        attach: ``"reference"`` or ``"roots"`` (see the module docstring).
        shift: express each part in its local frame; False keeps every part at the pelvis.

    Attributes:
        joints: T, the number of tokens.
        token_sources: for every token, the j134 joint it copies.
        parts: part name (``skeleton.PARTS`` keys) -> its token indices; the body holds the anchor tokens.
        anchor_tokens: attached part -> the body token whose pelvis-frame position anchors it.
    """

    def __init__(self, attach: str = DEFAULT_ATTACH, shift: bool = True):
        super().__init__()
        if attach not in ATTACH_MODES:
            raise ValueError(f"attach: expected one of {ATTACH_MODES}, got {attach!r}")
        self.attach, self.shift = attach, shift
        sources = _token_sources(attach, shift)
        self.token_sources = tuple(sources)
        self.joints = len(sources)
        anchor_copies = tuple(range(NUM_JOINTS, self.joints))
        self.parts = {part: tuple(joints) + (anchor_copies if part == "body" else ()) for part, joints in PARTS.items()}
        if not shift:
            self.anchor_tokens = {}
        elif attach == "roots":
            self.anchor_tokens = dict(zip(ATTACHED_PARTS, anchor_copies))
        else:
            self.anchor_tokens = dict(PART_ATTACH)
        # Each token is moved by the token at its part's root; without shift every root is the pelvis.
        roots = {part: PART_ROOTS[part] if shift else PELVIS for part in PARTS}
        root_of_token = np.empty(self.joints, dtype=np.int64)
        for part, tokens in self.parts.items():
            root_of_token[list(tokens)] = roots[part]
        # Anchor slot of every whole-body joint: 0 = no anchor (body), k = ATTACHED_PARTS[k - 1].
        slot_of_joint = np.zeros(NUM_JOINTS, dtype=np.int64)
        for slot, part in enumerate(ATTACHED_PARTS, start=1):
            if part in self.anchor_tokens:
                slot_of_joint[list(PARTS[part])] = slot
        self.register_buffer("sources", torch.as_tensor(sources), persistent=False)
        self.register_buffer("root_of_token", torch.from_numpy(root_of_token), persistent=False)
        self.register_buffer("slot_of_joint", torch.from_numpy(slot_of_joint), persistent=False)
        anchors = [self.anchor_tokens.get(part, PELVIS) for part in ATTACHED_PARTS]
        self.register_buffer("anchor_index", torch.as_tensor(anchors), persistent=False)

    def extra_repr(self) -> str:
        return f"attach={self.attach!r}, shift={self.shift}, joints={self.joints}"

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Whole-body (..., 134, C) 2D or 3D -> (..., T, C) tokens (anchor tokens copy their part roots)."""
        _check_pose(x, "whole-body input")
        if self.joints == NUM_JOINTS:
            return x
        return x.index_select(-2, self.sources)

    def to_local(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., T, 3) pelvis-frame tokens -> the same tokens in their part frames (part roots become 0)."""
        return tokens - tokens.index_select(-2, self.root_of_token)

    def local_targets(self, y3d: torch.Tensor) -> torch.Tensor:
        """Root-relative whole-body (..., 134, 3) poses -> (..., T, 3) part-frame training targets."""
        _check_pose(y3d, "y3d", channels=3)
        return self.to_local(self.tokens(y3d))

    def anchors(self, local: torch.Tensor) -> torch.Tensor:
        """The pelvis-frame anchors of the attached parts read off (..., T, 3) tokens: (..., 3 parts, 3).

        Body tokens are in the pelvis frame, so the anchor tokens (body joints or root copies) are read as they
        are. Without shift there is nothing to attach and the anchors are zero.
        """
        anchors = local.index_select(-2, self.anchor_index)
        return anchors if self.anchor_tokens else torch.zeros_like(anchors)

    def reassemble(self, local: torch.Tensor, anchors: torch.Tensor | None = None) -> torch.Tensor:
        """Part-frame tokens (..., T, 3) -> whole-body root-relative poses (..., 134, 3).

        Args:
            local: part-frame tokens, e.g. a prediction.
            anchors: (..., 3, 3) pelvis-frame positions where the face, left hand and right hand roots go;
                by default :meth:`anchors` of ``local`` (the body sub-network's own prediction).
        """
        if local.shape[-2:] != (self.joints, 3):
            raise ValueError(f"part-frame tokens: expected (..., {self.joints}, 3), got {tuple(local.shape)}")
        anchors = self.anchors(local) if anchors is None else anchors
        # Slot 0 is a zero anchor, so body joints stay where the body sub-network put them.
        padded = torch.cat([torch.zeros_like(anchors[..., :1, :]), anchors], dim=-2)
        return local[..., :NUM_JOINTS, :] + padded.index_select(-2, self.slot_of_joint)

    def permutation(self, permutation) -> torch.Tensor:
        """Extend a (134,) mirror permutation to the (T,) tokens: an anchor token follows its part's root.

        Raises:
            ValueError: ``permutation`` is not a permutation of the 134 joints, or maps a part root to a joint
                that is not a part root (then the anchors cannot follow).
        """
        # Checked and extended on the CPU (it is 134 numbers), whatever device the caller's tensor is on.
        permutation = torch.as_tensor(permutation, dtype=torch.long).cpu()
        if tuple(permutation.shape) != (NUM_JOINTS,) or not torch.equal(permutation.sort().values,
                                                                        torch.arange(NUM_JOINTS, device="cpu")):
            raise ValueError(f"flip_permutation: expected a permutation of the {NUM_JOINTS} joints (each index "
                             f"once), got {permutation.numel()} values, {permutation.unique().numel()} distinct")
        copies = {PART_ROOTS[part]: token for part, token in self.anchor_tokens.items() if token >= NUM_JOINTS}
        extended = permutation.tolist() + [0] * len(copies)
        for root, token in copies.items():
            mirrored_root = extended[root]
            if mirrored_root not in copies:
                raise ValueError(f"flip_permutation maps part root {root} to {mirrored_root}, which is not a part "
                                 f"root; expected roots to map to roots ({sorted(copies)})")
            extended[token] = copies[mirrored_root]
        return torch.as_tensor(extended, device=self.sources.device)


def true_anchors(pose: torch.Tensor) -> torch.Tensor:
    """Ground-truth anchors of a root-relative whole-body pose: its own part roots, (..., 134, 3) -> (..., 3, 3).

    Reassembling a pose's part frames with these gives the pose back, in either attach mode.
    """
    _check_pose(pose, "pose", channels=3)
    roots = torch.as_tensor([PART_ROOTS[part] for part in ATTACHED_PARTS], device=pose.device)
    return pose.index_select(-2, roots)
