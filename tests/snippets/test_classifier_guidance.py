"""Tests for snippets/classifier_guidance.py: classifier guidance (Dhariwal & Nichol 2021)."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from snippets.classifier_guidance import (
    NoisyDigitClassifier,
    TimeBlind,
    cg_ddpm_sample,
    cg_model,
    classifier_log_prob_grad,
    load_noisy_classifier,
    main,
    save_noisy_classifier,
    train_noisy_classifier,
)
from snippets.data import load_digits
from snippets.forward import predict_x0_and_eps, q_sample
from snippets.metrics import load_classifier
from snippets.sampling import ddim_sample, ddpm_sample
from snippets.schedules import NoiseSchedule

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)
SCHEDULE = NoiseSchedule.from_name("linear", num_train_timesteps=100)
SHAPE = (4, 1, 4, 4)


def stand_in_model(x, t):
    """A deterministic stand-in for a trained network: smooth in x, varying with t."""
    return 0.9 * x + 0.1 * torch.sin(x + t.float().reshape(-1, 1, 1, 1) / 100)


class LinearClassifier(torch.nn.Module):
    """logits = W x + b t: smooth, so its gradient can be checked by finite differences."""

    num_classes = 3

    def __init__(self, pixels=16, dtype=torch.float32):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(3, pixels, generator=g, dtype=dtype))
        self.b = torch.nn.Parameter(torch.randn(3, generator=g, dtype=dtype))

    def forward(self, x, t):
        return x.flatten(1) @ self.w.T + 1e-3 * t.to(x.dtype)[:, None] * self.b


def x_T(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPE, generator=g, dtype=dtype)


LABELS = torch.tensor([0, 1, 2, 1])


def test_log_prob_grad_matches_finite_differences():
    classifier = LinearClassifier(dtype=torch.float64)
    x, t = x_T(dtype=torch.float64), torch.tensor([5, 50, 90, 10])
    grad = classifier_log_prob_grad(classifier, x, t, LABELS)

    def log_p(x):
        return classifier(x, t).log_softmax(-1)[torch.arange(4), LABELS]

    h = 1e-6
    for index in [(0, 0, 0, 0), (1, 0, 2, 3), (3, 0, 3, 1)]:
        bump = torch.zeros_like(x)
        bump[index] = h
        numeric = (log_p(x + bump) - log_p(x - bump)) / (2 * h)
        # only image index[0] changes: its own log-probability moves, the others' do not
        expected = torch.zeros(4, dtype=torch.float64)
        expected[index[0]] = grad[index]
        assert torch.allclose(numeric, expected, atol=1e-8)


def test_scale_zero_is_the_unguided_sampler_exactly():
    classifier = LinearClassifier()
    ours = cg_ddpm_sample(
        stand_in_model, classifier, LABELS, x_T(), SCHEDULE, 10,
        classifier_scale=0.0, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    plain = ddpm_sample(
        stand_in_model, x_T(), SCHEDULE, 10, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(ours, plain)
    for prediction_type in ["epsilon", "v_prediction", "sample"]:
        model = cg_model(
            stand_in_model, classifier, LABELS, 0.0, SCHEDULE.alpha_bar, prediction_type
        )
        guided = ddim_sample(
            model, x_T(), SCHEDULE, 10, prediction_type=prediction_type
        )
        plain = ddim_sample(
            stand_in_model, x_T(), SCHEDULE, 10, prediction_type=prediction_type
        )
        assert torch.equal(guided, plain)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_cg_model_shifts_epsilon_by_s_sqrt_one_minus_alpha_bar_grad(prediction_type):
    classifier, s = LinearClassifier(), 2.5
    x, t = x_T(), torch.tensor([5, 50, 90, 10])
    a_bar = SCHEDULE.alpha_bar
    model = cg_model(stand_in_model, classifier, LABELS, s, a_bar, prediction_type)
    _, eps_guided = predict_x0_and_eps(model(x, t), x, t, a_bar, prediction_type)
    _, eps = predict_x0_and_eps(stand_in_model(x, t), x, t, a_bar, prediction_type)
    grad = classifier_log_prob_grad(classifier, x, t, LABELS)
    expected = eps - s * (1 - a_bar[t]).sqrt().reshape(-1, 1, 1, 1) * grad
    assert torch.allclose(eps_guided, expected, atol=1e-4)


def test_algorithm_2_with_diffusers_ddim_scheduler_matches_ours():
    """Feed diffusers' DDIMScheduler the guided epsilon of Algorithm 2: same trajectory."""
    classifier, s = LinearClassifier(), 3.0
    scheduler = DDIMScheduler(num_train_timesteps=100, beta_schedule="linear")
    scheduler.set_timesteps(10)
    a_bar = scheduler.alphas_cumprod
    x = x_T()
    for t in scheduler.timesteps:
        tt = t.expand(4)
        grad = classifier_log_prob_grad(classifier, x, tt, LABELS)
        eps = stand_in_model(x, tt) - s * (1 - a_bar[t]).sqrt() * grad
        x = scheduler.step(eps, t, x).prev_sample
    model = cg_model(stand_in_model, classifier, LABELS, s, SCHEDULE.alpha_bar)
    ours = ddim_sample(model, x_T(), SCHEDULE, 10)
    assert (ours - x).abs().max() <= 1e-4


