"""The part-based design of PAFUSE as a wrapper around any registered lifter.

Samet, Rommel, Picard and Valle, "PAFUSE: Part-based Diffusion for 3D Whole-body Pose Estimation",
https://github.com/valeoai/PAFUSE (paper Sec. 3, ablations in Tables 2 and 3).

``part_based(name, ...)`` returns a :class:`PartLifter`, a ``Lifter`` like any other: training calls ``loss`` and
evaluation calls ``predict``, which returns whole-body root-relative poses, so neither sees part frames. Inside:

* :class:`parts.frames.PartLayout` turns whole-body 2D inputs into tokens (134, or 137 with anchor tokens) and
  whole-body 3D targets into part-frame targets, and reassembles part-frame predictions into whole bodies;
* the *inner* lifter maps tokens to part-frame tokens. With ``split`` it is one sub-network per part type (body,
  face, hands), each built with ``create_lifter(name, joints=J_part, ...)`` and run through
  :class:`PartSplit`; 2D inputs are sliced per part and used as they are (paper Sec. 3: no offsets).
  For a deterministic lifter the inner lifter is a :class:`SplitLifter`. For a generative one (D3DP) it is ONE
  diffusion, the lifter's own sampler and schedule, around a part-split denoiser made of the sub-lifters'
  denoisers: every part of a window shares the step ``t``, and all hypotheses and the flip view go through each
  part network in one batched forward per step.

Part split. :class:`PartSplit` serves both kinds: the first ``joint_inputs`` arguments of its forward are per-joint
tensors (..., J, C), sliced along the joint axis for each part's module; further arguments (the diffusion steps
``t``) pass through, repeated along the batch when one module serves several *members*. Both hands through one
21-joint network (``hands="shared"``) are two members of one part type; the left one is *mirrored* (x negated on
the way in and out) so that it looks like a right hand. Outputs go back by joint index, never by order.

Flip test-time augmentation runs inside the inner lifter with the token permutation of
:meth:`parts.frames.PartLayout.permutation`; mirroring commutes with the part-frame shift.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from baselines.base import Lifter, count_parameters, flip_pose
from baselines.registry import create_lifter
from bench.skeleton import NUM_JOINTS
from parts.frames import DEFAULT_ATTACH, PartLayout
from parts.losses import ERRORS, balanced_weights, normalized_weights, weighted_error
from parts.widths import PART_TYPES, part_sizes

HANDS_MODES = ("joint", "shared")
LOSSES = ("part", "wb")
# Skeleton parts behind each part type (one network each).
_PART_TYPE_PARTS = {"body": ("body",), "face": ("face",), "hands": ("left_hand", "right_hand")}


class Member:
    """A group of joints that goes through its part's module, optionally mirrored.

    Args:
        joints: indices of the joints on the joint axis, in the order the module sees them.
        mirrored: negate x on the way in and out.
    """

    def __init__(self, joints: Sequence[int], mirrored: bool = False):
        self.joints = tuple(int(j) for j in joints)
        self.mirrored = mirrored

    def __repr__(self) -> str:
        return f"Member({len(self.joints)} joints{', mirrored' if self.mirrored else ''})"


class PartSplit(nn.Module):
    """Split per-joint tensors by part, run each part's module, scatter the outputs back by joint index.

    Args:
        modules: part type -> its module, called as ``module(*joint_inputs, *extra)`` on (B', N, J_part, C)
            slices (B' = B times the number of members) and returning (B', N', J_part, C_out).
        members: part type -> its members; together the members must cover joints 0..J-1 exactly once.
        joint_inputs: how many leading arguments of ``forward`` are per-joint tensors.
    """

    samplers = {"cpu": "per-flip"}
    """As a denoiser, the DDIM sampler path per device type (``baselines.diffusion.default_sampler``): on CPU the
    part networks are small enough that batching the H hypotheses pays (README, "Performance")."""

    def __init__(self, modules: Mapping[str, nn.Module], members: Mapping[str, Sequence[Member]],
                 joint_inputs: int = 1):
        super().__init__()
        if set(modules) != set(members):
            raise ValueError(f"PartSplit: modules {sorted(modules)} and members {sorted(members)} name different "
                             f"parts")
        order = [j for part in modules for member in members[part] for j in member.joints]
        if sorted(order) != list(range(len(order))):
            raise ValueError(f"PartSplit: the members must cover joints 0..{len(order) - 1} exactly once")
        for part in modules:
            sizes = {len(member.joints) for member in members[part]}
            if len(sizes) != 1:
                raise ValueError(f"PartSplit: members of {part!r} share one module, so they need equal joint "
                                 f"counts; got {sorted(sizes)}")
        self.nets = nn.ModuleDict(modules)
        self.members = {part: tuple(members[part]) for part in modules}
        self.joints = len(order)
        self.joint_inputs = joint_inputs
        for part in modules:
            for k, member in enumerate(self.members[part]):
                self.register_buffer(self._index_name(part, k), torch.as_tensor(member.joints), persistent=False)
        # Outputs are concatenated in member order; this index puts every joint back at its own position.
        self.register_buffer("inverse", torch.argsort(torch.as_tensor(order)), persistent=False)

    @staticmethod
    def _index_name(part: str, k: int) -> str:
        return f"index_{part}_{k}"

    def _slice(self, x: torch.Tensor, part: str) -> torch.Tensor:
        """(B, N, J, C) -> (M * B, N, J_part, C): the part's members stacked along the batch."""
        pieces = []
        for k, member in enumerate(self.members[part]):
            piece = x.index_select(-2, getattr(self, self._index_name(part, k)))
            pieces.append(flip_pose(piece) if member.mirrored else piece)
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def forward(self, *args):
        """Per-joint tensors (B, N, J, C) first, then pass-through arguments -> (B, N', J, C_out)."""
        if len(args) < self.joint_inputs:
            raise ValueError(f"PartSplit expects at least {self.joint_inputs} per-joint inputs, got {len(args)}")
        inputs, extra = args[:self.joint_inputs], args[self.joint_inputs:]
        for x in inputs:
            if x.shape[-2] != self.joints:
                raise ValueError(f"PartSplit: expected per-joint inputs (..., {self.joints}, C), got {tuple(x.shape)}")
        outputs = []
        for part, net in self.nets.items():
            count = len(self.members[part])
            repeated = [e.repeat(count, *[1] * (e.ndim - 1)) if torch.is_tensor(e) and count > 1 else e
                        for e in extra]
            out = net(*(self._slice(x, part) for x in inputs), *repeated)
            for member, chunk in zip(self.members[part], out.chunk(count)):
                outputs.append(flip_pose(chunk) if member.mirrored else chunk)
        return torch.cat(outputs, dim=-2).index_select(-2, self.inverse)


class SplitLifter(Lifter):
    """A deterministic lifter made of one sub-lifter per part type, on the tokens of a part layout.

    Args:
        split: a :class:`PartSplit` over the sub-lifters (one per-joint input, the 2D tokens).
        frames: N, the window length of the sub-lifters.
        template: one of the sub-lifters; its window geometry (receptive field, seq2seq) is the split's.
    """

    def __init__(self, split: PartSplit, frames: int, template: Lifter):
        super().__init__(split.joints, frames, template.receptive_field)
        self.seq2seq = template.seq2seq
        self.split = split

    def forward(self, x2d: torch.Tensor) -> torch.Tensor:
        """(B, L, T, 2) tokens -> (B, N_out, T, 3) part-frame tokens."""
        self.check_input(x2d)
        return self.split(x2d)


class PartLifter(Lifter):
    """A whole-body lifter that predicts parts in local frames and reassembles them.

    Built by :func:`part_based`. Shapes: 2D inputs (B, L, 134, 2), 3D targets (B, L, 134, 3) root-relative (metres).

    Args:
        inner: the lifter on tokens (a :class:`SplitLifter`, a generative lifter with a part-split denoiser, or one
            whole network for ``split=False``).
        layout: the token layout.
        loss: ``"part"`` (Eq. 2, part frames) or ``"wb"`` (Eq. 3, after reassembly).
        error: ``"mpjpe"`` or ``"mse"`` (see :mod:`parts.losses`).
        weights: (T,) per-token loss weights, or None for equal weights.
        widths: part type -> width of its network, for reports (empty without split).
    """

    def __init__(self, inner: Lifter, layout: PartLayout, *, loss: str = "part", error: str = "mpjpe",
                 weights: torch.Tensor | None = None, widths: Mapping[str, int] | None = None):
        super().__init__(NUM_JOINTS, inner.frames, inner.receptive_field)
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        if error not in ERRORS:
            raise ValueError(f"error: expected one of {ERRORS}, got {error!r}")
        self.seq2seq, self.generative = inner.seq2seq, inner.generative
        self.inner = inner
        self.layout = layout
        self.loss_space, self.error = loss, error
        self.widths = dict(widths or {})
        self.options: dict = {}  # the resolved part_based options, for run records
        self.register_buffer("weights", weights, persistent=False)
        # What the loss multiplies by, checked and scaled to mean 1 once: all tokens for the part loss, the
        # whole-body joints (the first tokens) for the whole-body loss.
        loss_weights = None if weights is None else weights if loss == "part" else weights[:NUM_JOINTS]
        self.register_buffer("loss_weights", None if loss_weights is None
                             else normalized_weights(loss_weights, len(loss_weights)), persistent=False)

    def part_networks(self) -> dict[str, nn.Module]:
        """Part type -> its network (a sub-lifter or a denoiser); empty for one whole network (``split=False``)."""
        split = self.inner.split if isinstance(self.inner, SplitLifter) else getattr(
            getattr(self.inner, "diffusion", None), "denoiser", None)
        return dict(split.nets) if isinstance(split, PartSplit) else {}

    def forward(self, x2d: torch.Tensor) -> torch.Tensor:
        """(B, L, 134, 2) -> (B, N_out, 134, 3) whole-body root-relative poses (one hypothesis, no flip)."""
        self.check_input(x2d)
        return self.layout.reassemble(self.inner(self.layout.tokens(x2d)))

    def _local_pair(self, x2d: torch.Tensor, y3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inner lifter's (prediction, part-frame target), both (B, N_out, T, 3) tokens."""
        self.check_input(x2d)
        return self.inner.training_pair(self.layout.tokens(x2d), self.layout.local_targets(y3d))

    def training_pair(self, x2d: torch.Tensor, y3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the loss compares: part-frame tokens (B, N_out, T, 3) for the part loss, whole bodies (B, N_out,
        134, 3) for the whole-body loss."""
        pred, target = self._local_pair(x2d, y3d)
        if self.loss_space == "part":
            return pred, target
        return self.layout.reassemble(pred), self.target_frames(y3d)

    def loss(self, x2d: torch.Tensor, y3d: torch.Tensor) -> torch.Tensor:
        """The part loss (Eq. 2) or the whole-body loss (Eq. 3) on one batch, MPJPE or squared error."""
        return weighted_error(*self.training_pair(x2d, y3d), self.error, self.loss_weights)

    @torch.no_grad()
    def predict(self, x2d: torch.Tensor, hypotheses: int = 1, steps: int = 1,
                flip_permutation: torch.Tensor | None = None, **options) -> torch.Tensor:
        """Whole-body root-relative hypotheses (B, H, N_out, 134, 3), reassembled from the inner prediction.

        ``flip_permutation`` is the (134,) mirror permutation; ``options`` (e.g. ``generator``) go to the inner
        lifter's ``predict``.
        """
        self.check_input(x2d)
        permutation = None if flip_permutation is None else self.layout.permutation(flip_permutation)
        local = self.inner.predict(self.layout.tokens(x2d), hypotheses, steps, permutation, **options)
        return self.layout.reassemble(local)


def part_members(layout: PartLayout, hands: str) -> dict[str, list[Member]]:
    """Part type -> its members in the token layout; ``hands="shared"`` mirrors the left hand onto the right."""
    members = {"body": [Member(layout.parts["body"])], "face": [Member(layout.parts["face"])]}
    left, right = (layout.parts[part] for part in _PART_TYPE_PARTS["hands"])
    members["hands"] = [Member(left + right)] if hands == "joint" else [Member(left, mirrored=True), Member(right)]
    return members


def _loss_weights(weights, layout: PartLayout, split: bool) -> torch.Tensor | None:
    """Per-token weights: None / "uniform" -> equal, "balanced" -> equal total per part type, or (134,) values.

    ``weights=None`` means "balanced" for one whole network (the "only part-frame shift" ablation), where the face
    would otherwise dominate, and equal weights for split networks, as in the reference.
    """
    if weights is None:
        weights = "uniform" if split else "balanced"
    if isinstance(weights, str):
        if weights == "uniform":
            return None
        if weights == "balanced":
            groups = {kind: [t for part in parts for t in layout.parts[part]]
                      for kind, parts in _PART_TYPE_PARTS.items()}
            return balanced_weights(groups, layout.joints)
        raise ValueError(f"weights: expected 'uniform', 'balanced' or {NUM_JOINTS} numbers, got {weights!r}")
    values = torch.as_tensor(weights, dtype=torch.float32)
    if tuple(values.shape) != (NUM_JOINTS,):
        raise ValueError(f"weights: expected {NUM_JOINTS} per-joint weights, got shape {tuple(values.shape)}")
    # An anchor token weighs what the joint it copies weighs.
    return values[list(layout.token_sources)]


def _split_inner(lifter: str, layout: PartLayout, hands: str, widths, frames: int,
                 model_args: dict) -> tuple[Lifter, dict[str, int]]:
    """One sub-network per part type around a part split; returns the inner lifter and the part widths."""
    members = part_members(layout, hands)
    part_joints = {part: len(members[part][0].joints) for part in PART_TYPES}
    sizes = part_sizes(lifter, widths, part_joints, frames, model_args)
    subs = {part: create_lifter(lifter, joints=part_joints[part], frames=frames, **{**model_args, **sizes[part]})
            for part in PART_TYPES}
    template = subs["body"]
    part_widths = {part: sizes[part][type(template).width_argument] for part in PART_TYPES}
    if not template.generative:
        return SplitLifter(PartSplit(subs, members), frames, template), part_widths
    denoisers = {part: sub.diffusion.denoiser for part, sub in subs.items()}
    split = PartSplit(denoisers, members, joint_inputs=2)   # denoiser(x2d, x_t, t): t passes through
    return create_lifter(lifter, joints=layout.joints, frames=frames, denoiser=split,
                         **model_args), part_widths


def part_based(lifter: str, *, joints: int = NUM_JOINTS, frames: int = 27, widths="balanced", hands: str = "joint",
               attach: str = DEFAULT_ATTACH, shift: bool = True, split: bool = True, loss: str = "part",
               error: str = "mpjpe", weights: str | Sequence[float] | None = None, **model_args) -> PartLifter:
    """Wrap the registered lifter ``lifter`` in PAFUSE's part-based design.

    Args:
        lifter: a registered lifter name, e.g. ``"mixste"`` or ``"d3dp"``.
        joints: must be 134, the j134 layout the parts are defined on.
        frames: N, the window length (27 or 81 in the paper).
        widths: ``"balanced"``, ``"uniform"``, ``"match"`` or ``{"body": .., "face": .., "hands": ..}``
            (see :mod:`parts.widths`); unused without ``split``.
        hands: ``"joint"``, one network over the 42 joints of both hands (the reference), or ``"shared"``, one
            21-joint network that sees the left hand mirrored and the right hand, batched.
        attach: ``"roots"`` or ``"reference"`` (see :mod:`parts.frames`).
        shift: predict parts in local frames; False keeps every part at the pelvis ("only part denoisers").
        split: one network per part type; False gives ONE network over all tokens ("only part-frame shift").
        loss: ``"part"`` (Eq. 2) or ``"wb"`` (Eq. 3).
        error: ``"mpjpe"`` or ``"mse"``.
        weights: per-joint loss weights: None (balanced without split, equal with it), ``"uniform"``,
            ``"balanced"`` (each part type weighs a third) or 134 numbers.
        **model_args: passed to every network (e.g. ``depth``); the lifter's width argument, if given, is the
            vanilla width the width ratios apply to.

    Returns:
        A :class:`PartLifter`.
    """
    if joints != NUM_JOINTS:
        raise ValueError(f"part_based: joints must be {NUM_JOINTS} (parts are defined on the j134 layout), "
                         f"got {joints}")
    if hands not in HANDS_MODES:
        raise ValueError(f"hands: expected one of {HANDS_MODES}, got {hands!r}")
    with torch.device("meta"):
        probe = create_lifter(lifter, joints=joints, frames=frames, **model_args)
    if isinstance(probe, PartLifter):
        raise ValueError(f"part_based: {lifter!r} is already part-based; wrap a whole-body lifter instead")
    layout = PartLayout(attach, shift)
    if split:
        inner, part_widths = _split_inner(lifter, layout, hands, widths, frames, model_args)
    else:
        inner, part_widths = create_lifter(lifter, joints=layout.joints, frames=frames, **model_args), {}
    model = PartLifter(inner, layout, loss=loss, error=error, weights=_loss_weights(weights, layout, split),
                       widths=part_widths)
    model.options = {"lifter": lifter, "widths": widths if isinstance(widths, str) else dict(widths),
                     "part_widths": dict(part_widths), "hands": hands, "attach": attach, "shift": shift,
                     "split": split, "loss": loss, "error": error}
    return model


def part_counts(model: PartLifter) -> dict[str, int]:
    """Parameters of each part network and of the whole model: {"body": .., "face": .., "hands": .., "total": ..}."""
    counts = {part: count_parameters(net) for part, net in model.part_networks().items()}
    return {**counts, "total": count_parameters(model)}
