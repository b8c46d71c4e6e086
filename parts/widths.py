"""Widths of the part sub-networks: the paper's balanced and uniform choices, explicit ones, or a parameter match.

Part types are ``"body"``, ``"face"`` and ``"hands"`` (one network for both hands). Each lifter class says how it is
sized through three class attributes: ``width_argument`` (the constructor argument, e.g. ``"width"`` for MixSTE,
``"channels"`` for VideoPose, ``"joint_width"`` for PoseFormer), ``width_multiple`` (what every width must divide
by on its own) and ``heads_argument`` (the head count that the width must also divide by, or None).

Modes (``widths=``):

* ``"balanced"``: PAFUSE's 384 / 256 / 224 channels for body / hands / face at MixSTE and D3DP width 512, i.e. the
  ratios 0.75 / 0.5 / 0.4375 of the vanilla width for any lifter, rounded to the nearest allowed width.
* ``"uniform"``: one width for every part, 288 at width 512 (the paper's Table 3), i.e. 0.5625 of the vanilla width.
* a dict ``{"body": .., "face": .., "hands": ..}`` of explicit widths.
* ``"match"``: the per-part widths whose total parameter count is within 1 % of the vanilla lifter at the same J
  and N, and whose proportions are closest to the balanced ones (at any scale). Counts are taken on the ``meta``
  device (no memory, no initialisation). All four families have a parameter count that is a quadratic polynomial
  of the width; it is read off three builds per part and checked on a fourth, so the search over every allowed
  width is exact and fast. When no combination lands within 1 % (PoseFormer, whose count grows with (c J)^2 and
  whose c must divide by its 8 heads), the search is repeated with half the heads, and so on: attention parameters
  do not depend on the head count, so this only refines the width grid. Each part then keeps the largest head
  count that divides its width.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Mapping

import numpy as np
import torch

from baselines.base import count_parameters
from baselines.registry import create_lifter, model_defaults
from bench.skeleton import NUM_JOINTS

PART_TYPES = ("body", "face", "hands")
REFERENCE_WIDTH = 512
BALANCED_WIDTHS = {"body": 384, "face": 224, "hands": 256}
"""PAFUSE's part widths at the reference MixSTE / D3DP width (paper Sec. 4.1)."""
UNIFORM_WIDTH = 288
"""The paper's uniform part width at the reference width (Table 3)."""
WIDTH_MODES = ("balanced", "uniform", "match")
MATCH_TOLERANCE = 0.01



@dataclass(frozen=True)
class WidthSpec:
    """How one lifter is sized.

    Attributes:
        argument: the constructor argument holding the width.
        vanilla: the width of the vanilla (whole-body) model.
        multiple: every width is a positive multiple of it (its own rule and the head count together).
        heads_argument: the constructor argument holding the head count, or None.
        heads: the vanilla head count, or None.
        own_multiple: the class's ``width_multiple``, before the head count.
    """

    argument: str
    vanilla: int
    multiple: int
    heads_argument: str | None
    heads: int | None
    own_multiple: int

    def round(self, width: float) -> int:
        """The allowed width nearest to ``width`` (never below one multiple)."""
        return max(self.multiple, self.multiple * round(width / self.multiple))


def _constructor_default(cls: type, argument: str):
    parameter = inspect.signature(cls.__init__).parameters.get(argument)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def width_spec(name: str, frames: int, model_args: Mapping) -> WidthSpec:
    """Read the sizing rule of lifter ``name`` with the caller's keyword arguments applied.

    Raises:
        ValueError: the lifter's class does not declare ``width_argument``.
    """
    with torch.device("meta"):
        cls = type(create_lifter(name, joints=NUM_JOINTS, frames=frames, **model_args))
    argument = getattr(cls, "width_argument", None)
    if argument is None:
        raise ValueError(f"lifter {name!r} ({cls.__name__}) declares no width_argument; part-based wrapping needs "
                         f"it to size the part networks")
    merged = {**model_defaults(name), **{k: v for k, v in model_args.items() if v is not None}}

    def value(key):
        return merged.get(key, _constructor_default(cls, key))

    heads_argument = getattr(cls, "heads_argument", None)
    heads = value(heads_argument) if heads_argument else None
    own = getattr(cls, "width_multiple", 1)
    vanilla = value(argument)
    if not isinstance(vanilla, int):
        raise ValueError(f"lifter {name!r}: expected an integer default for {argument!r}, found {vanilla!r}")
    return WidthSpec(argument, vanilla, math.lcm(own, heads or 1), heads_argument, heads, own)


