"""Tests for snippets/edm.py: EDM preconditioning, sigmas, loss and sampler (Karras et al. 2022)."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import EDMDPMSolverMultistepScheduler, EDMEulerScheduler

from snippets.edm import (
    Denoiser,
    alpha_bar_from_sigma,
    edm_loss,
    edm_preconditioning,
    edm_sample,
    edm_sample_progressive,
    karras_sigmas,
    loss_weight,
    raw_network_target,
    sample_training_sigma,
    score_from_denoiser,
)
from snippets.schedules import sigma_from_alpha_bar


class TinyNet(torch.nn.Module):
    """A small raw network F(x, c_noise) with fixed random weights."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, c_noise):
        c = c_noise.reshape(-1, 1, 1, 1)
        return torch.tanh(self.conv(x)) * torch.cos(c) + 0.1 * c


class ZeroNet(torch.nn.Module):
    """F = 0, which makes D the exact denoiser for data ~ N(0, sigma_data^2 I)."""

    def forward(self, x, c_noise):
        return torch.zeros_like(x)


# --8<-- [start:test-edm-sigmas]
@pytest.mark.parametrize("n", [1, 2, 18, 40])
@pytest.mark.parametrize(
    "sigma_min, sigma_max, rho", [(0.002, 80.0, 7.0), (0.01, 10.0, 3.0)]
)
def test_karras_sigmas_match_diffusers_edm_schedulers(n, sigma_min, sigma_max, rho):
    ours = karras_sigmas(n, sigma_min, sigma_max, rho)
    for cls in (EDMEulerScheduler, EDMDPMSolverMultistepScheduler):
        scheduler = cls(sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
        scheduler.set_timesteps(n)
        # EDMEulerScheduler computes in float64 like us; the DPM-Solver one in float32 (1 ulp at 80 is 8e-6)
        assert torch.allclose(ours, scheduler.sigmas, rtol=1e-6, atol=1e-6)
    assert ours[0] == pytest.approx(sigma_max) and ours[-1] == 0
    if n > 1:
        assert ours[-2] == pytest.approx(sigma_min)
        assert (ours[1:] < ours[:-1]).all()


# --8<-- [end:test-edm-sigmas]


# --8<-- [start:test-edm-preconditioning]
@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_preconditioning_matches_diffusers(sigma_data):
    scheduler = EDMEulerScheduler(sigma_data=sigma_data)
    g = torch.Generator().manual_seed(0)
    x, model_output = torch.randn(2, 3, 1, 4, 4, generator=g)
    for sigma in [0.002, 0.3, 1.0, 14.6, 80.0]:
        s = torch.tensor(sigma)
        c_skip, c_out, c_in, c_noise = edm_preconditioning(s, sigma_data)
        assert torch.allclose(c_in * x, scheduler.precondition_inputs(x, s), atol=1e-5)
        assert torch.allclose(c_noise, scheduler.precondition_noise(s), atol=1e-6)
        denoised = scheduler.precondition_outputs(x, model_output, s)
        assert torch.allclose(c_skip * x + c_out * model_output, denoised, atol=1e-5)


def test_preconditioning_limits_and_unit_variance():
    sigma_data = 0.5
    c_skip, c_out, c_in, _ = edm_preconditioning(torch.tensor([1e-8, 80.0]), sigma_data)
    assert c_skip[0] == pytest.approx(1.0) and c_out[0] == pytest.approx(
        0.0, abs=1e-7
    )  # sigma -> 0: D(x) = x
    assert c_skip[1] == pytest.approx(0.0, abs=1e-4) and c_out[1] == pytest.approx(
        sigma_data, rel=1e-4
    )
    sigma = torch.logspace(-3, 2, 50)
    c_skip, c_out, c_in, _ = edm_preconditioning(sigma, sigma_data)
    # the network input c_in (y + n) has unit variance when Var(y) = sigma_data^2
    assert torch.allclose(
        c_in**2 * (sigma_data**2 + sigma**2), torch.ones(50), atol=1e-5
    )
    # the effective target (Eq. 8) has unit variance too: Appendix B.6
    target_var = ((1 - c_skip) ** 2 * sigma_data**2 + c_skip**2 * sigma**2) / c_out**2
    assert torch.allclose(target_var, torch.ones(50), atol=1e-4)
    assert torch.allclose(loss_weight(sigma, sigma_data), 1 / c_out**2, rtol=1e-5)


# --8<-- [end:test-edm-preconditioning]


def test_raw_network_target_has_unit_variance_empirically():
    g = torch.Generator().manual_seed(1)
    y = 0.5 * torch.randn(4, 1, 100, 100, generator=g)
    noise = torch.randn(y.shape, generator=g)
    sigma = torch.tensor([0.01, 0.5, 3.0, 60.0])
    target = raw_network_target(y, noise, sigma, sigma_data=0.5)
    assert torch.allclose(target.std(dim=(1, 2, 3)), torch.ones(4), atol=0.03)


# --8<-- [start:test-edm-denoiser-target]
def test_denoiser_returns_clean_data_when_f_hits_its_target():
    g = torch.Generator().manual_seed(2)
    y, noise = torch.randn(2, 3, 1, 8, 8, generator=g)
    sigma = torch.tensor([0.05, 0.7, 20.0])

    class Oracle(torch.nn.Module):  # outputs Eq. 8's target, knowing y and the noise
        def forward(self, x, c_noise):
            return raw_network_target(y, noise, sigma, sigma_data=0.5)

    D = Denoiser(Oracle(), sigma_data=0.5)
    x = y + sigma.reshape(-1, 1, 1, 1) * noise
    assert torch.allclose(D(x, sigma), y, atol=1e-4)
    assert edm_loss(D, y, sigma=sigma, noise=noise).item() == pytest.approx(
        0.0, abs=1e-6
    )


# --8<-- [end:test-edm-denoiser-target]


def test_edm_loss_equals_raw_mse_against_the_effective_target():
    net = TinyNet()
    D = Denoiser(net, sigma_data=0.5)
    g = torch.Generator().manual_seed(3)
    y = 0.5 * torch.randn(4, 1, 8, 8, generator=g)
    noise = torch.randn(y.shape, generator=g)
    sigma = sample_training_sigma(4, generator=g)
    c_skip, c_out, c_in, c_noise = edm_preconditioning(sigma.reshape(-1, 1, 1, 1), 0.5)
    raw = net(c_in * (y + sigma.reshape(-1, 1, 1, 1) * noise), c_noise.flatten())
    expected = ((raw - raw_network_target(y, noise, sigma, 0.5)) ** 2).mean()
    assert edm_loss(D, y, sigma=sigma, noise=noise).item() == pytest.approx(
        expected.item(), rel=1e-4
    )


def test_training_sigmas_are_log_normal():
    sigma = sample_training_sigma(
        50_000, P_mean=-1.2, P_std=1.2, generator=torch.Generator().manual_seed(4)
    )
    assert sigma.log().mean().item() == pytest.approx(-1.2, abs=0.03)
    assert sigma.log().std().item() == pytest.approx(1.2, abs=0.03)


# --8<-- [start:test-edm-euler-parity]
def test_euler_sampler_matches_diffusers_edm_euler_scheduler():
    net, n = TinyNet(), 12
    D = Denoiser(net, sigma_data=0.5)
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    scheduler = EDMEulerScheduler()
    scheduler.set_timesteps(n)
    sigmas = karras_sigmas(n)
    x = noise * scheduler.sigmas[0]
    with torch.no_grad():
        ours = list(edm_sample_progressive(D, noise, sigmas, second_order=False))
        for i, t in enumerate(scheduler.timesteps):
            model_output = net(scheduler.scale_model_input(x, t), t.expand(2))
            x = scheduler.step(model_output, t, x).prev_sample
            assert (ours[i] - x).abs().max() <= 1e-5 * max(1.0, x.abs().max().item())
    assert (ours[-1] - x).abs().max() <= 1e-4


# --8<-- [end:test-edm-euler-parity]


def test_churn_matches_diffusers_when_the_network_ignores_its_input():
    # diffusers evaluates the network at (x_i, sigma_i), *before* adding churn noise, and Algorithm 2
    # at (x_hat, sigma_hat); the two agree only when F does not depend on its input (here F = 0).
    n, churn = 10, 40.0
    D = Denoiser(ZeroNet(), sigma_data=0.5)
    noise = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(6))
    ours = edm_sample(
        D,
        noise,
        karras_sigmas(n),
        S_churn=churn,
        S_tmin=0.05,
        S_tmax=50.0,
        S_noise=1.003,
        second_order=False,
        generator=torch.Generator().manual_seed(7),
    )
    scheduler = EDMEulerScheduler()
    scheduler.set_timesteps(n)
    x, g = noise * scheduler.sigmas[0], torch.Generator().manual_seed(7)
    for t in scheduler.timesteps:
        model_output = torch.zeros_like(scheduler.scale_model_input(x, t))
        x = scheduler.step(
            model_output,
            t,
            x,
            s_churn=churn,
            s_tmin=0.05,
            s_tmax=50.0,
            s_noise=1.003,
            generator=g,
        ).prev_sample
    assert (ours - x).abs().max() <= 1e-4


