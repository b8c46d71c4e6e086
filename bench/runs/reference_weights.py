"""Read and write the saved weights of the PAFUSE reference code (https://github.com/valeoai/PAFUSE).

The reference saves ``{"model_pos": state dict, "optimizer", "epoch", "lr", "random_state"}`` with ``torch.save``
(``common/logging.py:save_state``). ``model_pos`` comes from a ``torch.nn.DataParallel`` wrapper, so every key starts
with ``module.``; the released PAFUSE weights are ``pafuse_model.bin``. Our lifters built with the reference settings
(:func:`reference_lifter`) hold the same weights under other names:

* :func:`read_reference_checkpoint`: a file -> the reference's state dict without ``module.``, read with
  ``weights_only=True``, so reading runs no code from the file;
* :func:`import_state_dict`: the reference's state dict -> ours, strictly (every entry placed, every one of ours
  filled, shapes equal), for ``lifter.load_state_dict``;
* :func:`export_state_dict`: ours -> the reference's saved layout, for ``torch.save``.

Names. A state dict holds one reference MixSTE2 network for D3DP (``pose_estimator.``) and three for PAFUSE
(``pose_estimator.body.``, ``.face.``, ``.hands.``); ours sit at :func:`network_prefixes`. Inside a network,
:data:`NETWORK_NAMES` renames the leading part of a key and keeps the rest; a block keeps its sub-layer names
(:data:`BLOCK_LAYERS`).

Diffusion schedule. The reference stores twelve float64 buffers of its cosine schedule (:data:`SCHEDULE_BUFFERS`).
Ours computes what it needs from T and holds three of them as float32 buffers. Importing checks all twelve against
the schedule we compute (float64, :data:`SCHEDULE_RTOL`) and loads the three we hold; exporting writes all twelve in
float64, computed the way the reference computes them.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

import baselines
from baselines.d3dp import D3DP, ConcatDenoiser
from baselines.diffusion import GaussianDiffusion, beta_schedule
from baselines.mixste import MixSTE
from bench.errors import CheckpointError
from bench.skeleton import NUM_JOINTS
from parts import PART_TYPES, PartLifter

REFERENCE_JOINTS = NUM_JOINTS
"""J of both reference models: the 133 H3WB keypoints and the inserted pelvis."""
_DIFFUSION = {"depth": 8, "heads": 8, "mlp_ratio": 2.0, "drop_path": 0.1, "timesteps": 1000, "scale": 1.0}
REFERENCE_SETTINGS: dict[str, dict] = {
    "d3dp": {"width": 512, **_DIFFUSION},
    "pafuse": {"widths": {"body": 384, "face": 224, "hands": 256}, "hands": "joint", "attach": "reference",
               "shift": True, "split": True, "loss": "part", "error": "mpjpe", "weights": "uniform", **_DIFFUSION},
}
"""``create_lifter`` arguments (model sizes, diffusion, part options) of the reference's two models."""
_PART_OPTIONS = {"lifter": "d3dp", "hands": "joint", "attach": "reference", "shift": True, "split": True}
"""The part options that decide what a PAFUSE state dict computes (loss and weights only matter for training)."""

NETWORK_NAMES: tuple[tuple[str, str], ...] = (
    # (reference MixSTE2, our MixSTE); whatever follows the name in a key is the same in both
    ("Spatial_pos_embed", "spatial_pos"),                  # (1, J, C)
    ("Temporal_pos_embed", "temporal_pos"),                # (1, N, C)
    ("Spatial_patch_to_embedding", "embed"),               # Linear(5, C) on [2D || noisy 3D]
    ("time_mlp.1", "time_embed.mlp.0"),                    # Linear(C, 2C); time_mlp.0 is the sinusoid
    ("time_mlp.3", "time_embed.mlp.2"),                    # Linear(2C, C); time_mlp.2 is the GELU
    ("STEblocks", "spatial_blocks"),                       # .i.<BLOCK_LAYERS>
    ("TTEblocks", "temporal_blocks"),                      # .i.<BLOCK_LAYERS>
    ("Spatial_norm", "spatial_norm"),
    ("Temporal_norm", "temporal_norm"),
    ("head", "head"),                                      # head.0 LayerNorm(C), head.1 Linear(C, 3)
)
"""How the names inside one network translate."""
BLOCK_LAYERS = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
"""The sub-layers of a transformer block, named alike in the reference and in timm's ``Block``."""
_BLOCK_KEY = re.compile(r"\d+\.(" + "|".join(re.escape(layer) for layer in BLOCK_LAYERS) + r")\.(weight|bias)")

SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")
"""The reference's schedule buffers, in the order of its state dict (its first twelve entries)."""
SCHEDULE_RTOL, SCHEDULE_ATOL = 1e-9, 1e-12
"""How close (float64) a file's schedule buffer must be to ours."""
_SHOWN = 5