def _check_explicit(widths: Mapping, spec: WidthSpec) -> dict[str, int]:
    if set(widths) != set(PART_TYPES):
        raise ValueError(f"widths: expected keys {sorted(PART_TYPES)}, got {sorted(widths)}")
    for part, width in widths.items():
        if not isinstance(width, int) or width < 1 or width % spec.multiple:
            raise ValueError(f"widths[{part!r}]: expected a positive multiple of {spec.multiple} for "
                             f"{spec.argument!r}, got {width!r}")
    return {part: widths[part] for part in PART_TYPES}


def _overrides(spec: WidthSpec, widths: Mapping[str, int], relax_heads: bool = False) -> dict[str, dict[str, int]]:
    """Constructor overrides per part.

    With ``relax_heads``, a part whose width the vanilla head count does not divide gets the largest head count
    that does (a divisor of the vanilla one); every other part keeps the vanilla head count.
    """
    sizes = {}
    for part, width in widths.items():
        sizes[part] = {spec.argument: width}
        if relax_heads and spec.heads_argument and width % spec.heads:
            sizes[part][spec.heads_argument] = math.gcd(width, spec.heads)
    return sizes


def part_sizes(name: str, widths, part_joints: Mapping[str, int], frames: int,
               model_args: Mapping) -> dict[str, dict[str, int]]:
    """Constructor overrides of each part network, e.g. ``{"body": {"width": 384}, ...}``.

    Args:
        name: the registered lifter.
        widths: ``"balanced"``, ``"uniform"``, ``"match"`` or a dict of widths (see the module docstring).
        part_joints: part type -> joints of its network (e.g. body 24 or 27, face 68, hands 42 or 21).
        frames: N, the window length.
        model_args: keyword arguments of every part network; the width argument there, if any, is the
            vanilla width the ratios apply to.
    """
    spec = width_spec(name, frames, model_args)
    if isinstance(widths, Mapping):
        return _overrides(spec, _check_explicit(widths, spec))
    if widths == "balanced":
        return _overrides(spec, {p: spec.round(spec.vanilla * BALANCED_WIDTHS[p] / REFERENCE_WIDTH)
                                 for p in PART_TYPES})
    if widths == "uniform":
        return _overrides(spec, {p: spec.round(spec.vanilla * UNIFORM_WIDTH / REFERENCE_WIDTH) for p in PART_TYPES})
    if widths == "match":
        return match_sizes(name, spec, part_joints, frames, model_args)
    raise ValueError(f"widths: expected one of {WIDTH_MODES} or a dict with keys {list(PART_TYPES)}, "
                     f"got {widths!r}")


def _counter(name: str, spec: WidthSpec, frames: int, model_args: Mapping) -> Callable[[int, int], int]:
    """count(joints, width) on the meta device, with the largest allowed head count for that width."""
    def count(joints: int, width: int) -> int:
        sizes = _overrides(spec, {"part": width}, relax_heads=True)["part"]
        with torch.device("meta"):
            model = create_lifter(name, joints=joints, frames=frames, **{**model_args, **sizes})
        return count_parameters(model)
    return count


def _quadratic(count: Callable[[int], int], step: int) -> Callable[[int], int] | None:
    """The exact quadratic through count(step), count(2 step), count(3 step), if count(7 step) agrees."""
    c1, c2, c3 = (count(k * step) for k in (1, 2, 3))
    a = Fraction(c1 - 2 * c2 + c3, 2 * step * step)
    b = Fraction(c2 - c1, step) - 3 * step * a
    c0 = c1 - a * step * step - b * step

    def curve(width: int) -> int:
        return int(a * width * width + b * width + c0)

    return curve if curve(7 * step) == count(7 * step) else None