def test_heun_solves_the_gaussian_ode_to_second_order():
    # Data ~ N(0, sigma_data^2 I): D(x; sigma) = c_skip(sigma) x is exact (F = 0), and the ODE
    # dx/dsigma = (x - D)/sigma has the solution x(sigma) = x(sigma_0) sqrt(sigma^2 + sd^2) / sqrt(sigma_0^2 + sd^2).
    D = Denoiser(ZeroNet(), sigma_data=0.5)
    noise = torch.randn(1, 1, 2, 2, generator=torch.Generator().manual_seed(8)).double()

    def error(second_order, n):
        s = karras_sigmas(n).double()
        x_N = edm_sample(D, noise, s, second_order=second_order)
        x_exact = noise * s[0] * (0.25 / (s[0] ** 2 + 0.25)).sqrt()
        return (x_N - x_exact).abs().max().item()

    heun_16, heun_32 = error(True, 16), error(True, 32)
    euler_16, euler_32 = error(False, 16), error(False, 32)
    assert euler_16 / euler_32 == pytest.approx(
        2.0, rel=0.1
    )  # first order: half the step, half the error
    assert heun_16 / heun_32 > 3.5  # second order: about a quarter
    assert heun_32 < euler_32 / 4


def test_point_mass_paths_are_straight_lines_in_sigma():
    # A point mass at y: D = y exactly, the ODE is dx/dsigma = (x - y)/sigma, so x_i - y = (sigma_i / sigma_0)(x_0 - y)
    # and both Euler and Heun follow it exactly.
    y = torch.full((1, 1, 4, 4), 0.3)
    noise = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(9))
    sigmas = karras_sigmas(10)
    x_0 = sigmas[0] * noise
    for second_order in (False, True):
        xs = edm_sample_progressive(
            lambda x, s: y.expand_as(x), noise, sigmas, second_order=second_order
        )
        for x, s in zip(xs, sigmas[1:]):
            assert torch.allclose(x, y + s / sigmas[0] * (x_0 - y), atol=1e-4)


