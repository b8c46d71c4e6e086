"""The PAFUSE reference code's saved weights: key mapping, byte-identical round trip, errors, weights_only, and
function equality with an independent re-implementation of the reference MixSTE2 on the same weights.

The key listings (tests/fixtures/official_state_dicts) were produced from the reference classes: key, shape and
dtype of every entry of the saved ``model_pos``. ``RefMixSTE2`` below follows the description of the reference
network in the project's facts on the reference code (layer names, forward order, attention, norms, time sinusoid),
in plain torch, without our MixSTE or timm.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from baselines.base import count_parameters
from baselines.registry import create_lifter
from bench.runs.reference_weights import (
    REFERENCE_SETTINGS,
    SCHEDULE_BUFFERS,
    CheckpointError,
    export_state_dict,
    import_state_dict,
    read_reference_checkpoint,
    reference_lifter,
    reference_names,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "official_state_dicts"
HELD_SCHEDULE = ("alphas_cumprod", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod")
"""The schedule buffers our diffusion holds (float32); it computes the other nine."""
REFERENCE_PARAMETERS = {"pafuse": 34_964_329, "d3dp": 34_784_771}
pytestmark = pytest.mark.usefixtures("single_thread")   # small models on a shared CPU run faster on one thread


def read_listing(model: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Reference key (``module.`` kept) -> (shape, dtype), in the reference's order."""
    listing = {}
    for line in (FIXTURES / f"{model}_state_dict_keys.txt").read_text().splitlines():
        key, shape, dtype = line.split("\t")
        listing[key] = (tuple(int(n) for n in shape.strip("()").split(",") if n.strip()),
                        getattr(torch, dtype.removeprefix("torch.")))
    return listing


# ---- the reference network, re-implemented --------------------------------------------------------------------

NORM_EPS = 1e-6
"""Block norms, Spatial_norm and Temporal_norm."""
HEAD_EPS = 1e-5
"""head.0 is a plain LayerNorm(C) in the reference (common/mixste.py), with PyTorch's default eps; the facts README's
"LayerNorms use eps 1e-6" holds for the other norms only."""