def _listing(items: list[str]) -> str:
    """The first few items, then how many more."""
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def reference_lifter(model: str, frames: int = 27) -> nn.Module:
    """Our ``model`` (``"pafuse"`` or ``"d3dp"``) built with the reference settings, for (B, N, 134, 2) inputs.

    Built in training mode, as every lifter; call ``eval()`` before sampling.
    """
    if model not in REFERENCE_SETTINGS:
        raise ValueError(f"reference_lifter: expected one of {sorted(REFERENCE_SETTINGS)}, got {model!r}")
    return baselines.create_lifter(model, joints=REFERENCE_JOINTS, frames=frames, **REFERENCE_SETTINGS[model])


def reference_schedule(timesteps: int) -> dict[str, torch.Tensor]:
    """The twelve (T,) float64 schedule buffers of the reference for a cosine schedule of ``timesteps`` steps.

    Each is computed from the betas with the operations of the reference, in its order, so that the values are
    identical, not only close. ``abar`` is the cumulative product of the alphas, ``abar_prev`` the same shifted by one
    step with 1 in front.
    """
    betas = beta_schedule("cosine", timesteps)
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, dim=0)
    abar_prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    variance = betas * (1.0 - abar_prev) / (1.0 - abar)
    values = (betas, abar, abar_prev, abar.sqrt(), (1.0 - abar).sqrt(), (1.0 - abar).log(), (1.0 / abar).sqrt(),
              (1.0 / abar - 1).sqrt(), variance, variance.clamp(min=1e-20).log(),
              betas * abar_prev.sqrt() / (1.0 - abar), (1.0 - abar_prev) * alphas.sqrt() / (1.0 - abar))
    return dict(zip(SCHEDULE_BUFFERS, values))


def network_prefixes(lifter: nn.Module, where: str) -> tuple[str, dict[str, str]]:
    """Where a reference lifter's diffusion and MixSTE networks sit in its state dict.

    Returns:
        (our diffusion prefix, {our network prefix: the reference's network prefix}), prefixes ending with a dot,
        networks in the reference's order.

    Raises:
        CheckpointError: ``lifter`` is not D3DP or PAFUSE with the reference's design (8 heads, scale 1, and for
            PAFUSE its part options), whose function the reference's weights would not compute.
    """
    if isinstance(lifter, PartLifter):
        found = {key: lifter.options.get(key) for key in _PART_OPTIONS}
        if found != _PART_OPTIONS:
            differ = [f"{key}={found[key]!r} (expected {value!r})" for key, value in _PART_OPTIONS.items()
                      if found[key] != value]
            raise CheckpointError(f"{where}: the lifter is not the reference PAFUSE: {', '.join(differ)}")
        diffusion = "inner.diffusion."
        networks = {f"{diffusion}denoiser.nets.{part}.net.": f"pose_estimator.{part}." for part in PART_TYPES}
    elif isinstance(lifter, D3DP) and isinstance(lifter.diffusion.denoiser, ConcatDenoiser):
        diffusion = "diffusion."
        networks = {f"{diffusion}denoiser.net.": "pose_estimator."}
    else:
        raise CheckpointError(f"{where}: expected a D3DP or a part-based D3DP (PAFUSE) lifter, got "
                              f"{type(lifter).__name__}")
    nets = [lifter.get_submodule(prefix[:-1]) for prefix in networks]
    if not all(isinstance(net, MixSTE) for net in nets):
        raise CheckpointError(f"{where}: the reference's networks are MixSTE2; the lifter's are "
                              f"{sorted({type(net).__name__ for net in nets})}")
    heads = sorted({block.attn.num_heads for net in nets for block in (*net.spatial_blocks, *net.temporal_blocks)})
    if heads != [8]:
        raise CheckpointError(f"{where}: the reference's networks have 8 heads; the lifter's have {heads} heads")
    scale = lifter.get_submodule(diffusion[:-1]).scale
    if scale != 1.0:
        raise CheckpointError(f"{where}: the reference's diffusion has scale 1, the lifter's {scale}")
    return diffusion, networks


def _network_name(ours: str) -> str | None:
    """The reference's name of a key inside one MixSTE network (e.g. ``spatial_blocks.3.attn.qkv.weight`` ->
    ``STEblocks.3.attn.qkv.weight``), or None when no rule covers it."""
    for reference, own in NETWORK_NAMES:
        if ours == own:
            return reference
        if ours.startswith(own + "."):
            rest = ours[len(own) + 1:]
            if own.endswith("_blocks") and not _BLOCK_KEY.fullmatch(rest):
                return None
            return f"{reference}.{rest}"
    return None