def test_churn_is_off_outside_s_tmin_s_tmax_and_reproducible_inside():
    D = Denoiser(TinyNet(), sigma_data=0.5)
    noise = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(10))
    sigmas = karras_sigmas(6)
    with torch.no_grad():
        plain = edm_sample(D, noise, sigmas)
        outside = edm_sample(D, noise, sigmas, S_churn=30.0, S_tmin=100.0, S_tmax=200.0)
        churned = [
            edm_sample(
                D,
                noise,
                sigmas,
                S_churn=30.0,
                generator=torch.Generator().manual_seed(11),
            )
            for _ in range(2)
        ]
    assert torch.equal(plain, outside)
    assert torch.equal(churned[0], churned[1]) and not torch.allclose(churned[0], plain)


# --8<-- [start:test-vp-bridge]
def test_alpha_bar_and_sigma_convert_like_diffusers_euler_discrete_scheduler():
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    sigmas = sigma_from_alpha_bar(scheduler.alphas_cumprod)
    # diffusers stores the training sigmas from T-1 down to 0, followed by a final 0
    assert torch.allclose(sigmas.flip(0), scheduler.sigmas[:-1], rtol=1e-5)
    assert torch.allclose(
        alpha_bar_from_sigma(sigmas), scheduler.alphas_cumprod, rtol=1e-5
    )


