"""Tests for snippets/classifier_guidance.py: classifier guidance (Dhariwal & Nichol 2021)."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from snippets.classifier_guidance import (
    CONFIG_FILE,
    WEIGHTS_FILE,
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
    # the shipped classifier reads x_t at the shipped model's size (the digits' native 8x8);
    # the clean one reads 16x16 digits, so x_t reaches it through the data's bilinear resize
    x0, y = load_digits("test", image_size=noisy.image_size)
    t = torch.full((len(x0),), 600)
    x_t = q_sample(
        x0, t, schedule.alpha_bar, generator=torch.Generator().manual_seed(0)
    )

    def resized(x):
        return torch.nn.functional.interpolate(
            x, size=(16, 16), mode="bilinear", align_corners=False
        )

    with torch.no_grad():
        acc_noisy = (noisy(x_t, t).argmax(-1) == y).float().mean()
        acc_clean = (TimeBlind(clean)(resized(x_t), t).argmax(-1) == y).float().mean()
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
        (["--image-size", "x"], "--image-size"),
        (["--image-size", "6"], "image_size"),
    ],
)
def test_cli_errors_are_one_line_naming_the_option(argv, name, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err


# --- the classifier at the diffusion model's resolution (16x16, or the native 8x8) -----


def test_8x8_classifier_trains_saves_loads_with_its_size_and_guides_8x8(tmp_path):
    schedule = NoiseSchedule.from_name("cosine", num_train_timesteps=1000)
    classifier = train_noisy_classifier(
        schedule, steps=3, batch_size=8, progress=False, image_size=8
    )
    assert classifier.image_size == 8 and classifier.config["image_size"] == 8
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([0, 500, 999])
    assert classifier(x, t).shape == (3, 10)
    save_noisy_classifier(classifier, tmp_path / "c8", {"steps": 3, "image_size": 8})
    saved = json.loads((tmp_path / "c8" / CONFIG_FILE).read_text())
    assert saved["model"]["image_size"] == 8
    for loaded in [
        load_noisy_classifier(tmp_path / "c8"),
        load_noisy_classifier(tmp_path / "c8", image_size=8),
    ]:
        assert loaded.image_size == 8
        assert torch.equal(loaded(x, t), classifier(x, t))
    # guide an 8x8 model: Algorithm 1 (DDPM) and Algorithm 2 (DDIM through cg_model)
    labels = torch.tensor([3, 7])
    x_T = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    grad = classifier_log_prob_grad(classifier, x_T, torch.tensor([500, 500]), labels)
    assert grad.shape == x_T.shape and grad.abs().sum() > 0
    runs = {}
    for s in [0.0, 3.0]:
        runs[s] = cg_ddpm_sample(
            stand_in_model, classifier, labels, x_T, schedule, 10,
            classifier_scale=s, generator=torch.Generator().manual_seed(1),
        )  # fmt: skip
    plain = ddpm_sample(
        stand_in_model, x_T, schedule, 10, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(runs[0.0], plain)
    assert runs[3.0].shape == (2, 1, 8, 8) and runs[3.0].isfinite().all()
    assert not torch.equal(runs[3.0], plain)
    model = cg_model(stand_in_model, classifier, labels, 3.0, schedule.alpha_bar)
    guided = ddim_sample(model, x_T, schedule, 10)
    assert guided.shape == (2, 1, 8, 8)
    assert not torch.equal(guided, ddim_sample(stand_in_model, x_T, schedule, 10))


def test_classifier_size_other_than_x_t_is_an_error_naming_the_argument():
    schedule = NoiseSchedule.from_name("cosine", num_train_timesteps=1000)
    labels, t = torch.tensor([3, 7]), torch.tensor([10, 10])
    x8, x16 = torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 16, 16)
    for size, x in [(16, x8), (8, x16)]:
        classifier = NoisyDigitClassifier(image_size=size)
        with pytest.raises(ValueError, match=r"image_size=\d+\) but x_t has shape"):
            classifier_log_prob_grad(classifier, x, t, labels)
        model = cg_model(stand_in_model, classifier, labels, 1.0, schedule.alpha_bar)
        with pytest.raises(ValueError, match=r"image_size=\d+\) but x_t has shape"):
            model(x, t)
        with pytest.raises(ValueError, match=r"image_size=\d+\) but x_T has shape"):
            cg_ddpm_sample(stand_in_model, classifier, labels, x, schedule, 2)
        with pytest.raises(ValueError, match=r"^x must have shape"):
            classifier(x, t)
    # a guide without an image_size (any callable) is not checked
    grad = classifier_log_prob_grad(LinearClassifier(64), x8, t, torch.tensor([0, 2]))
    assert grad.shape == x8.shape


@pytest.mark.parametrize("image_size", [6, 2, 0])
def test_image_size_its_pooling_cannot_take_is_refused(image_size):
    with pytest.raises(ValueError, match="image_size"):
        NoisyDigitClassifier(image_size=image_size)
    with pytest.raises(ValueError, match="image_size"):
        train_noisy_classifier(SCHEDULE, steps=1, progress=False, image_size=image_size)


def test_saved_config_without_image_size_loads_as_16x16(tmp_path):
    """Classifiers saved before `image_size` existed (the shipped one) read 16x16 digits."""
    from safetensors.torch import save as save_safetensors

    from snippets.checkpoint import commit_files

    old = NoisyDigitClassifier()
    config = {"model": {"num_classes": 10, "num_train_timesteps": 1000, "width": 32}}
    files = {
        WEIGHTS_FILE: save_safetensors(old.state_dict()),
        CONFIG_FILE: json.dumps(config).encode(),
    }
    commit_files(tmp_path / "old", files, 0)
    loaded = load_noisy_classifier(tmp_path / "old")
    assert loaded.image_size == 16 and loaded.config["image_size"] == 16
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([0, 999])
    assert torch.equal(loaded(x, t), old(x, t))
    assert load_noisy_classifier().image_size == 8  # the shipped one: the shipped model's
    assert load_noisy_classifier(image_size=8).image_size == 8
    with pytest.raises(ValueError, match=r"image_size=8 was asked"):
        load_noisy_classifier(tmp_path / "old", image_size=8)