def _mapping(lifter: nn.Module, where: str) -> tuple[GaussianDiffusion, dict[str, str | None]]:
    """The lifter's diffusion, and our state-dict key -> the reference's key (None where no rule covers ours)."""
    diffusion, networks = network_prefixes(lifter, where)
    names: dict[str, str | None] = {}
    for key in lifter.state_dict():
        names[key] = None
        if key.startswith(diffusion) and key[len(diffusion):] in SCHEDULE_BUFFERS:
            names[key] = key[len(diffusion):]
        for prefix, reference in networks.items():
            if key.startswith(prefix):
                inner = _network_name(key[len(prefix):])
                names[key] = None if inner is None else reference + inner
    return lifter.get_submodule(diffusion[:-1]), names


def reference_names(lifter: nn.Module, where: str = "reference lifter") -> dict[str, str | None]:
    """Our state-dict key -> the reference's key (without ``module.``), or None where no rule covers ours."""
    return _mapping(lifter, where)[1]


def _schedule_mismatches(reference: dict[str, torch.Tensor], timesteps: int) -> list[str]:
    """The file's schedule buffers that differ from ours (float64), each with where and by how much."""
    differ = []
    for name, ours in reference_schedule(timesteps).items():
        value = reference.get(name)
        if value is None or value.shape != ours.shape or not value.is_floating_point():
            continue   # reported as missing, misshapen or of the wrong dtype
        value = value.double()
        if not torch.allclose(value, ours, rtol=SCHEDULE_RTOL, atol=SCHEDULE_ATOL):
            step = int((value - ours).abs().nan_to_num(float("inf")).argmax())
            differ.append(f"{name} (step {step}: file {value[step].item():.17g}, ours {ours[step].item():.17g})")
    return differ


def import_state_dict(reference: dict[str, torch.Tensor], lifter: nn.Module, where: str) -> dict[str, torch.Tensor]:
    """Our state dict for ``lifter`` from the reference's (keys without ``module.``, see
    :func:`read_reference_checkpoint`), for ``lifter.load_state_dict``.

    A tensor keeps its dtype where it equals ours. A floating-point one is cast to ours where that loses nothing (our
    dtype is wider) and for the schedule buffers we hold, which are checked in float64 first.

    Raises:
        CheckpointError: naming ``where`` and the keys, when an entry of the file has no place in ours, one of ours
            is not filled (or has no reference name), a shape or dtype differs, or a schedule buffer differs from the
            schedule we compute.
    """
    diffusion, names = _mapping(lifter, where)
    ours_of = {name: own for own, name in names.items() if name is not None}
    ours = lifter.state_dict()
    # What the file must hold: the twelve schedule buffers, then our entries under their reference names.
    expected = {name: (value.shape, value.dtype) for name, value in reference_schedule(diffusion.timesteps).items()}
    expected.update({name: (ours[own].shape, ours[own].dtype) for name, own in ours_of.items()})
    schedule_label = f"schedule buffers differ from the cosine schedule with T={diffusion.timesteps}"
    found = {
        "entries of the file with no place in ours": [key for key in reference if key not in expected],
        "entries missing from the file": [key for key in expected if key not in reference],
        "entries of ours with no reference name": [own for own, name in names.items() if name is None],
        "shapes differ": [], "dtypes differ": [],
        schedule_label: _schedule_mismatches(reference, diffusion.timesteps),
    }
    state = {}
    for name, value in reference.items():
        if name not in expected:
            continue
        shape, dtype = expected[name]
        castable = value.is_floating_point() and dtype.is_floating_point and (
            name in SCHEDULE_BUFFERS or torch.promote_types(value.dtype, dtype) == dtype)
        if tuple(value.shape) != tuple(shape):
            found["shapes differ"].append(f"{name} (file {tuple(value.shape)}, ours {tuple(shape)})")
        elif value.dtype != dtype and not castable:
            found["dtypes differ"].append(f"{name} (file {value.dtype}, ours {dtype})")
        elif name in ours_of:
            state[ours_of[name]] = value.to(dtype)
    problems = [f"{len(keys)} {label}: {_listing(keys)}" for label, keys in found.items() if keys]
    if problems:
        raise CheckpointError(f"{where}: the reference state dict does not fit {type(lifter).__name__}: "
                              + "; ".join(problems))
    return {own: state[own] for own in ours}