def test_algorithm_1_is_diffusers_ddpm_step_plus_s_sigma_grad():
    classifier, s = LinearClassifier(), 3.0
    scheduler = DDPMScheduler(num_train_timesteps=100, beta_schedule="linear")
    scheduler.set_timesteps(10)
    g = torch.Generator().manual_seed(1)
    x = x_T()
    for t in scheduler.timesteps:
        tt = t.expand(4)
        out = scheduler.step(stand_in_model(x, tt), t, x, generator=g)
        # Sigma: the variance diffusers' step used (fixed_small, no noise at t = 0)
        variance = scheduler._get_variance(t) if t > 0 else torch.tensor(0.0)
        grad = classifier_log_prob_grad(classifier, x, tt, LABELS)
        x = out.prev_sample + s * variance * grad
    ours = cg_ddpm_sample(
        stand_in_model, classifier, LABELS, x_T(), SCHEDULE, 10,
        classifier_scale=s, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert (ours - x).abs().max() <= 1e-4


def test_guidance_raises_the_classifiers_log_prob_of_the_target():
    classifier = LinearClassifier()
    t0 = torch.zeros(4, dtype=torch.long)

    def log_p(x):
        return classifier(x, t0).log_softmax(-1)[torch.arange(4), LABELS]

    results = []
    for s in [0.0, 1.0, 4.0]:
        x0 = cg_ddpm_sample(
            stand_in_model, classifier, LABELS, x_T(), SCHEDULE, 20,
            classifier_scale=s, generator=torch.Generator().manual_seed(3),
            clip_sample=False,
        )  # fmt: skip
        results.append(log_p(x0).mean().item())
    assert results[0] < results[1] < results[2]


def test_training_is_deterministic_and_save_load_round_trips(tmp_path):
    schedule = NoiseSchedule.from_name("cosine", num_train_timesteps=1000)
    a = train_noisy_classifier(schedule, steps=2, batch_size=8, progress=False)
    b = train_noisy_classifier(schedule, steps=2, batch_size=8, progress=False)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    save_noisy_classifier(a, tmp_path / "c", {"steps": 2})
    loaded = load_noisy_classifier(tmp_path / "c")
    x, t = torch.randn(3, 1, 16, 16), torch.tensor([0, 500, 999])
    assert torch.equal(loaded(x, t), a(x, t))
    assert a(x, t).shape == (3, 10)


def test_shipped_noise_aware_classifier_beats_the_clean_one_on_noisy_digits():
    schedule = NoiseSchedule.from_name("cosine", num_train_timesteps=1000)
    noisy, clean = load_noisy_classifier(), load_classifier()
    x0, y = load_digits("test")
    t = torch.full((len(x0),), 600)
    x_t = q_sample(
        x0, t, schedule.alpha_bar, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        acc_noisy = (noisy(x_t, t).argmax(-1) == y).float().mean()
        acc_clean = (TimeBlind(clean)(x_t, t).argmax(-1) == y).float().mean()
        acc_noisy_t0 = (noisy(x0, t * 0).argmax(-1) == y).float().mean()
    assert acc_noisy > acc_clean + 0.1
    assert acc_noisy_t0 > 0.9


def test_noisy_classifier_depends_on_t():
    classifier = NoisyDigitClassifier()
    x = torch.randn(2, 1, 16, 16)
    assert not torch.equal(
        classifier(x, torch.tensor([0, 0])), classifier(x, torch.tensor([900, 900]))
    )


@pytest.mark.parametrize(
    "argv, name",
    [
        (["--steps", "x"], "--steps"),
        (["--steps", "0"], "steps"),
        (["--bogus"], "--bogus"),
    ],
)
def test_cli_errors_are_one_line_naming_the_option(argv, name, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err