class RefAttention(nn.Module):
    """Softmax attention: qkv with bias, heads of C / heads channels, scale head_dim ** -0.5."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        weights = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, c))


class RefMlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=NORM_EPS), RefAttention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=NORM_EPS), RefMlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefSinusoid(nn.Module):
    """half = C // 2, freq_k = exp(-k ln(10000) / (half - 1)), embedding = [sin(t freq), cos(t freq)]."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freq = torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))
        angles = t[:, None] * freq[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class RefMixSTE2(nn.Module):
    """The reference denoiser, with its parameter names: (B, N, J, 2) 2D, (B, N, J, 3) noisy 3D, (B,) t -> 3D."""

    def __init__(self, joints: int, frames: int, dim: int, depth: int, heads: int = 8, head_eps: float = HEAD_EPS):
        super().__init__()
        self.Spatial_patch_to_embedding = nn.Linear(5, dim)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, joints, dim))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, frames, dim))
        self.time_mlp = nn.Sequential(RefSinusoid(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.STEblocks = nn.ModuleList(RefBlock(dim, heads) for _ in range(depth))
        self.TTEblocks = nn.ModuleList(RefBlock(dim, heads) for _ in range(depth))
        self.Spatial_norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.Temporal_norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.head = nn.Sequential(nn.LayerNorm(dim, eps=head_eps), nn.Linear(dim, 3))

    def forward(self, x2d, x3d, t):
        b, f, n, _ = x2d.shape
        x = self.Spatial_patch_to_embedding(torch.cat([x2d, x3d], dim=-1)) + self.Spatial_pos_embed
        x = x + self.time_mlp(t)[:, None, None, :]          # every joint of every frame
        c = x.shape[-1]
        x = x.reshape(b * f, n, c)                           # spatial: joints of one frame
        for i, (ste, tte) in enumerate(zip(self.STEblocks, self.TTEblocks)):
            x = self.Spatial_norm(ste(x))
            x = x.reshape(b, f, n, c).transpose(1, 2).reshape(b * n, f, c)   # temporal: frames of one joint
            if i == 0:
                x = x + self.Temporal_pos_embed
            x = self.Temporal_norm(tte(x))
            x = x.reshape(b, n, f, c).transpose(1, 2).reshape(b * f, n, c)
        return self.head(x).reshape(b, f, n, 3)


def ref_schedule(timesteps: int = 1000) -> dict[str, torch.Tensor]:
    """The reference's float64 cosine-schedule buffers (s = 0.008, betas clipped to [0, 0.999])."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    s = 0.008
    f = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    f = f / f[0]
    betas = torch.clip(1 - f[1:] / f[:-1], 0, 0.999)
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, dim=0)
    prev = torch.nn.functional.pad(abar[:-1], (1, 0), value=1.0)
    var = betas * (1.0 - prev) / (1.0 - abar)
    return {"betas": betas, "alphas_cumprod": abar, "alphas_cumprod_prev": prev,
            "sqrt_alphas_cumprod": torch.sqrt(abar), "sqrt_one_minus_alphas_cumprod": torch.sqrt(1.0 - abar),
            "log_one_minus_alphas_cumprod": torch.log(1.0 - abar), "sqrt_recip_alphas_cumprod": torch.sqrt(1.0 / abar),
            "sqrt_recipm1_alphas_cumprod": torch.sqrt(1.0 / abar - 1), "posterior_variance": var,
            "posterior_log_variance_clipped": torch.log(var.clamp(min=1e-20)),
            "posterior_mean_coef1": betas * torch.sqrt(prev) / (1.0 - abar),
            "posterior_mean_coef2": (1.0 - prev) * torch.sqrt(alphas) / (1.0 - abar)}


REF_PART_JOINTS = {"body": list(range(24)), "face": list(range(24, 92)),
                   "hands": list(range(92, 113)) + list(range(113, 134))}
"""The reference's part networks and their joints (p134): pelvis + body + feet, face, left hand then right hand."""
REF_PART_FRAMES = {0: range(24), 54: range(24, 92), 92: range(92, 113), 113: range(113, 134)}
"""Part root (p134) -> the joints expressed relative to it: body, face, left hand, right hand."""
SMALL = {"d3dp": {"width": 32, "depth": 2}, "pafuse": {"widths": {"body": 32, "face": 16, "hands": 24}, "depth": 2}}
FRAMES = 27


def ref_pred_parts(nets: dict, x2d, x3d, t):
    """The reference's part-based denoiser: each part network on its joints, outputs concatenated in part order."""
    return torch.cat([nets[part](x2d[..., idx, :], x3d[..., idx, :], t) for part, idx in REF_PART_JOINTS.items()],
                     dim=-2)


def random_weights(net: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random values for every entry of ``net``. The spatial and temporal norms get small scales, so that the next
    LayerNorm sees inputs of variance ~1e-5 and its eps (1e-6 or 1e-5) shows in the output."""
    weights = {}
    for name, value in net.state_dict().items():
        scale = 0.003 if name.startswith(("Spatial_norm", "Temporal_norm")) else 0.5 / math.sqrt(value.shape[-1])
        weights[name] = torch.randn(value.shape, generator=generator) * scale
        if name.endswith(("norm1.weight", "norm2.weight")) or name == "head.0.weight":
            weights[name] += 1.0
    return weights


def small_pair(model: str, seed: int = 0):
    """A small reference model (RefMixSTE2 networks with random weights), its state dict as the reference names it,
    and our lifter with the reference settings at the same small sizes, in eval mode."""
    lifter = create_lifter(model, joints=134, frames=FRAMES, **{**REFERENCE_SETTINGS[model], **SMALL[model]}).eval()
    generator = torch.Generator().manual_seed(seed)
    widths = {"whole": SMALL["d3dp"]["width"]} if model == "d3dp" else SMALL["pafuse"]["widths"]
    nets, state = {}, dict(ref_schedule())
    for part, width in widths.items():
        joints = 134 if model == "d3dp" else len(REF_PART_JOINTS[part])
        nets[part] = RefMixSTE2(joints, FRAMES, width, SMALL[model]["depth"]).eval()
        nets[part].load_state_dict(random_weights(nets[part], generator))
        prefix = "pose_estimator." if model == "d3dp" else f"pose_estimator.{part}."
        state.update({prefix + name: value for name, value in nets[part].state_dict().items()})
    return nets, state, lifter


def save_reference(path: Path, state: dict) -> Path:
    """Write ``state`` as the reference saves it: DataParallel keys, with optimizer, epoch, lr and random_state (the
    training generator's ``np.random.RandomState``, which ``weights_only`` refuses unless allowed)."""
    optimizer = {"state": {}, "param_groups": [{"lr": 6e-5, "betas": (0.9, 0.999), "weight_decay": 0.1,
                                                "params": list(range(len(state)))}]}
    torch.save({"optimizer": optimizer, "epoch": 80, "lr": 6e-5 * 0.993 ** 80,
                "model_pos": {f"module.{key}": value for key, value in state.items()},
                "random_state": np.random.RandomState(1234)}, path)
    return path


def close(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


# ---- key mapping on the full reference listings ---------------------------------------------------------------

@pytest.mark.parametrize("model", ["pafuse", "d3dp"])
def test_every_listed_key_maps_to_exactly_one_of_ours(model):
    listing = {key.removeprefix("module."): spec for key, spec in read_listing(model).items()}
    with torch.device("meta"):
        lifter = reference_lifter(model)
    state = lifter.state_dict()
    names = reference_names(lifter)
    owner = {name: own for own, name in names.items()}
    assert None not in owner and len(owner) == len(names) == len(state), "every entry of ours, one reference name"
    for key, (shape, dtype) in listing.items():
        if key in owner:
            assert tuple(state[owner[key]].shape) == shape, key
            assert state[owner[key]].dtype == dtype or key in HELD_SCHEDULE, key
        else:
            assert key in SCHEDULE_BUFFERS, f"{key} has no place in ours"
    assert set(owner) <= set(listing)
    assert set(listing) - set(owner) == set(SCHEDULE_BUFFERS) - set(HELD_SCHEDULE)
    assert list(listing)[:len(SCHEDULE_BUFFERS)] == list(SCHEDULE_BUFFERS)
    parameters = sum(math.prod(shape) for key, (shape, _) in listing.items() if key not in SCHEDULE_BUFFERS)
    assert count_parameters(lifter) == parameters == REFERENCE_PARAMETERS[model]


@pytest.mark.parametrize("model", ["pafuse", "d3dp"])
def test_full_listing_reads_imports_and_exports_byte_identically(model, tmp_path):
    listing = read_listing(model)
    generator, schedule = torch.Generator().manual_seed(1), ref_schedule()
    state = {key.removeprefix("module."): torch.randn(shape, generator=generator, dtype=dtype)
             for key, (shape, dtype) in listing.items()}
    state.update(schedule)      # a file with other schedule values is refused (see the errors below)
    path = save_reference(tmp_path / f"{model}_model.bin", state)
    reference = read_reference_checkpoint(path)
    assert list(reference) == list(state)
    with torch.device("meta"):
        lifter = reference_lifter(model)
    lifter.load_state_dict(import_state_dict(reference, lifter, str(path)), assign=True)
    exported = export_state_dict(lifter, epoch=80, lr=1e-5)
    assert set(exported) == {"model_pos", "epoch", "lr"} and exported["epoch"] == 80
    assert list(exported["model_pos"]) == list(listing)
    for key, (shape, dtype) in listing.items():
        value = exported["model_pos"][key]
        assert tuple(value.shape) == shape and value.dtype == dtype, key
        assert torch.equal(value, state[key.removeprefix("module.")]), key


def test_export_saves_and_reads_back_with_weights_only(tmp_path):
    _, state, lifter = small_pair("pafuse")
    lifter.load_state_dict(import_state_dict(state, lifter, "small"))
    torch.save(export_state_dict(lifter, epoch=3, lr=2e-5), tmp_path / "exported.bin")
    loaded = torch.load(tmp_path / "exported.bin", weights_only=True)
    assert loaded["epoch"] == 3 and loaded["lr"] == 2e-5
    again = read_reference_checkpoint(tmp_path / "exported.bin")
    assert list(again) == list(state) and all(torch.equal(again[key], state[key]) for key in state)


# ---- errors ---------------------------------------------------------------------------------------------------

def _missing(state):
    del state["pose_estimator.face.head.1.bias"]
    return "pose_estimator.face.head.1.bias", "missing"


def _extra(state):
    state["pose_estimator.body.STEblocks.2.norm1.weight"] = torch.ones(32)
    return "pose_estimator.body.STEblocks.2.norm1.weight", "no place in ours"


def _wrong_shape(state):
    state["pose_estimator.hands.Spatial_pos_embed"] = torch.zeros(1, 21, 24)
    return "pose_estimator.hands.Spatial_pos_embed", "file (1, 21, 24), ours (1, 42, 24)"


def _lossy_dtype(state):
    state["pose_estimator.body.head.1.weight"] = state["pose_estimator.body.head.1.weight"].double()
    return "pose_estimator.body.head.1.weight", "file torch.float64, ours torch.float32"


def _schedule(state):
    state["posterior_variance"] = state["posterior_variance"] * (1 + 1e-6)
    return "posterior_variance", "differ from the cosine schedule with T=1000"


def _many_missing(state):
    for key in [key for key in state if key.startswith("pose_estimator.face.")]:
        del state[key]
    return "pose_estimator.face.Spatial_pos_embed", "more)"


@pytest.mark.parametrize("change", [_missing, _extra, _wrong_shape, _lossy_dtype, _schedule, _many_missing])
def test_a_state_dict_that_does_not_fit_is_refused_naming_file_and_key(change, tmp_path):
    _, state, lifter = small_pair("pafuse")
    key, what = change(state)
    path = save_reference(tmp_path / "pafuse_model.bin", state)
    with pytest.raises(CheckpointError) as error:
        import_state_dict(read_reference_checkpoint(path), lifter, str(path))
    assert str(path) in str(error.value) and key in str(error.value) and what in str(error.value)


def _write(path: Path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)


@pytest.mark.parametrize("content, what", [
    (b"hello, not a checkpoint\n", "expected a file written by torch.save"),
    (b"", "expected a file written by torch.save"),
    ({"epoch": 3, "lr": 0.1}, "'model_pos'"),
    ([torch.zeros(1)], "expected a dict"),
    ({"model_pos": {"module.a": torch.zeros(1), "module.b": 3}}, "'module.b' (int)"),
    ({"model_pos": {}}, "found an empty dict"),
    ({"model_pos": {"module.a": torch.zeros(1), "b": torch.zeros(1)}}, "these do not: b"),
])
def test_unreadable_files_are_refused_naming_what_was_expected(content, what, tmp_path):
    path = tmp_path / "weights.bin"
    _write(path, content)
    with pytest.raises(CheckpointError) as error:
        read_reference_checkpoint(path)
    assert str(path) in str(error.value) and what in str(error.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="absent.bin: expected a checkpoint file, found nothing"):
        read_reference_checkpoint(tmp_path / "absent.bin")


def test_a_bare_state_dict_with_or_without_module_prefix_reads(tmp_path):
    for prefix in ("", "module."):
        torch.save({f"{prefix}pose_estimator.head.1.bias": torch.arange(3.0)}, tmp_path / "bare.bin")
        assert list(read_reference_checkpoint(tmp_path / "bare.bin")) == ["pose_estimator.head.1.bias"]


class _WritesAFile:
    """Unpickling this opens (so creates) ``target`` for writing."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return open, (self.target, "w")


def test_a_pickle_that_would_write_a_file_is_refused_unread(tmp_path):
    target = tmp_path / "written_by_the_checkpoint.txt"
    path = tmp_path / "pafuse_model.bin"
    torch.save({"model_pos": {"module.betas": torch.zeros(3)}, "payload": _WritesAFile(target)}, path)
    assert not target.exists()
    with pytest.raises(CheckpointError, match="refused by weights_only") as error:
        read_reference_checkpoint(path)
    assert str(path) in str(error.value) and "open" in str(error.value)
    assert not target.exists()


@pytest.mark.parametrize("overrides, what", [
    ({"attach": "roots"}, "attach='roots'"), ({"hands": "shared"}, "hands='shared'"),
    ({"shift": False}, "shift=False"), ({"heads": 4}, "[4] heads"), ({"scale": 2.0}, "scale 1"),
])
def test_a_lifter_unlike_the_reference_is_refused(overrides, what):
    with torch.device("meta"):
        lifter = create_lifter("pafuse", joints=134, frames=FRAMES,
                               **{**REFERENCE_SETTINGS["pafuse"], **SMALL["pafuse"], **overrides})
    with pytest.raises(CheckpointError, match="w.bin") as error:
        import_state_dict({}, lifter, "w.bin")
    assert what in str(error.value)


# ---- function equality with the re-implemented reference --------------------------------------------------------

def _inputs(joints: int, seed: int = 2):
    generator = torch.Generator().manual_seed(seed)
    x2d = torch.randn(2, FRAMES, joints, 2, generator=generator)
    x3d = 0.4 * torch.randn(2, FRAMES, joints, 3, generator=generator)
    return x2d, x3d, torch.tensor([999, 37])


@torch.no_grad()
def test_d3dp_denoiser_computes_the_reference_function():
    nets, state, lifter = small_pair("d3dp")
    lifter.load_state_dict(import_state_dict(state, lifter, "small d3dp"))
    x2d, x3d, t = _inputs(134)
    close(lifter.diffusion.denoiser(x2d, x3d, t), nets["whole"](x2d, x3d, t))


@torch.no_grad()
def test_the_head_norm_eps_shows_in_the_output():
    """The weights above make the eps visible: a head LayerNorm with eps 1e-6 (the README's blanket value) gives
    another output than ours, so the equality tests pin eps 1e-5 there."""
    nets, state, lifter = small_pair("d3dp")
    other = RefMixSTE2(134, FRAMES, SMALL["d3dp"]["width"], SMALL["d3dp"]["depth"], head_eps=1e-6).eval()
    other.load_state_dict(nets["whole"].state_dict())
    lifter.load_state_dict(import_state_dict(state, lifter, "small d3dp"))
    x2d, x3d, t = _inputs(134)
    assert (lifter.diffusion.denoiser(x2d, x3d, t) - other(x2d, x3d, t)).abs().max() > 1e-3


@torch.no_grad()
def test_each_pafuse_part_network_computes_the_reference_function():
    nets, state, lifter = small_pair("pafuse")
    lifter.load_state_dict(import_state_dict(state, lifter, "small pafuse"))
    x2d, x3d, t = _inputs(134)
    for part, denoiser in lifter.part_networks().items():
        joints = REF_PART_JOINTS[part]
        close(denoiser(x2d[..., joints, :], x3d[..., joints, :], t), nets[part](x2d[..., joints, :],
                                                                               x3d[..., joints, :], t))
    # The whole part-split denoiser: each part network on its own joints, outputs back in joint order.
    close(lifter.inner.diffusion.denoiser(x2d, x3d, t), ref_pred_parts(nets, x2d, x3d, t))


@torch.no_grad()
def test_pafuse_training_step_matches_the_reference_in_part_frames():
    """Inputs sliced as they are, 3D targets in part frames, noised at t with the reference's schedule."""
    nets, state, lifter = small_pair("pafuse")
    lifter.load_state_dict(import_state_dict(state, lifter, "small pafuse"))
    x2d, y3d, t = _inputs(134, seed=3)
    pred, target = lifter.inner.diffusion.training_pair(lifter.layout.tokens(x2d), lifter.layout.local_targets(y3d),
                                                        t=t, generator=torch.Generator().manual_seed(4))
    local = y3d.clone()
    for root, joints in REF_PART_FRAMES.items():
        local[..., joints, :] = y3d[..., joints, :] - y3d[..., root:root + 1, :]
    noise = torch.randn(local.shape, generator=torch.Generator().manual_seed(4))
    schedule = ref_schedule()
    x_t = (schedule["sqrt_alphas_cumprod"][t].reshape(-1, 1, 1, 1) * local
           + schedule["sqrt_one_minus_alphas_cumprod"][t].reshape(-1, 1, 1, 1) * noise).clamp(-1.1, 1.1).float()
    close(target, local)
    close(pred, ref_pred_parts(nets, x2d, x_t, t))


@torch.no_grad()
def test_one_pafuse_sampling_step_matches_the_reference_in_part_frames():
    nets, state, lifter = small_pair("pafuse")
    lifter.load_state_dict(import_state_dict(state, lifter, "small pafuse"))
    x2d, _, _ = _inputs(134)
    x_T = 1.5 * torch.randn(2, 1, FRAMES, 134, 3, generator=torch.Generator().manual_seed(5))
    ours = lifter.inner.diffusion.sample(lifter.layout.tokens(x2d), hypotheses=1, steps=1, noise=x_T[None])
    theirs = ref_pred_parts(nets, x2d, x_T[:, 0].clamp(-1.1, 1.1), torch.full((2,), 999)).clamp(-1.1, 1.1)
    close(ours[:, 0], theirs)


def test_full_listing_imports_evaluates_and_exports_through_the_commands(tiny_data, tmp_path, capsys):
    """A file with every key of the PAFUSE listing (random values): bench import-checkpoint builds the full-size
    model, bench eval runs it end to end, bench export-checkpoint gives back every tensor under its key."""
    from bench.cli import main

    listing = read_listing("pafuse")
    generator = torch.Generator().manual_seed(1)
    state = {key.removeprefix("module."): torch.randn(shape, generator=generator, dtype=dtype) * 0.02
             for key, (shape, dtype) in listing.items()}
    state.update(ref_schedule())
    path = save_reference(tmp_path / "pafuse_model.bin", state)
    run = tmp_path / "run"
    assert main(["import-checkpoint", str(path), "--model", "pafuse", "--out", str(run), "--data", str(tiny_data)]) == 0
    assert main(["eval", "--run", str(run), "--protocol", "pafuse", "--hypotheses", "1", "--steps", "1"]) == 0
    assert "| H1-K1 | P-Best" in capsys.readouterr().out
    assert main(["export-checkpoint", str(run), "--out", str(tmp_path / "back.bin")]) == 0
    back = read_reference_checkpoint(tmp_path / "back.bin")
    assert list(back) == list(state) and all(torch.equal(back[key], state[key]) for key in state)