def _candidates(count: Callable[[int], int], step: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Allowed widths (multiples of ``step``) whose count does not exceed ``limit``, and their counts."""
    curve = _quadratic(count, step)
    widths, counts, width = [], [], step
    while True:
        # Without a closed form every width is built; slow, but still exact.
        value = curve(width) if curve is not None else count(width)
        if value > limit:
            break
        widths.append(width)
        counts.append(value)
        width += step
    if np.any(np.diff(counts) <= 0):
        raise ValueError("widths='match' needs parameter counts that grow with the width")
    return np.array(widths, dtype=np.int64), np.array(counts, dtype=np.int64)


def _best(widths: dict[str, np.ndarray], counts: dict[str, np.ndarray], target: int,
          tolerance: float) -> dict[str, int] | None:
    """The combination within ``tolerance`` of ``target`` closest to the balanced proportions, or None.

    Distance to the balanced proportions: the spread of log(width / balanced width) over the parts, which is zero
    for any multiple of the balanced widths. Body and hands are enumerated; for each pair the face is the allowed
    width nearest its optimum (the mean log ratio of the two others), clipped to the widths that keep the total
    within tolerance. Ties go to the total nearest ``target``.
    """
    def log_ratio(part):
        return np.log(widths[part] / BALANCED_WIDTHS[part])

    body, hands = np.meshgrid(np.arange(len(widths["body"])), np.arange(len(widths["hands"])), indexing="ij")
    body, hands = body.ravel(), hands.ravel()
    rest = counts["body"][body] + counts["hands"][hands]
    face_counts = counts["face"]
    low = np.searchsorted(face_counts, (1 - tolerance) * target - rest, side="left")
    high = np.searchsorted(face_counts, (1 + tolerance) * target - rest, side="right") - 1
    feasible = low <= high
    if not feasible.any():
        return None
    body, hands, low, high = body[feasible], hands[feasible], low[feasible], high[feasible]
    optimum = np.exp((log_ratio("body")[body] + log_ratio("hands")[hands]) / 2) * BALANCED_WIDTHS["face"]
    nearest = np.searchsorted(widths["face"], optimum)
    # The spread is convex in the face's log width, so the best allowed face is one of the two around the optimum.
    face = np.concatenate([np.clip(nearest - 1, low, high), np.clip(nearest, low, high)])
    body, hands, rest = np.tile(body, 2), np.tile(hands, 2), np.tile(rest[feasible], 2)
    ratios = np.stack([log_ratio("body")[body], log_ratio("hands")[hands], log_ratio("face")[face]])
    spread = ((ratios - ratios.mean(axis=0)) ** 2).sum(axis=0)
    gap = np.abs((rest + face_counts[face]) / target - 1)
    i = np.lexsort((gap, np.round(spread, 9)))[0]
    return {"body": int(widths["body"][body[i]]), "face": int(widths["face"][face[i]]),
            "hands": int(widths["hands"][hands[i]])}


def match_sizes(name: str, spec: WidthSpec, part_joints: Mapping[str, int], frames: int, model_args: Mapping,
                tolerance: float = MATCH_TOLERANCE) -> dict[str, dict[str, int]]:
    """Per-part sizes whose total count is within ``tolerance`` of the vanilla lifter (see the module docstring).

    Raises:
        ValueError: no allowed widths reach the tolerance, even with one head.
    """
    count = _counter(name, spec, frames, model_args)
    target = count(NUM_JOINTS, spec.vanilla)
    heads = spec.heads
    while True:
        step = math.lcm(spec.own_multiple, heads or 1)
        grid = {part: _candidates(lambda w, j=part_joints[part]: count(j, w), step, target) for part in PART_TYPES}
        chosen = _best({p: g[0] for p, g in grid.items()}, {p: g[1] for p, g in grid.items()}, target, tolerance)
        if chosen is not None:
            return _overrides(spec, chosen, relax_heads=True)
        if not heads or heads % 2:
            raise ValueError(f"widths='match': no widths of {name!r} bring the part networks within "
                             f"{tolerance:.0%} of the vanilla count {target:,}")
        heads //= 2
