"""GaussianDiffusion with a tiny stand-in denoiser: schedule, time grid, DDIM arithmetic, flip TTA, batching."""
import math

import pytest
import torch
from torch import nn

from baselines.base import flip_pose, mpjpe_loss
from baselines.diffusion import SAMPLER_PATHS, GaussianDiffusion, beta_schedule, cosine_beta_schedule, shared_draws

B, N, J = 2, 4, 5
PERMUTATION = torch.tensor([0, 2, 1, 4, 3])


class StandIn(nn.Module):
    """A denoiser that is not MixSTE: per-token linear map, a joint-mixing matrix and a step-dependent offset.

    The random joint mixing makes it not mirror-equivariant, so flip TTA changes its output.
    """

    def __init__(self, joints: int = J):
        super().__init__()
        self.token = nn.Linear(5, 3)
        self.mix = nn.Parameter(torch.eye(joints) + 0.3 * torch.randn(joints, joints))
        self.offset = nn.Parameter(0.1 * torch.randn(3))
        self.seen_t = None

    def forward(self, x2d, x_t, t):
        self.seen_t = t
        y = torch.einsum("ij,bnjc->bnic", self.mix, self.token(torch.cat([x2d, x_t], dim=-1)))
        return y + (t.float() / 1000)[:, None, None, None] * self.offset


@pytest.fixture
def diffusion():
    torch.manual_seed(0)
    return GaussianDiffusion(StandIn(), timesteps=1000)


def test_cosine_schedule_values():
    betas = cosine_beta_schedule(1000)
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    f = [math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2 for t in (0, 1, 2)]
    assert betas[0].item() == pytest.approx(1 - f[1] / f[0], rel=1e-12)
    assert betas[1].item() == pytest.approx(1 - f[2] / f[1], rel=1e-12)
    # The last betas hit the 0.999 cap; none is negative.
    assert betas[-1].item() == 0.999 and betas.max().item() == 0.999 and betas.min().item() > 0


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="unknown beta schedule 'linear'.*cosine"):
        beta_schedule("linear", 10)
    with pytest.raises(ValueError, match="unknown beta schedule"):
        GaussianDiffusion(StandIn(), schedule="sigmoid")


def test_constants_are_float32_buffers(diffusion):
    assert {name for name, _ in diffusion.named_parameters()} == {f"denoiser.{n}" for n, _ in
                                                                  diffusion.denoiser.named_parameters()}
    abar = diffusion.alphas_cumprod
    assert abar.dtype == torch.float32 and abar.shape == (1000,)
    assert torch.all(abar[1:] < abar[:-1]) and 0 < abar[-1] < abar[0] < 1
    expected = torch.cumprod(1 - cosine_beta_schedule(1000), 0)
    torch.testing.assert_close(diffusion.sqrt_one_minus_alphas_cumprod, (1 - expected).sqrt().float())


@pytest.mark.parametrize("steps, expected", [
    (1, [(999, -1)]),
    (3, [(999, 665), (665, 332), (332, -1)]),
    (5, [(999, 799), (799, 599), (599, 399), (399, 199), (199, -1)]),
    (10, [(999, 899), (899, 799), (799, 699), (699, 599), (599, 499), (499, 399), (399, 299), (299, 199),
          (199, 99), (99, -1)]),
])
def test_time_grid_matches_reference(diffusion, steps, expected):
    assert diffusion.time_grid(steps) == expected


def test_time_grid_rejects_bad_steps(diffusion):
    with pytest.raises(ValueError, match=r"\[1, 1000\], got 0"):
        diffusion.time_grid(0)


def test_diffuse_formula(diffusion):
    x0, noise = torch.randn(B, N, J, 3), 2 * torch.randn(B, N, J, 3)
    t = torch.tensor([0, 700])
    abar = torch.cumprod(1 - cosine_beta_schedule(1000), 0)[t].float()[:, None, None, None]
    expected = (abar.sqrt() * x0 + (1 - abar).sqrt() * noise).clamp(-1.1, 1.1)
    torch.testing.assert_close(diffusion.diffuse(x0, t, noise), expected)
    scaled = GaussianDiffusion(StandIn(), scale=2.0)
    expected = (abar.sqrt() * 2 * x0 + (1 - abar).sqrt() * noise).clamp(-2.2, 2.2) / 2
    torch.testing.assert_close(scaled.diffuse(x0, t, noise), expected)