def test_score_of_a_gaussian_from_its_exact_denoiser():
    # Data ~ N(0, sd^2): p(x; sigma) = N(0, sd^2 + sigma^2), whose score is -x / (sd^2 + sigma^2)
    x = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(13))
    sigma = torch.tensor([0.1, 1.0, 10.0])
    D = Denoiser(ZeroNet(), sigma_data=0.5)
    expected = -x / (0.25 + sigma.reshape(-1, 1, 1, 1) ** 2)
    assert torch.allclose(
        score_from_denoiser(D(x, sigma), x, sigma), expected, atol=1e-6
    )


# --8<-- [end:test-vp-bridge]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: karras_sigmas(0), "num_steps"),
        (
            lambda: karras_sigmas(5, sigma_min=1.0, sigma_max=0.5),
            r"sigma_max must be a finite number > 1\.0",
        ),
        (lambda: karras_sigmas(5, rho=0.0), "rho"),
        (lambda: edm_preconditioning(torch.tensor(1.0), sigma_data=0.0), "sigma_data"),
        (lambda: Denoiser(ZeroNet(), sigma_data=-1.0), "sigma_data"),
        (
            lambda: Denoiser(ZeroNet())(
                torch.zeros(2, 1, 2, 2), torch.tensor([1.0, 0.0])
            ),
            "sigma must be > 0",
        ),
        (
            lambda: Denoiser(ZeroNet())(
                torch.zeros(2, 1, 2, 2), torch.tensor([1.0, 1.0, 1.0])
            ),
            "shape",
        ),
        (
            lambda: edm_sample(
                ZeroNet(), torch.zeros(1, 1, 2, 2), torch.tensor([1.0, 2.0, 0.0])
            ),
            "decreasing",
        ),
        (
            lambda: edm_sample(
                ZeroNet(), torch.zeros(1, 1, 2, 2), torch.tensor([1.0, -0.5])
            ),
            "sigmas must be >= 0",
        ),
        (
            lambda: edm_sample(ZeroNet(), torch.zeros(1, 1, 2, 2), torch.tensor([1.0])),
            "at least 2",
        ),
        (
            lambda: edm_sample(
                ZeroNet(), torch.zeros(1, 1, 2, 2), karras_sigmas(3), S_churn=-1.0
            ),
            "S_churn",
        ),
        (lambda: sample_training_sigma(3, P_std=0.0), "P_std"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_gamma_is_capped_at_sqrt2_minus_1():
    # With huge churn every step raises sigma by exactly sqrt(2) - 1 (Algorithm 2, line 4): check the
    # added variance sigma_hat^2 - sigma^2 through a denoiser that records its sigma.
    seen = []

    def D(x, sigma):
        seen.append(sigma[0].item())
        return torch.zeros_like(x)

    sigmas = karras_sigmas(4)
    edm_sample(
        D,
        torch.zeros(1, 1, 2, 2),
        sigmas,
        S_churn=1e6,
        second_order=False,
        generator=torch.Generator().manual_seed(12),
    )
    assert seen == pytest.approx(
        [s * math.sqrt(2) for s in sigmas[:-1].tolist()], rel=1e-6
    )
