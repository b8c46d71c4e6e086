"""Gaussian diffusion over 3D pose windows, independent of the denoising network (D3DP, PAFUSE).

Shan et al., "Diffusion-Based 3D Human Pose Estimation with Multi-Hypothesis Aggregation", ICCV 2023,
https://arxiv.org/abs/2303.11579; DDIM sampling from Song et al., https://arxiv.org/abs/2010.02502.

Denoiser contract: any ``nn.Module`` called as ``denoiser(x2d, x_t, t) -> x0`` with

- ``x2d``: (B, N, J, 2) normalized 2D keypoints, the condition;
- ``x_t``: (B, N, J, 3) noisy 3D window, in the units of the data (metres);
- ``t``: (B,) long diffusion steps in [0, timesteps);
- ``x0``: (B, N, J, 3) its estimate of the clean window (metres).

Units: the chain itself runs in *signal space*, the data multiplied by ``scale``; the denoiser always sees and
returns data units, and so does everything this module returns. With the reference's ``scale = 1`` the two agree.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import torch
from torch import nn

from baselines.base import flip_pose, mpjpe_loss

CLAMP = 1.1
"""Signal-space bound (times ``scale``) applied to every noisy input and every denoised estimate."""


def cosine_beta_schedule(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """Cosine noise schedule of Nichol & Dhariwal (https://arxiv.org/abs/2102.09672).

    Args:
        timesteps: T, the number of diffusion steps.
        s: small offset that keeps the first betas away from 0.

    Returns:
        (T,) float64 betas, clipped to [0, 0.999] so that the last steps stay invertible.
    """
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64, device="cpu")
    alphas_cumprod = torch.cos((x / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    return (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clip(0, 0.999)


SCHEDULES: dict[str, Callable[[int], torch.Tensor]] = {"cosine": cosine_beta_schedule}

SAMPLER_PATHS = ("together", "per-flip", "per-hypothesis")
"""How a DDIM step calls the denoiser: ``together``, one forward for all H hypotheses and both flips (batch 2BH);
``per-flip``, one forward per flip view with the H hypotheses batched (batch BH), the reference code's way;
``per-hypothesis``, one forward per hypothesis and flip (batch B). All three give the same samples."""
REFERENCE_SAMPLER = "per-flip"
DEFAULT_SAMPLERS = {"cuda": "together", "cpu": "per-hypothesis"}
"""The sampler path per device type, chosen from ``bench perf --compare sampler`` (README, "Performance"): on CPU a
whole-body denoiser measured fastest one hypothesis at a time; on CUDA one large batch keeps the device busy. A
denoiser can override this per device type with a ``samplers`` attribute (the part-split denoiser does on CPU).
Device types in neither use the reference's way."""


def default_sampler(device: torch.device | str, denoiser: nn.Module | None = None) -> str:
    """The sampler path ``sample`` takes on ``device`` when not told: the denoiser's ``samplers`` entry for the device
    type when it has one, else ``DEFAULT_SAMPLERS``'s, else ``REFERENCE_SAMPLER``."""
    kind = torch.device(device).type
    return getattr(denoiser, "samplers", {}).get(kind) or DEFAULT_SAMPLERS.get(kind, REFERENCE_SAMPLER)


def _check_sampler(sampler: str) -> str:
    if sampler not in SAMPLER_PATHS:
        raise ValueError(f"unknown sampler path {sampler!r}; known: {', '.join(SAMPLER_PATHS)}")
    return sampler


def beta_schedule(name: str, timesteps: int) -> torch.Tensor:
    """The (T,) float64 betas of the schedule called ``name``; an unknown name raises ValueError."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown beta schedule {name!r}; known schedules: {', '.join(sorted(SCHEDULES))}")
    return SCHEDULES[name](timesteps)


def _per_window(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Pick ``values[t]`` for each window and shape it (B, 1, ..., 1) to broadcast against ``ndim``-D tensors."""
    return values[t].reshape(-1, *([1] * (ndim - 1)))


class GaussianDiffusion(nn.Module):
    """Trains a denoiser to predict clean 3D windows and samples hypotheses from it with DDIM.

    Args:
        denoiser: a module following the contract in the module docstring.
        timesteps: T, the length of the forward chain.
        scale: signal-space factor applied to the data before noise is added.
        schedule: name of the beta schedule (see ``SCHEDULES``).
        sampler: the sampler path (``SAMPLER_PATHS``) when ``sample`` is not told; None: ``default_sampler`` of the
            input's device and the denoiser. An attribute, so that a benchmark can switch the path of a lifter it
            cannot reach into.
    """

    def __init__(self, denoiser: nn.Module, *, timesteps: int = 1000, scale: float = 1.0, schedule: str = "cosine",
                 sampler: str | None = None):
        super().__init__()
        if timesteps < 1 or scale <= 0:
            raise ValueError(f"GaussianDiffusion needs timesteps >= 1 and scale > 0, got {timesteps} and {scale}")
        self.denoiser = denoiser
        self.timesteps = timesteps
        self.scale = scale
        self.sampler = sampler if sampler is None else _check_sampler(sampler)
        self.draws: tuple[torch.Generator, slice, int] | None = None   # set by shared_draws
        # Constants are derived in float64, where 1 - abar near t = 0 keeps its digits, then stored as float32.
        alphas_cumprod = torch.cumprod(1 - beta_schedule(schedule, timesteps), dim=0)
        constants = {
            "alphas_cumprod": alphas_cumprod,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
        }
        for name, value in constants.items():
            self.register_buffer(name, value.float())
        # The DDIM coefficients need float64: at t = T - 1, abar is ~2e-9 and 1 - abar_next - sigma^2 cancels to
        # zero or below in float32 (a NaN step). The reference, whose buffers stay float64, never meets this.
        self._alphas_cumprod64 = tuple(alphas_cumprod.tolist())

    def time_grid(self, steps: int) -> list[tuple[int, int]]:
        """The DDIM (t, t_next) pairs for ``steps`` denoiser evaluations, from T - 1 down to t_next = -1.

        The grid is the integer part of linspace(-1, T - 1, steps + 1), reversed, computed in float32 as in the
        reference so that the visited steps are identical (steps = 5, T = 1000: 999, 799, 599, 399, 199, -1).
        """
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"sampling steps must be in [1, {self.timesteps}], got {steps}")
        times = torch.linspace(-1, self.timesteps - 1, steps + 1, dtype=torch.float32, device="cpu")
        times = times.int().tolist()[::-1]
        return list(zip(times[:-1], times[1:]))

    def diffuse(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The noisy input the denoiser sees for clean windows ``x0`` at steps ``t``.

        Args:
            x0: (B, N, J, 3) clean windows (metres).
            t: (B,) long steps.
            noise: (B, N, J, 3) standard normal noise, in signal space.

        Returns:
            (B, N, J, 3) clamp(sqrt(abar_t) scale x0 + sqrt(1 - abar_t) noise, +-1.1 scale) / scale.
        """
        signal = (_per_window(self.sqrt_alphas_cumprod, t, x0.ndim) * self.scale * x0
                  + _per_window(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)
        return signal.clamp(-CLAMP * self.scale, CLAMP * self.scale) / self.scale

    def training_pair(self, x2d: torch.Tensor, y3d: torch.Tensor, *, t: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The denoiser's clean estimate of windows noised at one random step each, and its target.

        Args:
            x2d: (B, N, J, 2) 2D condition.
            y3d: (B, N, J, 3) clean 3D windows (metres).
            t: (B,) long steps to use instead of drawing one per window uniformly from [0, T).
            generator: source of the random steps and noise (else the one :func:`shared_draws` set, else
                torch's global generator).

        Returns:
            ((B, N, J, 3) estimate, (B, N, J, 3) target = y3d).
        """
        rows, total = slice(None), y3d.shape[0]
        if generator is None and self.draws is not None:
            generator, rows, total = self.draws
        if t is None:
            t = torch.randint(0, self.timesteps, (total,), generator=generator, device=y3d.device)[rows]
        noise = torch.randn((total, *y3d.shape[1:]), generator=generator, device=y3d.device, dtype=y3d.dtype)[rows]
        return self.denoiser(x2d, self.diffuse(y3d, t, noise), t), y3d

    def loss(self, x2d: torch.Tensor, y3d: torch.Tensor, *, loss_fn: Callable = mpjpe_loss,
             t: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training loss: ``loss_fn`` (MPJPE, as in D3DP) on :meth:`training_pair`."""
        return loss_fn(*self.training_pair(x2d, y3d, t=t, generator=generator))

    def denoise(self, x2d: torch.Tensor, x_t: torch.Tensor, t: int, flip_permutation: torch.Tensor | None = None,
                sampler: str = "together") -> torch.Tensor:
        """Clean estimate of every hypothesis of a signal-space state, with optional flip test-time augmentation.

        Args:
            x2d: (B, N, J, 2) 2D condition.
            x_t: (B, H, N, J, 3) signal-space state at step ``t``.
            t: the current step.
            flip_permutation: (J,) mirror permutation; when given, the estimate is the mean of the plain one and
                the mirrored-back estimate on the mirrored condition and state.
            sampler: how the denoiser is called (``SAMPLER_PATHS``); the same estimate every way.

        Returns:
            (B, H, N, J, 3) signal-space estimate of x0, clamped to +-1.1 scale.
        """
        B, H = x_t.shape[:2]
        x_in = x_t.clamp(-CLAMP * self.scale, CLAMP * self.scale) / self.scale
        cond = x2d.unsqueeze(1).expand(B, H, *x2d.shape[1:])     # (B, H, N, J, 2)
        views = [(cond, x_in)]
        if flip_permutation is not None:
            views.append((flip_pose(cond, flip_permutation), flip_pose(x_in, flip_permutation)))
        if sampler == "together":
            outputs = self._forward_together(views, t).chunk(len(views))
        elif sampler == "per-flip":
            outputs = [self._forward_together([view], t) for view in views]
        else:
            outputs = [self._forward_apart(c, x, t) for c, x in views]
        x0 = outputs[0] if flip_permutation is None else (outputs[0] + flip_pose(outputs[1], flip_permutation)) / 2
        # The chain stays in the state's dtype even when the denoiser runs under reduced-precision autocast.
        return (x0.to(x_t.dtype) * self.scale).clamp(-CLAMP * self.scale, CLAMP * self.scale)

    def _forward_together(self, views: list[tuple[torch.Tensor, torch.Tensor]], t: int) -> torch.Tensor:
        """One denoiser call on every (B, H, ...) view stacked along the batch: (V * B, H, N, J, 3)."""
        cond = torch.cat([c for c, _ in views]).flatten(0, 1)    # (V * B * H, N, J, 2)
        x_in = torch.cat([x for _, x in views]).flatten(0, 1)    # (V * B * H, N, J, 3)
        steps = torch.full((cond.shape[0],), t, dtype=torch.long, device=cond.device)
        return self.denoiser(cond, x_in, steps).unflatten(0, (-1, views[0][1].shape[1]))

    def _forward_apart(self, cond: torch.Tensor, x_in: torch.Tensor, t: int) -> torch.Tensor:
        """One denoiser call per hypothesis of a (B, H, ...) view: (B, H, N, J, 3)."""
        steps = torch.full((cond.shape[0],), t, dtype=torch.long, device=cond.device)
        return torch.stack([self.denoiser(cond[:, h], x_in[:, h], steps) for h in range(x_in.shape[1])], dim=1)

    def ddim_step(self, x_t: torch.Tensor, x0: torch.Tensor, t: int, t_next: int, eta: float,
                  z: torch.Tensor) -> torch.Tensor:
        """Move a signal-space state from step ``t`` to ``t_next`` >= 0 given its clean estimate ``x0``.

        The noise estimate is derived from the unclamped state, as in the reference; ``z`` is fresh standard
        normal noise of the state's shape, weighted by sigma (eta = 1: the DDPM posterior variance).
        """
        abar, abar_next = self._alphas_cumprod64[t], self._alphas_cumprod64[t_next]
        eps = (x_t / math.sqrt(abar) - x0) / math.sqrt(1 / abar - 1)
        sigma = eta * math.sqrt((1 - abar / abar_next) * (1 - abar_next) / (1 - abar))
        c = math.sqrt(1 - abar_next - sigma ** 2)
        return math.sqrt(abar_next) * x0 + c * eps + sigma * z

    @torch.no_grad()
    def sample(self, x2d: torch.Tensor, *, hypotheses: int, steps: int, eta: float = 1.0,
               flip_permutation: torch.Tensor | None = None, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None, sampler: str | None = None,
               return_all_steps: bool = False) -> torch.Tensor:
        """Draw ``hypotheses`` 3D windows per 2D window with ``steps`` DDIM steps.

        Args:
            x2d: (B, N, J, 2) 2D condition.
            hypotheses: H, independent samples per window.
            steps: K, denoiser evaluations per sample (see ``time_grid``).
            eta: DDIM stochasticity, 1.0 in the reference.
            flip_permutation: (J,) mirror permutation for flip test-time augmentation at every step.
            generator: source of the noise when ``noise`` is None.
            noise: (K, B, H, N, J, 3) pre-drawn standard normal noise, in signal space: [0] is x_T and [k],
                k >= 1, the z of the move from step k - 1 to step k. Lets H one-hypothesis calls reproduce one
                H-hypothesis call.
            sampler: the path (``SAMPLER_PATHS``), all giving the same samples. None: the module's ``sampler``
                attribute, or when that is None too, ``default_sampler(x2d.device, self.denoiser)``.
            return_all_steps: return every step's estimate, as the reference records them.

        Returns:
            (B, H, N, J, 3) samples (metres), or (B, K, H, N, J, 3) with ``return_all_steps``.
        """
        if hypotheses < 1:
            raise ValueError(f"sample needs hypotheses >= 1, got {hypotheses}")
        grid = self.time_grid(steps)
        shape = (x2d.shape[0], hypotheses, *x2d.shape[1:3], 3)
        if noise is not None and tuple(noise.shape) != (steps, *shape):
            raise ValueError(f"sample noise: expected shape {(steps, *shape)} (steps, B, H, N, J, 3), "
                             f"got {tuple(noise.shape)}")
        if flip_permutation is not None:
            flip_permutation = _check_permutation(flip_permutation, x2d)
        sampler = _check_sampler(sampler or self.sampler or default_sampler(x2d.device, self.denoiser))

        def draw(k: int) -> torch.Tensor:
            if noise is not None:
                return noise[k].to(x2d)
            return torch.randn(shape, generator=generator, device=x2d.device, dtype=x2d.dtype)

        x_t = draw(0)
        estimates = []
        for k, (t, t_next) in enumerate(grid):
            x0 = self.denoise(x2d, x_t, t, flip_permutation, sampler)
            # Only the last estimate is kept unless asked: at B * H in the thousands each one is large.
            if return_all_steps or t_next < 0:
                estimates.append(x0 / self.scale)
            if t_next >= 0:
                x_t = self.ddim_step(x_t, x0, t, t_next, eta, draw(k + 1))
        return torch.stack(estimates, dim=1) if return_all_steps else estimates[-1]


def _check_permutation(permutation, x2d: torch.Tensor) -> torch.Tensor:
    """The flip permutation as a long tensor on ``x2d``'s device; its length must be J."""
    permutation = torch.as_tensor(permutation, dtype=torch.long, device=x2d.device)
    if tuple(permutation.shape) != (x2d.shape[2],):
        raise ValueError(f"flip_permutation: expected shape ({x2d.shape[2]},) for J = {x2d.shape[2]} joints, "
                         f"got {tuple(permutation.shape)}")
    return permutation


@contextlib.contextmanager
def shared_draws(lifter: nn.Module, generator: torch.Generator, rows: slice, total: int) -> Iterator[None]:
    """Within the block, every diffusion inside ``lifter`` draws its training steps and noise from ``generator``, for
    all ``total`` windows of a batch, and keeps the windows ``rows`` it was given.

    This is how the processes of a data-parallel run, each holding a slice of every batch, draw together exactly what
    one process draws for the whole batch: each seeds ``generator`` alike and keeps its own rows.
    """
    diffusions = [module for module in lifter.modules() if isinstance(module, GaussianDiffusion)]
    for diffusion in diffusions:
        diffusion.draws = (generator, rows, total)
    try:
        yield
    finally:
        for diffusion in diffusions:
            diffusion.draws = None