def export_state_dict(lifter: nn.Module, *, epoch: int = 0, lr: float = 0.0) -> dict:
    """``lifter``'s weights in the reference's saved layout, for ``torch.save`` (``model_pos`` keys with ``module.``,
    in the reference's order and dtypes, tensors on the CPU).

    ``epoch`` and ``lr`` fill the reference's fields of those names; the optimizer and the data generator's
    random state, which only resuming training needs, are left out. Everything is a tensor, a number or a dict, so
    the file reads with ``weights_only=True``.
    """
    where = f"export of {type(lifter).__name__}"
    diffusion, names = _mapping(lifter, where)
    nameless = [own for own, name in names.items() if name is None]
    if nameless:
        raise CheckpointError(f"{where}: {len(nameless)} entries of ours have no reference name: {_listing(nameless)}")
    schedule = reference_schedule(diffusion.timesteps)
    state = lifter.state_dict()
    differ = [name for own, name in names.items() if name in schedule and not torch.allclose(
        state[own].detach().cpu().double(), schedule[name], rtol=1e-6, atol=0.0)]
    if differ:
        raise CheckpointError(f"{where}: the lifter's schedule is not the reference's cosine schedule "
                              f"({_listing(differ)})")
    model_pos = {f"module.{name}": value for name, value in schedule.items()}
    model_pos.update({f"module.{name}": state[own].detach().cpu() for own, name in names.items()
                      if name not in schedule})
    return {"model_pos": model_pos, "epoch": int(epoch), "lr": float(lr)}


def _numpy_random_state_globals() -> list:
    """The globals that unpickling a NumPy ``RandomState`` needs under ``weights_only=True``.

    The reference stores its training generator's ``np.random.RandomState`` as ``random_state``, and
    ``weights_only`` refuses any global it is not given, so without these the reference's files cannot be read.
    Each rebuilds a generator, an array or a dtype; none runs other code. ``_reconstruct`` is listed under both of
    its module paths: NumPy 1 writes ``numpy.core``, NumPy 2 ``numpy._core``.
    """
    from numpy.random import _pickle

    multiarray = (np._core if hasattr(np, "_core") else np.core).multiarray
    return [(_pickle.__randomstate_ctor, "numpy.random._pickle.__randomstate_ctor"),
            (_pickle.__bit_generator_ctor, "numpy.random._pickle.__bit_generator_ctor"),
            np.random.MT19937, np.random.RandomState, np.ndarray, np.dtype, type(np.dtype(np.uint32)),
            (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
            (multiarray._reconstruct, "numpy._core.multiarray._reconstruct")]


def _load(path: Path):
    """``torch.load`` with ``weights_only=True`` (NumPy random states allowed), as a CheckpointError if it fails."""
    try:
        with torch.serialization.safe_globals(_numpy_random_state_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails in many ways (pickle, zip, key and EOF errors); all mean the same
        details = str(error).split("WeightsUnpickler error:")
        reason = details[-1].strip().splitlines()[0] if len(details) > 1 and details[-1].strip() else ""
        if isinstance(error, pickle.UnpicklingError) and reason:
            raise CheckpointError(f"{path}: refused by weights_only, which reads only tensors, numbers and plain "
                                  f"containers: {reason}") from error
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(f"{path}: expected a file written by torch.save, found one torch.load cannot read "
                              f"({type(error).__name__}: {first_line[:200]})") from error


def read_reference_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The reference's state dict from a checkpoint file, ``module.`` stripped from every key.

    Accepts the dict the reference saves (its ``model_pos`` is taken) or a bare state dict. Read on the CPU with
    ``weights_only=True``: a file that needs anything else (code, arbitrary classes) is refused unread.

    Raises:
        CheckpointError: naming the file and what was expected and found: no such file, not a torch file, refused
            by ``weights_only``, no ``model_pos``, entries that are not tensors, keys half with and half without
            ``module.``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: expected a checkpoint file, found {'a folder' if path.exists() else 'nothing'}")
    loaded = _load(path)
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: expected a dict (the reference's saved dict or a state dict), found "
                              f"{type(loaded).__name__}")
    if "model_pos" in loaded:
        state = loaded["model_pos"]
    elif loaded and all(torch.is_tensor(value) for value in loaded.values()):
        state = loaded
    else:
        raise CheckpointError(f"{path}: expected the reference's saved dict with a 'model_pos' entry or a bare state "
                              f"dict, found keys {_listing([repr(key) for key in loaded])}")
    if not isinstance(state, dict) or not state:
        found = "an empty dict" if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: expected 'model_pos' to be a state dict of named tensors, found {found}")
    wrong = [f"{key!r} ({type(value).__name__})" for key, value in state.items()
             if not isinstance(key, str) or not torch.is_tensor(value)]
    if wrong:
        raise CheckpointError(f"{path}: expected a state dict of named tensors; {len(wrong)} entries are not: "
                              f"{_listing(wrong)}")
    prefixed = [key.startswith("module.") for key in state]
    if any(prefixed) and not all(prefixed):
        unprefixed = [key for key in state if not key.startswith("module.")]
        raise CheckpointError(f"{path}: expected every key or none to start with 'module.'; these do not: "
                              f"{_listing(unprefixed)}")
    return {key.removeprefix("module."): value for key, value in state.items()}