def test_loss_draws_one_step_per_window_and_scores_x0(diffusion):
    x2d, y3d = torch.randn(B, N, J, 2), 0.3 * torch.randn(B, N, J, 3)
    diffusion.loss(x2d, y3d, generator=torch.Generator().manual_seed(0))
    t = diffusion.denoiser.seen_t
    assert t.dtype == torch.long and t.shape == (B,) and 0 <= t.min() and t.max() < 1000
    fixed = torch.tensor([3, 900])
    loss = diffusion.loss(x2d, y3d, t=fixed, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(y3d.shape, generator=torch.Generator().manual_seed(1))
    expected = mpjpe_loss(diffusion.denoiser(x2d, diffusion.diffuse(y3d, fixed, noise), fixed), y3d)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_one_step_is_one_denoiser_call_on_clamped_noise(diffusion):
    x2d, noise = torch.randn(B, N, J, 2), 2 * torch.randn(1, B, 3, N, J, 3)
    out = diffusion.sample(x2d, hypotheses=3, steps=1, noise=noise)
    t = torch.full((B,), 999)
    expected = torch.stack([diffusion.denoiser(x2d, noise[0, :, h].clamp(-1.1, 1.1), t) for h in range(3)], 1)
    torch.testing.assert_close(out, expected.clamp(-1.1, 1.1))
    # With scale s the chain runs in s-times units; the result comes back in data units.
    scaled = GaussianDiffusion(diffusion.denoiser, scale=2.0)
    out = scaled.sample(x2d, hypotheses=3, steps=1, noise=noise)
    expected = torch.stack([scaled.denoiser(x2d, noise[0, :, h].clamp(-2.2, 2.2) / 2, t) for h in range(3)], 1)
    torch.testing.assert_close(out, (expected * 2).clamp(-2.2, 2.2) / 2)


def test_two_steps_follow_the_ddim_update(diffusion):
    x2d, noise = torch.randn(B, N, J, 2), torch.randn(2, B, 1, N, J, 3)
    out = diffusion.sample(x2d, hypotheses=1, steps=2, noise=noise)
    abar = torch.cumprod(1 - cosine_beta_schedule(1000), 0)
    a, a_next = abar[999].item(), abar[499].item()
    den = diffusion.denoiser
    x_t = noise[0, :, 0]
    x0 = den(x2d, x_t.clamp(-1.1, 1.1), torch.full((B,), 999)).clamp(-1.1, 1.1)
    eps = (x_t / math.sqrt(a) - x0) / math.sqrt(1 / a - 1)
    sigma = math.sqrt((1 - a / a_next) * (1 - a_next) / (1 - a))
    x_next = math.sqrt(a_next) * x0 + math.sqrt(1 - a_next - sigma ** 2) * eps + sigma * noise[1, :, 0]
    expected = den(x2d, x_next.clamp(-1.1, 1.1), torch.full((B,), 499)).clamp(-1.1, 1.1)
    torch.testing.assert_close(out[:, 0], expected, rtol=1e-4, atol=1e-5)


def test_flip_tta_is_mirror_equivariant(diffusion):
    x2d, noise = torch.randn(B, N, J, 2), torch.randn(3, B, 2, N, J, 3)
    flipped_in = diffusion.sample(flip_pose(x2d, PERMUTATION), hypotheses=2, steps=3,
                                  noise=flip_pose(noise, PERMUTATION), flip_permutation=PERMUTATION)
    plain = diffusion.sample(x2d, hypotheses=2, steps=3, noise=noise, flip_permutation=PERMUTATION)
    torch.testing.assert_close(flipped_in, flip_pose(plain, PERMUTATION))
    # Without TTA the stand-in is not equivariant, so the check above is not vacuous.
    no_tta = diffusion.sample(flip_pose(x2d, PERMUTATION), hypotheses=2, steps=3, noise=flip_pose(noise, PERMUTATION))
    plain = diffusion.sample(x2d, hypotheses=2, steps=3, noise=noise)
    assert (no_tta - flip_pose(plain, PERMUTATION)).abs().max() > 1e-2


def test_flip_tta_averages_plain_and_mirrored_estimates(diffusion):
    x2d, noise = torch.randn(B, N, J, 2), torch.randn(1, B, 1, N, J, 3)
    out = diffusion.sample(x2d, hypotheses=1, steps=1, noise=noise, flip_permutation=PERMUTATION)
    t, x_t = torch.full((B,), 999), noise[0, :, 0].clamp(-1.1, 1.1)
    mirrored = diffusion.denoiser(flip_pose(x2d, PERMUTATION), flip_pose(x_t, PERMUTATION), t)
    expected = (diffusion.denoiser(x2d, x_t, t) + flip_pose(mirrored, PERMUTATION)) / 2
    torch.testing.assert_close(out[:, 0], expected.clamp(-1.1, 1.1))


def test_seeded_sampling_is_reproducible(diffusion):
    x2d = torch.randn(B, N, J, 2)

    def draw(seed):
        return diffusion.sample(x2d, hypotheses=4, steps=3, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(0), draw(0))
    assert (draw(0) - draw(1)).abs().max() > 1e-3


def test_batched_hypotheses_equal_separate_calls(diffusion):
    x2d, noise = torch.randn(B, N, J, 2), torch.randn(4, B, 3, N, J, 3)
    batched = diffusion.sample(x2d, hypotheses=3, steps=4, noise=noise, flip_permutation=PERMUTATION)
    separate = torch.cat([diffusion.sample(x2d, hypotheses=1, steps=4, noise=noise[:, :, h:h + 1],
                                           flip_permutation=PERMUTATION) for h in range(3)], dim=1)
    torch.testing.assert_close(batched, separate)
    for path in SAMPLER_PATHS:
        torch.testing.assert_close(batched, diffusion.sample(x2d, hypotheses=3, steps=4, noise=noise,
                                                             flip_permutation=PERMUTATION, sampler=path))


def test_all_steps_are_recorded(diffusion):
    x2d, noise = torch.randn(B, N, J, 2), torch.randn(5, B, 2, N, J, 3)
    every = diffusion.sample(x2d, hypotheses=2, steps=5, noise=noise, return_all_steps=True)
    assert every.shape == (B, 5, 2, N, J, 3)
    torch.testing.assert_close(every[:, -1], diffusion.sample(x2d, hypotheses=2, steps=5, noise=noise))
    assert not every.requires_grad


def test_bad_noise_and_permutation_raise(diffusion):
    x2d = torch.randn(B, N, J, 2)
    with pytest.raises(ValueError, match=r"sample noise: expected shape \(2, 2, 3, 4, 5, 3\)"):
        diffusion.sample(x2d, hypotheses=3, steps=2, noise=torch.randn(1, B, 3, N, J, 3))
    with pytest.raises(ValueError, match=r"flip_permutation: expected shape \(5,\)"):
        diffusion.sample(x2d, hypotheses=1, steps=1, flip_permutation=torch.arange(4))


def test_stand_in_denoiser_trains_and_samples():
    torch.manual_seed(0)
    diffusion = GaussianDiffusion(StandIn(), timesteps=100)
    x2d = torch.randn(8, N, J, 2)
    y3d = 0.3 * x2d @ torch.randn(2, 3)       # a per-token linear map the stand-in can represent
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(diffusion.parameters(), lr=2e-2)
    losses = []
    for _ in range(300):
        loss = diffusion.loss(x2d, y3d, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < sum(losses[:20]) / 20 / 5
    sample = diffusion.sample(x2d, hypotheses=2, steps=5, generator=generator)
    assert sample.shape == (8, 2, N, J, 3)
    assert mpjpe_loss(sample, y3d[:, None]) < mpjpe_loss(torch.zeros_like(y3d), y3d) / 2


def test_shared_draws_give_every_slice_its_rows_of_the_whole_batch_draws(diffusion):
    """Two processes holding rows 0-2 and 3-4 of a batch of 5, their generators seeded alike, draw together exactly
    the steps and noise one process draws for the batch; outside the block draws come from the global generator."""
    x2d, y3d = torch.randn(5, N, J, 2), 0.3 * torch.randn(5, N, J, 3)
    whole, _ = diffusion.training_pair(x2d, y3d, generator=torch.Generator().manual_seed(7))
    whole_t = diffusion.denoiser.seen_t
    pieces, steps = [], []
    for rows in (slice(0, 3), slice(3, 5)):
        with shared_draws(diffusion, torch.Generator().manual_seed(7), rows, 5):
            pieces.append(diffusion.training_pair(x2d[rows], y3d[rows])[0])
        steps.append(diffusion.denoiser.seen_t)
    assert torch.equal(torch.cat(steps), whole_t)
    assert torch.allclose(torch.cat(pieces), whole, atol=1e-6)
    assert diffusion.draws is None
    torch.manual_seed(7)
    first, _ = diffusion.training_pair(x2d, y3d)
    torch.manual_seed(7)
    assert torch.equal(diffusion.training_pair(x2d, y3d)[0], first)
